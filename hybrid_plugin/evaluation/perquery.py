"""Per-query values of every setting, computed exactly from the relevant candidates' ranks.

One row per (setting, query): AP, first relevant rank, the number of relevant candidates and every
requested standard measure (trec_eval semantics, see :mod:`~hybrid_plugin.evaluation.measures`), and
for pool rows the language-bias values. Every aggregate in the results is a mean over these rows, so
a statistical test can recompute it from the per-query file alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hybrid_plugin.data.pool import Pool
from hybrid_plugin.data.settings import Setting, pool_settings
from hybrid_plugin.evaluation.measures import MEASURES, TOP_K, RankMeasure

if TYPE_CHECKING:  # torch stays unloaded for readers of per-query files (compare)
    from hybrid_plugin.evaluation.ranking import PoolRankings, RelevantRanks


@dataclass
class GroupedRanks:
    """Relevant ranks grouped per (query, target), each group's ranks ascending (inf = unretrieved)."""

    key: np.ndarray  # group key of each group
    starts: np.ndarray  # first row of each group in ``rank``
    counts: np.ndarray  # relevant candidates per group
    position: np.ndarray  # 1-based position of each row inside its group
    rank: np.ndarray  # float ranks, ascending inside each group

    @classmethod
    def build(cls, group: np.ndarray, rank: np.ndarray) -> GroupedRanks:
        order = np.lexsort((rank, group))
        g, r = group[order], rank[order]
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.zeros(0, dtype=np.int64)
        counts = np.diff(np.r_[starts, len(g)])
        position = np.arange(len(g)) - np.repeat(starts, counts) + 1
        return cls(g[starts], starts, counts, position, r)

    def total(self, values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, self.starts) if len(self.starts) else np.zeros(0)

    def within(self, cutoff: int | None) -> np.ndarray:
        return self.rank <= (np.inf if cutoff is None else cutoff)

    @property
    def first(self) -> np.ndarray:
        return self.rank[self.starts]


def _ap(g: GroupedRanks, k: int | None) -> np.ndarray:
    if k is None:  # kept as the evaluator always computed it, so published mAP stays bit-identical
        return g.total(g.position / g.rank) / g.counts
    return g.total(np.where(g.within(k), g.position / g.rank, 0.0)) / g.counts


def _rr(g: GroupedRanks, k: int | None) -> np.ndarray:
    first = g.first
    return np.where(first <= (np.inf if k is None else k), 1.0 / first, 0.0)


def _ndcg(g: GroupedRanks, k: int | None) -> np.ndarray:
    gain = np.where(g.within(k), 1.0 / np.log2(g.rank + 1.0), 0.0)
    ideal_depth = g.counts if k is None else np.minimum(g.counts, k)
    ideal = np.cumsum(1.0 / np.log2(np.arange(2, int(ideal_depth.max(initial=1)) + 2)))
    return g.total(gain) / ideal[ideal_depth - 1]


def _precision(g: GroupedRanks, k: int | None) -> np.ndarray:
    return g.total(g.within(k).astype(np.float64)) / k


def _recall(g: GroupedRanks, k: int | None) -> np.ndarray:
    return g.total(g.within(k).astype(np.float64)) / g.counts


def _success(g: GroupedRanks, k: int | None) -> np.ndarray:
    return (g.first <= k).astype(np.float64)


# how each measure family of hybrid_plugin.evaluation.measures.RANK_FAMILIES is computed
PROVIDERS: dict[str, Callable[[GroupedRanks, int | None], np.ndarray]] = {
    "AP": _ap,
    "RR": _rr,
    "nDCG": _ndcg,
    "P": _precision,
    "R": _recall,
    "Success": _success,
}


@dataclass
class QueryTable:
    """Per-query values, one row per (setting, query); rows of a setting are contiguous, queries ascending.

    Pool rows also carry the rank distance (nan with fewer than two relevant candidates), the language
    of the best-ranked relevant candidate and the number of languages with a relevant candidate; other
    rows hold nan / -1 / 0 there. And the pool's language-bias values: Lang-nDCG@10, the language of
    the top-ranked candidate, the query language's share of the top 10 and the mean rank correlation
    with the parallel queries (nan / -1 outside pool rows, or without the pool rankings).
    """

    languages: tuple[str, ...]  # the pool's
    settings: list[Setting]
    setting_ptr: np.ndarray  # rows of settings[i]: setting_ptr[i]:setting_ptr[i + 1]
    query: np.ndarray  # query index
    ap: np.ndarray
    first_rank: np.ndarray  # float, inf where no relevant candidate was retrieved
    n_relevant: np.ndarray
    measures: dict[str, np.ndarray]
    rank_distance: np.ndarray
    best_lang: np.ndarray  # language index, -1 outside pool rows
    n_rel_langs: np.ndarray
    lang_ndcg: np.ndarray  # Lang-nDCG@10 (pool rows)
    top1_lang: np.ndarray  # language index of the top-ranked candidate, -1: none or not a pool row
    top_query_lang: np.ndarray  # share of the top-k retrieved candidates in the query's language
    rank_corr: np.ndarray  # mean Spearman correlation with the group's queries in other languages

    @property
    def target_index(self) -> np.ndarray:
        """Per row: the index of the setting's candidate language in ``pool.languages``, -1 for the pool."""
        per_setting = np.diff(self.setting_ptr)
        codes = [-1 if s.is_pool else self.languages.index(s.target) for s in self.settings]
        return np.repeat(np.asarray(codes, dtype=np.int64), per_setting)

    @property
    def query_lang_index(self) -> np.ndarray:
        """Per row: the index of the setting's query language in ``pool.languages``."""
        per_setting = np.diff(self.setting_ptr)
        codes = [self.languages.index(s.query_lang) for s in self.settings]
        return np.repeat(np.asarray(codes, dtype=np.int64), per_setting)

    def columns(self) -> dict[str, np.ndarray]:
        """The per-query values :meth:`Measure.values <hybrid_plugin.evaluation.measures.Measure.values>`
        reads (languages as indices, -1 = none)."""
        kinds = np.repeat(np.array([s.kind for s in self.settings], dtype=object), np.diff(self.setting_ptr))
        return {
            "kind": kinds,
            "query_lang": self.query_lang_index,
            "ap": self.ap,
            "first_rank": self.first_rank,
            "rank_distance": self.rank_distance,
            "best_lang": self.best_lang,
            "n_rel_langs": self.n_rel_langs,
            "lang_ndcg_10": self.lang_ndcg,
            "top1_lang": self.top1_lang,
            f"top{TOP_K}_query_lang": self.top_query_lang,
            "rank_corr": self.rank_corr,
        }

    def rows(self, i: int) -> slice:
        return slice(int(self.setting_ptr[i]), int(self.setting_ptr[i + 1]))

    def __len__(self) -> int:
        return len(self.query)


def lang_ndcg(pool: Pool, query: np.ndarray, rank: np.ndarray, cand_lang: np.ndarray, k: int) -> np.ndarray:
    """Lang-nDCG@k of every query from its relevant candidates' pool ranks (inf = unretrieved).

    Gain 2 for a relevant candidate in the query's language, 1 for one in another language; the ideal
    ranking lists the query-language answers first, then the others (trec_eval's ndcg_cut on such qrels).
    """
    n_query = len(pool.query_ids)
    same = cand_lang == pool.query_lang[query]
    gain = np.where(same, 2.0, 1.0) * np.where(rank <= k, 1.0 / np.log2(rank + 1.0), 0.0)
    dcg = np.bincount(query, weights=gain, minlength=n_query)
    discount = np.r_[0.0, np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))]  # [i]: sum over the first i ranks
    n_same = np.bincount(query, weights=same, minlength=n_query).astype(np.int64)
    n_all = np.bincount(query, minlength=n_query)
    first, upto = discount[np.minimum(n_same, k)], discount[np.minimum(n_all, k)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return dcg / (2.0 * first + (upto - first))


def _pool_views(pool: Pool, rankings: PoolRankings | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query: top-ranked candidate's language, query language's top-k share, mean rank correlation."""
    n_query = len(pool.query_ids)
    if rankings is None:
        return np.full(n_query, -1), np.full(n_query, np.nan), np.full(n_query, np.nan)
    retrieved = rankings.top_counts.sum(1)
    own = rankings.top_counts[np.arange(n_query), pool.query_lang]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(retrieved > 0, own / retrieved, np.nan)
    ok = ~np.isnan(rankings.pair_corr)
    total = np.bincount(rankings.pair_query[ok], weights=rankings.pair_corr[ok], minlength=n_query)
    count = np.bincount(rankings.pair_query[ok], minlength=n_query)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(count > 0, total / count, np.nan)
    return rankings.top1_lang, share, corr


def query_table(
    pool: Pool,
    ranks: RelevantRanks,
    measures: tuple[RankMeasure, ...] = (),
    rankings: PoolRankings | None = None,
) -> QueryTable:
    """Every setting's per-query values from one :class:`RelevantRanks` (and, for the pool's top-k and
    rank-correlation values, the :class:`PoolRankings`; without them those are nan)."""
    n_lang = len(pool.languages)
    n_query = len(pool.query_ids)
    cand_lang = pool.cand_lang[ranks.cand]
    rank_lang = ranks.rank_lang.astype(np.float64)
    rank_pool = ranks.rank_pool.astype(np.float64)
    if ranks.retrieved is not None and not ranks.retrieved.all():
        # as trec_eval on a run of the retrieved candidates: an unretrieved relevant one is never reached
        rank_lang = np.where(ranks.retrieved, rank_lang, np.inf)
        rank_pool = np.where(ranks.retrieved, rank_pool, np.inf)
    by_lang = GroupedRanks.build(ranks.query * n_lang + cand_lang, rank_lang)
    by_pool = GroupedRanks.build(ranks.query, rank_pool)
    settings = list(pool_settings(pool))
    lang_index = {lang: i for i, lang in enumerate(pool.languages)}
    lookup = np.full((n_lang, n_lang + 1), -1, dtype=np.int64)  # (x, y or n_lang for the pool) -> setting
    for i, s in enumerate(settings):
        lookup[lang_index[s.query_lang], n_lang if s.target is None else lang_index[s.target]] = i

    lang_query, lang_target = by_lang.key // n_lang, by_lang.key % n_lang
    pool_query = by_pool.key
    parts = [(by_lang, lang_query, lang_target), (by_pool, pool_query, np.full(len(pool_query), -1))]
    setting = np.concatenate([lookup[pool.query_lang[q], np.where(t < 0, n_lang, t)] for _, q, t in parts])

    # pool-only values, as the evaluator has always computed them (raw pool ranks, unretrieved last)
    rmax = np.full(n_query, -np.inf)
    rmin = np.full(n_query, np.inf)
    np.maximum.at(rmax, ranks.query, ranks.rank_pool)
    np.minimum.at(rmin, ranks.query, ranks.rank_pool)
    n_rel = np.bincount(ranks.query, minlength=n_query)
    distance = np.where(n_rel >= 2, rmax - rmin, np.nan)
    best_order = np.lexsort((ranks.rank_pool, ranks.query))
    first = np.flatnonzero(np.r_[True, np.diff(ranks.query[best_order]) != 0])
    best_lang = np.full(n_query, -1)
    best_lang[ranks.query[best_order][first]] = cand_lang[best_order][first]
    langs_per_query = np.zeros((n_query, n_lang), dtype=bool)
    langs_per_query[ranks.query, cand_lang] = True
    n_lang_rows = len(lang_query)
    pool_ndcg = lang_ndcg(pool, ranks.query, rank_pool, cand_lang, TOP_K)
    top1, top_share, corr = _pool_views(pool, rankings)
    nan_rows = np.full(n_lang_rows, np.nan)

    columns = {
        "query": np.concatenate([lang_query, pool_query]),
        "ap": np.concatenate([_ap(by_lang, None), _ap(by_pool, None)]),
        "first_rank": np.concatenate([by_lang.first, by_pool.first]),
        "n_relevant": np.concatenate([by_lang.counts, by_pool.counts]),
        "rank_distance": np.concatenate([np.full(n_lang_rows, np.nan), distance[pool_query]]),
        "best_lang": np.concatenate([np.full(n_lang_rows, -1), best_lang[pool_query]]),
        "n_rel_langs": np.concatenate(
            [np.zeros(n_lang_rows, dtype=np.int64), langs_per_query.sum(1)[pool_query]]
        ),
        "lang_ndcg": np.concatenate([nan_rows, pool_ndcg[pool_query]]),
        "top1_lang": np.concatenate([np.full(n_lang_rows, -1), top1[pool_query]]),
        "top_query_lang": np.concatenate([nan_rows, top_share[pool_query]]),
        "rank_corr": np.concatenate([nan_rows, corr[pool_query]]),
    }
    measure_columns = {
        m.name: np.concatenate([PROVIDERS[m.family.name](g, m.cutoff) for g, _, _ in parts]) for m in measures
    }
    keep = np.flatnonzero(setting >= 0)
    order = keep[np.argsort(setting[keep], kind="stable")]
    ptr = np.searchsorted(setting[order], np.arange(len(settings) + 1)).astype(np.int64)
    return QueryTable(
        languages=pool.languages,
        settings=settings,
        setting_ptr=ptr,
        measures={name: values[order] for name, values in measure_columns.items()},
        **{name: values[order] for name, values in columns.items()},
    )


PER_QUERY_SCHEMA = 2  # 2 added the pool's language-bias columns (lang_ndcg_10 ... rank_corr)


def to_arrow(table: QueryTable, pool: Pool, metadata: dict[str, str] | None = None):
    """The table as a pyarrow Table with ids and languages spelled out (readable without this package).

    Columns: setting, kind, query_lang, target (null for the pool), query_id, group (the parallel
    question group), ap, rr, first_rank (null: no relevant candidate retrieved), n_relevant, one column
    per native standard measure, and for pool rows rank_distance, best_lang, n_rel_langs, lang_ndcg_10,
    top1_lang, top10_query_lang and rank_corr (null elsewhere, or where undefined): the
    :data:`~hybrid_plugin.evaluation.measures.BUILTIN_COLUMNS`; then the column of every registered
    measure that stores its values (null where undefined).
    """
    import pyarrow as pa

    per_setting = [table.rows(i).stop - table.rows(i).start for i in range(len(table.settings))]

    def repeat(values: list) -> pa.Array:
        return pa.array(
            np.repeat(np.array(values, dtype=object), per_setting), pa.string()
        ).dictionary_encode()

    langs = np.array(pool.languages, dtype=object)
    is_pool = np.repeat([s.is_pool for s in table.settings], per_setting)
    retrieved = np.isfinite(table.first_rank)
    first = np.where(retrieved, table.first_rank, 0).astype(np.int32)
    columns = {
        "setting": repeat([s.key for s in table.settings]),
        "kind": repeat([s.kind for s in table.settings]),
        "query_lang": repeat([s.query_lang for s in table.settings]),
        "target": repeat([s.target for s in table.settings]),
        "query_id": pa.array(np.asarray(pool.query_ids, dtype=object)[table.query], pa.string()),
        "group": pa.array(
            np.asarray(pool.group_names, dtype=object)[pool.query_group[table.query]], pa.string()
        ),
        "ap": pa.array(table.ap, pa.float64()),
        "rr": pa.array(
            np.where(retrieved, 1.0 / np.where(retrieved, table.first_rank, 1.0), 0.0), pa.float64()
        ),
        "first_rank": pa.array(first, pa.int32(), mask=~retrieved),
        "n_relevant": pa.array(table.n_relevant, pa.int32()),
        **{name: pa.array(values, pa.float64()) for name, values in table.measures.items()},
        "rank_distance": pa.array(
            table.rank_distance, pa.float64(), mask=~is_pool | np.isnan(table.rank_distance)
        ),
        "best_lang": pa.array(
            langs[np.maximum(table.best_lang, 0)], pa.string(), mask=~is_pool
        ).dictionary_encode(),
        "n_rel_langs": pa.array(table.n_rel_langs, pa.int32(), mask=~is_pool),
        "lang_ndcg_10": pa.array(table.lang_ndcg, pa.float64(), mask=np.isnan(table.lang_ndcg)),
        "top1_lang": pa.array(
            langs[np.maximum(table.top1_lang, 0)], pa.string(), mask=table.top1_lang < 0
        ).dictionary_encode(),
        f"top{TOP_K}_query_lang": pa.array(
            table.top_query_lang, pa.float64(), mask=np.isnan(table.top_query_lang)
        ),
        "rank_corr": pa.array(table.rank_corr, pa.float64(), mask=np.isnan(table.rank_corr)),
    }
    engine_columns = table.columns()
    for m in MEASURES.stored():
        values = m.values(engine_columns)
        columns[m.column] = pa.array(values, pa.float64(), mask=np.isnan(values))
    meta = {"hybrid_plugin.per_query_schema": str(PER_QUERY_SCHEMA), **(metadata or {})}
    return pa.table(columns).replace_schema_metadata({k: str(v) for k, v in meta.items()})


def write_parquet(arrow_table, path) -> None:
    """Parquet with zstd and dictionary pages: full XQuAD-R's 157k rows stay a few MB."""
    import pyarrow.parquet as pq

    pq.write_table(arrow_table, path, compression="zstd", use_dictionary=True)
