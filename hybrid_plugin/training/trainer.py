"""Hybrid-batch training: data → pairs → sampler → InfoNCE loss → sentence-transformers' trainer.

``train(train_data=[...], output=...)`` takes the same options as ``hybrid-plugin train``.
"""

from __future__ import annotations

import pickle
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from hybrid_plugin.atomic import atomic_dir
from hybrid_plugin.errors import Interrupted, UserError
from hybrid_plugin.models.ref import resolve_model
from hybrid_plugin.provenance import library_versions
from hybrid_plugin.training.build import (
    DivergenceGuard,
    GracefulStop,
    StepTimer,
    TrainingData,  # noqa: F401 (public name: the run's data)
    build_trainer,
    dev_losses,
    load_checkpoint_weights,
    load_training_data,
    need_training_extra,
    process_rank,
)
from hybrid_plugin.training.card import CARD_FILE, RECORD_FORMAT, write_card, write_record
from hybrid_plugin.training.checkpoints import (
    changed_settings,
    completion_marker,
    newest_complete,
    resume_from,
    unloadable_archive,
)
from hybrid_plugin.training.config import DEV_METRICS, DEV_NAME, LIBRARIES, TRAINING_DATA, TrainConfig
from hybrid_plugin.training.dev_eval import dev_curve
from hybrid_plugin.training.merge import keep_base_files, merge_saved, merge_weights  # noqa: F401 (public)
from hybrid_plugin.training.samplers import world_size


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
    need_training_extra()
    main_process = process_rank() == 0
    eval_plan = _check_eval_tasks(cfg)
    model_ref = resolve_model(None if cfg.base_model in (None, "", "default") else cfg.base_model).configured(
        cfg.device
    )
    data = load_training_data(cfg)
    if main_process:
        print(data.summary())
    output = Path(cfg.output)
    if main_process and output.is_dir():  # empty (validated): atomic_dir renames onto a missing path only
        output.rmdir()
    timer, stop = StepTimer(), GracefulStop()
    started = datetime.now(timezone.utc)
    work_dir = cfg.checkpoint_dir
    settings = cfg.resume_settings(data.items.sources)
    resume = resume_from(work_dir, report=main_process) if cfg.resume else None  # complete ones only
    resumed = _resumed(cfg, resume, settings) if resume is not None else None
    with atomic_dir(output) if main_process else tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        saved_max_len = model_ref.load().max_seq_length  # the saved model keeps the base's
        base_state = None
        if cfg.merge_with_base is not None:
            base_state = {k: v.detach().clone() for k, v in model_ref.load().state_dict().items()}
        trainer, model, samplers = build_trainer(
            cfg, model_ref, data, work_dir, callbacks=[timer, stop, completion_marker(settings), *callbacks]
        )
        guard = DivergenceGuard(trainer.loss)
        trainer.add_callback(guard)
        train_max_len = model.max_seq_length
        t0 = time.perf_counter()
        try:
            result = trainer.train(resume_from_checkpoint=resume)
        except (pickle.UnpicklingError, RuntimeError, EOFError):
            why = unloadable_archive(resume) if resume is not None else None
            if why is None:
                raise
            raise UserError(why) from None
        train_seconds = time.perf_counter() - t0
        if guard.diverged_at is not None:
            raise UserError(_diverged(cfg, guard.diverged_at, guard.what))
        if stop.stopped_at is not None:
            raise Interrupted(
                f"checkpoint of step {stop.stopped_at} in {work_dir}; no model was written. "
                "Continue with the same command plus --resume"
            )
        if not main_process:
            return {}
        model.max_seq_length = saved_max_len
        best = _best_model(cfg, trainer.state)
        if best is not None:
            load_checkpoint_weights(model, trainer.state.best_model_checkpoint)
        _card_scores_of_kept_weights(trainer, model, best)
        merged = merge_weights(model, base_state, cfg.merge_with_base) if base_state is not None else 0
        if merged:  # the dev scores were the unmerged weights': they do not describe the saved model
            model.model_card_data.eval_results_dict.clear()
        model.save(str(tmp), create_model_card=True)  # sentence-transformers' card, which ours extends
        base_card = (tmp / CARD_FILE).read_text(encoding="utf-8") if (tmp / CARD_FILE).is_file() else None
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
            "dev_loss": dev_losses(trainer.state.log_history),
            "dev_retrieval": dev_curve(trainer.state.log_history),
            "best_model": best,
            "resumed": resumed,
            "merge_with_base": {"weight": cfg.merge_with_base, "tensors": merged} if base_state else None,
            "max_seq_length": {"training": train_max_len, "saved": saved_max_len},
            "device": str(model.device),
            "versions": library_versions(LIBRARIES),
            "evaluation": {},
        }
        write_record(tmp, record, name=output.name, base_card=base_card)
    shutil.rmtree(work_dir, ignore_errors=True)  # checkpoints are for interrupted runs only
    print(f"wrote {output}: {steps} steps, {per_step:.3f} s/step, {record['pairs_per_second']:.1f} pairs/s")
    if eval_plan:
        record["evaluation"] = _evaluate(cfg, output, eval_plan)
        # scores go into README.md only: it is outside the model's fingerprint, training.json is not
        write_card(output, record, name=output.name)
    if cfg.push_to_hub and main_process:
        _push(model, cfg.push_to_hub, output)
    return record


def _resumed(cfg: TrainConfig, checkpoint: str, settings: dict) -> dict:
    """What ``training.json`` records of the checkpoint a run continued from; refuses (one line) one
    trained with other settings unless ``--resume-anyway``: the result would be neither run's model."""
    changed = changed_settings(checkpoint, settings)
    if changed and not cfg.resume_anyway:
        what = "; ".join(
            f"{name} changed" if name == TRAINING_DATA else f"{name} {c['checkpoint']} → {c['now']}"
            for name, c in changed.items()
        )
        raise UserError(
            f"--resume: {checkpoint} was trained with other settings ({what}); resume with the same "
            "options, or add --resume-anyway to continue with the new ones (training.json records both)"
        )
    return {"checkpoint": Path(checkpoint).name, "changed": changed}


def _diverged(cfg: TrainConfig, step: int, what: str) -> str:
    """The one line for a run whose loss or weights stopped being finite (the model is not saved)."""
    kept, _ = newest_complete(cfg.checkpoint_dir) if cfg.checkpoint_dir.is_dir() else (None, [])
    where = f"the last finite checkpoint is {kept}" if kept is not None else "no checkpoint was kept"
    return (
        f"training diverged at step {step}: its {what} is not finite (--learning-rate {cfg.learning_rate:g} "
        f"too high?); no model was written to {cfg.output}, {where}"
    )


def _push(model, repo: str, output: Path) -> None:
    """Upload the finished folder as written (card, training.json), with sentence-transformers' push."""
    try:
        url = model.push_to_hub(repo, local_model_path=str(output), exist_ok=True)
    except Exception as err:  # noqa: BLE001 - network, token, permissions: the model itself is saved
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"--push-to-hub {repo}: {first}; the model is saved at {output}") from None
    print(f"pushed {output} to {url}")


def _best_model(cfg: TrainConfig, state) -> dict | None:
    """Which evaluation's weights were kept (``--load-best-model-at-end``), by which metric."""
    if not cfg.load_best_model_at_end or state.best_model_checkpoint is None:
        return None
    return {
        "metric": cfg.metric_for_best_model,
        "greater_is_better": cfg.greater_is_better,
        "value": state.best_metric,
        "step": int(Path(state.best_model_checkpoint).name.rsplit("-", 1)[-1]),
    }


def _card_scores_of_kept_weights(trainer, model, best: dict | None) -> None:
    """sentence-transformers' card reports the evaluator's last call; with the best weights kept, it
    must report that evaluation's scores instead (they are the saved model's)."""
    evaluator = getattr(trainer, "evaluator", None)
    if best is None or evaluator is None:
        return
    kept = next((e for e in dev_curve(trainer.state.log_history) if e["step"] == best["step"]), None)
    if kept is not None:
        metrics = {f"{DEV_NAME}_{k}": v for k, v in kept.items() if k in DEV_METRICS}
        model.model_card_data.eval_results_dict[evaluator] = metrics


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
    from hybrid_plugin.evaluation.console import scores_line
    from hybrid_plugin.evaluation.evaluator import EvalConfig, run_evaluation

    scores = {}
    for task in tasks:
        evaluation = run_evaluation(
            EvalConfig(
                task=task,
                model=str(model_dir),
                languages=cfg.eval_languages,
                data_dir=cfg.data_dir,
                device=cfg.device,
            )
        )
        saved = evaluation.save(cfg.eval_dir)  # with the per-query file: compare and board intervals
        results = evaluation.results
        scores[task] = results.scores.model_dump()
        print(f"{task}: {scores_line(results.scores)}  ({saved.results})")
    return scores
