"""Building a run: data → pairs → sampler + loss → sentence-transformers' trainer, and its callbacks."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from hybrid_plugin.errors import UserError
from hybrid_plugin.models.ref import ModelRef
from hybrid_plugin.training.card import prepare_card_data
from hybrid_plugin.training.config import TrainConfig
from hybrid_plugin.training.data import (
    PairTable,
    ParallelItems,
    build_pairs,
    read_sources,
    select_languages,
    split_dev,
)
from hybrid_plugin.training.samplers import PairLabels, make_batch_sampler, world_size


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
            lines.append(f"  held out for the dev loss and dev retrieval: {len(self.dev)} pairs")
        return "\n".join(lines)


def load_training_data(cfg: TrainConfig) -> TrainingData:
    """Read every source, keep the chosen languages, expand into pairs, hold out the dev set."""
    items = read_sources(cfg.train_data, cfg.passage_unit, progress=cfg.progress, data_dir=cfg.data_dir)
    items = select_languages(items, cfg.languages)
    pairs, dev = split_dev(build_pairs(items), cfg.dev_fraction, cfg.seed)
    return TrainingData(items, pairs, dev)


def need_training_extra() -> None:
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
    dev, evaluator = {}, None
    if data.dev is not None:
        dev = dict(
            eval_strategy="steps",
            eval_steps=cfg.dev_steps,
            per_device_eval_batch_size=per_process,
            eval_on_start=True,
        )
        if cfg.dev_retrieval:
            from hybrid_plugin.training.dev_eval import dev_evaluator, dev_pool

            primary = cfg.metric_for_best_model if cfg.metric_for_best_model != "loss" else "multi_map"
            evaluator = dev_evaluator(
                dev_pool(data.items, data.dev), model_ref.name, prompts, model_ref.similarity, primary=primary
            )
    save = dict(save_strategy="steps" if cfg.save_steps else "no", save_steps=cfg.save_steps or 500)
    if cfg.load_best_model_at_end:  # checkpoints at evaluations; the best and the newest are kept
        save = dict(
            save_strategy="steps",
            save_steps=cfg.save_steps or cfg.dev_steps,
            save_total_limit=2,
            load_best_model_at_end=True,
            metric_for_best_model=cfg.best_metric_key,
            greater_is_better=cfg.greater_is_better,
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
        **save,
        report_to=cfg.report_to,
        disable_tqdm=not cfg.progress,
        dataloader_drop_last=True,
        dataloader_pin_memory=torch.cuda.is_available(),
        # several CPU processes (torchrun without GPUs): accelerate runs DDP over gloo only with use_cpu
        # --device cpu: on the CPU even where a GPU is free
        use_cpu=cfg.device == "cpu" or (processes > 1 and not torch.cuda.is_available()),
        **dev,
    )
    prepare_card_data(
        model,
        name=Path(cfg.output).name,
        base_ref=model_ref,
        base_model=cfg.base_model,
        data=data,
        license=cfg.license,
        repo=cfg.push_to_hub,
    )

    class _Trainer(SentenceTransformerTrainer):
        def _load_from_checkpoint(self, checkpoint_path: str, *args, **kwargs) -> None:
            # sentence-transformers reloads the checkpoint with default model kwargs and loads it
            # strictly: the default model has no pooler, the reloaded one has, so --resume crashed
            load_checkpoint_weights(self.model, checkpoint_path)

    trainer = _Trainer(
        model=model,
        args=args,
        train_dataset=data.pairs.to_dataset(),
        eval_dataset=data.dev.to_dataset() if data.dev is not None else None,
        loss=loss,
        evaluator=evaluator,
        callbacks=list(callbacks),
    )
    _set_logging_dir(trainer, cfg.log_dir)
    return trainer, model, samplers


def load_checkpoint_weights(model, checkpoint: str) -> None:
    """Load a checkpoint's weights into ``model`` (resuming, or keeping the best step's weights).

    sentence-transformers reloads a checkpoint with the default module settings: a model loaded
    without a pooler (the default model; its embeddings are mean-pooled) gets one back, at random.
    Its loader then either crashes on the extra keys (resume) or only logs an error and keeps the last
    step's weights (best model). Keys the model lacks are ignored; a weight the model has and the
    checkpoint lacks is an error."""
    from sentence_transformers import SentenceTransformer

    loaded = SentenceTransformer(checkpoint, trust_remote_code=False, device=str(model.device))
    result = model.load_state_dict(loaded.state_dict(), strict=False)
    if result.missing_keys:
        raise UserError(f"checkpoint {checkpoint} lacks weights: {', '.join(result.missing_keys[:3])}")


def _set_logging_dir(trainer, log_dir: Path) -> None:
    """TensorBoard writes beside the model (``OUTPUT.logs``), not into the checkpoints removed at the end."""
    for callback in trainer.callback_handler.callbacks:
        if type(callback).__name__ == "TensorBoardCallback":
            callback.logging_dir = str(log_dir)


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


class DivergenceGuard:
    """Trainer callback: stops training at the first step whose loss or trained weights are not finite
    (too high a learning rate), before that step is checkpointed, so every checkpoint holds finite
    weights and :func:`hybrid_plugin.training.trainer.train` writes no model (``diverged_at``).

    The loss is read from the loss module itself: transformers' logged loss hides a nan step behind
    the mean of the earlier ones (``logging_nan_inf_filter``)."""

    def __new__(cls, loss):  # built lazily so importing this module does not import transformers
        import torch
        from transformers import TrainerCallback

        class _DivergenceGuard(TrainerCallback):
            def __init__(self) -> None:
                self.diverged_at: int | None = None
                self.what = ""
                self._finite: list = []  # per forward of this step: is the loss finite (a 0-d tensor)
                for module in loss.values() if isinstance(loss, dict) else (loss,):
                    module.register_forward_hook(self._loss_seen)

            def _loss_seen(self, module, inputs, output) -> None:
                if torch.is_grad_enabled() and torch.is_tensor(output):  # training, not the dev loss
                    self._finite.append(torch.isfinite(output.detach()).all())

            def on_step_end(self, args, state, control, model=None, **kwargs):
                finite_loss = bool(torch.stack(self._finite).all()) if self._finite else True
                self._finite = []
                weights = [p for p in model.parameters() if p.requires_grad] if model is not None else []
                finite_weights = bool(torch.stack([torch.isfinite(p).all() for p in weights]).all())
                if self.diverged_at is None and not (finite_loss and finite_weights):
                    self.diverged_at = state.global_step
                    self.what = "loss" if not finite_loss else "weights"
                if self.diverged_at is not None:
                    self._stop(control)
                return control

            def on_epoch_end(self, args, state, control, **kwargs):
                if self.diverged_at is not None:
                    self._stop(control)
                return control

            @staticmethod
            def _stop(control) -> None:
                control.should_training_stop = True
                control.should_save = control.should_evaluate = control.should_log = False

        return _DivergenceGuard()


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


def process_rank() -> int:
    import os

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def dev_losses(log_history: list[dict]) -> list[dict]:
    return [{"step": e["step"], "loss": e["eval_loss"]} for e in log_history if "eval_loss" in e]
