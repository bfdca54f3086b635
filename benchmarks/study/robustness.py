"""Robustness under perturbed queries (issue 27, item 3): each plain recipe's macro drops side by side,
as ``perturb`` measured them (one ``robustness.json`` per run and task); nothing is recomputed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hybrid_plugin.stats.robustness import recipes_markdown

from .debias import TITLES
from .records import RunRecord


def _read(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _name(row: RunRecord, seeds: int) -> str:
    return row.label if row.strategy == "untrained" or seeds < 2 else f"{row.label}, seed {row.seed}"


def robustness_section(rows: list[RunRecord], tasks: tuple[str, ...], assets: str) -> list[str]:
    """Per task: a table per measure, a row per plain run (clean macro score, then perturbed − clean
    with its paired interval per perturbation); empty when no run was evaluated on perturbed queries."""
    seeds = len({r.seed for r in rows if r.strategy != "untrained"})
    parts = []
    for task in tasks:
        reports = {_name(r, seeds): _read(r.robustness[task]) for r in rows if task in r.robustness}
        if reports:
            parts += [f"### {TITLES.get(task, task)}", "", recipes_markdown(reports, heading="####")]
    if not parts:
        return []
    first = next(_read(path) for r in rows for path in r.robustness.values())["comparison"]
    return [
        "## Robustness under perturbed queries",
        "",
        "Each plain recipe evaluated on clean queries and on `hybrid-plugin perturb`'s default perturbations "
        f"(seed {first['seed']}; what each perturbation is and is not: [robustness](robustness.md)). Each "
        f"cell: perturbed − clean, macro over query languages, with its {1 - first['alpha']:.0%} paired "
        f"bootstrap interval ({first['bootstraps']:,} resamples) over question groups; `*` = the paired "
        f"test significant ({first['correction'].capitalize()}-corrected across the perturbations). Each "
        "interval is a recipe's own drop: two recipes' drops are not tested against each other. Per query "
        f"language (low-resource languages included): `{assets}/runs/<run>/robustness-<task>.md`.",
        "",
        *parts,
    ]
