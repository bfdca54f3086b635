"""Scaling benchmark (DESIGN §12, issue 24): ``hybrid-plugin evaluate`` on synthetic task folders.

Usage: python benchmarks/scale_run.py --sizes 13000 100000 [--data ../scale_data] [--tag main]
       [--code /path/to/checkout] [--warm]
Writes benchmarks/results/scale_<tag>.json and .md (with the command).

For each size, the folder ``DATA/scale-<size>`` (make it with ``benchmarks/scale_data.py``) is
evaluated with the cost-free hash encoder (``--model benchmarks.hash_encoder:factory``) in a fresh
process under ``/usr/bin/time -v``, with an empty embedding cache (``HYBRID_PLUGIN_CACHE`` =
``DATA/cache-<tag>-<size>``): a cold run; with ``--warm`` once more on the filled cache. Recorded:
wall seconds, peak RSS, and the results JSON's ``timings`` (load_s, encode_s, metrics_s, total_s).
``--code`` names the checkout whose ``hybrid_plugin`` is evaluated (default: this one); the hash
encoder always comes from this checkout's ``benchmarks/``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.scale_common import write_record

HERE = Path(__file__).resolve().parents[1]
MODEL = "benchmarks.hash_encoder:factory"


def run_one(folder: Path, cache: Path, code: Path, cli: str) -> dict:
    """One evaluate in a fresh process; wall and peak RSS from GNU time, timings from the JSON."""
    with tempfile.TemporaryDirectory(prefix="scale-run-") as tmp:
        out, timing = Path(tmp) / "out", Path(tmp) / "time.txt"
        cmd = [
            "/usr/bin/time",
            "-v",
            "-o",
            str(timing),
            cli,
            "evaluate",
            "--task",
            str(folder),
            "--model",
            MODEL,
            "--out",
            str(out),
        ]
        env = {**os.environ, "HYBRID_PLUGIN_CACHE": str(cache), "PYTHONPATH": f"{code}{os.pathsep}{HERE}"}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        text = timing.read_text() if timing.exists() else ""
        row: dict = {"returncode": proc.returncode}
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
        row["peak_rss_gb"] = round(int(m.group(1)) / 1e6, 3) if m else None
        m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", text)
        if m:
            row["wall_s"] = round(int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3)), 2)
        if proc.returncode != 0:
            row["stderr_tail"] = proc.stderr[-2000:]
            return row
        (result,) = [p for p in out.glob("*.json") if not p.name.endswith(".queries.json")]
        data = json.loads(result.read_text())
        row["timings"] = {k: v for k, v in data.get("timings", {}).items()}
        row["counts"] = data.get("counts")
        return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", required=True)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "scale_data")
    parser.add_argument("--tag", default="branch")
    parser.add_argument("--code", type=Path, default=HERE, help="checkout whose hybrid_plugin runs")
    parser.add_argument("--cli", default=str(Path(sys.executable).with_name("hybrid-plugin")))
    parser.add_argument("--warm", action="store_true", help="also run once more on the filled cache")
    args = parser.parse_args(argv)
    rows = []
    for size in args.sizes:
        folder = args.data / f"scale-{size}"
        if not folder.is_dir():
            raise SystemExit(f"{folder}: missing; run benchmarks/scale_data.py --candidates {size}")
        cache = args.data / f"cache-{args.tag}-{size}"
        shutil.rmtree(cache, ignore_errors=True)
        for run in ("cold", "warm") if args.warm else ("cold",):
            row = {"candidates": size, "run": run, **run_one(folder, cache, args.code.resolve(), args.cli)}
            print(json.dumps(row), file=sys.stderr)
            rows.append(row)
        shutil.rmtree(cache, ignore_errors=True)
    evaluate = (
        "HYBRID_PLUGIN_CACHE=<empty> PYTHONPATH=<code>:<repo> /usr/bin/time -v hybrid-plugin evaluate "
        f"--task <DATA>/scale-<N> --model {MODEL} --out <tmp>"
    )
    cells = []
    for r in rows:
        t = r.get("timings", {})
        cells.append(
            [f"{r['candidates']:,}", r["run"], r.get("wall_s", "?"), r.get("peak_rss_gb", "?")]
            + [t.get(k, "?") for k in ("load_s", "encode_s", "metrics_s", "total_s")]
        )
    write_record(
        f"scale_{args.tag}",
        "benchmarks/scale_run.py",
        argv,
        args.code,
        {"evaluate": evaluate, "rows": rows},
        f"Scaling benchmark: {args.tag}",
        ["candidates", "run", "wall s", "peak RSS GB", "load_s", "encode_s", "metrics_s", "total_s"],
        cells,
        note=f"Each row: `{evaluate}` in a fresh process.",
    )


if __name__ == "__main__":
    main()
