"""``compare``: does system B beat system A? Paired tests and bootstrap intervals on the per-query files.

For every measure of :data:`~hybrid_plugin.evaluation.measures.MEASURES` the results have (and per
query language), each system's score with a bootstrap interval, the difference to the baseline with
its interval, a paired test's p-value (corrected across query languages, and across the systems
compared with one baseline), and how many units got better, worse or stayed the same.

The unit is the **parallel question group** by default: the translations of one XQuAD-R question are
one sample, not 11, so whole groups are permuted and resampled and the paper's macro average is
recomputed every time (:mod:`hybrid_plugin.stats.paired`). ``unit="query"`` tests plain queries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.measures import MEASURES, Measure
from hybrid_plugin.stats.load import RunFile, check_comparable, check_scores, load_run
from hybrid_plugin.stats.paired import (
    CORRECTIONS,
    MAX_BOOTSTRAPS,
    MAX_PERMUTATIONS,
    MAX_SEED,
    TESTS,
    Cells,
    adjust,
    bootstrap_scores,
    drawn_blocks,
    percentile_interval,
    sign_flip_pvalues,
    unit_pvalue,
)

UNITS = ("group", "query")
TEST_NAMES = {
    "randomization": "paired randomization test (sign flips of whole units)",
    "t": "paired t-test on per-unit differences",
    "wilcoxon": "Wilcoxon signed-rank test on per-unit differences",
}
SEED_NOTE = (
    "{name}: {k} seeds; its scores are means over seeds (± sample standard deviation) and its per-query "
    "values are means over seeds. The tests treat the seed-averaged system as fixed: they say whether the "
    "difference would hold on other questions for these trained models, not whether training again with "
    "new seeds would reproduce it (training-seed variance is not part of the test; with so few seeds the "
    "spread is descriptive only)."
)


@dataclass
class Interval:
    value: float | None
    low: float | None
    high: float | None


@dataclass
class Test:
    p: float | None
    p_adjusted: float | None
    significant: bool
    higher: int  # units whose value is higher for the system than for the baseline
    lower: int
    tied: int


@dataclass
class Cell:
    """One measure for one query language (or the macro): both scores, their difference and its test."""

    baseline: Interval
    system: Interval
    difference: Interval  # system − baseline
    test: Test


@dataclass
class MeasureComparison:
    key: str
    label: str
    higher_is_better: bool | None
    reference: str
    macro: Cell
    per_language: dict[str, Cell]


@dataclass
class PairComparison:
    baseline: str
    system: str
    measures: list[MeasureComparison]

    def measure(self, key: str) -> MeasureComparison | None:
        return next((m for m in self.measures if m.key == key), None)


@dataclass
class SystemSummary:
    name: str
    files: list[str]
    seed_scores: dict[str, list[float]] = field(default_factory=dict)  # measure -> macro score per seed

    def spread(self, key: str) -> tuple[float, float] | None:
        """(mean, sample standard deviation) over seeds, for a system of several seeds."""
        values = self.seed_scores.get(key) or []
        if len(values) < 2:
            return None
        return float(np.mean(values)), float(np.std(values, ddof=1))


@dataclass
class Comparison:
    """Everything ``compare`` found; :func:`hybrid_plugin.stats.render.render` formats it."""

    task: str
    task_title: str
    languages: list[str]
    candidate_format: str
    unit: str
    units: int
    test: str
    permutations: int
    exact: bool
    bootstraps: int
    seed: int
    alpha: float
    correction: str
    systems: list[SystemSummary]
    pairs: list[PairComparison]
    notes: list[str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _System:
    name: str
    runs: list[RunFile]
    values: dict[str, np.ndarray] = field(default_factory=dict)  # per measure: per-row mean over seeds

    def average_seeds(self) -> None:
        keys = [k for k in self.runs[0].values if all(k in r.values for r in self.runs)]
        self.values = {
            k: self.runs[0].values[k] if len(self.runs) == 1 else np.mean([r.values[k] for r in self.runs], 0)
            for k in keys
        }


@dataclass
class Layout:
    """How one query set's per-query rows map to units (groups or queries) and cells (settings)."""

    unit: np.ndarray
    n_units: int
    cell: np.ndarray
    cell_lang: np.ndarray
    n_lang: int

    @classmethod
    def of(cls, run: RunFile, unit: str = "group") -> Layout:
        keys = run.keys
        _, unit_code = np.unique(keys["group"] if unit == "group" else keys["query_id"], return_inverse=True)
        settings, cell = np.unique(keys["setting"], return_inverse=True)
        lang_index = {lang: i for i, lang in enumerate(run.results.languages)}
        cell_lang = np.empty(len(settings), dtype=np.int64)
        cell_lang[cell] = [lang_index[x] for x in keys["query_lang"]]
        n_units = int(unit_code.max()) + 1 if len(unit_code) else 0
        return cls(unit_code, n_units, cell, cell_lang, len(lang_index))

    def cells(self, values: list[np.ndarray]) -> Cells:
        return Cells.build(values, self.unit, self.n_units, self.cell, self.cell_lang, self.n_lang)


def score_interval(
    path: str | Path, measure: Measure, *, bootstraps: int = 2_000, seed: int = 0, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile bootstrap interval (over question groups) of one result's macro ``measure``; ``None``
    where its per-query file has no such value (a :class:`NotComparable` where there is no per-query
    file). Deterministic for a given seed."""
    check_resampling(bootstraps=bootstraps, seed=seed)
    run = load_run(path, (measure,))
    if measure.key not in run.values:
        return None
    layout = Layout.of(run)
    check_scores(run, lambda key, v: float(layout.cells([v]).scores(0)[-1]))
    cells = layout.cells([run.values[measure.key]])
    replicates = bootstrap_scores(
        [cells], drawn_blocks(layout.n_units, bootstraps, np.random.default_rng(seed))
    )
    low, high = percentile_interval(replicates[0][0], level)
    return float(low[-1]), float(high[-1])


@dataclass
class _Column:
    """One measure of one pair, every column (languages, macro): what a :class:`Cell` is made from."""

    observed: tuple[np.ndarray, np.ndarray]  # baseline, system
    intervals: dict[str, tuple[np.ndarray, np.ndarray]]  # base / other / diff: (low, high)
    contributions: np.ndarray  # (units, columns)
    changed: np.ndarray
    members: np.ndarray
    pvalues: np.ndarray
    alpha: float

    def cell(self, j: int, p_adjusted: float) -> Cell:
        scope, d = self.members[:, j], self.contributions[:, j]
        higher = int((self.changed[:, j] & (d > 0) & scope).sum())
        lower = int((self.changed[:, j] & (d < 0) & scope).sum())
        a, b = self.observed[0][j], self.observed[1][j]
        ci = self.intervals
        return Cell(
            baseline=_interval(a, ci["base"][0][j], ci["base"][1][j]),
            system=_interval(b, ci["other"][0][j], ci["other"][1][j]),
            difference=_interval(b - a, ci["diff"][0][j], ci["diff"][1][j]),
            test=Test(
                float(self.pvalues[j]),
                float(p_adjusted),
                bool(p_adjusted < self.alpha),
                higher,
                lower,
                int(scope.sum()) - higher - lower,
            ),
        )


def check_resampling(*, permutations: int = 1, bootstraps: int = 1, seed: int = 0) -> None:
    """Refuse (one line) resampling options outside their documented bounds: more resamples than
    :data:`MAX_PERMUTATIONS` / :data:`MAX_BOOTSTRAPS` would run for hours or exhaust memory, and numpy
    refuses negative seeds with a traceback."""
    for flag, value, high in (
        ("--permutations", permutations, MAX_PERMUTATIONS),
        ("--bootstraps", bootstraps, MAX_BOOTSTRAPS),
    ):
        if not 1 <= value <= high:
            raise UserError(f"{flag} {value}: expected a whole number from 1 to {high:,}")
    if not 0 <= seed <= MAX_SEED:
        raise UserError(f"--seed {seed}: expected a whole number from 0 to {MAX_SEED} (2**32 − 1)")


def _interval(value: float, low: float, high: float) -> Interval:
    if np.isnan(value):
        return Interval(None, None, None)
    return Interval(float(value), *(None if np.isnan(x) else float(x) for x in (low, high)))


def _names(systems: list[_System]) -> None:
    """Distinct display names: the model name, else the file's name, else its folder and name."""
    for label in (
        lambda path: path.name.removesuffix(".json"),
        lambda path: f"{path.parent.name}/{path.name.removesuffix('.json')}",
        str,
    ):
        names = [s.name for s in systems]
        for s in systems:
            if names.count(s.name) > 1 and len(s.runs) == 1:
                s.name = label(s.runs[0].path)


def _pick_baseline(systems: list[_System], baseline: str | None) -> int:
    if baseline is None:
        return 0
    for i, s in enumerate(systems):
        if baseline == s.name or any(
            Path(baseline) == r.path or Path(baseline).name == r.path.name for r in s.runs
        ):
            return i
    names = ", ".join(s.name for s in systems)
    raise UserError(f"--baseline {baseline}: no system or file of that name (systems: {names})")


def _unit_description(unit: str, units: int, runs: RunFile) -> str:
    if unit == "group":
        return (
            f"unit: parallel question group ({units} groups): the translations of one question are one "
            "sample; whole groups are permuted/resampled and the macro average (mean per setting → per "
            "query language → over languages) is recomputed each time"
        )
    return (
        f"unit: query ({units} queries, each with all its settings): treats the translations of a question "
        "as independent samples, which overstates the evidence on parallel data (the default unit is the "
        "question group)"
    )


def _refuse_repeated_files(systems: list[tuple[str | None, list[str | Path]]]) -> None:
    """A file compared with itself shows zero differences that mean nothing: the same file in two
    systems is refused (within one group of seeds it only weighs that seed twice)."""
    seen: dict[Path, tuple[int, str | Path]] = {}
    for index, (_, paths) in enumerate(systems):
        for path in paths:
            key = Path(path).expanduser().resolve()
            if key in seen and seen[key][0] != index:
                raise UserError(
                    f"{path}: given twice (the same file as {seen[key][1]}); compare needs different results"
                )
            seen.setdefault(key, (index, path))


def compare_runs(
    systems: list[tuple[str | None, list[str | Path]]],
    *,
    baseline: str | None = None,
    test: str = "randomization",
    permutations: int = 10_000,
    bootstraps: int = 2_000,
    seed: int = 0,
    alpha: float = 0.05,
    correction: str = "holm",
    unit: str = "group",
    measures: tuple[Measure, ...] | None = None,
) -> Comparison:
    """Compare systems given as (name or None, results JSON paths); several paths = seeds of one system.

    ``measures``: every registered one by default (:data:`~hybrid_plugin.evaluation.measures.MEASURES`,
    read at the call), each tested in its registered direction."""
    measures = tuple(MEASURES) if measures is None else measures
    if test not in TESTS:
        raise UserError(f"--test {test}: expected one of {', '.join(TESTS)}")
    if correction not in CORRECTIONS:
        raise UserError(f"--correction {correction}: expected one of {', '.join(CORRECTIONS)}")
    if unit not in UNITS:
        raise UserError(f"unit {unit}: expected one of {', '.join(UNITS)}")
    if not 0 < alpha < 1:
        raise UserError(f"--alpha {alpha}: expected a number between 0 and 1")
    check_resampling(permutations=permutations, bootstraps=bootstraps, seed=seed)
    if sum(1 for _ in systems) < 2:
        raise UserError("compare needs at least two results (or groups of seeds)")
    _refuse_repeated_files(systems)
    loaded = [_System(name or "", [load_run(p, measures) for p in paths]) for name, paths in systems if paths]
    for s in loaded:
        s.name = s.name or s.runs[0].name
        s.average_seeds()
    _names(loaded)
    runs = [r for s in loaded for r in s.runs]
    check_comparable(runs)
    first = runs[0]
    results = first.results
    languages = list(results.languages)
    layout = Layout.of(first, unit)
    n_units = layout.n_units
    layout_cells = layout.cells

    for run in runs:
        check_scores(run, lambda key, v: float(layout_cells([v]).scores(0)[-1]))
    chosen = [m for m in measures if all(m.key in s.values for s in loaded)]
    cells = [layout_cells([s.values[m.key] for s in loaded]) for m in chosen]
    base = _pick_baseline(loaded, baseline)
    others = [i for i in range(len(loaded)) if i != base]
    rng = np.random.default_rng(seed)
    level = 1.0 - alpha

    pair_results: list[tuple[int, list[np.ndarray], list[np.ndarray], list[np.ndarray]]] = []
    used, exact = permutations, False
    for other in others:
        contrib = [c.contributions(base, other) for c in cells]
        width = [d.shape[1] for d in contrib]
        stacked = np.hstack(contrib) if contrib else np.zeros((n_units, 0))
        if test == "randomization":
            p_all, used, exact = sign_flip_pvalues(stacked, permutations, rng)
        else:
            members = np.hstack([c.members() for c in cells])
            p_all = np.array([unit_pvalue(stacked[members[:, k], k], test) for k in range(stacked.shape[1])])
        splits = np.cumsum(width)[:-1]
        changed = [c.changed(base, other) for c in cells]
        pair_results.append((other, contrib, np.split(p_all, splits), changed))

    replicates = bootstrap_scores(cells, drawn_blocks(n_units, bootstraps, rng))
    observed = [[c.scores(s) for s in range(len(loaded))] for c in cells]

    pairs: list[PairComparison] = []
    for other, contrib, pvalues, changed in pair_results:
        measures_out = []
        for m, measure in enumerate(chosen):
            c = cells[m]
            members = c.members()
            d = contrib[m]
            diff_samples = replicates[m][other] - replicates[m][base]
            ci = {
                "base": percentile_interval(replicates[m][base], level),
                "other": percentile_interval(replicates[m][other], level),
                "diff": percentile_interval(diff_samples, level),
            }
            lang_cols = [j for j in range(len(languages)) if c.present[j]]
            adjusted_lang = dict(zip(lang_cols, adjust([pvalues[m][j] for j in lang_cols], correction)))
            column = _Column(
                observed=(observed[m][base], observed[m][other]),
                intervals=ci,
                contributions=d,
                changed=changed[m],
                members=members,
                pvalues=pvalues[m],
                alpha=alpha,
            )
            measures_out.append(
                MeasureComparison(
                    key=measure.key,
                    label=measure.label,
                    higher_is_better=measure.higher_is_better,
                    reference=measure.reference,
                    macro=column.cell(len(languages), float(pvalues[m][-1])),
                    per_language={languages[j]: column.cell(j, adjusted_lang[j]) for j in lang_cols},
                )
            )
        pairs.append(PairComparison(loaded[base].name, loaded[other].name, measures_out))

    # the macro p-values of one measure: one family over the systems compared with the baseline
    for m in range(len(chosen)):
        cells_m = [pair.measures[m].macro for pair in pairs]
        for c, p_adj in zip(cells_m, adjust([c.test.p for c in cells_m], correction)):
            c.test.p_adjusted = float(p_adj)
            c.test.significant = bool(p_adj < alpha)

    summaries = []
    for s in loaded:
        summary = SystemSummary(s.name, [str(r.path) for r in s.runs])
        if len(s.runs) > 1:
            summary.seed_scores = {
                m.key: [float(r.results.scores.get(m.key)) for r in s.runs] for m in chosen
            }
        summaries.append(summary)
    corrected = {
        "holm": "Holm-corrected",
        "bonferroni": "Bonferroni-corrected",
        "none": "not corrected",
    }[correction]
    how = (
        f"{'exact (all ' + str(used) + ' sign vectors)' if exact else str(used) + ' random sign vectors'}, "
        f"seed {seed}"
        if test == "randomization"
        else "scipy.stats"
    )
    notes = [
        _unit_description(unit, n_units, first),
        f"test: {TEST_NAMES[test]}, two-sided ({how}); p-values per query language {corrected} across "
        f"languages, macro p-values {corrected} across the {len(others)} system(s) compared with the "
        f"baseline; * = p < {alpha:g} after correction",
        f"intervals: {level:.0%} paired percentile bootstrap over units ({bootstraps} replicates, same draws "
        "for every system)",
        "higher/lower/tied: units whose value for the system is above/below/equal to the baseline's "
        "(a unit's contribution to the macro difference)",
    ]
    notes += [SEED_NOTE.format(name=s.name, k=len(s.runs)) for s in loaded if len(s.runs) > 1]
    partial = [f"{m.key} ({c.dropped})" for m, c in zip(chosen, cells) if c.dropped]
    if partial:
        notes.append(
            "compared on the queries where every system defines them, so these scores differ from the "
            "results files' (rows left out): " + ", ".join(partial)
        )
    dropped = [
        m.key
        for m in measures
        if m not in chosen and any(r.results.scores.get(m.key) is not None for r in runs)
    ]
    if dropped:
        notes.append(f"not compared (absent from an older per-query file): {', '.join(dropped)}")
    return Comparison(
        task=results.task,
        task_title=results.task_title,
        languages=languages,
        candidate_format=results.candidate_format,
        unit=unit,
        units=n_units,
        test=test,
        permutations=used if test == "randomization" else 0,
        exact=exact,
        bootstraps=bootstraps,
        seed=seed,
        alpha=alpha,
        correction=correction,
        systems=summaries,
        pairs=pairs,
        notes=notes,
    )


def compare(
    *results: str | Path,
    groups: dict[str, list[str | Path]] | None = None,
    **options: Any,
) -> Comparison:
    """Python entry point: ``compare("a.json", "b.json", baseline="a.json", test="t")``.

    ``groups`` maps a system name to the results of its seeds. Options as :func:`compare_runs`.
    """
    systems: list[tuple[str | None, list[str | Path]]] = [(None, [p]) for p in results]
    systems += [(name, list(paths)) for name, paths in (groups or {}).items()]
    return compare_runs(systems, **options)
