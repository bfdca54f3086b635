"""Making the plan's pieces: train (or merge) a run's model, evaluate it on a task, and collect one
:class:`~.records.RunRecord` per run; every finished piece is kept in the work folder and reused."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from hybrid_plugin.atomic import write_text
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.results import Results
from hybrid_plugin.progress import heartbeat
from hybrid_plugin.provenance import portable_path

from .archive import require_weights
from .plans import TRAIN_DATA_DEFAULT, Run, steps_for
from .records import RunRecord, TaskResult, summarise


class Missing(Exception):
    """A piece of the plan that ``--report-only`` does not make: the run and what it lacks (the
    report lists runs that lack the same thing on one line)."""

    def __init__(self, run: str, gap: str) -> None:
        super().__init__(f"{run}: {gap}")
        self.run, self.gap = run, gap


def ensure_trained(run: Run, args: argparse.Namespace) -> Path | None:
    """The run's model folder, trained (or resumed) when not there yet; None for the untrained base.

    A merged run is made from its unmerged run's weights. With ``--report-only`` nothing is trained:
    a missing model raises :class:`Missing`.
    """
    from hybrid_plugin.training.trainer import TrainConfig, merge_saved, train

    if run.strategy == "untrained":
        return None
    if run.debias:  # de-biasing is applied at evaluation: the model is the plain run's
        return ensure_trained(run.plain, args)
    out = Path(args.work) / run.name / "model"
    if (out / "training.json").is_file():
        return out
    if args.report_only:
        raise Missing(run.name, "not trained")
    if run.merge is not None:
        trained = ensure_trained(replace(run, merge=None), args)
        require_weights(run, trained, args.work)
        tqdm.write(f"[study] merging {run.name}")
        merge_saved(trained, run.merge, out, base_model=args.base_model)
        return out
    cfg = TrainConfig(
        train_data=train_sources(args),
        data_dir=args.data_dir,  # the evaluation tasks' questions, checked against the training items
        output=str(out),
        base_model=args.base_model,
        strategy=run.strategy,
        alpha=run.alpha if run.strategy == "hybrid" else None,
        batch_size=run.batch_size,
        mini_batch_size=args.mini_batch_size if run.batch_size > args.mini_batch_size else None,
        max_steps=steps_for(run, args),
        learning_rate=args.learning_rate,
        max_seq_length=args.max_seq_length,
        freeze_embeddings=args.freeze_embeddings,
        seed=run.seed,
        save_steps=args.save_steps,
        progress=not args.no_progress,
    )
    cfg.resume = cfg.checkpoint_dir.is_dir() and any(cfg.checkpoint_dir.glob("checkpoint-*"))
    tqdm.write(f"[study] training {run.name}" + (" (resuming)" if cfg.resume else ""))
    train(cfg)
    return out


def train_sources(args: argparse.Namespace) -> list[str]:
    """The training data (``FORMAT:PATH`` each): ``--train-data``, else the offline MLQA test copy."""
    return args.train_data or [f"mlqa:{Path(args.data_dir) / TRAIN_DATA_DEFAULT}"]


_FIT_TEXTS: dict[str, object] = {}


def fit_texts(run: Run, args: argparse.Namespace):
    """What ``run``'s de-biasing map is fitted on: None for the evaluated pool (transductive), else the
    training corpus's texts (read once per process, as ``--debias-fit FORMAT:PATH`` reads them)."""
    if run.fit != "train":
        return None
    from hybrid_plugin.training.fit_texts import fit_texts_from_sources

    sources = ",".join(_portable_source(source) for source in train_sources(args))
    if sources not in _FIT_TEXTS:
        _FIT_TEXTS[sources] = fit_texts_from_sources(sources, data_dir=args.data_dir)
    return _FIT_TEXTS[sources]


def _portable_source(source: str) -> str:
    """``FORMAT:PATH`` with the path as results record paths (relative to the working directory, not
    the machine's layout): the fit set's source is written into every de-biased result."""
    form, colon, path = source.partition(":")
    portable = portable_path(path) if colon else path
    return f"{form}:{portable}" if colon and not portable.startswith("~") else source


def refusal_path(path: Path) -> Path:
    """``eval/TASK.refused.json``: the evaluator's one-line refusal of a de-biased evaluation (``center``
    fitted on texts lacking an evaluated language), kept so it is not tried again."""
    return path.with_name(path.stem + ".refused.json")


def _subset_name(task: str, languages: str | None) -> str:
    return task if not languages else f"{task}.{'-'.join(sorted(languages.split(',')))}"


def eval_path(run: Run, task: str, languages: str | None, work: str) -> Path:
    """Full evaluations are ``eval/TASK.json``; a language subset ``eval/TASK.de-en.json``."""
    return Path(work) / run.name / "eval" / f"{_subset_name(task, languages)}.json"


def ensure_evaluated(run: Run, model: Path | None, task: str, args: argparse.Namespace) -> Results:
    """The run's results on ``task`` (evaluated once, then read from the work folder)."""
    from hybrid_plugin.evaluation.evaluator import EvalConfig, run_evaluation

    languages = args.eval_languages.get(task)
    path = eval_path(run, task, languages, args.work)
    if path.is_file():
        return Results.load(path)
    refused = refusal_path(path)
    if refused.is_file():
        reason = json.loads(refused.read_text(encoding="utf-8"))["refused"]
        raise Missing(run.name, f"not applicable to {path.stem}: {reason}")
    if args.report_only:
        raise Missing(run.name, f"not evaluated on {path.stem}")
    require_weights(run, model, args.work)
    tqdm.write(f"[study] evaluating {run.name} on {path.stem}")
    config = EvalConfig(
        task=task,
        model=_model_arg(model, args),
        languages=languages,
        data_dir=args.data_dir,
        alignment=True,  # a few seconds (probes on the embeddings already computed); TyDi's for domain shift
        debias=run.debias,
        debias_fit=fit_texts(run, args),
    )
    try:
        evaluation = run_evaluation(config)
    except UserError as err:
        if not run.debias:
            raise
        write_text(refused, json.dumps({"refused": str(err)}, ensure_ascii=False) + "\n")
        raise Missing(run.name, f"not applicable to {path.stem}: {err}") from None
    # the per-query file beside it (eval/TASK.queries.parquet) makes the claims testable; the fitted
    # de-biasing map (named in the results) goes beside them too
    saved = evaluation.save(
        path.parent, name=path.stem, plots=False, extra={"study_run": run.record() | {"name": run.name}}
    )
    return Results.load(saved.results)


def _model_arg(model: Path | None, args: argparse.Namespace) -> str | None:
    """The model as results record it: relative to the working directory, never the machine's path."""
    if model is not None:
        return portable_path(model)
    return None if args.base_model == "default" else args.base_model


def robustness_path(run: Run, task: str, args: argparse.Namespace) -> Path:
    """``robustness/TASK/robustness.json`` (a language subset: ``robustness/TASK.de-en/``), beside one
    results folder per perturbation and the clean run's."""
    name = _subset_name(task, args.eval_languages.get(task))
    return Path(args.work) / run.name / "robustness" / name / "robustness.json"


def ensure_robustness(run: Run, model: Path | None, task: str, args: argparse.Namespace) -> Path:
    """The run on ``task`` clean and under ``perturb``'s default perturbations (seed 0), compared
    paired over question groups; made once (``robustness.json`` is written last), then reused."""
    from hybrid_plugin.evaluation.evaluator import EvalConfig
    from hybrid_plugin.stats.robustness import run_robustness, write_robustness

    path = robustness_path(run, task, args)
    if path.is_file():
        return path
    if args.report_only:
        raise Missing(run.name, f"not evaluated on perturbed queries of {task}")
    require_weights(run, model, args.work)
    tqdm.write(f"[study] perturbed queries: {run.name} on {task}")
    config = EvalConfig(
        task=task,
        model=_model_arg(model, args),
        languages=args.eval_languages.get(task),
        data_dir=args.data_dir,
    )
    write_robustness(run_robustness(config, None, path.parent, seed=0), path.parent)
    return path


def study_pieces(runs: dict[Run, tuple[str, ...]], args: argparse.Namespace) -> tuple[int, int]:
    """(pieces in the plan, pieces already in the work folder): one training per trained run, one
    evaluation per run and task, one perturbed-queries comparison per plain run and ``--robustness``
    task. A merge counts as a training."""
    total = done = 0
    for run, plan_tasks in runs.items():
        if run.strategy != "untrained" and (not run.debias or run.plain not in runs):
            total += 1
            done += (Path(args.work) / run.name / "model" / "training.json").is_file()
        for task in args.tasks or plan_tasks:
            total += 1
            path = eval_path(run, task, args.eval_languages.get(task), args.work)
            done += path.is_file() or refusal_path(path).is_file()
        if not run.debias:
            total += len(args.robustness)
            done += sum(robustness_path(run, task, args).is_file() for task in args.robustness)
    return total, done


def collect(
    runs: dict[Run, tuple[str, ...]], args: argparse.Namespace
) -> tuple[list[RunRecord], list[Missing]]:
    """Train and evaluate what is missing; one record per run, and what ``--report-only`` found missing.

    A study bar counts the plan's trainings and evaluations (with the time per piece and an ETA);
    training and encoding show their own bars below it. It is redrawn every few seconds.
    """
    total, done = study_pieces(runs, args)
    bar = tqdm(
        total=total,
        initial=done,
        desc="study",
        unit="piece",
        position=0,
        disable=args.report_only or args.no_progress,
    )
    with bar, heartbeat(bar, every=5.0):
        return _collect(runs, args, bar)


def _collect(
    runs: dict[Run, tuple[str, ...]], args: argparse.Namespace, bar
) -> tuple[list[RunRecord], list[Missing]]:
    rows: list[RunRecord] = []
    missing: list[Missing] = []
    for run, plan_tasks in runs.items():
        bar.set_postfix_str(run.name)
        trained_before = (Path(args.work) / run.name / "model" / "training.json").is_file()
        try:
            model = ensure_trained(run, args)
        except Missing as gap:
            if str(gap) not in map(str, missing):  # a de-biased run's model is its plain run's
                missing.append(gap)
            continue
        if run.strategy != "untrained" and not run.debias and not trained_before:
            bar.update()
        batch = (
            f" (batch {run.batch_size})"
            if run.strategy != "untrained" and run.batch_size != args.batch_size
            else ""
        )
        row = RunRecord.of_run(run, run.label + batch, run.recipe + batch)
        if model is not None:
            row.add_training(str(model), json.loads((model / "training.json").read_text(encoding="utf-8")))
        for task in args.tasks or plan_tasks:
            path = eval_path(run, task, args.eval_languages.get(task), args.work)
            evaluated_before = path.is_file() or refusal_path(path).is_file()
            bar.set_postfix_str(f"{run.name} on {task}")
            try:
                results = ensure_evaluated(run, model, task, args)
            except Missing as gap:
                missing.append(gap)
                continue
            if not evaluated_before:
                bar.update()
            row.tasks[task] = TaskResult(summarise(results), str(path))
        for task in args.robustness if not run.debias else ():
            done_before = robustness_path(run, task, args).is_file()
            bar.set_postfix_str(f"{run.name} on perturbed {task}")
            try:
                row.robustness[task] = str(ensure_robustness(run, model, task, args))
            except Missing as gap:
                missing.append(gap)
                continue
            if not done_before:
                bar.update()
        rows.append(row)
    return rows, missing
