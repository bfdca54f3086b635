"""Training speed: our hybrid-batch sampler vs sentence-transformers' default sampler.

Same model, data, batch size, loss and trainer; only the batch sampler differs. The two samplers
draw different mixes of languages, and so of text lengths; to time the samplers and not the texts,
only pairs whose query and passage both fill ``--max-seq-length`` tokens are kept, so every batch
has the same shape. Runs alternate (ours, default, default, ours, ...) so that drift from other work
on the machine falls on both. Each sampler is also timed alone over one epoch, which bounds its
share of a step without noise.

Usage: python benchmarks/train_speed.py --train-data mlqa:../shared/datasets/train/mlqa-test
Writes benchmarks/results/train_speed.json and .md (with the command that produced them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hybrid_plugin.atomic import write_text
from hybrid_plugin.models.ref import resolve_model
from hybrid_plugin.provenance import portable_command
from hybrid_plugin.training.build import StepTimer, TrainingData, build_trainer, load_training_data
from hybrid_plugin.training.config import TrainConfig


def sampler_seconds_per_batch(data, cfg: TrainConfig, repeats: int = 3) -> dict[str, float]:
    """Seconds to draw one batch, ours vs torch's BatchSampler(RandomSampler) as the trainer builds it."""
    import torch
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from torch.utils.data import RandomSampler

    from hybrid_plugin.training.samplers import make_batch_sampler

    dataset = range(len(data.pairs))
    ours = make_batch_sampler(data.labels, cfg.strategy, cfg.alpha)(
        dataset, batch_size=cfg.batch_size, drop_last=True, seed=cfg.seed
    )
    default = DefaultBatchSampler(
        RandomSampler(dataset, generator=torch.Generator().manual_seed(cfg.seed)),
        batch_size=cfg.batch_size,
        drop_last=True,
    )
    out = {}
    for name, sampler in (("hybrid", ours), ("default", default)):
        best = float("inf")
        for epoch in range(repeats):
            sampler.set_epoch(epoch)
            t = time.perf_counter()
            n = sum(1 for _ in sampler)
            best = min(best, (time.perf_counter() - t) / n)
        out[name] = best
    return out


def keep_full_length_pairs(cfg: TrainConfig, data: TrainingData) -> TrainingData:
    """Only the pairs whose prompted query and passage are both truncated at ``max_seq_length``."""
    ref = resolve_model(cfg.base_model)
    tokenizer = ref.load().tokenizer
    limit = cfg.max_seq_length

    def long_enough(prompt: str, texts: list[str]) -> np.ndarray:
        ids = tokenizer([prompt + t for t in texts], truncation=True, max_length=limit)["input_ids"]
        return np.array([len(x) >= limit for x in ids])

    keep = long_enough(ref.query_prompt, data.pairs.query) & long_enough(
        ref.document_prompt, data.pairs.passage
    )
    return TrainingData(data.items, data.pairs.select(np.flatnonzero(keep)))


def timed_run(cfg: TrainConfig, data, sampler_name: str, skip: int) -> list[float]:
    """Step durations of one short training run from the base weights."""
    from sentence_transformers.base.sampler import BatchSamplers

    ref = resolve_model(cfg.base_model)  # fresh ModelRef: the model loads anew from the base weights
    timer = StepTimer()
    with tempfile.TemporaryDirectory(prefix="hp-train-bench-") as work:
        override = BatchSamplers.BATCH_SAMPLER if sampler_name == "default" else None
        trainer, _, _ = build_trainer(cfg, ref, data, Path(work), batch_sampler=override, callbacks=[timer])
        trainer.train()
    return timer.step_seconds(skip=skip)


def render_markdown(record: dict) -> str:
    """The results page, from the JSON record alone."""
    summary, runs = record["summary"], record["runs"]
    load_before, load_after = record["load_average_before_after"]
    rows = [
        f"| {name} | {s['seconds_per_step_median']:.3f} | {s['pairs_per_second']:.1f} | "
        f"{s['sampler_seconds_per_batch'] * 1e6:.0f} |"
        for name, s in summary.items()
    ]
    extra_us = (
        summary["hybrid"]["sampler_seconds_per_batch"] - summary["default"]["sampler_seconds_per_batch"]
    ) * 1e6
    return "\n".join(
        [
            "# Training speed: hybrid sampler vs sentence-transformers' default sampler",
            "",
            f"`{record['command']}`",
            "",
            f"Model {record['model']}, {record['pairs']} MLQA pairs (those whose query and passage both fill "
            f"{record['max_seq_length']} tokens, so every batch has the same shape), batch "
            f"{record['batch_size']}, {record['loss']}, word embeddings "
            f"{'frozen' if record['freeze_embeddings'] else 'trained'}; {record['rounds']} rounds x "
            f"{record['steps_per_run']} steps per sampler (first {record['skipped_steps_per_run']} of "
            f"each run left out), alternating order, {record['machine']['cpu_count']} CPU cores.",
            "",
            "| sampler | s/step (median) | pairs/s | sampler µs/batch |",
            "|---|---|---|---|",
            *rows,
            "",
            "Per run (median s/step): "
            + ", ".join(f"{x['sampler']} {x['median_seconds_per_step']:.3f}" for x in runs)
            + f". Load average (1/5/15 min) {', '.join(f'{v:.1f}' for v in load_before)} before, "
            f"{', '.join(f'{v:.1f}' for v in load_after)} after.",
            "",
            f"Step-time overhead of the hybrid sampler, measured: {record['step_overhead']:+.1%} "
            "(includes the noise of other work on the machine). Drawing a batch, timed alone, costs "
            f"{extra_us:.0f} µs more than the default sampler: {record['sampler_overhead_per_step']:.5%} "
            "of a step.",
            "",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data_dir = os.environ.get("HYBRID_PLUGIN_DATA", "../shared/datasets")
    ap.add_argument("--train-data", default=f"mlqa:{data_dir}/train/mlqa-test")
    ap.add_argument("--model", default="default", help="base model (default: the offline e5-small)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=8, help="steps per run")
    ap.add_argument("--skip", type=int, default=2, help="leading steps left out of each run (warm-up)")
    ap.add_argument("--max-seq-length", type=int, default=16, help="every text is cut to this many tokens")
    ap.add_argument("--freeze-embeddings", action="store_true", help="as hybrid-plugin train's option")
    ap.add_argument("--rounds", type=int, default=2, help="each round runs both samplers once")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--render", metavar="JSON", help="only rewrite the .md beside a results JSON")
    args = ap.parse_args()
    if args.render:
        record = json.loads(Path(args.render).read_text(encoding="utf-8"))
        write_text(Path(args.render).with_suffix(".md"), render_markdown(record))
        return

    cfg = TrainConfig(
        train_data=[args.train_data],
        output="unused",
        base_model=args.model,
        batch_size=args.batch_size,
        max_steps=args.steps,
        max_seq_length=args.max_seq_length,
        logging_steps=args.steps,
        freeze_embeddings=args.freeze_embeddings,
        progress=False,
    )
    data = keep_full_length_pairs(cfg, load_training_data(cfg))
    per_batch = sampler_seconds_per_batch(data, cfg)
    load_before = os.getloadavg()
    steps: dict[str, list[float]] = {"hybrid": [], "default": []}
    order, runs = [], []
    for r in range(args.rounds):
        for name in ("hybrid", "default") if r % 2 == 0 else ("default", "hybrid"):
            run = timed_run(cfg, data, name, args.skip)
            steps[name] += run
            order.append(name)
            runs.append({"round": r + 1, "sampler": name, "median_seconds_per_step": statistics.median(run)})
            print(f"round {r + 1}: {name} median {statistics.median(run):.3f} s/step", flush=True)
    load_after = os.getloadavg()

    summary = {}
    for name, values in steps.items():
        median = statistics.median(values)
        summary[name] = {
            "steps_timed": len(values),
            "seconds_per_step_median": median,
            "seconds_per_step_mean": statistics.fmean(values),
            "pairs_per_second": args.batch_size / median,
            "sampler_seconds_per_batch": per_batch[name],
        }
    base = summary["default"]["seconds_per_step_median"]
    overhead = summary["hybrid"]["seconds_per_step_median"] / base - 1
    sampler_share = (per_batch["hybrid"] - per_batch["default"]) / base
    import torch

    command = "python " + portable_command([sys.argv[0], *sys.argv[1:]])
    record = {
        "command": command,
        "model": resolve_model(args.model).name,
        "train_data": [portable_command([s]) for s in args.train_data],
        "pairs": len(data.pairs),
        "pairs_note": "only pairs whose query and passage both fill max_seq_length (equal batch shapes)",
        "freeze_embeddings": args.freeze_embeddings,
        "batch_size": args.batch_size,
        "max_seq_length": args.max_seq_length,
        "steps_per_run": args.steps,
        "skipped_steps_per_run": args.skip,
        "rounds": args.rounds,
        "run_order": order,
        "runs": runs,
        "load_average_before_after": [load_before, load_after],
        "loss": cfg.loss_name,
        "summary": summary,
        "step_overhead": overhead,
        "sampler_overhead_per_step": sampler_share,
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
        },
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    out = Path(args.out)
    write_text(out / "train_speed.json", json.dumps(record, indent=1) + "\n")
    md = render_markdown(record)
    write_text(out / "train_speed.md", md)
    print(md)


if __name__ == "__main__":
    main()
