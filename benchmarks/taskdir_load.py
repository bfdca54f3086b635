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
from pathlib import Path

from benchmarks.scale_common import run_child, write_record

HERE = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, sys, time
import hybrid_plugin.data.taskdir as taskdir
from hybrid_plugin.provenance import portable_path
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
task = taskdir.load_folder(sys.argv[1]) if sys.argv[1] != "-" else None
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
n = len(task.pool.cand_ids) if task else 0
module = portable_path(taskdir.__file__)
print(json.dumps({"load_s": round(wall, 3), "peak_rss_gb": round(peak / 1e6, 3),
                  "rss_before_gb": round(base / 1e6, 3), "candidates": n, "module": module}))
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--code", type=Path, default=HERE)
    parser.add_argument("--tag", default="branch")
    args = parser.parse_args(argv)
    rows = [
        {"folder": Path(folder).name, **run_child(args.code, CHILD, str(Path(folder).resolve()))}
        for folder in args.folders
    ]
    write_record(
        f"taskdir_load_{args.tag}",
        "benchmarks/taskdir_load.py",
        argv,
        args.code,
        {"rows": rows},
        f"Task folder load: {args.tag}",
        ["folder", "candidates", "load s", "peak RSS GB", "RSS after imports GB"],
        [
            [r["folder"], f"{r['candidates']:,}", r["load_s"], r["peak_rss_gb"], r["rss_before_gb"]]
            for r in rows
        ],
    )


if __name__ == "__main__":
    main()
