"""Vectorised paired tests and bootstrap intervals over units (parallel question groups or queries).

Every aggregate is a macro average: mean per setting → mean per query language (over its settings) →
mean over languages. With the rows of one measure summed per (unit, setting) cell into ``S`` (units ×
cells) and counted into ``N``, that average is ``(S.sum(0) / N.sum(0)) @ A`` where ``A`` (cells ×
languages + macro) holds the per-language means. So:

- a **randomization test** flips the two systems' labels of whole units: the difference is linear in
  the per-unit contributions ``D = (S_B - S_A) @ (A / N)``, and each of the P permuted differences is
  one row of ``signs (P × U) @ D`` (Fisher's sign-flip test; Smucker, Allan & Carterette 2007);
- a **paired bootstrap** draws units with replacement: with the draw counts ``C`` (B × U), each
  replicate's setting means are ``(C @ S) / (C @ N)`` (settings re-weighted exactly as the macro
  average weights them), then ``@ A``; both systems use the same draws.

Both are one matrix product per block of resamples, whatever the number of rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

TESTS = ("randomization", "t", "wilcoxon")
CORRECTIONS = ("holm", "bonferroni", "none")
BLOCK = 1000  # resamples per matrix product (memory: BLOCK × units floats)
MAX_PERMUTATIONS = 1_000_000  # p-values resolved to 1e-6; time grows linearly past that, with no gain
MAX_BOOTSTRAPS = 100_000  # the replicates are kept for the percentiles: 8 bytes × columns each
MAX_SEED = 2**32 - 1  # the seeds numpy's and torch's legacy generators accept too (train uses the same)
ZERO = 1e-12  # per-cell differences at most this are ties


@dataclass
class Cells:
    """One measure's rows summed per (unit, cell); a cell is a setting of the measure's kind."""

    sums: list[np.ndarray]  # per system: (units, cells) sum of the per-row values
    counts: np.ndarray  # (units, cells) rows counted (identical for every system)
    average: np.ndarray  # (cells, languages + 1): setting means -> per-language means and macro
    present: np.ndarray  # (languages + 1,) bool: the language has a value (last: macro)
    dropped: int = 0  # rows defined for some systems but not all, left out

    @classmethod
    def build(
        cls,
        values: list[np.ndarray],
        unit: np.ndarray,
        n_units: int,
        cell: np.ndarray,
        cell_lang: np.ndarray,
        n_lang: int,
    ) -> Cells:
        """``values`` per system (nan = row not counted); ``cell`` per row. Pairs need both values: a row
        undefined for one system (e.g. no top-1 where BM25 retrieves nothing) is left out for all
        (``dropped`` counts those rows)."""
        defined = [~np.isnan(v) for v in values]
        counted = np.logical_and.reduce(defined)
        dropped = int(np.logical_or.reduce(defined).sum() - counted.sum())
        used = np.unique(cell[counted])
        compact = np.full(len(cell_lang), -1)
        compact[used] = np.arange(len(used))
        c = compact[cell[counted]]
        flat = unit[counted] * len(used) + c
        size = n_units * len(used)
        counts = np.bincount(flat, minlength=size).reshape(n_units, len(used)).astype(np.float64)
        sums = [
            np.bincount(flat, weights=v[counted], minlength=size).reshape(n_units, len(used)) for v in values
        ]
        langs = cell_lang[used]
        per_lang = np.bincount(langs, minlength=n_lang)
        average = np.zeros((len(used), n_lang + 1))
        average[np.arange(len(used)), langs] = 1.0 / per_lang[langs]
        present = np.r_[per_lang > 0, per_lang.any()]
        if present[-1]:
            average[:, -1] = average[:, :-1].sum(1) / present[:-1].sum()
        return cls(sums, counts, average, present, dropped)

    def scores(self, system: int) -> np.ndarray:
        """Per-language values and macro (languages + 1,), nan where a language has none."""
        means = self.sums[system].sum(0) / self.counts.sum(0)
        return np.where(self.present, means @ self.average, np.nan)

    def contributions(self, a: int, b: int) -> np.ndarray:
        """(units, languages + 1): each unit's share of the difference B − A; the columns sum to it."""
        weights = self.average / self.counts.sum(0)[:, None]
        return (self.sums[b] - self.sums[a]) @ weights

    def changed(self, a: int, b: int) -> np.ndarray:
        """(units, languages + 1) bool: the unit has a row in that column's scope whose value differs."""
        differs = (np.abs(self.sums[b] - self.sums[a]) > ZERO).astype(np.float64)
        return differs @ (self.average > 0) > 0

    def members(self) -> np.ndarray:
        """(units, languages + 1) bool: the unit has rows in that column's scope."""
        return (self.counts > 0).astype(np.float64) @ (self.average > 0) > 0


def sign_flip_pvalues(
    contributions: np.ndarray, permutations: int, rng: np.random.Generator
) -> tuple[np.ndarray, int, bool]:
    """Two-sided p-values of a paired sign-flip test per column of ``contributions`` (units × columns).

    The statistic is the column sum (the difference of macro averages). With 2**units ≤ permutations
    every sign vector is enumerated (exact p = share of |T*| ≥ |T|); otherwise ``permutations`` random
    ones, p = (1 + hits) / (1 + permutations) (Phipson & Smyth 2010: never 0). Returns (p, resamples
    used, exact).
    """
    units, width = contributions.shape
    observed = np.abs(contributions.sum(0))
    threshold = observed - 1e-9 * np.maximum(observed, 1e-300)  # equal up to rounding counts as "as extreme"
    hits = np.zeros(width)
    if units <= 20 and 2**units <= permutations:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=units)))
        hits = (np.abs(signs @ contributions) >= threshold).sum(0)
        return hits / len(signs), len(signs), True
    done = 0
    while done < permutations:
        n = min(BLOCK, permutations - done)
        signs = rng.integers(0, 2, size=(n, units), dtype=np.int8).astype(np.float64) * 2.0 - 1.0
        hits += (np.abs(signs @ contributions) >= threshold).sum(0)
        done += n
    return (hits + 1.0) / (permutations + 1.0), permutations, False


def unit_pvalue(differences: np.ndarray, test: str) -> float:
    """Two-sided p of the paired t-test or Wilcoxon signed-rank test on per-unit differences (scipy)."""
    if differences.size < 2 or not np.any(np.abs(differences) > 0):
        return 1.0
    from scipy import stats as sps  # here, not at the top: scipy.stats costs seconds to import

    if test == "t":
        p = sps.ttest_1samp(differences, 0.0).pvalue
    elif test == "wilcoxon":
        # ranks need exact ties: differences equal but for float noise (1/12 computed as 0.5 − 5/12 and as
        # 0.25 − 1/6) are snapped to a grid of 1e-12 of the largest, so scaling them never changes the ranks
        scale = float(np.abs(differences).max())
        p = sps.wilcoxon(np.round(differences / scale, 12)).pvalue
    else:
        raise ValueError(f"unknown test {test!r}")
    return 1.0 if np.isnan(p) else float(p)


def draw_counts(units: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """(samples, units) how often each unit is drawn in each bootstrap replicate (draws with replacement)."""
    picks = rng.integers(0, units, size=(samples, units))
    flat = (picks + (np.arange(samples) * units)[:, None]).ravel()
    return np.bincount(flat, minlength=samples * units).reshape(samples, units).astype(np.float64)


def drawn_blocks(units: int, samples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """:func:`draw_counts` a block of :data:`BLOCK` replicates at a time: the same draws (numpy's stream
    does not depend on how the rows are split), in memory that does not grow with ``samples``."""
    for start in range(0, samples, BLOCK):
        yield draw_counts(units, min(BLOCK, samples - start), rng)


def bootstrap_scores(cells: list[Cells], counts: np.ndarray | Iterable[np.ndarray]) -> list[list[np.ndarray]]:
    """Per measure, per system: (replicates, languages + 1) scores on the drawn units.

    ``counts``: the (replicates, units) draw counts, or blocks of them (:func:`drawn_blocks`). All
    measures and systems go through one matrix product per block of replicates. A replicate that drew
    no row of some cell leaves that cell's language (and the macro) undefined (nan).
    """
    if not cells:
        return []
    if isinstance(counts, np.ndarray):
        counts = np.array_split(counts, range(BLOCK, counts.shape[0], BLOCK))
    blocks: list[np.ndarray] = []
    offsets: list[tuple[list[int], int]] = []  # per measure: offsets of each system's sums, of the counts
    width = 0
    for c in cells:
        n_cells = c.counts.shape[1]
        system_offsets = []
        for sums in c.sums:
            system_offsets.append(width)
            blocks.append(sums)
            width += n_cells
        offsets.append((system_offsets, width))
        blocks.append(c.counts)
        width += n_cells
    stacked = np.hstack(blocks)
    out: list[list[list[np.ndarray]]] = [[[] for _ in c.sums] for c in cells]
    for block in counts:
        drawn = block @ stacked
        for m, (c, (system_offsets, count_offset)) in enumerate(zip(cells, offsets)):
            n_cells = c.counts.shape[1]
            n = drawn[:, count_offset : count_offset + n_cells]
            undefined = ((n == 0).astype(np.float64) @ (c.average > 0) > 0) | ~c.present
            safe = np.where(n == 0, 1.0, n)
            for s, offset in enumerate(system_offsets):
                scores = (drawn[:, offset : offset + n_cells] / safe) @ c.average
                out[m][s].append(np.where(undefined, np.nan, scores))
    return [[np.vstack(parts) for parts in per_system] for per_system in out]


def percentile_interval(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval per column (replicates that left a value undefined are skipped)."""
    tail = (1.0 - level) / 2.0
    with np.errstate(invalid="ignore"):
        low, high = np.nanquantile(samples, [tail, 1.0 - tail], axis=0)
    return low, high


def adjust(pvalues: list[float], method: str) -> list[float]:
    """Family-wise correction: Holm's step-down (1979), Bonferroni, or none."""
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if method == "none" or m == 0:
        return p.tolist()
    if method == "bonferroni":
        return np.minimum(p * m, 1.0).tolist()
    if method != "holm":
        raise ValueError(f"unknown correction {method!r}")
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out = np.empty(m)
    out[order] = np.minimum(stepped, 1.0)
    return out.tolist()
