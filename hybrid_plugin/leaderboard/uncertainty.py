"""How sure is a row's place? A bootstrap interval per row and a paired test against the best row.

Both come from the committed per-query files (``results/<task>/<sha256[:16]>.queries.parquet``), so
``validate`` rebuilds them like every other cell. Rows whose results have no per-query file (format-1
results) get empty cells, shown as "n/a": never an interval made up from the aggregate alone.

- ``multi_map_ci_low`` / ``multi_map_ci_high``: 95% percentile bootstrap of the row's multi mAP over
  parallel question groups (2,000 resamples, seed 0), the macro average recomputed on each;
- ``vs_best``: rows are compared with the best row of the same languages and candidate format (a
  different pool is a different test): ``best`` for that row, ``tied`` where the paired randomization
  test over question groups (10,000 sign flips, seed 0), Holm-corrected over the rows compared with
  it, cannot tell them apart at α = 0.05, ``below`` where it can; ``vs_best_p`` is that p-value.
"""

from __future__ import annotations

from pathlib import Path

from hybrid_plugin.evaluation.measures import MULTI_MAP
from hybrid_plugin.evaluation.results import Results, per_query_path
from hybrid_plugin.leaderboard.schema import RowBase
from hybrid_plugin.stats import compare_runs, score_interval

UNCERTAINTY = ("multi_map_ci_low", "multi_map_ci_high", "vs_best", "vs_best_p")
ALPHA = 0.05
BOOTSTRAPS = 2_000
PERMUTATIONS = 10_000
SEED = 0


def _content(path: Path) -> tuple[str, str] | None:
    """What a row's uncertainty is computed from: the sha256 of its results JSON and of the per-query
    file beside it that the JSON records; ``None`` when there is no such per-query file."""
    import hashlib

    try:
        data = path.read_bytes()
        results = Results.load(path)
    except (OSError, ValueError):
        return None
    if results.per_query is None or per_query_path(path, results) is None:
        return None
    return hashlib.sha256(data).hexdigest(), results.per_query.sha256


# Validating, rendering and re-reading a board rebuild the same intervals and tests from the same
# files; the bootstraps and sign flips are seeded, so a result is reused for identical file contents.
_INTERVALS: dict[tuple[str, str], tuple[float, float] | None] = {}
_TESTS: dict[tuple[tuple[str, str], ...], list[float]] = {}


def _interval(path: Path, content: tuple[str, str]) -> tuple[float, float] | None:
    if content not in _INTERVALS:
        _INTERVALS[content] = score_interval(path, MULTI_MAP, bootstraps=BOOTSTRAPS, seed=SEED)
    return _INTERVALS[content]


def _p_adjusted(paths: list[Path], contents: list[tuple[str, str]]) -> list[float]:
    """Holm-adjusted p-values of each later path against the first (paired randomization test)."""
    key = tuple(contents)
    if key not in _TESTS:
        systems = [(f"row{i}", [path]) for i, path in enumerate(paths)]
        comparison = compare_runs(
            systems, permutations=PERMUTATIONS, bootstraps=1, seed=SEED, alpha=ALPHA, measures=(MULTI_MAP,)
        )
        _TESTS[key] = [pair.measure(MULTI_MAP.key).macro.test.p_adjusted for pair in comparison.pairs]
    return _TESTS[key]


def uncertainty_cells(rows: list[RowBase], paths: dict[str, Path]) -> dict[str, dict[str, str]]:
    """Per row (keyed by its results sha256): its four uncertainty cells, from the committed files.

    ``rows`` in board order (best first); ``paths``: each row's committed results JSON by sha256. A
    :class:`~hybrid_plugin.errors.UserError` if two rows' per-query files that should pair up do not.
    """
    contents = {sha: _content(path) for sha, path in paths.items()}
    out = {r.results_sha256: dict.fromkeys(UNCERTAINTY, "") for r in rows}
    for row in rows:
        sha = row.results_sha256
        if contents[sha] is not None:
            interval = _interval(paths[sha], contents[sha])
            if interval is not None:
                out[sha]["multi_map_ci_low"], out[sha]["multi_map_ci_high"] = (f"{x:.4f}" for x in interval)
    classes: dict[tuple[str, str], list[RowBase]] = {}
    for row in rows:
        classes.setdefault((row.languages, row.candidate_format), []).append(row)
    for members in classes.values():
        best, others = members[0], [r for r in members[1:] if contents[r.results_sha256] is not None]
        if contents[best.results_sha256] is None:
            continue
        out[best.results_sha256]["vs_best"] = "best"
        if not others:
            continue
        compared = [best, *others]
        p_values = _p_adjusted(
            [paths[r.results_sha256] for r in compared], [contents[r.results_sha256] for r in compared]
        )
        for row, p_adjusted in zip(others, p_values):
            out[row.results_sha256]["vs_best"] = "tied" if p_adjusted >= ALPHA else "below"
            out[row.results_sha256]["vs_best_p"] = f"{p_adjusted:.4f}"
    return out
