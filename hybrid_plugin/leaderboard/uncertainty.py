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


def _testable(path: Path) -> bool:
    """The committed results file has a per-query file beside it with the recorded sha256."""
    try:
        results = Results.load(path)
    except (OSError, ValueError):
        return False
    return results.per_query is not None and per_query_path(path, results) is not None


def uncertainty_cells(rows: list[RowBase], paths: dict[str, Path]) -> dict[str, dict[str, str]]:
    """Per row (keyed by its results sha256): its four uncertainty cells, from the committed files.

    ``rows`` in board order (best first); ``paths``: each row's committed results JSON by sha256. A
    :class:`~hybrid_plugin.errors.UserError` if two rows' per-query files that should pair up do not.
    """
    testable = {sha: _testable(path) for sha, path in paths.items()}
    out = {r.results_sha256: dict.fromkeys(UNCERTAINTY, "") for r in rows}
    for row in rows:
        sha = row.results_sha256
        if testable[sha]:
            interval = score_interval(paths[sha], MULTI_MAP, bootstraps=BOOTSTRAPS, seed=SEED)
            if interval is not None:
                out[sha]["multi_map_ci_low"], out[sha]["multi_map_ci_high"] = (f"{x:.4f}" for x in interval)
    classes: dict[tuple[str, str], list[RowBase]] = {}
    for row in rows:
        classes.setdefault((row.languages, row.candidate_format), []).append(row)
    for members in classes.values():
        best, others = members[0], [r for r in members[1:] if testable[r.results_sha256]]
        if not testable[best.results_sha256]:
            continue
        out[best.results_sha256]["vs_best"] = "best"
        if not others:
            continue
        systems = [(f"row{i}", [paths[r.results_sha256]]) for i, r in enumerate([best, *others])]
        comparison = compare_runs(
            systems, permutations=PERMUTATIONS, bootstraps=1, seed=SEED, alpha=ALPHA, measures=(MULTI_MAP,)
        )
        for row, pair in zip(others, comparison.pairs):
            test = pair.measure(MULTI_MAP.key).macro.test
            out[row.results_sha256]["vs_best"] = "tied" if test.p_adjusted >= ALPHA else "below"
            out[row.results_sha256]["vs_best_p"] = f"{test.p_adjusted:.4f}"
    return out
