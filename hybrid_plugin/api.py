"""The public Python API, which :mod:`hybrid_plugin` re-exports: evaluate, save, load, compare, tasks.

A thin layer over the engine (``evaluation``) and the statistics (``stats``); the CLI's ``evaluate``
and ``compare`` do the same through the same functions, so the files and numbers are the CLI's.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

from hybrid_plugin import API_NAMES
from hybrid_plugin.data.spec import TaskSpec, known_specs
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.engine import Evaluation, SavedFiles  # noqa: F401 (re-exported)
from hybrid_plugin.evaluation.evaluator import EvalConfig, run_evaluation
from hybrid_plugin.evaluation.results import Results
from hybrid_plugin.stats import Comparison
from hybrid_plugin.stats import compare as compare_files

__all__ = list(API_NAMES)  # the names hybrid_plugin re-exports


def evaluate(task: str | os.PathLike, model: Any = None, **options: Any) -> Evaluation:
    """Evaluate ``model`` on every setting of ``task`` (a built-in task's name or a task folder).

    ``model``: a model folder or hub id, ``"bm25"``, ``"muse"``, ``"module:factory"``, or an object
    (an encoder, a retriever, ``BM25Params``); ``None``: the offline default model. ``options`` are
    :class:`EvalConfig` fields (``languages="de,en"``, ``candidate_format``, ``data_dir``,
    ``run_depth``, ``debias``, ...). The result's ``.results`` holds the numbers and ``.save(out)``
    writes what ``hybrid-plugin evaluate`` writes.
    """
    known = {f.name for f in fields(EvalConfig)} - {"task", "model"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"evaluate() got unknown options {unknown}; known: {', '.join(sorted(known))}")
    named = model is None or isinstance(model, (str, os.PathLike))
    cfg = EvalConfig(task=os.fspath(task), model=os.fspath(model) if named and model else None, **options)
    return run_evaluation(cfg, None if named else model)


def load(path: str | os.PathLike) -> Results:
    """A results JSON, with its per-query file checked (``results.per_query_table()`` reads it).

    Raises :class:`~hybrid_plugin.evaluation.results.PerQueryNotFound` when the JSON names a
    per-query file that is missing or changed; older results without one load as they are.
    """
    results = Results.load(path)
    if results.per_query is not None:
        results.per_query_file()
    return results


def _results_path(item: str | os.PathLike | Results) -> Path:
    if isinstance(item, Results):
        if item.source is None:
            raise UserError("compare reads results files: save these results, then pass the file")
        return item.source
    return Path(item)


def compare(
    *results: str | os.PathLike | Results,
    groups: dict[str, list[str | os.PathLike | Results]] | None = None,
    **options: Any,
) -> Comparison:
    """Paired tests and intervals over the per-query files of two or more results (files or
    :func:`load`-ed results), as ``hybrid-plugin compare``; ``groups`` maps a system to its seeds.

    Options as :func:`hybrid_plugin.stats.compare.compare_runs` (``baseline``, ``test``, ``unit``,
    ``alpha``, ...); ``hybrid_plugin.stats.render(comparison)`` prints it like the CLI.
    """
    paths = [_results_path(r) for r in results]
    named = {name: [_results_path(r) for r in items] for name, items in (groups or {}).items()}
    return compare_files(*paths, groups=named or None, **options)


def tasks() -> dict[str, TaskSpec]:
    """The known tasks by name: the built-in ones and task folders registered in this process."""
    return known_specs()
