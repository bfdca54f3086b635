"""A fake study work folder: synthetic results (with per-query files) and training records under the
study's run names, so the report can be written from it without a model (``--report-only``)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

from conftest import FixedRetriever, MatrixScorer
from test_stats import scores, synthetic_pool

from hybrid_plugin.atomic import write_text
from hybrid_plugin.evaluation.engine import TaskContext, evaluate_pool

LANGUAGES = ("de", "en", "zh")  # a seen, an unseen and a seen training language


def fake_eval(
    work: Path,
    name: str,
    task: str,
    signal: float | None = None,
    alignment: bool = True,
    seed: int | None = None,
) -> Path:
    """``work/NAME/eval/TASK.json`` with its per-query file: scores seeded by (name, task) unless
    ``seed`` is given, the relevant candidates lifted by ``signal`` (default: 1 to 4, seeded too)."""
    seed = zlib.crc32(f"{name}/{task}".encode()) if seed is None else seed
    signal = 1.0 + (seed % 300) / 100 if signal is None else signal
    pool = synthetic_pool(languages=LANGUAGES, groups=10, task=task)
    evaluation = evaluate_pool(
        pool, FixedRetriever(MatrixScorer(pool, scores(pool, seed, signal)), name), TaskContext(task, task)
    )
    extra = None
    if alignment:
        gap = (seed % 97) / 1000
        extra = {
            "alignment": {
                "parallel_cosine": 0.5 + gap,
                "non_parallel_cosine": 0.4 if task != "tydi-goldp" else None,
                "gap": 0.1 + gap if task != "tydi-goldp" else None,
                "language_id": {"accuracy": 0.9 - gap, "chance": 0.34},
            }
        }
    return evaluation.save(work / name / "eval", name=task, plots=False, extra=extra).results  # as the study


def fake_training(work: Path, name: str, steps: int = 200) -> Path:
    """``work/NAME/model/training.json`` with the fields the study reads."""
    path = work / name / "model" / "training.json"
    record = {
        "steps": steps,
        "seconds_per_step": 9.5,
        "train_seconds": steps * 9.5,
        "device": "cpu",
        "loss": 0.75,
        "config": {
            "learning_rate": 3e-5,
            "max_seq_length": 128,
            "freeze_embeddings": True,
            "passage_unit": "auto",
            "strategy": name.split("-")[0],
        },
        "base_model": {"name": "base", "fingerprint": "9535ad78d3f3" + "0" * 52},
    }
    write_text(path, json.dumps(record))
    return path


def fake_work(work: Path, runs: dict, skip: tuple[str, ...] = ()) -> Path:
    """A work folder holding every run of ``runs`` (a plan: Run → tasks) except the names in ``skip``;
    a de-biased run's model is its plain run's."""
    for run, tasks in runs.items():
        if run.name in skip:
            continue
        if run.strategy != "untrained":
            model = run.plain if getattr(run, "debias", None) else run
            steps = 6400 // run.batch_size if run.batch_size != 32 else 200
            if not (work / model.name / "model" / "training.json").is_file():
                fake_training(work, model.name, steps)
        for task in tasks:
            fake_eval(work, run.name, task)
    return work


def fake_robustness(work: Path, name: str, task: str, drop: float = 0.5) -> Path:
    """``work/NAME/robustness/TASK/robustness.json`` as ``perturb`` writes it: a clean run and a
    ``typo:0.05`` run of the same scores (seeded by NAME) whose relevant candidates are lifted by
    ``drop`` less, compared paired (``drop=0``: the perturbed run equals the clean one)."""
    from hybrid_plugin.data.perturb import parse_perturbation
    from hybrid_plugin.stats import compare_runs
    from hybrid_plugin.stats.robustness import Robustness, write_robustness

    out = work / name / "robustness" / task
    seed = zlib.crc32(name.encode())
    clean = fake_eval(out, "clean", task, signal=2.0, alignment=False, seed=seed)
    typo = fake_eval(out, "typo-0.05", task, signal=2.0 - drop, alignment=False, seed=seed)
    comparison = compare_runs(
        [("clean", [clean]), ("typo:0.05", [typo])], baseline="clean", bootstraps=200, permutations=200
    )
    report = Robustness(
        model=name,
        task=task,
        seed=0,
        perturbations=[parse_perturbation("typo:0.05")],
        results={"clean": clean, "typo:0.05": typo},
        changed={"typo:0.05": {"changed": 30, "unchanged": 0}},
        comparison=comparison,
    )
    return write_robustness(report, out)["json"]
