"""Numbers must not move: compare two evaluations of the same model and task, file by file.

Usage:

    python benchmarks/numbers_unchanged.py OLD_RESULTS.json NEW_RESULTS.json [--tolerance 1e-12] \
        [--record benchmarks/results/numbers_unchanged.json]

Compares every number of the results JSON (scores, per-language values, settings, standard measures,
bias matrices, counts; not timings, seconds, provenance, or how many texts the cache already held) and
every column of the two per-query Parquet files row by row:
integer columns (ranks, counts) and strings must be identical, floats within ``--tolerance``. Exit code
1 on any difference, with the first few listed. ``--record`` appends the summary to a JSON file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SKIP = {"timings", "provenance", "model", "per_query"}


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    """Every scalar in a JSON value, keyed by its path."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not path and key in SKIP:
                continue
            out.update(leaves(item, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            out.update(leaves(item, f"{path}[{i}]"))
        return out
    return {path: value}


def incidental(path: str) -> bool:
    """Seconds and what the cache happened to hold: not numbers of the evaluation."""
    return path.endswith("_s") or path == "counts.texts_encoded"


def compare_json(old: dict, new: dict, tolerance: float) -> tuple[int, float, list[str]]:
    a, b = ({p: v for p, v in leaves(x).items() if not incidental(p)} for x in (old, new))
    problems = [f"only in old: {p}" for p in sorted(set(a) - set(b))]
    problems += [f"only in new: {p}" for p in sorted(set(b) - set(a))]
    worst = 0.0
    for path in sorted(set(a) & set(b)):
        x, y = a[path], b[path]
        if isinstance(x, float) or isinstance(y, float):
            if x is None or y is None or (math.isnan(x) != math.isnan(y)):
                problems.append(f"{path}: {x} vs {y}")
            elif not math.isnan(x):
                worst = max(worst, abs(x - y))
                if abs(x - y) > tolerance:
                    problems.append(f"{path}: {x!r} vs {y!r}")
        elif x != y:
            problems.append(f"{path}: {x!r} vs {y!r}")
    return len(set(a) & set(b)), worst, problems


def compare_parquet(old: Path, new: Path, tolerance: float) -> tuple[int, float, list[str]]:
    a, b = pq.read_table(old), pq.read_table(new)
    problems = []
    if a.column_names != b.column_names:
        problems.append(f"columns differ: {a.column_names} vs {b.column_names}")
    if a.num_rows != b.num_rows:
        return a.num_rows, math.inf, problems + [f"rows: {a.num_rows} vs {b.num_rows}"]
    worst = 0.0
    for name in a.column_names:
        if name not in b.column_names:
            continue
        floats = pa.types.is_floating(a.schema.field(name).type) and pa.types.is_floating(
            b.schema.field(name).type
        )
        if floats:
            x = a.column(name).to_numpy(zero_copy_only=False)
            y = b.column(name).to_numpy(zero_copy_only=False)
            same_nan = np.array_equal(np.isnan(x), np.isnan(y))
            ok = ~np.isnan(x)
            delta = float(np.max(np.abs(x[ok] - y[ok]), initial=0.0))
            worst = max(worst, delta)
            if not same_nan or delta > tolerance:
                problems.append(f"column {name}: max |Δ| {delta:.3g}, nulls equal: {same_nan}")
        elif a.column(name).to_pylist() != b.column(name).to_pylist():  # ints, strings, nulls: identical
            differing = sum(p != q for p, q in zip(a.column(name).to_pylist(), b.column(name).to_pylist()))
            problems.append(f"column {name}: {differing} rows differ")
    return a.num_rows, worst, problems


def per_query_path(results_json: Path) -> Path:
    return results_json.with_name(results_json.name.removesuffix(".json") + ".queries.parquet")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--tolerance", type=float, default=1e-12)
    ap.add_argument("--record", type=Path, default=None, help="append the summary to this JSON file")
    ap.add_argument("--label", default=None, help="name of this comparison in --record")
    args = ap.parse_args()
    old, new = (json.loads(p.read_text(encoding="utf-8")) for p in (args.old, args.new))
    numbers, json_worst, problems = compare_json(old, new, args.tolerance)
    summary: dict[str, Any] = {
        "label": args.label or f"{new.get('task')} {new.get('model', {}).get('name')}",
        "results_numbers": numbers,
        "results_max_abs_delta": json_worst,
    }
    if per_query_path(args.old).exists() and per_query_path(args.new).exists():
        rows, pq_worst, pq_problems = compare_parquet(
            per_query_path(args.old), per_query_path(args.new), args.tolerance
        )
        summary.update(per_query_rows=rows, per_query_max_abs_delta=pq_worst)
        problems += pq_problems
    summary["identical_within_tolerance"] = not problems
    summary["tolerance"] = args.tolerance
    print(json.dumps(summary, indent=1))
    for line in problems[:20]:
        print("  " + line, file=sys.stderr)
    if args.record:
        records = json.loads(args.record.read_text(encoding="utf-8")) if args.record.exists() else []
        records = [r for r in records if r.get("label") != summary["label"]] + [summary]
        args.record.write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
