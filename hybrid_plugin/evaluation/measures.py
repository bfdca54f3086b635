"""What each reported measure *is*: small declarative objects, apart from the code computing them.

The computation lives apart: :mod:`hybrid_plugin.evaluation.perquery` (exact, vectorised, from the
relevant candidates' ranks and, for the pool's language-bias measures, from each pool query's full
ranking: :func:`hybrid_plugin.scoring.ranking.pool_rankings`) and, for measures that are not native,
ir-measures on runs.

Sources of the language-bias measures (checked against the papers' abstracts and summaries in the
stored public pages; where a paper's full text could not be read the definition is written out here
precisely and says so):

- max rank distance: Huang, Zeng, Zamani & Allan 2023, the multilingual-pool (MLIR) language-bias
  analysis of KD-SPD, as used by Elmahdy et al. 2024. The optimal-transport paper of Huang et al. 2023
  (WSDM) that was credited before is cross-lingual (one document language per run: no pool to measure
  this in);
- language preference rate, Lang-nDCG and the 4-way top-1 outcome: MLAIRE (Jang, Hong, Moon & Lim
  2026). Their section defining the formulas was not readable offline; the definitions below are this
  package's reading of the abstract's description (LPR: how often a retriever prefers the query-language
  copy among parallel relevant passages; Lang-nDCG: nDCG that credits query-language relevant passages
  more; 4-way: the top-1 passage is or is not relevant × is or is not in the query language);
- mean rank correlation: Yang, Jiang & Baldwin 2024 (Spearman's rho between the rankings of the same
  documents by parallel queries, averaged over the other languages, then over queries).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HUANG_2023 = (
    "Huang, Zeng, Zamani & Allan 2023, 'Soft Prompt Decoding for Multilingual Dense Retrieval' "
    "(SIGIR, arXiv 2305.09025): language-bias analysis of multilingual pools, as used by Elmahdy et al. "
    "2024 (arXiv 2408.10536)"
)
MLAIRE = (
    "Jang, Hong, Moon & Lim 2026, 'MLAIRE: Multilingual Language-Aware Information Retrieval "
    "Evaluation Protocol' (arXiv 2605.07249); formula as read by hybrid_plugin (see measures.py)"
)
YANG_2024 = (
    "Yang, Jiang & Baldwin 2024, 'Language Bias in Multilingual Information Retrieval: The Nature of "
    "the Beast and Mitigation Methods' (MRL workshop at EMNLP; arXiv 2509.06195)"
)
TOP_K = 10  # depth of the language share of the top of the pool ranking
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

    @property
    def direction(self) -> str:
        """Which way is better, in words: the docs' table, ``compare`` and the pages all read it here."""
        return direction_words(self.higher_is_better)

    @property
    def arrow(self) -> str:
        """``↑``, ``↓`` or nothing (neither direction is better), as ``compare`` marks labels."""
        return direction_arrow(self.higher_is_better)


def direction_words(higher_is_better: bool | None) -> str:
    """``higher``, ``lower`` or ``neither`` (a share whose ideal depends on the reader)."""
    return {True: "higher", False: "lower", None: "neither"}[higher_is_better]


def direction_arrow(higher_is_better: bool | None) -> str:
    """``↑`` (higher is better), ``↓`` (lower is better) or ``""`` (neither direction is better)."""
    return {True: "↑", False: "↓", None: ""}[higher_is_better]


DIRECTION_LEGEND = "↑ higher is better, ↓ lower is better, no arrow: neither direction is better"


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
    "This is MLAIRE's language preference rate (LPR) as read here: among parallel relevant copies, "
    "how often the query-language copy comes first. It ignores whether any relevant copy is ranked "
    "first overall (the 4-way top-1 outcome below does not). Neither direction is better: 1 is a "
    "strong pull towards the query language, about 1/L language-agnostic.",
    None,
    MLAIRE,
    kind="multi",
    column="same_lang_top",
)
LANG_NDCG = Measure(
    "lang_ndcg_10",
    "Lang-nDCG@10",
    "Multilingual pool: nDCG@10 with graded gains, 2 for a relevant candidate in the query's language, "
    "1 for a relevant one in another language, 0 otherwise (linear gain, 1/log2(rank + 1) discount, "
    "trec_eval's tie order); the ideal ranking puts the query-language answers first. It equals "
    "trec_eval's ndcg_cut.10 on qrels graded that way. Mean per query language, macro.",
    True,
    MLAIRE,
    kind="multi",
    column="lang_ndcg_10",
)
_TOP1 = (
    "Multilingual pool, 4-way outcome of the top-ranked candidate (MLAIRE): share of queries whose "
    "first candidate is {what}. The four shares sum to 1 (a query retrieving nothing counts in none)."
)
TOP1_CORRECT_QUERY_LANG = Measure(
    "top1_correct_query_lang",
    "top1 ✓ same",
    _TOP1.format(what="relevant and in the query's language"),
    True,
    MLAIRE,
    kind="multi",
    column="top1_correct_query_lang",
)
TOP1_CORRECT_OTHER_LANG = Measure(
    "top1_correct_other_lang",
    "top1 ✓ other",
    _TOP1.format(what="relevant but in another language (the answer, not in the reader's language)"),
    None,
    MLAIRE,
    kind="multi",
    column="top1_correct_other_lang",
)
TOP1_WRONG_QUERY_LANG = Measure(
    "top1_wrong_query_lang",
    "top1 ✗ same",
    _TOP1.format(what="not relevant but in the query's language (a pull towards the language)"),
    False,
    MLAIRE,
    kind="multi",
    column="top1_wrong_query_lang",
)
TOP1_WRONG_OTHER_LANG = Measure(
    "top1_wrong_other_lang",
    "top1 ✗ other",
    _TOP1.format(what="not relevant and in another language"),
    False,
    MLAIRE,
    kind="multi",
    column="top1_wrong_other_lang",
)
TOP_K_SHARE = Measure(
    f"top{TOP_K}_query_lang_share",
    f"top-{TOP_K} same-lang",
    f"Multilingual pool: share of the first {TOP_K} retrieved candidates that are in the query's "
    "language (the X→Y matrix of all languages' shares is bias.top10_language_share); mean per query "
    "language, macro. Neither direction is better: a language-agnostic retriever fills the top with "
    "whatever is relevant or similar, whatever its language.",
    None,
    "Language share of the top-k ranks, as in the language-bias analyses of multilingual retrieval "
    "(e.g. Yang, Baldwin & Cohn 2023, Multi-EuP, arXiv 2311.01870)",
    kind="multi",
    column=f"top{TOP_K}_query_lang",
)
MEAN_RANK_CORRELATION = Measure(
    "mean_rank_correlation",
    "MRC",
    "Multilingual pool: Spearman's rho between the full pool rankings of two parallel queries (the "
    "same question in two languages; tied scores share their mean rank), averaged per query over the "
    "other languages of its group, then per query language, then macro (Mean Rank Correlation; the "
    "X×Y matrix per language pair is bias.rank_correlation). 1: the ranking does not depend on the "
    "query's language.",
    True,
    YANG_2024,
    kind="multi",
    column="rank_corr",
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
    LANG_NDCG,
    TOP1_CORRECT_QUERY_LANG,
    TOP1_CORRECT_OTHER_LANG,
    TOP1_WRONG_QUERY_LANG,
    TOP1_WRONG_OTHER_LANG,
    TOP_K_SHARE,
    MEAN_RANK_CORRELATION,
)
# the aggregates every results file has had (format 1 on): the console table's columns, leaderboard cells
CLASSIC: tuple[Measure, ...] = AGGREGATES[:5]
# language-bias measures added with the per-query file's schema 2 (absent from older results)
BIAS: tuple[Measure, ...] = AGGREGATES[5:]

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
