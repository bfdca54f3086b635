"""Typed run records: one :class:`RunRecord` per run of the study, holding one :class:`TaskResult` per
evaluated task (its summary as read from the results file, and that file's path)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_plugin.evaluation.results import Results

from .plans import Run

#: one task's summary: aggregate scores, ``per_language``, nDCG@10 and ``alignment`` (JSON-shaped,
#: written as is to ``summary.json``)
Summary = dict[str, Any]


def _dump(scores) -> dict:
    """Scores as a dict, leaving out bias measures the results do not have (evaluated before them)."""
    from hybrid_plugin.evaluation.measures import MEASURES

    later = {m.key for m in MEASURES.later()}
    return {k: v for k, v in scores.model_dump().items() if v is not None or k not in later}


def summarise(results: Results) -> Summary:
    """What the report reads from one results file."""
    out = {
        **_dump(results.scores),
        "per_language": {lang: _dump(v) for lang, v in results.per_language.items()},
    }
    ndcg = results.standard_measures.by_kind.get("mono", {})
    if ndcg:
        out["mono_ndcg10"] = next((v for k, v in ndcg.items() if k.startswith("nDCG@10")), None)
    per_lang_ndcg = {}
    for setting, entry in results.iter_settings("mono"):
        if entry.measures:
            per_lang_ndcg[setting.query_lang] = next(
                (v for k, v in entry.measures.items() if k.startswith("nDCG@10")), None
            )
    out["ndcg10_per_language"] = per_lang_ndcg
    if results.alignment:
        a = results.alignment
        out["alignment"] = {
            "parallel_cosine": a.get("parallel_cosine"),
            "non_parallel_cosine": a.get("non_parallel_cosine"),
            "gap": a.get("gap"),
            "language_id_accuracy": a.get("language_id", {}).get("accuracy"),
            "language_id_chance": a.get("language_id", {}).get("chance"),
        }
    return out


@dataclass(frozen=True)
class TaskResult:
    """One run's result on one task: the summary of its results file, and the file (None: not known)."""

    summary: Summary = field(default_factory=dict)
    path: str | None = None

    def score(self, metric: str) -> Any:
        """An aggregate score (KeyError when the summary lacks it)."""
        return self.summary[metric]

    def get(self, metric: str) -> Any:
        """An aggregate score, None when the summary lacks it."""
        return self.summary.get(metric)

    @property
    def per_language(self) -> dict[str, dict[str, Any]]:
        return self.summary["per_language"]

    @property
    def ndcg10_per_language(self) -> dict[str, float | None]:
        return self.summary["ndcg10_per_language"]

    @property
    def alignment(self) -> dict[str, Any] | None:
        return self.summary.get("alignment")


@dataclass
class RunRecord:
    """One run's row: what the run is, its training record and its results per task."""

    strategy: str | None = None
    alpha: float | None = None
    batch_size: int | None = None
    seed: int | None = None
    merge: float | None = None
    debias: str | None = None
    debias_fit: str | None = None  # None: pool-fitted (transductive) where ``debias`` is set
    name: str | None = None
    label: str = ""
    recipe: str = ""  # the label without the de-biasing (empty: the label)
    tasks: dict[str, TaskResult] = field(default_factory=dict)
    steps: int | None = None
    seconds_per_step: float | None = None
    model_path: str | None = None
    training: dict[str, Any] | None = None  # the settings of training.json the report states
    robustness: dict[str, str] = field(default_factory=dict)  # task -> its robustness.json (perturb)
    train_seconds: float | None = None  # the training's wall time (a merge repeats its trained run's)
    device: str | None = None  # where it trained
    resumed: bool = False  # resumed from a checkpoint: train_seconds is the time since it

    @classmethod
    def of_run(cls, run: Run, label: str, recipe: str) -> RunRecord:
        fields = asdict(run)
        if run.strategy == "untrained":
            fields["batch_size"] = None
        return cls(**fields, name=run.name, label=label, recipe=recipe)

    @property
    def fit(self) -> str | None:
        """``"pool"`` or ``"train"`` for a de-biased run, None for a plain one."""
        return (self.debias_fit or "pool") if self.debias else None

    @property
    def recipe_label(self) -> str:
        return self.recipe or self.label

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> RunRecord:
        """A record from a plain row (as ``summary.json`` holds it; tests write them by hand)."""
        summaries, paths = row.get("tasks") or {}, row.get("results_path") or {}
        tasks = {t: TaskResult(dict(summaries.get(t) or {}), paths.get(t)) for t in {**summaries, **paths}}
        known = {k: row[k] for k in cls.__dataclass_fields__ if k in row and k != "tasks"}
        return cls(**known, tasks=tasks)

    def add_training(self, model_path: str, record: Mapping[str, Any]) -> None:
        """The training record's numbers the report uses (``training.json`` of the run's model)."""
        self.steps = record["steps"]
        self.seconds_per_step = record["seconds_per_step"]
        self.train_seconds = record.get("train_seconds")
        self.device = record.get("device")
        self.resumed = bool(record.get("resumed"))
        self.model_path = model_path
        c = record["config"]
        self.training = {
            "loss": record["loss"],
            "steps": record["steps"],
            "learning_rate": c["learning_rate"],
            "max_seq_length": c["max_seq_length"],
            "freeze_embeddings": c["freeze_embeddings"],
            "passage_unit": c["passage_unit"],
            "base_model": record["base_model"]["name"],
            "base_fingerprint": record["base_model"]["fingerprint"][:12],
        }

    @property
    def results_path(self) -> dict[str, str]:
        return {task: t.path for task, t in self.tasks.items() if t.path}

    def summary_row(self) -> dict[str, Any]:
        """The row as ``summary.json`` records it (no machine paths)."""
        row: dict[str, Any] = {
            "strategy": self.strategy,
            "alpha": self.alpha,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "merge": self.merge,
            "debias": self.debias,
            **({"debias_fit": self.debias_fit} if self.debias_fit else {}),
            "name": self.name,
            "label": self.label,
            "tasks": {task: t.summary for task, t in self.tasks.items()},
        }
        if self.model_path is not None:
            row |= {"steps": self.steps, "seconds_per_step": self.seconds_per_step, "training": self.training}
        if self.robustness:
            row["robustness"] = {task: robustness_summary(path) for task, path in self.robustness.items()}
        return row


def robustness_summary(path: str | Path) -> dict[str, dict[str, Any]]:
    """A ``robustness.json``'s macro cells: perturbation → measure → clean score, the difference
    perturbed − clean with its interval, and whether the paired test found it significant."""
    from hybrid_plugin.stats.robustness import macro_cells

    cells = macro_cells(json.loads(Path(path).read_text(encoding="utf-8")))
    return {
        perturbation: {
            key: {
                "clean": c["baseline"]["value"],
                "difference": c["difference"],
                "significant": c["test"]["significant"],
            }
            for key, c in by_key.items()
        }
        for perturbation, by_key in cells.items()
    }


def as_records(rows: Iterable[RunRecord | Mapping[str, Any]]) -> list[RunRecord]:
    """Records as they are, plain rows made records."""
    return [r if isinstance(r, RunRecord) else RunRecord.from_row(r) for r in rows]


def on_task(rows: Iterable[RunRecord], task: str) -> list[RunRecord]:
    return [r for r in rows if task in r.tasks]


def by_label(rows: Iterable[RunRecord]) -> dict[str, list[RunRecord]]:
    """Rows by label (recipe and batch size), seeds together."""
    out: dict[str, list[RunRecord]] = {}
    for row in rows:
        out.setdefault(row.label, []).append(row)
    return out


def seed_mean(records: list[RunRecord], task: str, metric: str) -> float | None:
    vals = [g.tasks[task].get(metric) for g in records]
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None
