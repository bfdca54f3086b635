"""Hybrid-batch training: data → pairs → sampler → InfoNCE loss → sentence-transformers' trainer.

``train(train_data=[...], output=...)`` takes the same options as ``hybrid-plugin train``.
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from hybrid_plugin.atomic import atomic_dir
from hybrid_plugin.errors import Interrupted, UserError
from hybrid_plugin.models.ref import ModelRef, resolve_model
from hybrid_plugin.provenance import library_versions
from hybrid_plugin.training.card import RECORD_FILE, RECORD_FORMAT, write_card, write_record
from hybrid_plugin.training.checkpoints import completion_marker, resume_from
from hybrid_plugin.training.data import (
    PASSAGE_UNITS,
    PairTable,
    ParallelItems,
    build_pairs,
    read_sources,
    select_languages,
    split_dev,
)
from hybrid_plugin.training.samplers import PairLabels, make_batch_sampler, world_size
from hybrid_plugin.training.strategies import MONO_WEIGHTS, canonical_strategy, resolve_alpha

LIBRARIES = ("torch", "sentence-transformers", "transformers", "accelerate", "datasets")
LOSSES = ("mnrl", "cached-mnrl")


@dataclass
class TrainConfig:
    """Every option of ``hybrid-plugin train`` (recorded in the model's ``training.json``)."""

    train_data: list[str]
    output: str
    base_model: str | None = "default"
    strategy: str = "hybrid"
    alpha: float | None = None  # hybrid only; default 0.5
    mono_weights: str = "uniform"  # language of a monolingual batch: uniform, or by number of items
    languages: list[str] | None = None  # restrict questions and passages to these
    passage_unit: str = "auto"
    batch_size: int = 100  # the paper's
    mini_batch_size: int | None = None  # set → CachedMultipleNegativesRankingLoss (GradCache)
    epochs: float = 1.0
    max_steps: int | None = None  # overrides epochs
    learning_rate: float = 3e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    scale: float = 20.0  # inverse temperature of the InfoNCE softmax
    max_seq_length: int | None = 256  # training only; the saved model keeps the base's
    freeze_embeddings: bool = False  # keep the word-embedding matrix fixed (far faster steps on CPU)
    merge_with_base: float | None = None  # save λ·trained + (1 − λ)·base instead of the trained weights
    dev_fraction: float = 0.0  # hold out this share of items (whole conflict groups) for a dev loss
    dev_steps: int = 50  # dev loss every N steps (and at the end)
    seed: int = 0
    logging_steps: int = 10
    save_steps: int = 0  # > 0: checkpoints in OUTPUT.checkpoints/, deleted once the model is saved
    resume: bool = False
    eval_tasks: list[str] = field(default_factory=list)
    eval_languages: str | None = None
    data_dir: str | None = None
    eval_out: str | None = None  # default: OUTPUT-eval beside the model
    progress: bool = True

    def validate(self, check_output: bool = True) -> None:
        """UserError on the first bad option (``check_output=False``: the output folder is not used)."""
        if not self.train_data:
            raise UserError("--train-data is required (FORMAT:PATH, e.g. mlqa:datasets/train/mlqa-test)")
        for name, value in asdict(self).items():  # nan/inf slip through every range check below
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"--{name.replace('_', '-')} must be a finite number, got {value}")
        self.strategy = canonical_strategy(self.strategy)
        resolve_alpha(self.strategy, self.alpha)
        if self.mono_weights not in MONO_WEIGHTS:
            choices = ", ".join(MONO_WEIGHTS)
            raise UserError(f"--mono-weights {self.mono_weights!r}: expected one of {choices}")
        if self.merge_with_base is not None and not 0.0 <= self.merge_with_base <= 1.0:
            raise UserError(
                f"--merge-with-base must be in [0, 1] (1 = the trained weights), got {self.merge_with_base}"
            )
        if not 0.0 <= self.dev_fraction < 0.5:
            raise UserError(f"--dev-fraction must be in [0, 0.5), got {self.dev_fraction}")
        if self.passage_unit not in PASSAGE_UNITS:
            units = ", ".join(PASSAGE_UNITS)
            raise UserError(f"--passage-unit {self.passage_unit!r}: expected one of {units}")
        positive = {
            "--batch-size": self.batch_size,
            "--logging-steps": self.logging_steps,
            "--dev-steps": self.dev_steps,
        }
        if self.mini_batch_size is not None:
            positive["--mini-batch-size"] = self.mini_batch_size
        if self.max_steps is not None:
            positive["--max-steps"] = self.max_steps
        if self.max_seq_length is not None:
            positive["--max-seq-length"] = self.max_seq_length
        for flag, value in positive.items():
            if value < 1:
                raise UserError(f"{flag} must be ≥ 1, got {value}")
        if self.batch_size < 2:
            raise UserError(f"--batch-size must be ≥ 2 for in-batch negatives, got {self.batch_size}")
        for flag, value, low in (
            ("--epochs", self.epochs, 0.0),
            ("--learning-rate", self.learning_rate, 0.0),
            ("--scale", self.scale, 0.0),
        ):
            if not value > low or not math.isfinite(value):
                raise UserError(f"{flag} must be > {low:g}, got {value}")
        if self.weight_decay < 0 or not 0 <= self.warmup_ratio < 1:
            raise UserError("--weight-decay must be ≥ 0 and --warmup-ratio in [0, 1)")
        if self.save_steps < 0:
            raise UserError(f"--save-steps must be ≥ 0, got {self.save_steps}")
        if not check_output:
            return
        out = Path(self.output)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise UserError(f"--output {out} exists and is not an empty folder; choose a new one")
        if self.resume and not self.checkpoint_dir.is_dir():
            raise UserError(f"--resume: no checkpoints at {self.checkpoint_dir}")
        if not self.resume and any(self.checkpoint_dir.glob("checkpoint-*")):
            raise UserError(
                f"{self.checkpoint_dir} holds checkpoints of an unfinished run: add --resume, or delete it"
            )

    @property
    def checkpoint_dir(self) -> Path:
        out = Path(self.output)
        return out.parent / f"{out.name}.checkpoints"

    @property
    def eval_dir(self) -> Path:
        out = Path(self.output)
        return Path(self.eval_out) if self.eval_out else out.parent / f"{out.name}-eval"

    @property
    def loss_name(self) -> str:
        return "cached-mnrl" if self.mini_batch_size else "mnrl"


def pair_labels(pairs: PairTable) -> PairLabels:
    return PairLabels(pairs.group, pairs.query_lang, pairs.passage_lang, pairs.languages)


@dataclass
class TrainingData:
    """The parsed training data, its training pairs and (optionally) held-out dev pairs."""

    items: ParallelItems
    pairs: PairTable
    dev: PairTable | None = None

    @property
    def labels(self) -> PairLabels:
        return pair_labels(self.pairs)

    @property
    def dev_labels(self) -> PairLabels | None:
        return pair_labels(self.dev) if self.dev is not None else None

    def describe(self) -> dict:
        return {
            "sources": self.items.sources,
            "passage_unit": self.items.passage_unit,
            "items": len(self.items),
            "pairs": len(self.pairs),
            "languages": list(self.pairs.languages),
            "counts": self.items.counts(),
            "pairs_by_language_pair": self.pairs.counts(),
            "dev_pairs": len(self.dev) if self.dev is not None else 0,
            "dev_items": len(np.unique(self.dev.item)) if self.dev is not None else 0,
        }

    def summary(self) -> str:
        """What was read, for the console: items, pairs per language and per language pair."""
        counts = self.items.counts()
        lines = [
            f"training data: {len(self.items)} items, {len(self.pairs)} pairs, passage unit "
            f"{self.items.passage_unit}",
            "  questions / passages: "
            + ", ".join(f"{lang} {c['questions']}/{c['passages']}" for lang, c in counts.items()),
            "  pairs (query-passage): " + ", ".join(f"{k} {v}" for k, v in self.pairs.counts().items()),
        ]
        if self.dev is not None:
            lines.append(f"  held out for the dev loss: {len(self.dev)} pairs")
        return "\n".join(lines)


def load_training_data(cfg: TrainConfig) -> TrainingData:
    """Read every source, keep the chosen languages, expand into pairs, hold out the dev set."""
    items = read_sources(cfg.train_data, cfg.passage_unit, progress=cfg.progress, data_dir=cfg.data_dir)
    items = select_languages(items, cfg.languages)
    pairs, dev = split_dev(build_pairs(items), cfg.dev_fraction, cfg.seed)
    return TrainingData(items, pairs, dev)


def _need_training_extra() -> None:
    missing = [lib for lib in ("accelerate", "datasets") if _missing(lib)]
    if missing:
        raise UserError(f"training needs {', '.join(missing)}: pip install 'hybrid-plugin[train]'")


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


class StepTimer:
    """Trainer callback: wall-clock time at the start of training and after every optimizer step."""

    def __new__(cls):  # built lazily so importing this module does not import transformers
        from transformers import TrainerCallback

        class _StepTimer(TrainerCallback):
            def __init__(self) -> None:
                self.times: list[float] = []

            def on_train_begin(self, args, state, control, **kwargs):
                self.times = [time.perf_counter()]

            def on_step_end(self, args, state, control, **kwargs):
                self.times.append(time.perf_counter())

            def step_seconds(self, skip: int = 1) -> list[float]:
                """Duration of each step (the first ``skip`` left out: warm-up, data-loader start)."""
                gaps = [b - a for a, b in zip(self.times, self.times[1:])]
                return gaps[skip:] if len(gaps) > skip else gaps

        return _StepTimer()


def build_trainer(
    cfg: TrainConfig,
    model_ref: ModelRef,
    data: TrainingData,
    work_dir: Path,
    batch_sampler: Callable | object | None = None,
    callbacks: Sequence = (),
):
    """The sentence-transformers trainer for ``cfg``; ``batch_sampler`` replaces ours (benchmarks).

    ``cfg.batch_size`` is the batch the loss sees: with N processes each trains on batch_size / N
    pairs and the loss gathers the others' embeddings as further in-batch negatives.
    Returns ``(trainer, model, samplers)``: ``samplers`` collects the batch samplers the trainer makes.
    """
    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    processes = world_size()
    if cfg.batch_size % processes:
        raise UserError(f"--batch-size {cfg.batch_size} must be divisible by the {processes} processes")
    per_process = cfg.batch_size // processes
    model = model_ref.load()
    if cfg.max_seq_length and (model.max_seq_length or 0) > cfg.max_seq_length:
        model.max_seq_length = cfg.max_seq_length
    if cfg.freeze_embeddings:
        _freeze_word_embeddings(model)
    gather = processes > 1
    if cfg.mini_batch_size:
        loss = CachedMultipleNegativesRankingLoss(
            model,
            scale=cfg.scale,
            mini_batch_size=cfg.mini_batch_size,
            gather_across_devices=gather,
            show_progress_bar=False,
        )
    else:
        loss = MultipleNegativesRankingLoss(model, scale=cfg.scale, gather_across_devices=gather)

    samplers: list = []
    if batch_sampler is None:
        batch_sampler = make_batch_sampler(
            data.labels, cfg.strategy, cfg.alpha, cfg.mono_weights, dev_labels=data.dev_labels
        )
        samplers = batch_sampler.created
        if data.dev is not None:  # fail now, not at the first dev evaluation
            try:
                batch_sampler(data.dev.to_dataset(), batch_size=per_process, drop_last=True)
            except UserError as err:
                raise UserError(f"dev set: {err}; raise --dev-fraction") from None

    prompts = {}
    if model_ref.query_prompt:
        prompts["query"] = model_ref.query_prompt
    if model_ref.document_prompt:
        prompts["passage"] = model_ref.document_prompt
    dev = {}
    if data.dev is not None:
        dev = dict(
            eval_strategy="steps",
            eval_steps=cfg.dev_steps,
            per_device_eval_batch_size=per_process,
            eval_on_start=True,
        )
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work_dir),
        per_device_train_batch_size=per_process,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps or -1,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        **_warmup(cfg.warmup_ratio),
        seed=cfg.seed,
        batch_sampler=batch_sampler,
        prompts=prompts or None,
        logging_steps=cfg.logging_steps,
        save_strategy="steps" if cfg.save_steps else "no",
        save_steps=cfg.save_steps or 500,
        report_to="none",
        disable_tqdm=not cfg.progress,
        dataloader_drop_last=True,
        dataloader_pin_memory=torch.cuda.is_available(),
        # several CPU processes (torchrun without GPUs): accelerate runs DDP over gloo only with use_cpu
        use_cpu=processes > 1 and not torch.cuda.is_available(),
        **dev,
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=data.pairs.to_dataset(),
        eval_dataset=data.dev.to_dataset() if data.dev is not None else None,
        loss=loss,
        callbacks=list(callbacks),
    )
    return trainer, model, samplers


class GracefulStop:
    """Trainer callback: the first Ctrl-C (SIGINT) ends training after the current step with a
    checkpoint saved, so ``--resume`` continues; a second Ctrl-C stops at once."""

    def __new__(cls):  # built lazily so importing this module does not import transformers
        import signal

        from transformers import TrainerCallback

        class _GracefulStop(TrainerCallback):
            def __init__(self) -> None:
                self.requested = False
                self.stopped_at: int | None = None
                self._previous = None

            def _handler(self, signum, frame) -> None:
                if self.requested:  # second Ctrl-C: the usual KeyboardInterrupt
                    raise KeyboardInterrupt
                self.requested = True
                print("\nCtrl-C: saving a checkpoint after this step (Ctrl-C again to stop at once)")

            def on_train_begin(self, args, state, control, **kwargs):
                import threading

                if threading.current_thread() is threading.main_thread():
                    self._previous = signal.signal(signal.SIGINT, self._handler)

            def on_step_end(self, args, state, control, **kwargs):
                if self.requested and self.stopped_at is None:
                    self.stopped_at = state.global_step
                    control.should_save = True
                    control.should_training_stop = True
                return control

            def on_train_end(self, args, state, control, **kwargs):
                if self._previous is not None:
                    signal.signal(signal.SIGINT, self._previous)
                    self._previous = None

        return _GracefulStop()


def merge_weights(model, base_state: dict, weight: float) -> int:
    """In place: every floating-point tensor becomes ``weight·trained + (1 − weight)·base``.

    Returns the number of tensors merged.
    """
    import torch

    merged = 0
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            base = base_state.get(name)
            if base is None or not tensor.is_floating_point():
                continue
            tensor.copy_(weight * tensor + (1.0 - weight) * base.to(tensor.device, tensor.dtype))
            merged += 1
    return merged


#: files that training never changes: copied from the base model byte for byte
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)
#: module configs whose settings the saved copy must keep (sentence-transformers drops ``model_kwargs``)
MODULE_CONFIGS = ("sentence_bert_config.json",)


def keep_base_files(base: Path, saved: Path) -> None:
    """Undo what saving changes besides the weights: the tokenizer files go back to the base's bytes
    (saving writes the training truncation into tokenizer.json), and module-config keys that the base
    has but the save dropped (``model_kwargs``, e.g. no pooler) are restored."""
    import json

    from hybrid_plugin.atomic import write_text

    base, saved = Path(base), Path(saved)
    for src in base.rglob("*"):
        rel = src.relative_to(base)
        dest = saved / rel
        if not src.is_file() or not dest.is_file():
            continue
        if src.name in TOKENIZER_FILES:
            shutil.copyfile(src, dest)
        elif src.name in MODULE_CONFIGS:
            want = json.loads(src.read_text(encoding="utf-8"))
            have = json.loads(dest.read_text(encoding="utf-8"))
            missing = {k: v for k, v in want.items() if k not in have}
            if missing:
                write_text(dest, json.dumps({**have, **missing}, indent=2, ensure_ascii=False) + "\n")


def _freeze_word_embeddings(model) -> None:
    """Stop gradients to the input word embeddings (most of a multilingual model's parameters)."""
    embeddings = model[0].auto_model.get_input_embeddings() if hasattr(model[0], "auto_model") else None
    if embeddings is None:
        raise UserError("--freeze-embeddings: the base model's first module has no input embeddings")
    embeddings.weight.requires_grad_(False)


def _warmup(ratio: float) -> dict:
    """transformers 5 takes a warmup ratio as a float ``warmup_steps``; 4 as ``warmup_ratio``."""
    major = int(metadata.version("transformers").split(".")[0])
    return {"warmup_steps": float(ratio)} if major >= 5 else {"warmup_ratio": ratio}


def _process_rank() -> int:
    import os

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def _dev_losses(log_history: list[dict]) -> list[dict]:
    return [{"step": e["step"], "loss": e["eval_loss"]} for e in log_history if "eval_loss" in e]


def train(config: TrainConfig | None = None, /, *, callbacks: Sequence = (), **options) -> dict:
    """Train a retriever with hybrid (or baseline) batches; returns the training record.

    Either pass a :class:`TrainConfig` or its fields as keywords, e.g.
    ``train(train_data=["mlqa:data/mlqa-test"], output="out/hybrid", strategy="hybrid", alpha=0.5)``.
    The model is written to ``output`` (atomically: complete or absent), with ``training.json`` and a
    model card; with ``eval_tasks`` it is then evaluated and the results go to ``eval_dir``.
    Checkpoints go to ``OUTPUT.checkpoints/`` (every ``save_steps``, and on Ctrl-C) and are removed
    once the model is saved. Under ``torchrun`` every process trains; process 0 writes the files.
    Extra transformers ``callbacks`` are passed to the trainer.
    """
    cfg = config if config is not None else TrainConfig(**options)
    if config is not None and options:
        raise TypeError("pass a TrainConfig or keyword options, not both")
    cfg.validate()
    _need_training_extra()
    main_process = _process_rank() == 0
    eval_plan = _check_eval_tasks(cfg)
    model_ref = resolve_model(None if cfg.base_model in (None, "", "default") else cfg.base_model)
    data = load_training_data(cfg)
    if main_process:
        print(data.summary())
    output = Path(cfg.output)
    if main_process and output.is_dir():  # empty (validated): atomic_dir renames onto a missing path only
        output.rmdir()
    timer, stop = StepTimer(), GracefulStop()
    started = datetime.now(timezone.utc)
    work_dir = cfg.checkpoint_dir
    with atomic_dir(output) if main_process else tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        saved_max_len = model_ref.load().max_seq_length  # the saved model keeps the base's
        base_state = None
        if cfg.merge_with_base is not None:
            base_state = {k: v.detach().clone() for k, v in model_ref.load().state_dict().items()}
        trainer, model, samplers = build_trainer(
            cfg, model_ref, data, work_dir, callbacks=[timer, stop, completion_marker(), *callbacks]
        )
        train_max_len = model.max_seq_length
        t0 = time.perf_counter()
        resume = resume_from(work_dir, report=main_process) if cfg.resume else None  # complete ones only
        result = trainer.train(resume_from_checkpoint=resume)
        train_seconds = time.perf_counter() - t0
        if stop.stopped_at is not None:
            raise Interrupted(
                f"checkpoint of step {stop.stopped_at} in {work_dir}; no model was written. "
                "Continue with the same command plus --resume"
            )
        if not main_process:
            return {}
        model.max_seq_length = saved_max_len
        merged = merge_weights(model, base_state, cfg.merge_with_base) if base_state is not None else 0
        model.save(str(tmp), create_model_card=False)
        keep_base_files(model_ref.path, tmp)
        steps = int(result.global_step)
        step_seconds = timer.step_seconds()
        per_step = sorted(step_seconds)[len(step_seconds) // 2] if step_seconds else float("nan")
        sampler = samplers[-1].describe() if samplers else {}
        record = {
            "format": RECORD_FORMAT,
            "started": started.isoformat(timespec="seconds"),
            "config": asdict(cfg),
            "base_model": {
                "name": model_ref.name,
                "path": str(model_ref.path),
                "fingerprint": model_ref.fingerprint,
            },
            "prompts": {"query": model_ref.query_prompt, "passage": model_ref.document_prompt},
            "prompt_names": {
                "query": model_ref.query_prompt_name,
                "document": model_ref.document_prompt_name,
            },
            "loss": cfg.loss_name,
            "data": data.describe(),
            "sampler": sampler,
            "steps": steps,
            "pairs_seen": steps * cfg.batch_size,
            "processes": world_size(),
            "train_seconds": train_seconds,
            "seconds_per_step": per_step,
            "pairs_per_second": cfg.batch_size / per_step if per_step > 0 else 0.0,
            "final_loss": float(result.training_loss),
            "dev_loss": _dev_losses(trainer.state.log_history),
            "merge_with_base": {"weight": cfg.merge_with_base, "tensors": merged} if base_state else None,
            "max_seq_length": {"training": train_max_len, "saved": saved_max_len},
            "device": str(model.device),
            "versions": library_versions(LIBRARIES),
            "evaluation": {},
        }
        write_record(tmp, record, name=output.name)
    shutil.rmtree(work_dir, ignore_errors=True)  # checkpoints are for interrupted runs only
    print(f"wrote {output}: {steps} steps, {per_step:.3f} s/step, {record['pairs_per_second']:.1f} pairs/s")
    if eval_plan:
        record["evaluation"] = _evaluate(cfg, output, eval_plan)
        # scores go into README.md only: it is outside the model's fingerprint, training.json is not
        write_card(output, record, name=output.name)
    return record


def merge_saved(
    trained: str | Path, weight: float, output: str | Path, base_model: str | None = None
) -> dict:
    """Write ``weight·trained + (1 − weight)·base`` of an already trained model folder to ``output``.

    The same weights as training with ``--merge-with-base weight`` (training is deterministic for a
    seed), without training again. The base is ``base_model`` (default: the one in the trained
    model's ``training.json``, which must match its fingerprint). Returns the new record.
    """
    import json

    trained, output = Path(trained), Path(output)
    record_file = trained / RECORD_FILE
    if not record_file.is_file():
        raise UserError(f"{trained}: no {RECORD_FILE}; expected a model written by hybrid-plugin train")
    record = json.loads(record_file.read_text(encoding="utf-8"))
    if record.get("merge_with_base"):
        weight_before = record["merge_with_base"]["weight"]
        raise UserError(f"{trained}: already merged with its base (weight {weight_before})")
    if not 0.0 <= weight <= 1.0:
        raise UserError(f"merge weight must be in [0, 1] (1 = the trained weights), got {weight}")
    if output.exists():
        raise UserError(f"{output} exists; choose a new folder for the merged model")
    base_ref = resolve_model(base_model if base_model is not None else record["config"]["base_model"])
    if base_ref.fingerprint != record["base_model"]["fingerprint"]:
        raise UserError(
            f"base model {base_ref.name} (fingerprint {base_ref.fingerprint[:12]}) is not the one "
            f"{trained} was trained from ({record['base_model']['fingerprint'][:12]})"
        )
    model = resolve_model(str(trained)).load()
    tensors = merge_weights(model, base_ref.load().state_dict(), weight)
    record = dict(record)
    record["config"] = dict(record["config"], merge_with_base=weight, output=str(output))
    record["merge_with_base"] = {"weight": weight, "tensors": tensors, "merged_from": str(trained)}
    record["evaluation"] = {}
    with atomic_dir(output) as tmp:
        model.save(str(tmp), create_model_card=False)
        keep_base_files(trained, Path(tmp))
        write_record(Path(tmp), record, name=output.name)
    print(f"wrote {output}: {weight:g}·{trained.name} + {1 - weight:g}·base ({tensors} tensors)")
    return record


def dry_run(cfg: TrainConfig) -> dict:
    """Read the data and draw one epoch of batches without a model; print and return the plan."""
    from hybrid_plugin.training.samplers import HybridBatchSampler

    cfg.validate(check_output=False)  # nothing is written
    data = load_training_data(cfg)
    processes = world_size()
    sampler = HybridBatchSampler(
        range(len(data.pairs)),
        batch_size=max(1, cfg.batch_size // processes),
        labels=data.labels,
        strategy=cfg.strategy,
        alpha=cfg.alpha,
        mono_weights=cfg.mono_weights,
        world_size=processes,
        seed=cfg.seed,
    )
    for _ in sampler:
        pass
    plan = sampler.describe()
    steps_per_epoch = plan["batches_per_epoch"] // processes
    print(data.summary())
    print(
        f"sampler: {plan['strategy']} (alpha {plan['alpha']}), batch size {cfg.batch_size}, "
        f"{steps_per_epoch} steps per epoch; independent items per batch kind: "
        + ", ".join(f"{k} {v}" for k, v in plan["independent_items"].items())
    )
    print("one epoch of batches by kind: " + ", ".join(f"{k} {v}" for k, v in plan["batches_drawn"].items()))
    return {"data": data.describe(), "sampler": plan}


def _check_eval_tasks(cfg: TrainConfig) -> list:
    """Resolve evaluation tasks and their files before training, so a typo does not cost a run."""
    from hybrid_plugin.data.files import resolve_files
    from hybrid_plugin.data.spec import get_spec
    from hybrid_plugin.data.spec import select_languages as select_eval_languages

    plan = []
    for task in cfg.eval_tasks:
        spec = get_spec(task)
        langs = select_eval_languages(spec, cfg.eval_languages)
        resolve_files(spec, langs, cfg.data_dir)
        plan.append(spec.name)
    return plan


def _evaluate(cfg: TrainConfig, model_dir: Path, tasks: list[str]) -> dict:
    from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate
    from hybrid_plugin.evaluation.report import scores_line, write_results

    scores = {}
    for task in tasks:
        results = evaluate(
            EvalConfig(task=task, model=str(model_dir), languages=cfg.eval_languages, data_dir=cfg.data_dir)
        )
        paths = write_results(results, cfg.eval_dir)
        scores[task] = results["scores"]
        print(f"{task}: {scores_line(results['scores'])}  ({paths['results']})")
    return scores
