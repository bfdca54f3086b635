"""The trainer's options (``hybrid-plugin train``): one validated object, recorded in ``training.json``."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.measures import CROSS_MAP, MAX_RANK_DISTANCE, MONO_MAP, MULTI_MAP
from hybrid_plugin.training.data import (
    PASSAGE_UNITS,
)
from hybrid_plugin.training.strategies import MONO_WEIGHTS, canonical_strategy, resolve_alpha

LIBRARIES = ("torch", "sentence-transformers", "transformers", "accelerate", "datasets")
LOSSES = ("mnrl", "cached-mnrl")
REPORT_TO = ("none", "tensorboard", "wandb")
DEV_NAME = "dev"  # the dev evaluator's name: its metrics are logged as eval_dev_<metric>
# what the dev evaluator reports, and whether higher is better: read from the measures' one definition
DEV_METRICS = {m.key: bool(m.higher_is_better) for m in (MONO_MAP, CROSS_MAP, MULTI_MAP, MAX_RANK_DISTANCE)}
BEST_METRICS = (*DEV_METRICS, "loss")  # choices of --metric-for-best-model
# the options that shape the weights a checkpoint holds: --resume refuses other values than the
# checkpoint's (--resume-anyway continues, and training.json records both); the rest (logging, saving,
# evaluation, the output's card) may change between the two runs
RESUME_SETTINGS = (
    "base_model",
    "strategy",
    "alpha",
    "mono_weights",
    "languages",
    "passage_unit",
    "batch_size",
    "epochs",
    "max_steps",
    "learning_rate",
    "weight_decay",
    "warmup_ratio",
    "scale",
    "max_seq_length",
    "freeze_embeddings",
    "dev_fraction",
    "seed",
)
TRAINING_DATA = "training data"  # the settings' key for the sha256 of every training file


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
    dev_steps: int = 50  # dev loss and dev retrieval every N steps (--eval-steps)
    dev_retrieval: bool = True  # with a dev split: exact mono/cross/multi mAP on it at every evaluation
    load_best_model_at_end: bool = False  # keep the weights of the best evaluation (needs a dev split)
    metric_for_best_model: str = "multi_map"  # a dev metric (DEV_METRICS) or "loss"
    report_to: str = "none"  # none, tensorboard or wandb (transformers' loggers)
    logging_dir: str | None = None  # tensorboard event files; default OUTPUT.logs beside the model
    push_to_hub: str | None = None  # Hub repository id the finished model folder is uploaded to
    license: str | None = None  # the model card's license (the base model's, usually)
    seed: int = 0
    logging_steps: int = 10
    save_steps: int = 0  # > 0: checkpoints in OUTPUT.checkpoints/, deleted once the model is saved
    resume: bool = False
    resume_anyway: bool = False  # resume even where RESUME_SETTINGS or the data differ from the checkpoint's
    eval_tasks: list[str] = field(default_factory=list)
    eval_languages: str | None = None
    data_dir: str | None = None
    eval_out: str | None = None  # default: OUTPUT-eval beside the model
    progress: bool = True
    device: str | None = None  # cpu or cuda; None: cuda where torch sees one

    @staticmethod
    def _check_device(device: str) -> None:
        from hybrid_plugin.scoring.tiles import check_device  # torch: not at the parser's import

        if check_device(device) not in ("cpu", "cuda"):
            raise UserError(
                f"--device {device}: train takes cpu or cuda (pick a GPU with CUDA_VISIBLE_DEVICES)"
            )

    def validate(self, check_output: bool = True) -> None:
        """UserError on the first bad option (``check_output=False``: the output folder is not used)."""
        for name, value in asdict(self).items():  # nan/inf slip through every range check below
            if isinstance(value, float) and not math.isfinite(value):
                raise UserError(f"--{name.replace('_', '-')} must be a finite number, got {value}")
        if self.device is not None:
            self._check_device(self.device)
        if not self.train_data:
            raise UserError("--train-data is required (FORMAT:PATH, e.g. mlqa:datasets/train/mlqa-test)")
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
        self._validate_evaluation()
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
        from hybrid_plugin.stats.paired import MAX_SEED  # one range for train and compare: numpy's

        if not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"--seed {self.seed}: expected a whole number from 0 to {MAX_SEED} (2**32 − 1)")
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

    def _validate_evaluation(self) -> None:
        """Best-model selection needs something to select on; loggers need their package."""
        import importlib.util

        if self.metric_for_best_model not in BEST_METRICS:
            choices = ", ".join(BEST_METRICS)
            chosen = self.metric_for_best_model
            raise UserError(f"--metric-for-best-model {chosen!r}: expected one of {choices}")
        if self.load_best_model_at_end and self.dev_fraction <= 0:
            raise UserError("--load-best-model-at-end needs a dev split: add --dev-fraction (e.g. 0.02)")
        if self.load_best_model_at_end and self.metric_for_best_model != "loss" and not self.dev_retrieval:
            raise UserError(f"--metric-for-best-model {self.metric_for_best_model} needs the dev retrieval")
        if self.load_best_model_at_end and self.save_steps and self.save_steps % self.dev_steps:
            raise UserError(
                f"--save-steps {self.save_steps} must be a multiple of --eval-steps {self.dev_steps} "
                "with --load-best-model-at-end"
            )
        if self.report_to not in REPORT_TO:
            raise UserError(f"--report-to {self.report_to!r}: expected one of {', '.join(REPORT_TO)}")
        if self.report_to != "none" and importlib.util.find_spec(self.report_to) is None:
            raise UserError(f"--report-to {self.report_to}: pip install {self.report_to}")
        if self.push_to_hub is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", self.push_to_hub):
            raise UserError(f"--push-to-hub {self.push_to_hub!r}: expected a Hub repository id USER/NAME")

    def resume_settings(self, sources: list[dict]) -> dict:
        """What :data:`RESUME_SETTINGS` and the training files (by sha256, not path) are for this run:
        stored with every checkpoint and compared on ``--resume``."""
        settings = {name: getattr(self, name) for name in RESUME_SETTINGS}
        settings["alpha"] = resolve_alpha(self.strategy, self.alpha)  # the default and 0.5 are one
        settings[TRAINING_DATA] = sorted(
            f"{s['format']}:{sha}" for s in sources for sha in s["files"].values()
        )
        return settings

    @property
    def best_metric_key(self) -> str:
        """The trainer's name of the chosen metric (``eval_loss``, ``eval_dev_multi_map``)."""
        metric = self.metric_for_best_model
        return "eval_loss" if metric == "loss" else f"eval_{DEV_NAME}_{metric}"

    @property
    def greater_is_better(self) -> bool:
        return self.metric_for_best_model != "loss" and DEV_METRICS[self.metric_for_best_model]

    @property
    def log_dir(self) -> Path:
        out = Path(self.output)
        return Path(self.logging_dir) if self.logging_dir else out.parent / f"{out.name}.logs"

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
