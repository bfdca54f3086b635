"""Run by ``torchrun --nproc_per_node 2`` from test_training_trainer.py (not a test module itself).

Each process writes the batches the data loader hands it (row indices per step) and then trains
for real; process 0 saves the model. Arguments: TRAIN_JSONL TINY_MODEL WORK_DIR.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(train_jsonl: str, tiny_model: str, work: str) -> None:
    import torch.distributed as dist

    from hybrid_plugin.models.ref import resolve_model
    from hybrid_plugin.training.trainer import TrainConfig, build_trainer, load_training_data, train

    work_dir = Path(work)
    options = dict(
        train_data=[f"jsonl:{train_jsonl}"],
        base_model=tiny_model,
        strategy="hybrid",
        alpha=0.5,
        batch_size=8,  # 4 per process; the loss gathers the other process's 4
        max_seq_length=32,
        seed=5,
        progress=False,
    )
    cfg = TrainConfig(output=str(work_dir / "unused"), **options)
    data = load_training_data(cfg)
    trainer, _model, _ = build_trainer(cfg, resolve_model(tiny_model), data, work_dir / "probe")
    loader = trainer.get_train_dataloader()
    loader.set_epoch(0)
    batches = [list(map(int, b)) for b in loader.batch_sampler]
    rank = dist.get_rank()
    (work_dir / f"batches-{rank}.json").write_text(
        json.dumps({"rank": rank, "world": dist.get_world_size(), "batches": batches}), encoding="utf-8"
    )
    train(output=str(work_dir / "model"), max_steps=3, **options)


if __name__ == "__main__":
    main(*sys.argv[1:])
