"""The committed records of a study (``docs/<report>/runs/<run>/``) and the way back into a work folder.

A study's models are large and its work folder is not committed, so a later session would have to
train every model again just to rewrite the report. The records beside the report hold every file
the report reads (results with their per-query files, training records, refusals and the perturbed
runs), so ``--restore`` copies them into ``--work`` and the study makes only what is missing. One
module owns both directions, so the two layouts cannot drift apart:

====================================  =========================================================
records (``runs/<run>/``)             work folder (``<work>/<run>/``)
====================================  =========================================================
``training.json``                     ``model/training.json`` (a trained, plain run's only)
``TASK.json``, ``TASK.queries.parquet``  ``eval/`` (``TASK`` may name a language subset)
``TASK.refused.json``                 ``eval/`` (a de-biasing the evaluator refused)
``robustness-NAME.json`` / ``.md``    ``robustness/NAME/robustness.json`` / ``.md``
``robustness-NAME/<path>``            ``robustness/NAME/<path>``: the clean and perturbed runs
====================================  =========================================================

A restored run has no weights: ``restored.json`` in its folder lists what was copied, and the study
refuses to merge or newly evaluate it in one line instead of failing inside the model loader.
"""

from __future__ import annotations

import json
from pathlib import Path

from hybrid_plugin.atomic import write_bytes, write_text
from hybrid_plugin.errors import UserError
from hybrid_plugin.provenance import portable_path

from .plans import Run
from .records import RunRecord

#: the manifest of a run restored from records (its folder holds no model weights)
RESTORED = "restored.json"
_ROBUSTNESS = "robustness-"
_REFUSED = ".refused.json"


def _per_query(results_json: Path) -> Path | None:
    """The per-query file beside a results JSON (the name it records), None where it has none."""
    from hybrid_plugin.evaluation.results import PerQueryNotFound, Results, locate_per_query

    try:
        return locate_per_query(results_json, Results.load(results_json))
    except PerQueryNotFound:
        return None


def _perturbed_results(robustness_json: Path) -> list[str]:
    """The clean and perturbed runs' results files a ``robustness.json`` names, with their per-query
    files (paths relative to its folder); those it names but does not hold (restored from records
    kept before they were) are left out."""
    from hybrid_plugin.stats.robustness import results_of

    found = []
    for path in results_of(robustness_json)[1].values():
        if not path.is_file():
            continue
        found.append(path.relative_to(robustness_json.parent).as_posix())
        per_query = _per_query(path)
        if per_query is not None:
            found.append(per_query.relative_to(robustness_json.parent).as_posix())
    return found


def record_files(row: RunRecord, work: Path) -> dict[str, Path]:
    """The files of ``row`` the report reads: record name (relative to ``runs/<run>/``) → work file."""
    files: dict[str, Path] = {}
    for path in map(Path, row.results_path.values()):
        files[path.name] = path
        per_query = _per_query(path)
        if per_query is not None:
            files[per_query.name] = per_query
    for refused in sorted((work / str(row.name) / "eval").glob(f"*{_REFUSED}")):
        files[refused.name] = refused
    if row.model_path:
        files["training.json"] = Path(row.model_path) / "training.json"
    for path in map(Path, row.robustness.values()):
        name = path.parent.name  # the task, or TASK.langs for a language subset
        files[f"{_ROBUSTNESS}{name}.json"] = path
        files[f"{_ROBUSTNESS}{name}.md"] = path.with_suffix(".md")
        for relative in _perturbed_results(path):
            files[f"{_ROBUSTNESS}{name}/{relative}"] = path.parent / relative
    return files


def copy_records(rows: list[RunRecord], target: Path, work: Path) -> None:
    """Each run's records next to the report (models stay out), each file written whole."""
    for row in rows:
        for name, source in record_files(row, work).items():
            write_bytes(target / str(row.name) / name, source.read_bytes())


def _work_name(run: Run, record: str) -> str | None:
    """Where a record file goes in the run's work folder; None for one that stays out (a de-biased
    run's copy of its plain run's ``training.json`` is not a model of its own; a merge's is)."""
    if record == "training.json":
        return "model/training.json" if not run.debias and run.strategy != "untrained" else None
    if record.startswith(_ROBUSTNESS):
        head, slash, rest = record[len(_ROBUSTNESS) :].partition("/")
        if slash:
            return f"robustness/{head}/{rest}"
        stem, dot, suffix = head.rpartition(".")
        return f"robustness/{stem}/robustness.{suffix}" if dot and suffix in ("json", "md") else None
    if record.endswith((".json", ".parquet")) and "/" not in record:
        return f"eval/{record}"
    return None


def restore_records(source: Path, runs: list[Run], work: Path) -> list[str]:
    """Copy each run's records from ``source`` (a report's ``runs/`` folder) into ``work``, for the runs
    ``work`` does not hold yet (nothing there is overwritten); the names of the runs restored."""
    if not source.is_dir():
        raise UserError(f"--restore {source}: not a folder (expected a report's runs/ folder of records)")
    restored = []
    for run in runs:
        folder = source / run.name
        if not folder.is_dir() or (work / run.name).exists():
            continue
        copied = []
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            record = path.relative_to(folder).as_posix()
            target = _work_name(run, record)
            if target is not None:
                write_bytes(work / run.name / target, path.read_bytes())
                copied.append(target)
        manifest = {"restored_from": portable_path(folder), "files": copied}
        write_text(work / run.name / RESTORED, json.dumps(manifest, indent=1) + "\n")
        restored.append(run.name)
    return restored


def require_weights(run: Run, model: Path | None, work: str) -> None:
    """Refuse, in one line, to make something new from a restored run's model: it has no weights."""
    if model is not None and (model.parent / RESTORED).is_file():
        raise UserError(
            f"{run.name}: needs the weights of {model.parent.name}, which was restored from records "
            f"without them; train it again (remove {Path(work) / model.parent.name}) and check its new "
            "scores against the records"
        )
