"""Exact per-query AP, rank distance and bias views for every setting, from :class:`RelevantRanks`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hybrid_plugin.data.pool import Pool
from hybrid_plugin.evaluation.measures import AGGREGATES
from hybrid_plugin.evaluation.ranking import RelevantRanks


def _grouped_ap(group: np.ndarray, rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AP per group of (group, rank) pairs: mean over relevant items of (i / rank_i), ranks ascending."""
    order = np.lexsort((rank, group))
    g, r = group[order], rank[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    counts = np.diff(np.r_[starts, len(g)])
    position = np.arange(len(g)) - np.repeat(starts, counts) + 1
    ap = np.add.reduceat(position / r, starts) / counts
    return g[starts], ap


@dataclass
class QueryScores:
    """Per-query values, long format: one row per (query, target) where target is a language or the pool."""

    setting_query: np.ndarray  # query index
    setting_target: np.ndarray  # candidate language index, or -1 for the pool
    ap: np.ndarray
    pool_query: np.ndarray  # queries of the pool setting (all queries)
    rank_distance: np.ndarray  # max - min pool rank of the query's relevant candidates (nan if < 2)
    best_lang: np.ndarray  # language index of the best-ranked relevant candidate
    n_rel_langs: np.ndarray  # number of languages the query has relevant candidates in


def query_scores(pool: Pool, ranks: RelevantRanks) -> QueryScores:
    n_lang = len(pool.languages)
    cand_lang = pool.cand_lang[ranks.cand]
    ap_rank_lang, ap_rank_pool = ranks.rank_lang, ranks.rank_pool
    if ranks.retrieved is not None and not ranks.retrieved.all():
        # as trec_eval on a run of the retrieved candidates: an unretrieved relevant one adds precision 0
        ap_rank_lang = np.where(ranks.retrieved, ranks.rank_lang, np.inf)
        ap_rank_pool = np.where(ranks.retrieved, ranks.rank_pool, np.inf)
    key, ap_lang = _grouped_ap(ranks.query * n_lang + cand_lang, ap_rank_lang)
    pool_q, ap_pool = _grouped_ap(ranks.query, ap_rank_pool)
    n = len(pool.query_ids)
    rmax = np.full(n, -np.inf)
    rmin = np.full(n, np.inf)
    np.maximum.at(rmax, ranks.query, ranks.rank_pool)
    np.minimum.at(rmin, ranks.query, ranks.rank_pool)
    n_rel = np.bincount(ranks.query, minlength=n)
    distance = np.where(n_rel >= 2, rmax - rmin, np.nan)
    best_order = np.lexsort((ranks.rank_pool, ranks.query))
    first = np.flatnonzero(np.r_[True, np.diff(ranks.query[best_order]) != 0])
    best_lang = np.full(n, -1)
    best_lang[ranks.query[best_order][first]] = cand_lang[best_order][first]
    langs_per_query = np.zeros((n, n_lang), dtype=bool)
    langs_per_query[ranks.query, cand_lang] = True
    return QueryScores(
        setting_query=np.concatenate([key // n_lang, pool_q]),
        setting_target=np.concatenate([key % n_lang, np.full(len(pool_q), -1)]),
        ap=np.concatenate([ap_lang, ap_pool]),
        pool_query=pool_q,
        rank_distance=distance[pool_q],
        best_lang=best_lang[pool_q],
        n_rel_langs=langs_per_query.sum(1)[pool_q],
    )


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def setting_key(pool: Pool, x: int, y: int) -> str:
    return f"{pool.languages[x]}-{'pool' if y < 0 else pool.languages[y]}"


def aggregate(pool: Pool, qs: QueryScores, ranks: RelevantRanks) -> dict:
    """Per-setting values, per-language and macro aggregates, and the bias views.

    Only the pool's setting kinds are reported; the values of the others are ``None`` (a
    monolingual-only task has no cross/multi mAP and no pool bias views).
    """
    langs = pool.languages
    multi = "multi" in pool.settings
    n_lang = len(langs)
    q_lang = pool.query_lang
    settings: dict[str, dict] = {}
    lang_of = q_lang[qs.setting_query]
    for x in range(n_lang):
        for y in [*range(n_lang), -1]:
            mask = (lang_of == x) & (qs.setting_target == y)
            if not mask.any():
                continue
            kind = "multi" if y < 0 else ("mono" if x == y else "cross")
            if kind not in pool.settings:
                continue
            entry = {"kind": kind, "queries": int(mask.sum()), "map": float(qs.ap[mask].mean())}
            if y >= 0:
                entry["candidates"] = int((pool.cand_lang == y).sum())
            else:
                entry["candidates"] = len(pool.cand_ids)
            settings[setting_key(pool, x, y)] = entry

    pool_lang = q_lang[qs.pool_query]
    per_language: dict[str, dict] = {}
    for x, lang in enumerate(langs):
        cross = [
            settings[k]["map"] for y in range(n_lang) if y != x and (k := setting_key(pool, x, y)) in settings
        ]
        in_x = pool_lang == x
        dist = qs.rank_distance[in_x & multi]
        dist = dist[~np.isnan(dist)]
        multi_lang = in_x & (qs.n_rel_langs >= 2) & multi
        per_language[lang] = {
            "mono_map": settings.get(setting_key(pool, x, x), {}).get("map"),
            "cross_map": _mean(cross),
            "multi_map": settings.get(setting_key(pool, x, -1), {}).get("map"),
            "max_rank_distance": float(dist.mean()) if len(dist) else None,
            "same_language_top_share": float((qs.best_lang[multi_lang] == x).mean())
            if multi_lang.any()
            else None,
            "rank_distance_queries": int(len(dist)),
        }
        if dist.size:
            settings[setting_key(pool, x, -1)]["max_rank_distance"] = float(dist.mean())

    macro = {
        m.key: _mean([v[m.key] for v in per_language.values() if v[m.key] is not None]) for m in AGGREGATES
    }

    cand_lang = pool.cand_lang[ranks.cand]
    mean_rank: dict[str, dict[str, float]] = {}
    for x, lx in enumerate(langs if multi else ()):
        row = {}
        for y, ly in enumerate(langs):
            m = (q_lang[ranks.query] == x) & (cand_lang == y)
            if m.any():
                row[ly] = float(ranks.rank_pool[m].mean())
        mean_rank[lx] = row
    return {
        "scores": macro,
        "per_language": per_language,
        "settings": settings,
        "bias": {"mean_rank": mean_rank},
    }
