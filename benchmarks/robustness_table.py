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

from hybrid_plugin.stats.compare import Interval
from hybrid_plugin.stats.render import interval_text

MEASURES = (
    ("mono_map", "mono mAP ↑", 3),
    ("multi_map", "multi mAP ↑", 3),
    ("max_rank_distance", "max rank distance ↓", 1),
)


def _cell(cell: dict, places: int) -> str:
    star = "*" if cell["test"]["significant"] else ""
    return interval_text(Interval(**cell["difference"]), places, sign=True) + star


def table(runs: dict[str, dict]) -> str:
    perturbations = list(dict.fromkeys(p["name"] for run in runs.values() for p in run["perturbations"]))
    lines = []
    for key, label, places in MEASURES:
        lines += [f"### {label}", "", "| recipe | clean | " + " | ".join(perturbations) + " |"]
        lines.append("|---|---:|" + "---:|" * len(perturbations))
        for name, run in runs.items():
            pairs = {pair["system"]: pair for pair in run["comparison"]["pairs"]}
            clean, cells = None, []
            for p in perturbations:
                pair = pairs.get(p)
                measure = next((m for m in pair["measures"] if m["key"] == key), None) if pair else None
                if measure is None:
                    cells.append("")
                    continue
                clean = measure["macro"]["baseline"]["value"]
                cells.append(_cell(measure["macro"], places))
            clean_text = interval_text(Interval(clean, None, None), places)
            lines.append(f"| {name} | {clean_text} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


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
    text = table(runs)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
