"""What each reported measure *is*: small declarative objects in one ordered registry, :data:`MEASURES`.

A :class:`Measure` says what it means, which way is better, where it comes from, which setting kind it
applies to, which per-query values it reads (or derives from the per-query columns) and how they
aggregate. The results models, the per-query file's measure columns, ``compare``, the MTEB scores, the
leaderboard's measure columns and the docs' table are generated from the registry, so a new measure
is one :class:`Measure` registered there. The per-query values themselves are computed apart:
:mod:`hybrid_plugin.evaluation.perquery` (exact, vectorised, from the relevant candidates' ranks and,
for the pool's language-bias measures, from each pool query's full ranking:
:func:`hybrid_plugin.evaluation.ranking.pool_rankings`) and, for measures that are not native,
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

import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from hybrid_plugin.data.spec import SettingKind

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


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise equality of two language columns (strings from a file, indices in the engine)."""
    if a.dtype == object or b.dtype == object:
        return np.asarray(a, dtype=object) == np.asarray(b, dtype=object)
    return np.asarray(a) == np.asarray(b)


@dataclass(frozen=True)
class Aggregation:
    """How one measure's per-query values become its per-language and macro scores."""

    name: str
    description: str

    def per_language(
        self, values: np.ndarray, setting_ptr: np.ndarray, setting_lang: np.ndarray, n_lang: int
    ) -> list[float | None]:
        """Per query language: the mean over its settings of each setting's mean (nan rows left out);
        ``None`` where no setting of the language has a value. Rows of setting ``i`` (report order)
        are ``setting_ptr[i]:setting_ptr[i + 1]``; ``setting_lang[i]`` indexes its query language."""
        per_setting: list[list[float]] = [[] for _ in range(n_lang)]
        for i, lang in enumerate(setting_lang):
            chosen = values[setting_ptr[i] : setting_ptr[i + 1]]
            chosen = chosen[~np.isnan(chosen)]
            if chosen.size:
                per_setting[int(lang)].append(float(chosen.mean()))
        return [float(np.mean(v)) if v else None for v in per_setting]

    @staticmethod
    def macro(per_language: list[float | None]) -> float | None:
        """The mean over the query languages that have a value (``None`` if none has)."""
        present = [v for v in per_language if v is not None]
        return float(np.mean(present)) if present else None


MACRO = Aggregation(
    "macro",
    "mean per setting (rows where the value is defined), then mean over each query language's settings "
    "of the measure's kind, then macro over query languages",
)


@dataclass(frozen=True)
class BoardColumn:
    """A measure shown as a leaderboard CSV column: its cell's decimals, whether a row needs it, and
    the column's one-line description (the board's README and ``validate`` read these)."""

    description: str
    decimals: int
    required: bool = True


Columns = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Measure:
    """A reported aggregate, defined once: results key, label, meaning, direction, source, the setting
    kind it applies to, the per-query values it reads or derives and how they aggregate.

    Every per-query value lives in the per-query file (``column``) or follows from its columns
    (``derive``, reading ``needs``); the aggregate is ``aggregate`` of those values over the rows of
    settings of ``kind`` (:class:`Aggregation`): the results JSON, ``compare`` and the MTEB scores
    read it from here, so the statistics in :mod:`hybrid_plugin.stats` recompute it from the
    per-query file alone. ``higher_is_better`` is ``None`` where neither direction is better (a share
    of languages). A measure with ``stored`` writes its derived values to the per-query file as
    ``column`` (after the built-in columns); ``since`` is the results generation that first reported it
    (1: every results file has it; later ones are absent from older results).
    """

    key: str
    label: str
    description: str
    higher_is_better: bool | None
    reference: str
    kind: SettingKind = SettingKind.MULTI  # the setting kind it needs: absent for tasks without it
    column: str = "ap"  # the per-query value it averages
    needs: tuple[str, ...] = ()  # the stored columns ``derive`` reads
    derive: Callable[[Columns], np.ndarray] | None = field(default=None, compare=False, repr=False)
    stored: bool = False  # derived values written to the per-query file as ``column``
    aggregate: Aggregation = MACRO
    bounds: tuple[float | None, float | None] = (0, 1)  # the range a score must lie in
    since: int = 2
    board: BoardColumn | None = None  # a leaderboard column (the board's measures)

    @property
    def direction(self) -> str:
        """Which way is better, in words: the docs' table, ``compare`` and the pages all read it here."""
        return direction_words(self.higher_is_better)

    @property
    def arrow(self) -> str:
        """``↑``, ``↓`` or nothing (neither direction is better), as ``compare`` marks labels."""
        return direction_arrow(self.higher_is_better)

    def values(self, columns: Columns) -> np.ndarray:
        """Per-row values, float64 with nan where a row does not count, from per-query columns.

        ``columns`` are the per-query file's columns as numpy arrays (strings as objects, nulls as nan /
        None) or the engine's (languages as indices, -1 = none): derivations read either.
        """
        if self.derive is None or self.column in columns:
            return np.asarray(columns[self.column], dtype=np.float64)
        return self.derive(columns)

    def in_range(self, value: float) -> bool:
        low, high = self.bounds
        return math.isfinite(value) and (low is None or value >= low) and (high is None or value <= high)


def direction_words(higher_is_better: bool | None) -> str:
    """``higher``, ``lower`` or ``neither`` (a share whose ideal depends on the reader)."""
    return {True: "higher", False: "lower", None: "neither"}[higher_is_better]


def direction_arrow(higher_is_better: bool | None) -> str:
    """``↑`` (higher is better), ``↓`` (lower is better) or ``""`` (neither direction is better)."""
    return {True: "↑", False: "↓", None: ""}[higher_is_better]


DIRECTION_LEGEND = "↑ higher is better, ↓ lower is better, no arrow: neither direction is better"


def _same_lang_top(columns: Columns) -> np.ndarray:
    """1 where the best-ranked relevant candidate is in the query's language, among pool rows with
    relevant candidates in at least two languages."""
    several = np.nan_to_num(np.asarray(columns["n_rel_langs"], dtype=np.float64)) >= 2
    same = _same(columns["best_lang"], columns["query_lang"])
    return np.where(several, same.astype(np.float64), np.nan)


def _top1_outcome(correct: bool, query_lang: bool) -> Callable[[Columns], np.ndarray]:
    """One of the 4-way top-1 outcomes: 1 where the top-ranked candidate is (not) relevant and (not) in
    the query's language, nan where nothing was retrieved (or not a pool row)."""

    def derive(columns: Columns) -> np.ndarray:
        top1 = columns["top1_lang"]
        present = np.array([v is not None for v in top1]) if top1.dtype == object else top1 >= 0
        first = np.asarray(columns["first_rank"], dtype=np.float64) == 1
        same = _same(top1, columns["query_lang"])
        hit = (first == correct) & (same == query_lang)
        return np.where(present, hit.astype(np.float64), np.nan)

    return derive


MONO_MAP = Measure(
    "mono_map",
    "mono",
    "Monolingual X→X: exact full-rank AP per query, mean per setting, macro over query languages.",
    True,
    LAREQA,
    kind=SettingKind.MONO,
    since=1,
    board=BoardColumn("monolingual X→X mAP (exact, full ranking), macro over languages", 4),
)
CROSS_MAP = Measure(
    "cross_map",
    "cross",
    "Cross-lingual X→Y (X≠Y, queries with a relevant candidate in Y): AP mean per setting, "
    "mean over Y per query language X, macro over X.",
    True,
    LAREQA,
    kind=SettingKind.CROSS,
    since=1,
    board=BoardColumn("cross-lingual X→Y mAP, macro over query languages", 4),
)
MULTI_MAP = Measure(
    "multi_map",
    "multi",
    "Multilingual X→pool of all selected languages, every parallel answer relevant: AP mean per "
    "query language, macro over languages.",
    True,
    LAREQA,
    since=1,
    board=BoardColumn("multilingual X→pool mAP, macro over query languages (the ranking)", 4),
)
MAX_RANK_DISTANCE = Measure(
    "max_rank_distance",
    "rank dist",
    "Multilingual pool, per query: highest minus lowest rank among its relevant candidates "
    "(queries with at least two); mean per query language, macro over languages.",
    False,
    HUANG_2023,
    column="rank_distance",
    bounds=(0, None),
    since=1,
    board=BoardColumn("language bias in the pool (lower is better)", 1),
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
    column="same_lang_top",
    needs=("best_lang", "query_lang", "n_rel_langs"),
    derive=_same_lang_top,
    since=1,
    board=BoardColumn(
        "share of pool queries whose best-ranked answer is in their own language", 4, required=False
    ),
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
    column="lang_ndcg_10",
)
_TOP1 = (
    "Multilingual pool, 4-way outcome of the top-ranked candidate (MLAIRE): share of queries whose "
    "first candidate is {what}. The four shares sum to 1 (a query retrieving nothing counts in none)."
)
_TOP1_NEEDS = ("top1_lang", "first_rank", "query_lang")
TOP1_CORRECT_QUERY_LANG = Measure(
    "top1_correct_query_lang",
    "top1 ✓ same",
    _TOP1.format(what="relevant and in the query's language"),
    True,
    MLAIRE,
    column="top1_correct_query_lang",
    needs=_TOP1_NEEDS,
    derive=_top1_outcome(correct=True, query_lang=True),
)
TOP1_CORRECT_OTHER_LANG = Measure(
    "top1_correct_other_lang",
    "top1 ✓ other",
    _TOP1.format(what="relevant but in another language (the answer, not in the reader's language)"),
    None,
    MLAIRE,
    column="top1_correct_other_lang",
    needs=_TOP1_NEEDS,
    derive=_top1_outcome(correct=True, query_lang=False),
)
TOP1_WRONG_QUERY_LANG = Measure(
    "top1_wrong_query_lang",
    "top1 ✗ same",
    _TOP1.format(what="not relevant but in the query's language (a pull towards the language)"),
    False,
    MLAIRE,
    column="top1_wrong_query_lang",
    needs=_TOP1_NEEDS,
    derive=_top1_outcome(correct=False, query_lang=True),
)
TOP1_WRONG_OTHER_LANG = Measure(
    "top1_wrong_other_lang",
    "top1 ✗ other",
    _TOP1.format(what="not relevant and in another language"),
    False,
    MLAIRE,
    column="top1_wrong_other_lang",
    needs=_TOP1_NEEDS,
    derive=_top1_outcome(correct=False, query_lang=False),
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
    column="rank_corr",
    bounds=(-1, 1),
)
# not an aggregate: a matrix of the results' ``bias`` block, listed in the docs' table beside them
MEAN_RANK_MATRIX = Measure(
    "mean_rank",
    "mean rank",
    "Multilingual pool: X×Y matrix of the mean rank of the relevant candidate in language Y for "
    "queries in X.",
    False,
    "this toolkit",
    bounds=(1, None),
)


class Registry:
    """The reported measures, in report order: the one list the results models, the per-query file,
    ``compare``, the MTEB scores, the leaderboard and the docs' table are generated from.

    Measures registered after import (a plug-in's, a test's) follow the built-in ones everywhere; the
    results models carry them as checked extra keys (:mod:`hybrid_plugin.evaluation.results`).
    """

    def __init__(self, measures: tuple[Measure, ...]) -> None:
        self._measures: dict[str, Measure] = {}
        for m in measures:
            self.register(m)
        self.builtin: tuple[Measure, ...] = tuple(self)

    def register(self, measure: Measure) -> Measure:
        """Add a measure at the end; refuses a key or stored column already taken."""
        if measure.key in self._measures:
            raise ValueError(f"measure {measure.key!r} is already registered")
        taken = {m.column for m in self if m.stored or m.derive is None}
        if measure.stored and measure.column in (taken | set(BUILTIN_COLUMNS)):
            raise ValueError(f"measure {measure.key!r}: per-query column {measure.column!r} is taken")
        self._measures[measure.key] = measure
        return measure

    def unregister(self, key: str) -> None:
        if any(m.key == key for m in self.builtin):
            raise ValueError(f"measure {key!r} is built in")
        del self._measures[key]

    @contextmanager
    def registered(self, *measures: Measure) -> Iterator[tuple[Measure, ...]]:
        """The measures registered for the ``with`` block (tests, one-off studies), then removed."""
        added: list[Measure] = []
        try:
            for m in measures:
                added.append(self.register(m))
            yield tuple(added)
        finally:
            for m in added:
                self.unregister(m.key)

    def __iter__(self) -> Iterator[Measure]:
        return iter(tuple(self._measures.values()))

    def __len__(self) -> int:
        return len(self._measures)

    def __contains__(self, key: object) -> bool:
        return key in self._measures

    def __getitem__(self, key: str) -> Measure:
        return self._measures[key]

    def names(self) -> tuple[str, ...]:
        return tuple(self._measures)

    def classic(self) -> tuple[Measure, ...]:
        """The aggregates every results file has had (format 1 on): the console table's columns."""
        return tuple(m for m in self if m.since == 1)

    def later(self) -> tuple[Measure, ...]:
        """Measures added after format 1 (absent from older results): the language-bias block."""
        return tuple(m for m in self if m.since > 1)

    def of_kind(self, kind: SettingKind) -> tuple[Measure, ...]:
        return tuple(m for m in self if m.kind == kind)

    def board(self) -> tuple[Measure, ...]:
        """The leaderboard's measure columns, in CSV order."""
        return tuple(m for m in self if m.board is not None)

    def stored(self) -> tuple[Measure, ...]:
        """Measures that bring their own per-query column (written after :data:`BUILTIN_COLUMNS`)."""
        return tuple(m for m in self if m.stored)


# the per-query file's columns before the measures' own (standard measures sit after n_relevant)
BUILTIN_COLUMNS = (
    "setting",
    "kind",
    "query_lang",
    "target",
    "query_id",
    "group",
    "ap",
    "rr",
    "first_rank",
    "n_relevant",
    "rank_distance",
    "best_lang",
    "n_rel_langs",
    "lang_ndcg_10",
    "top1_lang",
    f"top{TOP_K}_query_lang",
    "rank_corr",
)

MEASURES = Registry(
    (
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
