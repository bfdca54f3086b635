"""Robustness under perturbed queries (issue 27, item 3): each plain recipe's macro drops side by side,
as ``perturb`` measured them (one ``robustness.json`` per run and task), and each recipe's drop against
X-X-mono's (monolingual fine-tuning), paired over question groups."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hybrid_plugin.evaluation.measures import MONO_MAP, MULTI_MAP
from hybrid_plugin.stats.render import interval_text
from hybrid_plugin.stats.robustness import drop_differences, recipes_markdown, results_of

from .debias import TITLES
from .records import RunRecord

#: the measures of the drop-against-reference table (cross mAP's drops are in the side-by-side tables)
COMPARED = (MONO_MAP, MULTI_MAP)


def _read(path: str) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _name(row: RunRecord, seeds: int) -> str:
    return row.label if row.strategy == "untrained" or seeds < 2 else f"{row.label}, seed {row.seed}"


def _reference(rows: list[RunRecord], row: RunRecord) -> RunRecord | None:
    """X-X-mono of the row's seed, else of the first seed there is (the untrained base has no seed)."""
    monos = sorted((r for r in rows if r.strategy == "mono"), key=lambda r: r.seed or 0)
    return next((r for r in monos if r.seed == row.seed), monos[0] if monos else None)


def drop_table(rows: list[RunRecord], task: str, seeds: int) -> list[str]:
    """Per recipe, perturbation and measure: its drop minus X-X-mono's drop, with the paired interval
    (``*``: sign-flip test significant, Holm across perturbations); empty without an X-X-mono run."""
    on_task = [r for r in rows if task in r.robustness]
    cells: dict[str, dict[tuple[str, str], str]] = {}
    columns: dict[tuple[str, str], str] = {}
    untested = []
    for row in on_task:
        reference = _reference(on_task, row)
        if reference is None or reference is row:
            continue
        absent = [r.name for r in (row, reference) if not _perturbed_runs_kept(r.robustness[task])]
        if absent:
            untested.append(f"{_name(row, seeds)} (no perturbed runs of {' or '.join(map(str, absent))})")
            continue
        found = drop_differences(row.robustness[task], reference.robustness[task], measures=COMPARED)
        for d in found:
            label = next(m.label for m in COMPARED if m.key == d.measure)
            columns[(d.perturbation, d.measure)] = f"{d.perturbation} {label}"
            star = "*" if d.significant else ""
            text = interval_text(d.difference, 3, sign=True) + star
            name = _name(row, seeds)
            if row.seed is not None and reference.seed != row.seed:  # no X-X-mono of the row's seed
                name += f" (against X-X-mono seed {reference.seed})"
            cells.setdefault(name, {})[(d.perturbation, d.measure)] = text
    lines = []
    if cells:
        lines = ["| recipe | " + " | ".join(columns.values()) + " |", "|---|" + "---:|" * len(columns)]
        lines += [
            f"| {name} | " + " | ".join(row.get(c, "") for c in columns) + " |" for name, row in cells.items()
        ]
    if untested:
        lines += [
            "",
            "Not tested, as the work folder holds the comparison but not the clean and perturbed runs it was "
            "made from (records kept before those were): " + "; ".join(untested) + ".",
        ]
    return lines


def _perturbed_runs_kept(robustness_json: str) -> bool:
    """Whether the results files a ``robustness.json`` names are beside it (records restored from
    before they were kept hold only the comparison)."""
    return all(path.is_file() for path in results_of(robustness_json)[1].values())


def robustness_section(rows: list[RunRecord], tasks: tuple[str, ...], assets: str) -> list[str]:
    """Per task: a table per measure, a row per plain run (clean macro score, then perturbed − clean
    with its paired interval per perturbation), and the drops against X-X-mono's; empty when no run was
    evaluated on perturbed queries."""
    seeds = len({r.seed for r in rows if r.strategy != "untrained"})
    parts = []
    for task in tasks:
        reports = {_name(r, seeds): _read(r.robustness[task]) for r in rows if task in r.robustness}
        if not reports:
            continue
        parts += [f"### {TITLES.get(task, task)}", "", recipes_markdown(reports, heading="####")]
        against = drop_table(rows, task, seeds)
        if against:
            parts += [
                "#### Drop against X-X-mono's drop",
                "",
                "Each cell: (the recipe's perturbed − clean) − (X-X-mono's perturbed − clean, same seed; a "
                "row names X-X-mono's seed where the work folder has none of the recipe's), "
                "macro; negative = the recipe loses more than monolingual fine-tuning. Paired over "
                "question groups (the same perturbed queries for both): 95% bootstrap interval, `*` = "
                "sign-flip test significant (Holm-corrected across the perturbations).",
                "",
                *against,
                "",
            ]
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
        f"test significant ({first['correction'].capitalize()}-corrected across the perturbations). Two "
        "recipes' drops are tested against each other in the last table of each task. Per query language "
        f"(low-resource languages included): `{assets}/runs/<run>/robustness-<task>.md`.",
        "",
        *parts,
    ]
