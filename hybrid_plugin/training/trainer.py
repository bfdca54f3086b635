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

from hybrid_plugin.atomic import atomic_dir
from hybrid_plugin.errors import UserError
from hybrid_plugin.models.ref import ModelRef, resolve_model
from hybrid_plugin.provenance import library_versions
from hybrid_plugin.training.card import RECORD_FORMAT, write_card, write_record
from hybrid_plugin.training.data import (
    PASSAGE_UNITS,
    PairTable,
    ParallelItems,
    build_pairs,
    read_sources,
    select_languages,
)
from hybrid_plugin.training.samplers import PairLabels, make_batch_sampler
from hybrid_plugin.training.strategies import resolve_alpha

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
    seed: int = 0
    logging_steps: int = 10
    save_steps: int = 0  # > 0: checkpoints in OUTPUT.checkpoints/, deleted once the model is saved
    resume: bool = False
    eval_tasks: list[str] = field(default_factory=list)
    eval_languages: str | None = None
    data_dir: str | None = None
    eval_out: str | None = None  # default: OUTPUT-eval beside the model
    progress: bool = True

    def validate(self) -> None:
        """UserError on the first bad option."""
        if not self.train_data:
            raise UserError("--train-data is required (FORMAT:PATH, e.g. mlqa:datasets/train/mlqa-test)")
        resolve_alpha(self.strategy, self.alpha)
        if self.passage_unit not in PASSAGE_UNITS:
            units = ", ".join(PASSAGE_UNITS)
            raise UserError(f"--passage-unit {self.passage_unit!r}: expected one of {units}")
        positive = {"--batch-size": self.batch_size, "--logging-steps": self.logging_steps}
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
        out = Path(self.output)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise UserError(f"--output {out} exists and is not an empty folder; choose a new one")
        if self.resume and not self.checkpoint_dir.is_dir():
            raise UserError(f"--resume: no checkpoints at {self.checkpoint_dir}")

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


@dataclass
class TrainingData:
    """The parsed training data and its pairs."""

    items: ParallelItems
    pairs: PairTable

    @property
    def labels(self) -> PairLabels:
        p = self.pairs
        return PairLabels(p.group, p.query_lang, p.passage_lang, p.languages)

    def describe(self) -> dict:
        return {
            "sources": self.items.sources,
            "passage_unit": self.items.passage_unit,
            "items": len(self.items),
            "pairs": len(self.pairs),
            "languages": list(self.pairs.languages),
            "counts": self.items.counts(),
        }


def load_training_data(cfg: TrainConfig) -> TrainingData:
    """Read every source, keep the chosen languages, expand into pairs."""
    items = read_sources(cfg.train_data, cfg.passage_unit, progress=cfg.progress)
    items = select_languages(items, cfg.languages)
    return TrainingData(items, build_pairs(items))


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

    Returns ``(trainer, model, samplers)``: ``samplers`` collects the batch samplers the trainer makes.
    """
    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.losses import (
        CachedMultipleNegativesRankingLoss,
        MultipleNegativesRankingLoss,
    )

    model = model_ref.load()
    if cfg.max_seq_length and (model.max_seq_length or 0) > cfg.max_seq_length:
        model.max_seq_length = cfg.max_seq_length
    if cfg.freeze_embeddings:
        _freeze_word_embeddings(model)
    if cfg.mini_batch_size:
        loss = CachedMultipleNegativesRankingLoss(
            model, scale=cfg.scale, mini_batch_size=cfg.mini_batch_size, show_progress_bar=False
        )
    else:
        loss = MultipleNegativesRankingLoss(model, scale=cfg.scale)

    samplers: list = []
    if batch_sampler is None:
        batch_sampler = make_batch_sampler(data.labels, cfg.strategy, cfg.alpha)
        samplers = batch_sampler.created

    prompts = {}
    if model_ref.query_prompt:
        prompts["query"] = model_ref.query_prompt
    if model_ref.document_prompt:
        prompts["passage"] = model_ref.document_prompt
    args = SentenceTransformerTrainingArguments(
        output_dir=str(work_dir),
        per_device_train_batch_size=cfg.batch_size,
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
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=data.pairs.to_dataset(),
        loss=loss,
        callbacks=list(callbacks),
    )
    return trainer, model, samplers


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


def train(config: TrainConfig | None = None, /, **options) -> dict:
    """Train a retriever with hybrid (or baseline) batches; returns the training record.

    Either pass a :class:`TrainConfig` or its fields as keywords, e.g.
    ``train(train_data=["mlqa:data/mlqa-test"], output="out/hybrid", strategy="hybrid", alpha=0.5)``.
    The model is written to ``output`` (atomically: complete or absent), with ``training.json`` and a
    model card; with ``eval_tasks`` it is then evaluated and the results go to ``eval_dir``.
    """
    cfg = config if config is not None else TrainConfig(**options)
    if config is not None and options:
        raise TypeError("pass a TrainConfig or keyword options, not both")
    cfg.validate()
    _need_training_extra()
    eval_plan = _check_eval_tasks(cfg)
    model_ref = resolve_model(None if cfg.base_model in (None, "", "default") else cfg.base_model)
    data = load_training_data(cfg)
    print(
        f"training data: {len(data.items)} items, {len(data.pairs)} pairs, languages "
        f"{' '.join(data.pairs.languages)}, passage unit {data.items.passage_unit}"
    )
    output = Path(cfg.output)
    if output.is_dir():  # empty (validated): atomic_dir renames onto a missing path only
        output.rmdir()
    timer = StepTimer()
    started = datetime.now(timezone.utc)
    with atomic_dir(output) as tmp:
        keep_checkpoints = cfg.save_steps > 0 or cfg.resume
        work_dir = cfg.checkpoint_dir if keep_checkpoints else Path(tempfile.mkdtemp(dir=tmp, prefix="work-"))
        saved_max_len = model_ref.load().max_seq_length  # the saved model keeps the base's
        trainer, model, samplers = build_trainer(cfg, model_ref, data, work_dir, callbacks=[timer])
        train_max_len = model.max_seq_length
        t0 = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=True if cfg.resume else None)
        train_seconds = time.perf_counter() - t0
        model.max_seq_length = saved_max_len
        model.save(str(tmp), create_model_card=False)
        keep_base_files(model_ref.path, tmp)
        shutil.rmtree(work_dir, ignore_errors=True)  # checkpoints are for crashed runs only
        steps = int(result.global_step)
        step_seconds = timer.step_seconds()
        per_step = sorted(step_seconds)[len(step_seconds) // 2] if step_seconds else float("nan")
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
            "sampler": samplers[-1].describe() if samplers else {},
            "steps": steps,
            "train_seconds": train_seconds,
            "seconds_per_step": per_step,
            "pairs_per_second": cfg.batch_size / per_step if per_step > 0 else 0.0,
            "final_loss": float(result.training_loss),
            "max_seq_length": {"training": train_max_len, "saved": saved_max_len},
            "device": str(model.device),
            "versions": library_versions(LIBRARIES),
            "evaluation": {},
        }
        write_record(tmp, record, name=output.name)
    print(f"wrote {output}: {steps} steps, {per_step:.3f} s/step, {record['pairs_per_second']:.1f} pairs/s")
    if eval_plan:
        record["evaluation"] = _evaluate(cfg, output, eval_plan)
        # scores go into README.md only: it is outside the model's fingerprint, training.json is not
        write_card(output, record, name=output.name)
    return record


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
    from hybrid_plugin.evaluation.report import write_results

    scores = {}
    for task in tasks:
        results = evaluate(
            EvalConfig(task=task, model=str(model_dir), languages=cfg.eval_languages, data_dir=cfg.data_dir)
        )
        paths = write_results(results, cfg.eval_dir)
        scores[task] = results["scores"]
        s = results["scores"]
        print(
            f"{task}: mono {s['mono_map']:.4f}  cross {s['cross_map']:.4f}  multi {s['multi_map']:.4f}  "
            f"max rank distance {s['max_rank_distance']:.1f}  ({paths['results']})"
        )
    return scores
