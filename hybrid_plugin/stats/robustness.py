"""``perturb``: one model on clean and on perturbed queries, and the drop per query language with paired
intervals (the perturbations: :mod:`hybrid_plugin.data.perturb`).

Each evaluation is an ordinary results file with its per-query file (``clean/``, ``typo-0.05/``, …), so
``compare`` and the leaderboard tools read them as they read any other; this module only runs them
and asks :func:`~hybrid_plugin.stats.compare.compare_runs` for the paired differences against the clean
run over parallel question groups. Cost: one evaluation per perturbation; with the embedding cache only
the perturbed queries are encoded (candidates are read back), so a perturbation costs the query encode
plus the ranking.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_plugin.atomic import write_text
from hybrid_plugin.data.perturb import Perturbation, check_available, parse_perturbation
from hybrid_plugin.data.spec import SettingKind
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.evaluator import EvalConfig, run_evaluation
from hybrid_plugin.evaluation.measures import CROSS_MAP, MAX_RANK_DISTANCE, MONO_MAP, MULTI_MAP, Measure
from hybrid_plugin.stats.compare import Comparison, Interval, Layout, check_resampling, compare_runs
from hybrid_plugin.stats.load import check_comparable, load_run
from hybrid_plugin.stats.paired import (
    adjust,
    bootstrap_scores,
    drawn_blocks,
    percentile_interval,
    sign_flip_pvalues,
)
from hybrid_plugin.stats.render import decimal_places, interval_text

MEASURES: tuple[Measure, ...] = (MONO_MAP, CROSS_MAP, MULTI_MAP, MAX_RANK_DISTANCE)
CLEAN = "clean"
DEFAULT_PERTURBATIONS = ("typo:0.05", "translit", "codeswitch:0.3")


@dataclass
class Robustness:
    """The clean and perturbed results files and their paired comparison (baseline: clean)."""

    model: str
    task: str
    seed: int
    perturbations: list[Perturbation]
    results: dict[str, Path]  # "clean" or a perturbation's name -> its results JSON
    changed: dict[str, dict[str, int]]  # perturbation name -> queries changed / unchanged
    comparison: Comparison

    def to_json(self, relative_to: Path | None = None) -> dict[str, Any]:
        """The report as JSON; file paths relative to ``relative_to`` (the folder holding them) if given."""

        def where(path: str | Path) -> str:
            return (Path(path).relative_to(relative_to) if relative_to else Path(path)).as_posix()

        comparison = self.comparison.to_json()
        comparison["systems"] = [
            {**s, "files": [where(f) for f in s["files"]]} for s in comparison["systems"]
        ]
        return {
            "model": self.model,
            "task": self.task,
            "seed": self.seed,
            "perturbations": [asdict(p) | {"name": p.name} for p in self.perturbations],
            "results": {name: where(path) for name, path in self.results.items()},
            "changed_queries": self.changed,
            "comparison": comparison,
        }


def _evaluate_and_write(cfg: EvalConfig, out: Path, model: Any = None) -> tuple[Path, dict[str, Any]]:
    evaluation = run_evaluation(cfg, model)
    saved = evaluation.save(out)
    return saved.results, evaluation.results.provenance.get("config", {}).get("perturbed_queries", {})


def run_robustness(
    cfg: EvalConfig,
    perturbations: list[str] | None,
    out: str | Path,
    *,
    seed: int = 0,
    model: Any = None,
    bootstraps: int = 2_000,
    permutations: int = 10_000,
) -> Robustness:
    """Evaluate ``cfg`` clean and under each perturbation into ``out/<name>/``, then compare.

    ``perturbations=None``: :data:`DEFAULT_PERTURBATIONS`, without code-switching on a task that has
    no parallel questions; asked for there, code-switching is refused before any perturbed run."""
    texts = DEFAULT_PERTURBATIONS if perturbations is None else perturbations
    parsed = [parse_perturbation(text, cfg.switch_language) for text in texts]
    check_available(parsed)
    out = Path(out)
    clean = run_evaluation(replace(cfg, query_perturbation=None), model)
    if clean.pool.settings == (SettingKind.MONO,) and any(p.kind == "codeswitch" for p in parsed):
        if perturbations is not None:
            raise UserError(
                f"codeswitch needs parallel questions; {clean.pool.task} has none (leave it out of "
                "--perturbations)"
            )
        parsed = [p for p in parsed if p.kind != "codeswitch"]
    paths = {CLEAN: clean.save(out / CLEAN).results}
    changed: dict[str, dict[str, int]] = {}
    for p in parsed:
        perturbed = replace(cfg, query_perturbation=p.name, perturbation_seed=seed)
        paths[p.name], changed[p.name] = _evaluate_and_write(perturbed, out / p.slug, model)
    comparison = compare_runs(
        [(name, [path]) for name, path in paths.items()],
        baseline=CLEAN,
        bootstraps=bootstraps,
        permutations=permutations,
        seed=seed,
        measures=MEASURES,
    )
    return Robustness(
        model=clean.results.model["name"],
        task=comparison.task,
        seed=seed,
        perturbations=parsed,
        results=paths,
        changed=changed,
        comparison=comparison,
    )


def robustness_markdown(report: Robustness) -> str:
    """One table per measure: query languages × perturbations, each cell the paired difference
    (perturbed − clean) with its interval; the clean score in the first column."""
    cmp = report.comparison
    lines = [
        f"# Robustness of {report.model} on {cmp.task_title} under perturbed queries",
        "",
        f"Perturbation seed {report.seed}. Each cell: perturbed − clean, with its {1 - cmp.alpha:.0%} paired "
        f"bootstrap interval over {cmp.units} {cmp.unit} units; * = paired test significant "
        f"({cmp.correction.capitalize()}-corrected). Queries changed: "
        + ", ".join(
            f"{name} {c.get('changed', 0)}/{c.get('changed', 0) + c.get('unchanged', 0)}"
            for name, c in report.changed.items()
        )
        + ".",
        "",
    ]
    for key in [m.key for m in MEASURES]:
        pairs = [(pair.system, pair.measure(key)) for pair in cmp.pairs]
        pairs = [(name, m) for name, m in pairs if m is not None]
        if not pairs:
            continue
        first = pairs[0][1]
        arrow = {True: " ↑", False: " ↓", None: ""}[first.higher_is_better]
        places = decimal_places(key)
        lines += [f"## {first.label}{arrow}", ""]
        lines.append("| query language | clean | " + " | ".join(name for name, _ in pairs) + " |")
        lines.append("|---|---:|" + "---:|" * len(pairs))
        for lang in [*first.per_language, "macro"]:
            base = first.macro if lang == "macro" else first.per_language[lang]
            row = [f"**{lang}**" if lang == "macro" else lang, f"{base.baseline.value:.{places}f}"]
            for _, m in pairs:
                cell = m.macro if lang == "macro" else m.per_language.get(lang)
                if cell is None:
                    row.append("")
                    continue
                star = "*" if cell.test.significant else ""
                row.append(interval_text(cell.difference, places, sign=True) + star)
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    lines += [f"- {note}" for note in cmp.notes]
    return "\n".join(lines) + "\n"


def write_robustness(report: Robustness, out: str | Path) -> dict[str, Path]:
    """``robustness.md`` and ``robustness.json`` in ``out`` (beside the per-perturbation folders)."""
    out = Path(out)
    paths = {"markdown": out / "robustness.md", "json": out / "robustness.json"}
    write_text(paths["markdown"], robustness_markdown(report))
    write_text(paths["json"], json.dumps(report.to_json(out), indent=2, ensure_ascii=False) + "\n")
    return paths


def macro_cells(report: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """A ``robustness.json``'s macro cells (as JSON): perturbation → measure key → the cell (clean score
    as ``baseline``, ``difference`` with its interval, ``test``)."""
    return {
        pair["system"]: {m["key"]: m["macro"] for m in pair["measures"]}
        for pair in report["comparison"]["pairs"]
    }


def recipes_markdown(
    reports: Mapping[str, Mapping[str, Any]], heading: str = "###", measures: tuple[Measure, ...] = MEASURES
) -> str:
    """Several models' ``robustness.json`` side by side (name → its JSON): one table per measure, a row
    per model, its clean macro score, then per perturbation the macro difference perturbed − clean with
    its interval (``*``: the paired test significant). Nothing is recomputed; a measure no model has
    (multi mAP on a monolingual task) gets no table."""
    perturbations = list(dict.fromkeys(p["name"] for r in reports.values() for p in r["perturbations"]))
    cells_of = {name: macro_cells(report) for name, report in reports.items()}
    lines: list[str] = []
    for measure in measures:
        places = decimal_places(measure.key)
        rows = []
        for name, cells in cells_of.items():
            found = [cells.get(p, {}).get(measure.key) for p in perturbations]
            present = [c for c in found if c is not None]
            if not present:
                continue
            texts = [
                ""
                if c is None
                else interval_text(Interval(**c["difference"]), places, sign=True)
                + ("*" if c["test"]["significant"] else "")
                for c in found
            ]
            clean = present[0]["baseline"]["value"]
            rows.append(f"| {name} | {clean:.{places}f} | " + " | ".join(texts) + " |")
        if rows:
            lines += [
                f"{heading} {measure.label} {measure.arrow}".rstrip(),
                "",
                "| recipe | clean | " + " | ".join(perturbations) + " |",
            ]
            lines += ["|---|---:|" + "---:|" * len(perturbations), *rows, ""]
    return "\n".join(lines)


#: the measures whose drops two recipes are compared on (max rank distance is left out: a row without
#: two relevant candidates has none, so the four runs' rows would rarely all pair)
DROP_MEASURES: tuple[Measure, ...] = (MONO_MAP, CROSS_MAP, MULTI_MAP)


@dataclass(frozen=True)
class DropDifference:
    """How much more one model loses under a perturbation than a reference model, macro over query
    languages: (perturbed − clean) − (reference perturbed − reference clean). Negative: it loses more."""

    perturbation: str
    measure: str
    difference: Interval  # the value and its paired percentile bootstrap interval over units
    p: float  # paired sign-flip test over units, two-sided
    p_adjusted: float  # Holm across the perturbations, per measure
    significant: bool


def results_of(robustness_json: str | Path) -> tuple[dict[str, Any], dict[str, Path]]:
    """A ``robustness.json`` and the results files of its clean and perturbed runs (name → path)."""
    robustness_json = Path(robustness_json)
    report = json.loads(robustness_json.read_text(encoding="utf-8"))
    return report, {name: robustness_json.parent / path for name, path in report["results"].items()}


def drop_differences(
    system: str | Path,
    reference: str | Path,
    *,
    measures: tuple[Measure, ...] = DROP_MEASURES,
    bootstraps: int = 2_000,
    permutations: int = 10_000,
    seed: int = 0,
    alpha: float = 0.05,
) -> list[DropDifference]:
    """Difference in differences of two ``perturb`` runs (their ``robustness.json``) on the same task
    and perturbation seed, paired over question groups: per perturbation both have and per measure.

    The per-unit contributions of the four runs are linear (see :mod:`~hybrid_plugin.stats.paired`), so
    the test flips the sign of each unit's (system drop − reference drop) and the bootstrap resamples
    units once for all four runs; rows undefined in any of the four are left out of all. Against a
    reference whose perturbed run equals its clean run this is ``compare``'s perturbed − clean cell
    (same draws for the same seed). Cost: four per-query files read per perturbation, one matrix
    product per block of resamples."""
    check_resampling(permutations=permutations, bootstraps=bootstraps, seed=seed)
    sys_report, sys_paths = results_of(system)
    ref_report, ref_paths = results_of(reference)
    if sys_report["seed"] != ref_report["seed"]:
        raise UserError(
            f"{system} and {reference}: perturbation seeds {sys_report['seed']} and {ref_report['seed']} "
            "differ, so their perturbed queries do not pair"
        )
    shared = [p["name"] for p in sys_report["perturbations"] if p["name"] in ref_paths]
    found: list[tuple[str, str, Interval, float]] = []  # perturbation, measure, difference, raw p
    for name in shared:
        runs = [
            load_run(path, measures)
            for path in (sys_paths[CLEAN], sys_paths[name], ref_paths[CLEAN], ref_paths[name])
        ]
        check_comparable(runs)
        layout = Layout.of(runs[0])
        chosen = [m for m in measures if all(m.key in r.values for r in runs)]
        cells = [layout.cells([r.values[m.key] for r in runs]) for m in chosen]
        rng = np.random.default_rng(seed)
        macro = [c.contributions(0, 1)[:, -1] - c.contributions(2, 3)[:, -1] for c in cells]
        pvalues, _, _ = sign_flip_pvalues(
            np.column_stack(macro) if macro else np.zeros((layout.n_units, 0)), permutations, rng
        )
        replicates = bootstrap_scores(cells, drawn_blocks(layout.n_units, bootstraps, rng))
        for m, c, reps, p in zip(chosen, cells, replicates, pvalues):
            value = (c.scores(1)[-1] - c.scores(0)[-1]) - (c.scores(3)[-1] - c.scores(2)[-1])
            samples = (reps[1] - reps[0]) - (reps[3] - reps[2])
            low, high = percentile_interval(samples[:, -1:], 1.0 - alpha)
            found.append((name, m.key, Interval(float(value), float(low[0]), float(high[0])), float(p)))
    adjusted: dict[int, float] = {}  # Holm per measure, across the perturbations
    for key in dict.fromkeys(k for _, k, _, _ in found):
        rows = [i for i, (_, k, _, _) in enumerate(found) if k == key]
        adjusted |= dict(zip(rows, adjust([found[i][3] for i in rows], "holm")))
    return [
        DropDifference(name, key, diff, p, float(adjusted[i]), bool(adjusted[i] < alpha))
        for i, (name, key, diff, p) in enumerate(found)
    ]
