"""Time and peak memory of reading one task folder into its pool (issue 24, item 2).

Usage: python benchmarks/taskdir_load.py FOLDER [FOLDER ...] [--code CHECKOUT] [--tag TAG]
Writes benchmarks/results/taskdir_load_<tag>.json and .md (with the command).

Each folder is loaded (``hybrid_plugin.data.taskdir.load_folder``: read, check, build the pool, sha256
of the files) in a fresh process, whose wall time of the call and peak RSS (``ru_maxrss``, so the
interpreter and imports are included; the baseline of an empty load is recorded as well) are taken.
``--code`` names the checkout whose ``hybrid_plugin`` is measured (default: this one).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, sys, time
import hybrid_plugin.data.taskdir as taskdir
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
task = taskdir.load_folder(sys.argv[1]) if sys.argv[1] != "-" else None
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
n = len(task.pool.cand_ids) if task else 0
print(json.dumps({"load_s": round(wall, 3), "peak_rss_gb": round(peak / 1e6, 3),
                  "rss_before_gb": round(base / 1e6, 3), "candidates": n, "module": taskdir.__file__}))
"""


def git_head(folder: Path) -> str:
    out = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--code", type=Path, default=HERE)
    parser.add_argument("--tag", default="branch")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": str(args.code.resolve())}
    rows = []
    for folder in args.folders:
        proc = subprocess.run(  # from /, so that the child imports --code, not the working folder
            [sys.executable, "-c", CHILD, str(Path(folder).resolve())],
            env=env,
            capture_output=True,
            text=True,
            cwd="/",
        )
        if proc.returncode:
            raise SystemExit(proc.stderr[-2000:])
        row = {"folder": Path(folder).name, **json.loads(proc.stdout.splitlines()[-1])}
        print(json.dumps(row), file=sys.stderr)
        rows.append(row)
    command = "python " + " ".join(
        ["benchmarks/taskdir_load.py", *(argv if argv is not None else sys.argv[1:])]
    )
    meta = {
        "command": command,
        "code_commit": git_head(args.code),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rows": rows,
    }
    from hybrid_plugin.atomic import write_text

    out = HERE / "benchmarks" / "results" / f"taskdir_load_{args.tag}"
    write_text(out.with_suffix(".json"), json.dumps(meta, indent=1) + "\n")
    lines = [
        f"# Task folder load: {args.tag}",
        "",
        f"`{command}` (code {meta['code_commit']}, {meta['date']})",
        "",
        "| folder | candidates | load s | peak RSS GB | RSS after imports GB |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {r['folder']} | {r['candidates']:,} | {r['load_s']} | {r['peak_rss_gb']} | "
            f"{r['rss_before_gb']} |"
            for r in rows
        ),
    ]
    write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
