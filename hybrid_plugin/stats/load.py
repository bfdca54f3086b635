"""Results files and their per-query files, read for a paired comparison, and the checks that they pair up.

Two results are comparable only when every per-query row of one has its partner in the other: same
task, languages, candidate format and (setting, query) rows, each read from the per-query file whose
sha256 the results JSON records. Anything else is refused with one line (a :class:`NotComparable`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.measures import MEASURES, Measure
from hybrid_plugin.evaluation.results import PerQueryNotFound, Results, locate_per_query

KEY_COLUMNS = ("setting", "kind", "query_lang", "query_id", "group")
SCORE_TOLERANCE = 1e-9


class NotComparable(UserError):
    """Results that cannot be paired: the CLI prints the one-line reason and exits 2."""


@dataclass
class RunFile:
    """One results JSON, its per-query rows (canonical order: by setting, then query id) and values."""

    path: Path
    results: Results
    rows: int
    keys: dict[str, np.ndarray]  # KEY_COLUMNS as object arrays
    values: dict[str, np.ndarray] = field(default_factory=dict)  # measure key -> float64, nan = not counted

    @property
    def name(self) -> str:
        return str(self.results.model.get("name") or self.path.stem)


def _columns(table) -> dict[str, np.ndarray]:
    out = {}
    for name in table.column_names:
        column = table.column(name)
        if hasattr(column.type, "value_type"):  # dictionary-encoded strings
            column = column.cast(column.type.value_type)
        out[name] = column.to_numpy(zero_copy_only=False)
    return out


def load_run(path: str | Path, measures: tuple[Measure, ...] | None = None) -> RunFile:
    """Read a results JSON and its per-query file; each measure's per-row values, checked against the JSON.

    ``measures``: every registered one by default (:data:`~hybrid_plugin.evaluation.measures.MEASURES`)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        results = Results.load(path)
    except OSError as err:
        raise UserError(f"{path}: cannot read ({err.strerror or err})") from None
    except ValueError as err:
        raise UserError(f"{path}: not a hybrid-plugin results JSON ({str(err).splitlines()[0]})") from None
    except RecursionError:
        raise UserError(f"{path}: not a hybrid-plugin results JSON (nested too deeply)") from None
    try:
        per_query = locate_per_query(path, results)
    except PerQueryNotFound as err:
        hint = ": re-run hybrid-plugin evaluate to test it" if err.reason == "none" else ""
        raise NotComparable(f"{err}{hint}") from None
    table = pq.read_table(per_query)
    missing = [c for c in KEY_COLUMNS if c not in table.column_names]
    if missing:
        raise NotComparable(f"{per_query}: no column {', '.join(missing)} (not a per-query file?)")
    setting = table.column("setting").cast("string")
    order = pc.sort_indices(
        table.select([]).append_column("s", setting).append_column("q", table.column("query_id")),
        sort_keys=[("s", "ascending"), ("q", "ascending")],
    )
    columns = _columns(table.take(order))
    run = RunFile(path, results, table.num_rows, {c: columns[c] for c in KEY_COLUMNS})
    for measure in tuple(MEASURES) if measures is None else measures:
        if results.scores.get(measure.key) is None or measure.kind not in results.kinds:
            continue
        needs = measure.needs or (measure.column,)
        if measure.column not in columns and not all(c in columns for c in needs):
            continue  # a per-query file written before this measure existed
        _check_finite(per_query, table, (measure.column,) if measure.column in columns else needs)
        values = measure.values(columns)
        values = np.where(columns["kind"] == measure.kind, values, np.nan)
        run.values[measure.key] = values
    return run


def _check_finite(path: Path, table, names: tuple[str, ...]) -> None:
    """Refuse ±inf and NaN in the float columns a measure reads: ``evaluate`` writes null where a value
    is undefined, so these come from an edited file, and they would make every sum and test inf/nan."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for name in names:
        column = table.column(name)
        if not pa.types.is_floating(column.type):
            continue
        bad = pc.or_(pc.is_nan(column), pc.is_inf(column))
        row = pc.index(bad, True).as_py()
        if row >= 0:
            raise NotComparable(
                f"{path}: column {name} holds {column[row].as_py()} (row {row}); per-query values must be "
                "finite numbers (null where undefined)"
            )


def check_comparable(runs: list[RunFile]) -> None:
    """Refuse (one line) unless every run pairs row by row with the first."""
    first = runs[0]
    a = first.results
    for run in runs[1:]:
        b = run.results
        for what, x, y in (
            ("task", a.task, b.task),
            ("languages", ",".join(a.languages), ",".join(b.languages)),
            ("candidate format", a.candidate_format, b.candidate_format),
        ):
            if x != y:
                raise NotComparable(f"{first.path} and {run.path} are not comparable: {what} {x} vs {y}")
        if run.rows != first.rows or any(
            not np.array_equal(run.keys[c], first.keys[c]) for c in ("setting", "query_id", "group")
        ):
            raise NotComparable(
                f"{first.path} and {run.path} are not comparable: different query sets "
                f"({first.rows} vs {run.rows} per-query rows, or other (setting, query, group) rows)"
            )


def check_scores(run: RunFile, layout_score) -> None:
    """The per-query file must reproduce the JSON's macro scores (else it is not this result's file)."""
    for key in run.values:
        expected = run.results.scores.get(key)
        got = layout_score(key, run.values[key])
        if expected is not None and not math.isclose(
            got, expected, rel_tol=SCORE_TOLERANCE, abs_tol=SCORE_TOLERANCE
        ):
            raise NotComparable(
                f"{run.path}: its per-query file gives scores.{key} = {got:.6g}, the JSON {expected:.6g}"
            )
