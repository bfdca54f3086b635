"""Round trip: a built-in task exported as a task folder and read back with ``--task PATH``.

Usage: python benchmarks/taskdir_roundtrip.py --task xquad-r --languages de,en,zh [--model M] [--rounds 2]
Writes benchmarks/results/taskdir_roundtrip_<task>_<languages>.json and .md (with the command).

Exports the task (``hybrid-plugin export task``) into a temporary folder, then evaluates the built-in
task and the folder in alternation (``rounds`` times each, same process, same embedding cache), and
compares every number: each numeric leaf of the results JSON outside ``timings`` and ``provenance``
(which name the data's origin), and every column of the per-query table. Reports the max |Δ| (0.0 means
identical) and the evaluation wall time of each (``timings.total_s`` and the load time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from hybrid_plugin.atomic import write_text
from hybrid_plugin.evaluation.evaluator import EvalConfig, run_evaluation
from hybrid_plugin.evaluation.perquery import to_arrow
from hybrid_plugin.integrations.beir import export_task

SKIP = {"timings", "provenance"}


def numeric_leaves(obj: object, path: str = "") -> dict[str, object]:
    """Every leaf of a JSON value by its path (numbers, strings, None)."""
    if isinstance(obj, dict):
        return {
            k: v
            for key, val in obj.items()
            if key not in SKIP
            for k, v in numeric_leaves(val, f"{path}/{key}").items()
        }
    if isinstance(obj, list):
        return {k: v for i, val in enumerate(obj) for k, v in numeric_leaves(val, f"{path}[{i}]").items()}
    return {path: obj}


def max_delta(a: dict[str, object], b: dict[str, object]) -> tuple[float, int, list[str]]:
    """(max |Δ| over numeric leaves, how many were compared, paths whose non-numeric values differ)."""
    if a.keys() != b.keys():
        return float("inf"), 0, sorted(a.keys() ^ b.keys())
    worst, n, other = 0.0, 0, []
    for key, x in a.items():
        y = b[key]
        if isinstance(x, (int, float)) and not isinstance(x, bool) and isinstance(y, (int, float)):
            n += 1
            if not (np.isnan(x) and np.isnan(y)):
                worst = max(worst, abs(float(x) - float(y)))
        elif x != y:
            other.append(key)
    return worst, n, other


def table_delta(a, b) -> tuple[float, int]:
    """Max |Δ| over the numeric columns of two per-query tables (Arrow), and how many values."""
    worst, n = 0.0, 0
    for name in a.column_names:
        x, y = a.column(name).to_numpy(zero_copy_only=False), b.column(name).to_numpy(zero_copy_only=False)
        if x.dtype.kind in "fiu":
            x, y = x.astype(float), y.astype(float)
            both = np.isnan(x) & np.isnan(y)
            if (np.isnan(x) != np.isnan(y)).any():
                return float("inf"), n
            worst = max(worst, float(np.max(np.abs(x[~both] - y[~both]), initial=0.0)))
            n += int((~both).sum())
        elif name != "query_id" and not np.array_equal(x.astype(str), y.astype(str)):
            return float("inf"), n
    return worst, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", required=True)
    parser.add_argument("--languages", default=None)
    parser.add_argument("--model", default=None)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "task"
        t0 = time.perf_counter()
        export_task(args.task, folder, args.languages, args.data_dir)
        export_s = time.perf_counter() - t0
        runs: dict[str, list] = {"built-in": [], "folder": []}
        for _ in range(args.rounds):
            for kind, task in (("built-in", args.task), ("folder", str(folder))):
                cfg = EvalConfig(
                    task=task, model=args.model, languages=args.languages, data_dir=args.data_dir
                )
                t = time.perf_counter()
                evaluation = run_evaluation(cfg)
                wall = time.perf_counter() - t
                runs[kind].append((evaluation, wall))
    (a, _), (b, _) = runs["built-in"][-1], runs["folder"][-1]
    results_delta, n_results, differ = max_delta(
        numeric_leaves(a.results.to_json()), numeric_leaves(b.results.to_json())
    )
    differ = [k for k in differ if k not in ("/task",)]  # the folder's task has its own name
    per_query_delta, n_per_query = table_delta(to_arrow(a.table, a.pool), to_arrow(b.table, b.pool))
    timing = {
        kind: {
            "wall_s": [round(w, 3) for _, w in entries],
            "load_s": [e.results.timings["load_s"] for e, _ in entries],
            "total_s": [e.results.timings["total_s"] for e, _ in entries],
            "encode_s": [e.results.timings.get("encode_s") for e, _ in entries],
            "metrics_s": [e.results.timings.get("metrics_s") for e, _ in entries],
            "texts_encoded": [e.results.counts.get("texts_encoded") for e, _ in entries],
        }
        for kind, entries in runs.items()
    }
    record = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "task": args.task,
        "languages": list(a.pool.languages),
        "model": a.results.model["name"],
        "queries": len(a.pool.query_ids),
        "candidates": len(a.pool.cand_ids),
        "export_s": round(export_s, 3),
        "results_numbers_compared": n_results,
        "results_max_abs_delta": results_delta,
        "results_other_differences": differ,
        "per_query_values_compared": n_per_query,
        "per_query_max_abs_delta": per_query_delta,
        "timings": timing,
    }
    subset = "all" if args.languages is None else args.languages.replace(",", "-")
    name = f"taskdir_roundtrip_{args.task}_{subset}"
    out = Path(__file__).parent / "results"
    write_text(out / f"{name}.json", json.dumps(record, indent=1) + "\n")
    lines = [
        f"# Task folder round trip: {args.task} ({', '.join(a.pool.languages)})",
        "",
        f"`{record['command']}` ({record['date']}, model {record['model']})",
        "",
        f"- results JSON: {n_results} numbers, max |Δ| = {results_delta}; "
        f"other differences: {differ or 'none'}",
        f"- per-query file: {n_per_query} values, max |Δ| = {per_query_delta}",
        "",
        "| run | wall s per round | load s | encode s | metrics s | texts encoded |",
        "|---|---|---|---|---|---|",
    ]
    for kind, t in timing.items():
        cells = [t[k] for k in ("wall_s", "load_s", "encode_s", "metrics_s", "texts_encoded")]
        lines.append(f"| {kind} | " + " | ".join(map(str, cells)) + " |")
    write_text(out / f"{name}.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
