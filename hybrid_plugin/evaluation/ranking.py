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
