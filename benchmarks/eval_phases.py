"""Where a cached ``hybrid-plugin evaluate`` spends its time: imports, load, embeddings from the cache,
engine, writing, plots; and the whole command's wall seconds and peak RSS.

Usage (fill the user embedding cache first, e.g. with ``make evaluate``):

    python benchmarks/eval_phases.py --task xquad-r --data-dir ../shared/datasets [--repeats 5]

Each repeat is a fresh interpreter that runs the command's steps one after another, as
``hybrid-plugin evaluate`` runs them, timing each (wall and CPU seconds) and reading the peak RSS after
it:

- ``import_cli``: ``hybrid_plugin.cli`` and every subcommand's parser;
- ``import_torch``: torch alone (imported by the engine's ranking kernel; listed apart because only the
  kernel needs it);
- ``import_evaluate``: the rest the evaluate command imports (evaluator, engine, report, per-query);
- ``load``: the task's files into a pool (checksums included); ``resolve``: the model reference
  (fingerprint) and retriever;
- ``embed``: every unique text's embedding, read from the cache; ``score``: the scorer built from them;
- ``engine``: all settings' ranks, measures, per-query table and results (``evaluate_pool``);
- ``table``: the console table; ``per_query``: the per-query table as Arrow, written as Parquet with its
  sha256; ``results_json``: the results JSON; ``plots``: the heatmap and the rank-distance chart,
  matplotlib's import included.

Then the whole command, ``--repeats`` times in fresh processes (wall seconds, peak RSS). Reports the min
and median of each. Writes ``benchmarks/results/eval_phases_<task>.json`` and ``.md`` with the command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path


def child(task: str, data_dir: str, out: Path) -> None:
    """One cached evaluation, step by step as the CLI runs it; prints ``{phase: [wall, cpu, rss MiB]}``."""
    phases: dict[str, list[float]] = {}
    wall, cpu = time.perf_counter(), time.process_time()

    def mark(name: str) -> None:
        nonlocal wall, cpu
        now_wall, now_cpu = time.perf_counter(), time.process_time()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        phases[name] = [round(now_wall - wall, 4), round(now_cpu - cpu, 4), round(rss, 1)]
        wall, cpu = time.perf_counter(), time.process_time()

    from hybrid_plugin.cli import build_parser

    build_parser()
    mark("import_cli")
    import torch  # noqa: F401

    mark("import_torch")
    from hybrid_plugin.atomic import write_text
    from hybrid_plugin.evaluation.console import console_table
    from hybrid_plugin.evaluation.engine import evaluate_pool
    from hybrid_plugin.evaluation.evaluator import EvalConfig, load_task
    from hybrid_plugin.evaluation.perquery import to_arrow
    from hybrid_plugin.evaluation.plots import plot_cross_heatmap, plot_rank_distance
    from hybrid_plugin.evaluation.report import result_stem, write_per_query
    from hybrid_plugin.scoring.resolve import resolve_retriever

    mark("import_evaluate")
    cfg = EvalConfig(task=task, data_dir=data_dir)
    pool, context = load_task(cfg)
    mark("load")
    retriever = resolve_retriever(None, batch_size=cfg.batch_size, cache_root=cfg.embedding_cache())
    mark("resolve")
    emb = retriever.embed_pool(pool)
    mark("embed")
    scored = retriever.retrieval(pool, emb)
    mark("score")

    class Fixed:  # the retriever whose scoring is done: the engine's own time is what remains
        def score(self, pool):  # noqa: ANN001, ANN202
            return scored

    evaluation = evaluate_pool(
        pool, Fixed(), context, measures=tuple(cfg.ir_measures), run_depth=cfg.run_depth
    )
    results = evaluation.results
    mark("engine")
    console_table(results)
    mark("table")
    meta = {"task": results.task, "model": results.model["name"], "fingerprint": results.model["fingerprint"]}
    stem = out / result_stem(results)
    results = write_per_query(
        results, to_arrow(evaluation.table, evaluation.pool, meta), stem.with_suffix(".json")
    )
    mark("per_query")
    write_text(stem.with_suffix(".json"), results.dumps())
    mark("results_json")
    plot_cross_heatmap(results, Path(f"{stem}__cross_map.png"))
    plot_rank_distance(results, Path(f"{stem}__rank_distance.png"))
    mark("plots")
    print(json.dumps({"phases": phases, "texts_encoded": results.counts["texts_encoded"]}))


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and standard output of one fresh process.

    The parent stays small (it imports no part of the package before its children run): Linux carries
    the RSS a process had when it forked over into its child's peak.
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode()
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{' '.join(cmd)} exited {os.waitstatus_to_exitcode(status)}")
    return wall, usage.ru_maxrss / 1024, text


def summary(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="xquad-r")
    ap.add_argument("--data-dir", default=os.environ.get("HYBRID_PLUGIN_DATA", "../shared/datasets"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)  # an output folder: run one child
    args = ap.parse_args()
    if args.child:  # before any import of the package: the child times those
        child(args.task, args.data_dir, Path(args.child))
        return
    runs, commands = [], []
    with tempfile.TemporaryDirectory(prefix="hp-phases-") as tmp:
        for i in range(args.repeats):
            cmd = [sys.executable, __file__, "--task", args.task, "--data-dir", args.data_dir]
            _, _, out = timed([*cmd, "--child", str(Path(tmp) / f"p{i}")])
            runs.append(json.loads(out.strip().splitlines()[-1]))
        for i in range(args.repeats):
            cmd = [sys.executable, "-m", "hybrid_plugin", "evaluate", "--task", args.task]
            wall, rss, _ = timed([*cmd, "--data-dir", args.data_dir, "--out", str(Path(tmp) / f"run{i}")])
            commands.append((wall, rss))

    from hybrid_plugin.atomic import write_text
    from hybrid_plugin.provenance import portable_command

    if any(run["texts_encoded"] for run in runs):
        print("note: some texts were not cached; these are not the timings of cached runs")
    names = list(runs[0]["phases"])
    phases = {
        name: {
            "wall_s": summary([run["phases"][name][0] for run in runs]),
            "cpu_s": summary([run["phases"][name][1] for run in runs]),
            "peak_rss_mib_after": summary([run["phases"][name][2] for run in runs]),
        }
        for name in names
    }
    record = {
        "command": "python " + portable_command(sys.argv),
        "task": args.task,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_end": os.getloadavg(),
        },
        "repeats": args.repeats,
        "phases": phases,
        "steps_wall_s": summary([sum(run["phases"][n][0] for n in names) for run in runs]),
        "command_wall_s": summary([w for w, _ in commands]),
        "command_peak_rss_mib": summary([r for _, r in commands]),
    }
    out = Path(args.out)
    write_text(out / f"eval_phases_{args.task}.json", json.dumps(record, indent=1) + "\n")
    md = [
        f"# Where a cached evaluation's time goes: {args.task}, default model",
        "",
        f"Command: `{record['command']}` ({record['date']}, {os.cpu_count()} CPUs, no GPU; load "
        f"average at the end {', '.join(f'{x:.1f}' for x in record['machine']['load_average_at_end'])}). "
        f"Min and median of {args.repeats} fresh processes.",
        "",
        "| phase | wall s (min / median) | CPU s (min / median) | peak RSS MiB after (median) |",
        "|---|---|---|---|",
        *(
            f"| {name} | {p['wall_s']['min']} / {p['wall_s']['median']} | {p['cpu_s']['min']} / "
            f"{p['cpu_s']['median']} | {p['peak_rss_mib_after']['median']:.0f} |"
            for name, p in phases.items()
        ),
        f"| all steps | {record['steps_wall_s']['min']} / {record['steps_wall_s']['median']} | | |",
        "",
        f"Whole `hybrid-plugin evaluate --task {args.task}` (fresh process, per-query file and plots "
        f"written): wall {record['command_wall_s']['min']} s min / {record['command_wall_s']['median']} s "
        f"median; peak RSS {record['command_peak_rss_mib']['min']:.0f} MiB min / "
        f"{record['command_peak_rss_mib']['median']:.0f} MiB median.",
    ]
    write_text(out / f"eval_phases_{args.task}.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
