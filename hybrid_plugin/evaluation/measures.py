"""What each reported measure *is*: small declarative objects, apart from the code computing them.

The computation lives in :mod:`hybrid_plugin.evaluation.compute` (exact, vectorised) and, for the
standard IR measures, in ir-measures itself.
"""

from __future__ import annotations

from dataclasses import dataclass

HUANG_2023 = (
    "Huang et al. 2023, 'Improving Cross-lingual Information Retrieval on Low-Resource Languages "
    "via Optimal Transport Distillation' / language-bias analysis as used by Elmahdy et al. 2024 "
    "(arXiv 2408.10536)"
)
LAREQA = "Roy et al. 2020, 'LAReQA: Language-Agnostic Answer Retrieval from a Multilingual Pool'"


@dataclass(frozen=True)
class Measure:
    """A reported aggregate: its results-JSON key, short label, meaning, direction and source."""

    key: str
    label: str
    description: str
    higher_is_better: bool
    reference: str
    kind: str = "multi"  # the setting kind it needs (mono, cross or multi): absent for tasks without it


MONO_MAP = Measure(
    "mono_map",
    "mono",
    "Monolingual X→X: exact full-rank AP per query, mean per setting, macro over query languages.",
    True,
    LAREQA,
    kind="mono",
)
CROSS_MAP = Measure(
    "cross_map",
    "cross",
    "Cross-lingual X→Y (X≠Y, queries with a relevant candidate in Y): AP mean per setting, "
    "mean over Y per query language X, macro over X.",
    True,
    LAREQA,
    kind="cross",
)
MULTI_MAP = Measure(
    "multi_map",
    "multi",
    "Multilingual X→pool of all selected languages, every parallel answer relevant: AP mean per "
    "query language, macro over languages.",
    True,
    LAREQA,
    kind="multi",
)
MAX_RANK_DISTANCE = Measure(
    "max_rank_distance",
    "rank dist",
    "Multilingual pool, per query: highest minus lowest rank among its relevant candidates "
    "(queries with at least two); mean per query language, macro over languages.",
    False,
    HUANG_2023,
    kind="multi",
)
SAME_LANGUAGE_TOP = Measure(
    "same_language_top_share",
    "same-lang top",
    "Multilingual pool: share of queries (with relevant candidates in at least two languages) "
    "whose best-ranked relevant candidate is in the query's own language; macro over languages.",
    False,
    "this toolkit",
    kind="multi",
)
MEAN_RANK_MATRIX = Measure(
    "mean_rank",
    "mean rank",
    "Multilingual pool: X×Y matrix of the mean rank of the relevant candidate in language Y for "
    "queries in X.",
    False,
    "this toolkit",
    kind="multi",
)

AGGREGATES: tuple[Measure, ...] = (
    MONO_MAP,
    CROSS_MAP,
    MULTI_MAP,
    MAX_RANK_DISTANCE,
    SAME_LANGUAGE_TOP,
)

# standard measures computed by ir-measures on truncated runs (names are ir-measures' own)
DEFAULT_IR_MEASURES = ("nDCG@10", "R@100", "RR", "P@1", "AP@20")
