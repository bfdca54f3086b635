"""Exact full-rank positions of relevant candidates, computed from embeddings without full runs.

Ranking follows trec_eval exactly: by score descending, ties broken by document id descending
(byte order). Scores are float32 dot products, so equal texts give bit-identical scores (they
share one embedding row) and ties between different texts are resolved like trec_eval would.
Both facts are folded into one int64 key per (query, candidate): the order-preserving integer
image of the float32 score in the high 32 bits, the candidate's id rank in the low 32 bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hybrid_plugin.data.pool import Pool
from hybrid_plugin.errors import UserError

PAD_KEY = torch.iinfo(torch.int64).max


def id_tie_rank(ids: list[str]) -> np.ndarray:
    """Rank of each id in ascending byte order (trec_eval's strcmp), so a larger id wins a tie."""
    order = sorted(range(len(ids)), key=lambda i: ids[i].encode("utf-8"))
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[order] = np.arange(len(ids))
    return ranks


def ordered_keys(scores: torch.Tensor, tie: torch.Tensor) -> torch.Tensor:
    """int64 keys whose order is trec_eval's ranking order (larger key = ranked higher)."""
    s = (scores.to(torch.float32) + 0.0).contiguous()  # -0.0 -> +0.0, as float comparison has them equal
    bits = s.view(torch.int32).to(torch.int64)
    bits = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # monotone map of float order onto ints
    return (bits << 32) | tie


@dataclass
class Scorer:
    """Scores of queries against the pool's candidates, one chunk of queries at a time."""

    query_emb: torch.Tensor  # (unique query texts, dim), float32
    query_row: np.ndarray  # query -> row of query_emb
    cand_emb: torch.Tensor  # (unique candidate texts, dim), float32
    cand_row: torch.Tensor  # candidate -> row of cand_emb
    tie: torch.Tensor  # candidate -> id tie rank (int64)

    @classmethod
    def build(
        cls,
        pool: Pool,
        query_emb: np.ndarray,
        query_row: np.ndarray,
        cand_emb: np.ndarray,
        cand_row: np.ndarray,
        normalize: bool = True,
    ) -> Scorer:
        q = torch.from_numpy(np.ascontiguousarray(query_emb, dtype=np.float32))
        c = torch.from_numpy(np.ascontiguousarray(cand_emb, dtype=np.float32))
        if not (torch.isfinite(q).all() and torch.isfinite(c).all()):
            raise UserError(
                "the model's embeddings contain NaN or infinite values, so nothing can be ranked "
                "(did its training diverge?)"
            )
        if normalize:
            q = torch.nn.functional.normalize(q, dim=1)
            c = torch.nn.functional.normalize(c, dim=1)
        return cls(
            query_emb=q,
            query_row=np.asarray(query_row),
            cand_emb=c,
            cand_row=torch.from_numpy(np.asarray(cand_row, dtype=np.int64)),
            tie=torch.from_numpy(id_tie_rank(pool.cand_ids)),
        )

    def scores(self, queries: np.ndarray) -> torch.Tensor:
        """float32 scores (len(queries), n_candidates)."""
        rows = torch.from_numpy(self.query_row[queries])
        unique = self.query_emb[rows] @ self.cand_emb.T
        return unique.index_select(1, self.cand_row)  # a column gather, faster than fancy indexing


@dataclass
class RelevantRanks:
    """One row per (query, relevant candidate) pair of the pool: 1-based ranks, exact and tie-aware."""

    query: np.ndarray  # query index
    cand: np.ndarray  # candidate index
    rank_lang: np.ndarray  # rank among the candidates of the candidate's own language
    rank_pool: np.ndarray  # rank in the whole pool (all selected languages)
    # False where the candidate's score is -inf: a sparse retriever (BM25) did not retrieve it; it is
    # then ranked below every retrieved candidate (trec_eval tie order among such). None = all retrieved.
    retrieved: np.ndarray | None = None


def padded_relevant(pool: Pool) -> np.ndarray:
    """(n_queries, max relevant) matrix of relevant candidate indices, padded with -1."""
    g = pool.query_group
    counts = pool.group_ptr[g + 1] - pool.group_ptr[g]
    width = max(1, int(counts.max(initial=0)))
    col = np.arange(width)
    valid = col[None, :] < counts[:, None]
    idx = np.where(valid, pool.group_ptr[g][:, None] + col[None, :], 0)
    return np.where(valid, pool.group_cands[idx] if len(pool.group_cands) else -1, -1)


TIE_BITS = 16  # packed keys: 15 bits of row | 32 bits of score | 16 bits of id rank


def packed_keys(scores: torch.Tensor, tie: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
    """Like :func:`ordered_keys` but prefixed by the row, so all rows sort in one flat array.

    Needs id ranks < 2**16 and rows < 2**15. Keys of different rows never interleave.
    """
    bits = (scores.to(torch.float32) + 0.0).contiguous().view(torch.int32).to(torch.int64)
    unsigned = torch.where(bits < 0, ~bits & 0xFFFFFFFF, bits | 0x80000000)  # monotone, in [0, 2**32)
    return (row << 48) | (unsigned << TIE_BITS) | tie


def relevant_ranks(pool: Pool, scorer: Scorer, chunk: int = 1024, pack: bool = True) -> RelevantRanks:
    """Ranks of every relevant candidate, per language and in the pool, in one pass over the scores.

    Only candidates scoring at least as high as a query's lowest relevant candidate can rank above
    any relevant one, so only those are keyed. Each is placed among its query's sorted relevant
    keys with one flat ``searchsorted`` over row-prefixed keys, and a histogram over
    (slot, language) gives, for each relevant candidate, how many candidates of each language
    rank above it. ``pack=False`` (or more than 2**16 candidates) uses per-row searches instead.
    """
    n_lang = len(pool.languages)
    lang = torch.from_numpy(pool.cand_lang)
    rel_all = torch.from_numpy(padded_relevant(pool))
    width = rel_all.shape[1]
    packed = pack and len(pool.cand_ids) <= 1 << TIE_BITS
    chunk = min(chunk, 1 << 15)
    out_q, out_c, out_rl, out_rp, out_ret = [], [], [], [], []
    for start in range(0, len(pool.query_ids), chunk):
        queries = np.arange(start, min(start + chunk, len(pool.query_ids)))
        b = len(queries)
        scores = scorer.scores(queries)
        rel = rel_all[start : start + b]
        valid = rel >= 0
        safe = rel.clamp(min=0)
        rows = torch.arange(b).unsqueeze(1).expand(b, width)
        if packed:
            rel_keys = packed_keys(scores.gather(1, safe), scorer.tie[safe], rows)
            rel_keys = torch.where(valid, rel_keys, (rows << 48) | ((1 << 48) - 1))
        else:
            rel_keys = torch.where(valid, ordered_keys(scores.gather(1, safe), scorer.tie[safe]), PAD_KEY)
        rel_keys, order = rel_keys.sort(dim=1)
        rel = rel.gather(1, order)
        valid = valid.gather(1, order)
        rel_scores = scores.gather(1, rel.clamp(min=0))
        floor = torch.where(valid, rel_scores, torch.inf).min(1).values
        row, col = (scores >= floor.unsqueeze(1)).nonzero(as_tuple=True)
        if packed:
            keys = packed_keys(scores[row, col], scorer.tie[col], row)
            slot = torch.searchsorted(rel_keys.flatten(), keys) - row * width
        else:
            keys = ordered_keys(scores[row, col], scorer.tie[col])
            slot = torch.searchsorted(rel_keys[row], keys.unsqueeze(1)).squeeze(1)
        bins = (row * (width + 1) + slot) * n_lang + lang[col]
        hist = torch.bincount(bins, minlength=b * (width + 1) * n_lang).view(b, width + 1, n_lang)
        above = hist.flip(1).cumsum(1).flip(1)[:, 1:, :]  # (b, width, n_lang): candidates above slot j
        rel_lang = lang[rel.clamp(min=0)]
        rank_lang = above.gather(2, rel_lang.unsqueeze(2)).squeeze(2) + 1
        rank_pool = above.sum(2) + 1
        qcol = torch.from_numpy(queries).unsqueeze(1).expand(b, width)
        out_q.append(qcol[valid])
        out_c.append(rel[valid])
        out_rl.append(rank_lang[valid])
        out_rp.append(rank_pool[valid])
        out_ret.append(torch.isfinite(rel_scores)[valid])
    return RelevantRanks(
        query=torch.cat(out_q).numpy(),
        cand=torch.cat(out_c).numpy(),
        rank_lang=torch.cat(out_rl).numpy(),
        rank_pool=torch.cat(out_rp).numpy(),
        retrieved=torch.cat(out_ret).numpy(),
    )


@dataclass
class PoolRankings:
    """What the language-bias measures need from each pool query's full ranking (multilingual pool).

    ``top_counts`` counts the retrieved candidates of each language among the query's first ``k``
    (trec_eval's order: score descending, id descending); ``top1_lang`` is the language of its first
    retrieved candidate (-1: none retrieved). ``pair_*`` hold, for every two queries of one parallel
    group in different languages, the Spearman correlation of their rankings of the whole pool (both
    orders of each pair; nan where a ranking is constant).
    """

    k: int
    top1_lang: np.ndarray  # per query
    top_counts: np.ndarray  # (queries, languages)
    pair_query: np.ndarray
    pair_other: np.ndarray
    pair_corr: np.ndarray


def average_ranks(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the order of ``ordered_keys`` (best first) and each candidate's 1-based rank, candidates
    with equal scores sharing the mean of their positions (the fractional ranks of Spearman's rho)."""
    sorted_keys, order = keys.sort(dim=1, descending=True)
    score = sorted_keys >> 32  # the score part of each key: equal exactly when the float32 scores are equal
    b, n = score.shape
    first = torch.ones(b, n, dtype=torch.bool)
    first[:, 1:] = score[:, 1:] != score[:, :-1]
    if bool(first.all()):
        mean = torch.arange(1, n + 1, dtype=torch.float64).expand(b, n)
    else:  # runs of equal scores over the flattened rows: each position gets its run's mean position
        flat = first.flatten()
        starts = flat.nonzero().squeeze(1)
        ends = torch.cat([starts[1:], torch.tensor([b * n])]) - 1
        middle = (starts + ends).to(torch.float64) / 2 - (starts // n) * n + 1
        mean = middle[flat.cumsum(0) - 1].view(b, n)
    return order, torch.empty(b, n, dtype=torch.float64).scatter_(1, order, mean)


def pool_rankings(pool: Pool, scorer: Scorer, k: int = 10, chunk: int = 256) -> PoolRankings:
    """Top-k languages and cross-language rank correlations of every pool query, exactly.

    Spearman's rho over the full ranking of all candidates (13,021 in XQuAD-R), tied scores sharing
    their mean rank (as ``scipy.stats.spearmanr``). Affordable because the queries go in chunks of
    whole parallel groups: one int64 sort per query row gives both the top k and the ranks, the ranks
    are centred in float64, and each group's correlations are one small matrix product.
    """
    n_query, n_cand = len(pool.query_ids), len(pool.cand_ids)
    lang = torch.from_numpy(pool.cand_lang)
    n_lang = len(pool.languages)
    top1 = np.full(n_query, -1, dtype=np.int64)
    counts = np.zeros((n_query, n_lang), dtype=np.int64)
    pairs_q, pairs_o, pairs_c = [], [], []
    by_group = np.argsort(pool.query_group, kind="stable")
    group_of = pool.query_group[by_group]
    starts = np.flatnonzero(np.r_[True, group_of[1:] != group_of[:-1]])
    bounds = np.r_[starts, n_query]
    width = min(k, n_cand)
    i = 0
    while i < len(starts):
        j = i + 1
        while j < len(starts) and bounds[j + 1] - bounds[i] <= chunk:
            j += 1
        queries = by_group[bounds[i] : bounds[j]]
        scores = scorer.scores(queries)
        order, ranks = average_ranks(ordered_keys(scores, scorer.tie))
        top = order[:, :width]
        retrieved = torch.isfinite(scores.gather(1, top))
        hits = torch.zeros(len(queries), n_lang, dtype=torch.int64)
        hits.scatter_add_(1, lang[top], retrieved.to(torch.int64))
        counts[queries] = hits.numpy()
        top1[queries] = np.where(retrieved[:, 0].numpy(), lang[top[:, 0]].numpy(), -1)
        ranks -= (n_cand + 1) / 2  # the mean rank, whatever the ties
        ranks /= ranks.norm(dim=1, keepdim=True)  # a constant ranking (all tied) gives nan: no correlation
        # each group's queries padded to the largest group of the chunk: one batched product for all
        sizes = np.diff(bounds[i : j + 1])
        width_g = int(sizes.max())
        slot = np.concatenate([g * width_g + np.arange(m) for g, m in enumerate(sizes)])
        padded = torch.zeros(len(sizes) * width_g, n_cand, dtype=torch.float64)
        padded[torch.from_numpy(slot)] = ranks
        padded = padded.view(len(sizes), width_g, n_cand)
        corr = torch.bmm(padded, padded.transpose(1, 2)).numpy()
        for g, m in enumerate(sizes):
            if m < 2:
                continue
            members = queries[int(bounds[i + g] - bounds[i]) : int(bounds[i + g + 1] - bounds[i])]
            a, o = np.nonzero(pool.query_lang[members][:, None] != pool.query_lang[members][None, :])
            pairs_q.append(members[a])
            pairs_o.append(members[o])
            pairs_c.append(corr[g, a, o])
        i = j
    cat = lambda parts, dtype: np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)  # noqa: E731
    return PoolRankings(
        k=k,
        top1_lang=top1,
        top_counts=counts,
        pair_query=cat(pairs_q, np.int64),
        pair_other=cat(pairs_o, np.int64),
        pair_corr=cat(pairs_c, np.float64),
    )
