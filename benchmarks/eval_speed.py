"""Evaluation speed of the one engine on the default model, with the embeddings already cached.

Usage (fill the user embedding cache first, e.g. with ``make evaluate``):

    python benchmarks/eval_speed.py --task xquad-r --data-dir ../shared/datasets \
        [--compare OLD_RESULTS.json] [--repeats 3]

Measures, in one run:
- the whole ``hybrid-plugin evaluate`` command (a fresh process each time, default standard measures,
  per-query file written): wall seconds and peak RSS;
- the engine's own seconds for all settings: exact ranks, per-query values and standard measures,
  aggregation (``timings.metrics_s``), and writing the per-query Parquet file; its size;
- with ``--compare``: the largest |Δ| between an older results file of the same model and task and
  this run, over every per-setting mAP, per-language value, macro score and mean-rank cell, and the
  standard measures they share.

Writes ``benchmarks/results/eval_speed_<task>.json`` and ``.md`` with the command that produced them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from hybrid_plugin.atomic import write_text
from hybrid_plugin.evaluation.evaluator import EvalConfig, run_evaluation
from hybrid_plugin.evaluation.perquery import to_arrow, write_parquet
from hybrid_plugin.evaluation.results import Results
from hybrid_plugin.provenance import portable_command


def numbers(results: Results) -> dict[str, float]:
    """Every number a refactor must keep, flattened to ``path -> value``."""
    out: dict[str, float] = {}
    for key, entry in results.settings.items():
        out[f"settings.{key}.map"] = entry.map
        if entry.max_rank_distance is not None:
            out[f"settings.{key}.max_rank_distance"] = entry.max_rank_distance
        for name, value in entry.measures.items():
            out[f"settings.{key}.measures.{name}"] = value
    for lang, values in results.per_language.items():
        for name, value in values.model_dump().items():
            if value is not None:
                out[f"per_language.{lang}.{name}"] = float(value)
    for name, value in results.scores.model_dump().items():
        if value is not None:
            out[f"scores.{name}"] = value
    for x, row in results.mean_rank.items():
        for y, value in row.items():
            out[f"mean_rank.{x}.{y}"] = value
    return out


def compare(old: Results, new: Results) -> dict:
    """Largest |Δ| per family of numbers (measures compared only where both have them)."""
    a, b = numbers(old), numbers(new)
    shared = sorted(set(a) & set(b))
    families: dict[str, float] = {}
    for path in shared:
        family = (
            "measures." + path.rsplit(".", 1)[-1]
            if ".measures." in path
            else path.split(".")[0] + "." + path.rsplit(".", 1)[-1]
        )
        families[family] = max(families.get(family, 0.0), abs(a[path] - b[path]))
    core = [p for p in shared if ".measures." not in p]
    missing = sorted(p for p in a if ".measures." not in p and p not in b)
    return {
        "compared_numbers": len(core),
        "max_abs_delta": max((abs(a[p] - b[p]) for p in core), default=None),
        "by_family": families,
        "missing_in_new": missing[:10],
        "old_model_fingerprint": old.model.get("fingerprint"),
        "new_model_fingerprint": new.model.get("fingerprint"),
        "old_standard_measures": {
            "run_depth": old.standard_measures.run_depth,
            "native": old.standard_measures.native,
        },
    }


def run_command(task: str, data_dir: str, out: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one ``hybrid-plugin evaluate`` in a fresh process."""
    cmd = [
        sys.executable,
        "-m",
        "hybrid_plugin",
        "evaluate",
        "--task",
        task,
        "--data-dir",
        data_dir,
        "--out",
        str(out),
    ]
    started = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(cmd)} exited {child.returncode}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="xquad-r")
    ap.add_argument("--data-dir", default=os.environ.get("HYBRID_PLUGIN_DATA", "../shared/datasets"))
    ap.add_argument("--compare", default=None, help="an older results JSON of the same model and task")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()

    evaluation = run_evaluation(EvalConfig(task=args.task, data_dir=args.data_dir))
    results = evaluation.results
    if results.counts["texts_encoded"]:
        print(
            f"note: {results.counts['texts_encoded']} texts were not cached; the timings are of cached runs"
        )
    engine_s = []
    for _ in range(args.repeats):
        engine_s.append(
            run_evaluation(EvalConfig(task=args.task, data_dir=args.data_dir)).results.timings["metrics_s"]
        )
    with tempfile.TemporaryDirectory(prefix="hp-bench-") as tmp:
        started = time.perf_counter()
        table = to_arrow(evaluation.table, evaluation.pool)
        write_parquet(table, Path(tmp) / "q.parquet")
        parquet_s = time.perf_counter() - started
        parquet_bytes = (Path(tmp) / "q.parquet").stat().st_size
        commands = [run_command(args.task, args.data_dir, Path(tmp) / f"run{i}") for i in range(args.repeats)]
    record = {
        "command": "python " + portable_command(sys.argv),
        "task": args.task,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_end": os.getloadavg(),
        },
        "model": {k: results.model.get(k) for k in ("name", "fingerprint")},
        "versions": results.provenance["versions"],
        "settings": results.counts["settings"],
        "queries": results.counts["queries"],
        "standard_measures": results.standard_measures.native,
        "command_wall_s": [round(w, 2) for w, _ in commands],
        "command_peak_rss_mib": [round(r) for _, r in commands],
        "engine_s": engine_s,
        "per_query_rows": table.num_rows,
        "per_query_parquet_s": round(parquet_s, 3),
        "per_query_bytes": parquet_bytes,
        "timings_of_first_run": results.timings,
    }
    if args.compare:
        record["compare"] = {
            "old_file": Path(args.compare).name,
            **compare(Results.load(args.compare), results),
        }
    out = Path(args.out)
    write_text(out / f"eval_speed_{args.task}.json", json.dumps(record, indent=1) + "\n")
    md = [
        f"# Evaluation speed: {args.task}, default model, embeddings cached",
        "",
        f"Command: `{record['command']}` ({record['date']}, {os.cpu_count()} CPUs, no GPU; load "
        f"average at the end {', '.join(f'{x:.1f}' for x in record['machine']['load_average_at_end'])})",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| `hybrid-plugin evaluate`, whole command, wall s ({args.repeats} runs) | "
        f"{record['command_wall_s']} |",
        f"| same, peak RSS MiB | {record['command_peak_rss_mib']} |",
        f"| engine: all {sum(record['settings'].values())} settings, per-query values and "
        f"{', '.join(record['standard_measures'])}, s | {record['engine_s']} |",
        f"| per-query file: rows, size, write s | {record['per_query_rows']}, "
        f"{parquet_bytes / 2**20:.2f} MiB, {record['per_query_parquet_s']} |",
    ]
    if args.compare:
        c = record["compare"]
        md.append(
            f"| max \\|Δ\\| vs `{c['old_file']}` over {c['compared_numbers']} numbers | "
            f"{c['max_abs_delta']} |"
        )
        md += ["", "Largest |Δ| by family: " + ", ".join(f"{k} {v:.3g}" for k, v in c["by_family"].items())]
    write_text(out / f"eval_speed_{args.task}.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
