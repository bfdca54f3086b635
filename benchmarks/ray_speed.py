"""``--executor local`` vs ``--executor ray`` on a whole task: identical results, and the wall times.

Usage (fill the user embedding cache first, e.g. with ``make evaluate``, so both runs only rank):

    python benchmarks/ray_speed.py --task xquad-r --data-dir ../shared/datasets [--rounds 1]

Each round runs ``hybrid-plugin evaluate --task TASK --executor E --out TMP/E`` in a fresh process for
``local`` and for ``ray`` (a local Ray instance with the machine's CPUs), timing the whole command, and
reads the engine's own ``timings.metrics_s`` from its results. Then it checks that the two runs agree:
every value of the results JSON but the timings, the start time, the engine's description of itself
and the configuration's executor field, and the per-query Parquet files (``pyarrow.Table.equals``).

With ``--phases`` it instead times, in this process from the cached embeddings, the tile pass
(``rank_pool``: exact ranks and every query's top 10 per language) with the local executor (torch's
threads, then one thread) and with Ray, checking that the ranks and top-k lists are equal, and the rank
correlation pass (always local), into ``ray_<task>__phases.{json,md}``.

Writes ``benchmarks/results/ray_<task>.json`` and ``.md`` with the command that produced them.
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

import pyarrow.parquet as pq

from hybrid_plugin.atomic import write_text
from hybrid_plugin.provenance import portable_command

EXECUTORS = ("local", "ray")


def comparable(results: dict) -> dict:
    """A results JSON without what may differ between executors (timings, start, engine, executor)."""
    out = json.loads(json.dumps(results))
    out.pop("timings", None)
    out["provenance"].pop("started", None)
    out["provenance"].pop("engine", None)
    out["provenance"].get("config", {}).pop("executor", None)
    return out


def leaves(obj: object, path: str = "") -> dict[str, object]:
    if isinstance(obj, dict):
        return {k: v for key, value in obj.items() for k, v in leaves(value, f"{path}/{key}").items()}
    if isinstance(obj, list):
        return {k: v for i, value in enumerate(obj) for k, v in leaves(value, f"{path}[{i}]").items()}
    return {path: obj}


def run_once(task: str, executor: str, data_dir: str | None, out: Path) -> dict:
    """One fresh ``hybrid-plugin evaluate`` process; its wall seconds and the results it wrote."""
    cmd = [sys.executable, "-m", "hybrid_plugin", "evaluate", "--task", task, "--executor", executor]
    cmd += ["--out", str(out)] + (["--data-dir", data_dir] if data_dir else [])
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{executor} run failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    results_path = next(p for p in out.glob("*.json"))
    results = json.loads(results_path.read_text(encoding="utf-8"))
    return {
        "wall_s": round(wall, 2),
        "timings": results["timings"],
        "engine": results["provenance"]["engine"],
        "results": results,
        "per_query": next(out.glob("*.parquet")),
    }


def phases(task: str, data_dir: str | None, rounds: int) -> list[dict]:
    """Seconds of the tile pass per executor (ranks and top-k checked equal) and of rank correlation."""
    import numpy as np
    import torch

    from hybrid_plugin.evaluation.evaluator import EvalConfig, load_task
    from hybrid_plugin.evaluation.executors_ray import RayExecutor
    from hybrid_plugin.scoring.ranking import rank_correlations, rank_pool
    from hybrid_plugin.scoring.resolve import resolve_retriever
    from hybrid_plugin.scoring.tiles import EngineOptions, LocalExecutor

    cfg = EvalConfig(task=task, data_dir=data_dir)
    pool, _ = load_task(cfg)
    scorer = resolve_retriever(None, cache_root=cfg.embedding_cache()).score(pool).matrix
    threads = torch.get_num_threads()
    ray_executor = RayExecutor()
    ray_executor.start()  # Ray's start-up is not the tile pass's
    out = []
    for r in range(rounds):
        row: dict = {"round": r + 1}
        reference = None
        for name, executor, n_threads in (
            (f"local ({threads} torch threads)", LocalExecutor(), threads),
            ("local (1 torch thread)", LocalExecutor(), 1),
            ("ray", ray_executor, threads),
        ):
            torch.set_num_threads(n_threads)
            options = EngineOptions(executor=executor, progress=False)
            started = time.perf_counter()
            ranking = rank_pool(pool, scorer, options, top_k=10)
            row[name] = round(time.perf_counter() - started, 2)
            torch.set_num_threads(threads)
            arrays = (ranking.ranks.rank_lang, ranking.ranks.rank_pool, ranking.top_keys, ranking.top_cands)
            if reference is None:
                reference = arrays
            row[f"{name} equal"] = all(np.array_equal(a, b) for a, b in zip(reference, arrays))
        started = time.perf_counter()
        rank_correlations(pool, scorer, EngineOptions(progress=False))
        row["rank correlation (local)"] = round(time.perf_counter() - started, 2)
        row["load_average"] = os.getloadavg()
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="xquad-r")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--note", default="")
    parser.add_argument("--phases", action="store_true", help="time the engine's passes in-process")
    args = parser.parse_args()
    load_start = os.getloadavg()
    if args.phases:
        return write_phases(args, load_start)
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            runs = {e: run_once(args.task, e, args.data_dir, Path(tmp) / f"{r}-{e}") for e in EXECUTORS}
            a, b = (comparable(runs[e]["results"]) for e in EXECUTORS)
            la, lb = leaves(a), leaves(b)
            differing = sorted(k for k in la.keys() | lb.keys() if la.get(k) != lb.get(k))
            tables = [pq.read_table(runs[e]["per_query"]) for e in EXECUTORS]
            rounds.append(
                {
                    "round": r + 1,
                    "runs": {
                        e: {
                            "command_wall_s": runs[e]["wall_s"],
                            "metrics_s": runs[e]["timings"]["metrics_s"],
                            "total_s": runs[e]["timings"]["total_s"],
                            "encode_s": runs[e]["timings"].get("encode_s"),
                            "engine": runs[e]["engine"],
                        }
                        for e in EXECUTORS
                    },
                    "results_values_compared": len(la),
                    "results_values_differing": differing[:20],
                    "identical_results": not differing,
                    "per_query_rows": tables[0].num_rows,
                    "per_query_columns": tables[0].num_columns,
                    "identical_per_query": tables[0].equals(tables[1]),
                }
            )
    record = {
        "command": "python " + portable_command(sys.argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": args.task,
        "note": args.note,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_at_start": load_start,
            "load_average_at_end": os.getloadavg(),
        },
        "rounds": rounds,
    }
    try:
        import ray

        record["machine"]["ray"] = ray.__version__
    except ImportError:
        pass
    out = Path(__file__).resolve().parent / "results"
    write_text(out / f"ray_{args.task}.json", json.dumps(record, indent=1) + "\n")
    md = [
        f"# `--executor local` vs `--executor ray` on {args.task}",
        "",
        f"`{record['command']}` — {record['date']}, {os.cpu_count()} CPUs, Ray "
        f"{record['machine'].get('ray', '?')} (a local instance), embeddings cached (both runs only rank). "
        f"Load average at start {', '.join(f'{x:.1f}' for x in load_start)}, at end "
        f"{', '.join(f'{x:.1f}' for x in record['machine']['load_average_at_end'])}.",
        "",
    ]
    if args.note:
        md += [args.note, ""]
    md += [
        "| round | executor | whole command (s) | engine `metrics_s` | tiles | identical results JSON | "
        "identical per-query file |",
        "|---:|---|---:|---:|---:|---|---|",
    ]
    for r in rounds:
        for e in EXECUTORS:
            run = r["runs"][e]
            md.append(
                f"| {r['round']} | {e} | {run['command_wall_s']:.1f} | {run['metrics_s']:.1f} | "
                f"{run['engine'].get('tiles')} | {'yes' if r['identical_results'] else 'NO'} "
                f"({r['results_values_compared']} values) | "
                f"{'yes' if r['identical_per_query'] else 'NO'} ({r['per_query_rows']} rows × "
                f"{r['per_query_columns']} columns) |"
            )
    write_text(out / f"ray_{args.task}.md", "\n".join(md) + "\n")
    print("\n".join(md))


def write_phases(args: argparse.Namespace, load_start: tuple[float, ...]) -> None:
    rows = phases(args.task, args.data_dir, args.rounds)
    record = {
        "command": "python " + portable_command(sys.argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "task": args.task,
        "note": args.note,
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": load_start},
        "rounds": rows,
    }
    out = Path(__file__).resolve().parent / "results"
    write_text(out / f"ray_{args.task}__phases.json", json.dumps(record, indent=1) + "\n")
    columns = [k for k in rows[0] if k not in ("round", "load_average") and not k.endswith(" equal")]
    md = [
        f"# The engine's passes on {args.task}: seconds per executor",
        "",
        f"`{record['command']}` — {record['date']}, {os.cpu_count()} CPUs, cached embeddings, in one process "
        "(Ray started before the timing). The tile pass: exact ranks and each query's top 10 per "
        "language; its ranks and top-k lists are compared with the first column's.",
        "",
    ]
    if args.note:
        md += [args.note, ""]
    md += [
        "| round | " + " | ".join(columns) + " | all equal | load average |",
        "|---:|" + "---:|" * len(columns) + "---|---|",
    ]
    for row in rows:
        equal = all(v for k, v in row.items() if k.endswith(" equal"))
        load = ", ".join(f"{x:.1f}" for x in row["load_average"])
        md.append(
            f"| {row['round']} | "
            + " | ".join(f"{row[c]:.1f}" for c in columns)
            + f" | {'yes' if equal else 'NO'} | {load} |"
        )
    write_text(out / f"ray_{args.task}__phases.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
