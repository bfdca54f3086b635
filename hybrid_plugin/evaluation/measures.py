"""What each reported measure *is*: small declarative objects, apart from the code computing them.

The computation lives apart: :mod:`hybrid_plugin.evaluation.perquery` (exact, vectorised, from the
relevant candidates' ranks) and, for measures that are not native, ir-measures on runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HUANG_2023 = (
    "Huang et al. 2023, 'Improving Cross-lingual Information Retrieval on Low-Resource Languages "
    "via Optimal Transport Distillation' / language-bias analysis as used by Elmahdy et al. 2024 "
    "(arXiv 2408.10536)"
)
LAREQA = "Roy et al. 2020, 'LAReQA: Language-Agnostic Answer Retrieval from a Multilingual Pool'"


@dataclass(frozen=True)
class Measure:
    """A reported aggregate: its results-JSON key, short label, meaning, direction and source.

    Every aggregate is the mean of one per-query value (``column``, see
    :func:`hybrid_plugin.evaluation.perquery.measure_values`) over the rows of each setting of ``kind``
    where it is defined, then per query language (over its settings), then macro over languages: the
    statistics in :mod:`hybrid_plugin.stats` recompute it that way from the per-query file alone.
    ``higher_is_better`` is ``None`` where neither direction is better (a share of languages).
    """

    key: str
    label: str
    description: str
    higher_is_better: bool | None
    reference: str
    kind: str = "multi"  # the setting kind it needs (mono, cross or multi): absent for tasks without it
    column: str = "ap"  # the per-query value it averages


MONO_MAP = Measure(
    "mono_map",
    "mono",
    "Monolingual X→X: exact full-rank AP per query, mean per setting, macro over query languages.",
    True,
    LAREQA,
    kind="mono",
    column="ap",
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
    column="rank_distance",
)
SAME_LANGUAGE_TOP = Measure(
    "same_language_top_share",
    "same-lang top",
    "Multilingual pool: share of queries (with relevant candidates in at least two languages) "
    "whose best-ranked relevant candidate is in the query's own language; macro over languages. "
    "Neither direction is better: 1 is a strong pull towards the query language, 1/L language-agnostic.",
    None,
    "this toolkit",
    kind="multi",
    column="same_lang_top",
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

# standard measures reported by default (ir-measures' names; all native: exact over the full ranking)
DEFAULT_MEASURES = ("nDCG@10", "R@100", "RR", "P@1", "AP@20")


# ---------------------------------------------------------------------------------------------
# Standard rank measures, computed exactly in the engine from the relevant candidates' ranks
# (hybrid_plugin.evaluation.perquery) with trec_eval's semantics; named as ir-measures names them.

TREC_EVAL = "trec_eval (NIST), as exposed by ir-measures (MacAvaney et al. 2022, ECIR)"
JARVELIN_2002 = "Järvelin & Kekäläinen 2002, 'Cumulated gain-based evaluation of IR techniques' (TOIS)"


@dataclass(frozen=True)
class RankFamily:
    """A family of per-query measures over one setting's ranking (``@k`` optional where allowed)."""

    name: str  # ir-measures' name
    description: str
    reference: str
    cutoff: str = "optional"  # "optional", "required" or "none"


RANK_FAMILIES: dict[str, RankFamily] = {
    f.name: f
    for f in (
        RankFamily(
            "AP",
            "Average precision: mean over relevant candidates of the precision at their rank (an unretrieved "
            "one counts 0); AP@k keeps the relevant ones in the top k and still divides by all relevant "
            "(trec_eval map_cut).",
            TREC_EVAL,
        ),
        RankFamily(
            "RR",
            "Reciprocal rank of the first relevant candidate (0 if none retrieved, or none in the top k).",
            TREC_EVAL,
        ),
        RankFamily(
            "nDCG",
            "Normalised DCG with binary gains and 1/log2(rank + 1) discount; the ideal ranking puts every "
            "relevant candidate first (trec_eval ndcg_cut).",
            JARVELIN_2002,
        ),
        RankFamily(
            "P", "Precision at k: relevant candidates in the top k, divided by k.", TREC_EVAL, "required"
        ),
        RankFamily(
            "R",
            "Recall at k: relevant candidates in the top k, divided by all relevant candidates.",
            TREC_EVAL,
            "required",
        ),
        RankFamily("Success", "1 if a relevant candidate is in the top k, else 0.", TREC_EVAL, "required"),
    )
}


@dataclass(frozen=True)
class RankMeasure:
    """One computable measure: a family and its cutoff (``None`` = the full ranking)."""

    family: RankFamily
    cutoff: int | None = None

    @property
    def name(self) -> str:
        return self.family.name if self.cutoff is None else f"{self.family.name}@{self.cutoff}"

    def __str__(self) -> str:
        return self.name


_PLAIN = re.compile(r"(?P<name>[A-Za-z]+)(?:@(?P<cutoff>[1-9][0-9]*))?")


def native_measure(text: str) -> RankMeasure | None:
    """The engine's exact form of an ir-measures measure string, or None if ir-measures must compute it.

    Native: the families above written plainly (``nDCG@10``, ``RR``, ``AP@20``: binary relevance, as in
    every task). Anything with parameters (``nDCG(dcg='exp-log2')@10``, ``P(rel=2)@5``) or another
    family (``Judged@10``) goes to ir-measures on runs.
    """
    match = _PLAIN.fullmatch(text.strip())
    family = RANK_FAMILIES.get(match["name"]) if match else None
    if family is None:
        return None
    cutoff = int(match["cutoff"]) if match["cutoff"] else None
    if cutoff is None and family.cutoff == "required":
        return None
    return RankMeasure(family, cutoff)
