"""Side by side: the macro drops of several ``hybrid-plugin perturb`` runs (one per recipe).

Usage:

    python benchmarks/robustness_table.py NAME=DIR [NAME=DIR ...] [--out FILE.md]

Each DIR is a ``perturb --out`` folder (its ``robustness.json``). Per recipe and perturbation: the clean
macro score and the paired difference perturbed − clean with its interval, for mono and multi mAP and
max rank distance. Nothing is recomputed: the numbers are those of each run's comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hybrid_plugin.evaluation.measures import MAX_RANK_DISTANCE, MONO_MAP, MULTI_MAP
from hybrid_plugin.stats.robustness import recipes_markdown

MEASURES = (MONO_MAP, MULTI_MAP, MAX_RANK_DISTANCE)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", metavar="NAME=DIR")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    runs = {}
    for spec in args.runs:
        name, _, folder = spec.partition("=")
        if not folder:
            ap.error(f"{spec}: expected NAME=DIR")
        runs[name] = json.loads((Path(folder) / "robustness.json").read_text(encoding="utf-8"))
    text = recipes_markdown(runs, measures=MEASURES)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
