"""Exact full-rank positions of relevant candidates, computed tile by tile without full runs.

Ranking follows trec_eval exactly: by score descending, ties broken by document id descending
(byte order). Scores are float32 dot products, so equal texts give bit-identical scores (they
share one embedding row) and ties between different texts are resolved like trec_eval would.
Both facts are folded into one int64 key per (query, candidate): the order-preserving integer
image of the float32 score in the high 32 bits, the candidate's id rank in the low 32 bits.

The work is cut into tiles (:mod:`hybrid_plugin.scoring.tiles`): memory comes from a budget, not
from the pool, and the tiles can run anywhere (an :class:`~hybrid_plugin.scoring.tiles.Executor`).
"""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from hybrid_plugin.data.pool import Pool
from hybrid_plugin.errors import UserError
from hybrid_plugin.scoring.tiles import (
    PAD_KEY,
    EngineOptions,
    TileCounts,
    TilePlan,
    TileTask,
    block_scores,
    default_budget,
    key_scores,
    merge_top,
    ordered_keys,
    padded_matmul,
    rank_tiles,
)

__all__ = [
    "PAD_KEY",
    "PoolRankings",
    "RelevantRanks",
    "DenseScoreMatrix",
    "TiledRanking",
    "id_tie_rank",
    "ordered_keys",
    "pool_rankings",
    "rank_correlations",
    "rank_pool",
    "relevant_ranks",
]


def id_tie_rank(ids: list[str]) -> np.ndarray:
    """Rank of each id in ascending byte order (trec_eval's strcmp), so a larger id wins a tie."""
    order = sorted(range(len(ids)), key=lambda i: ids[i].encode("utf-8"))
    ranks = np.empty(len(ids), dtype=np.int64)
    ranks[order] = np.arange(len(ids))
    return ranks


PROGRESS_DELAY = 2.0  # seconds: a pass that ends sooner shows no bar (small pools, tests, compare)


def _progress(options: EngineOptions, total: int, desc: str, unit: str) -> tqdm:
    """The engine's bars: only for passes longer than :data:`PROGRESS_DELAY`."""
    return tqdm(total=total, desc=desc, unit=unit, disable=not options.progress, delay=PROGRESS_DELAY)


NONFINITE = (
    "the model's embeddings contain NaN or infinite values, so nothing can be ranked "
    "(did its training diverge?)"
)
#: rows whose largest |value| lies outside [2^-32, 2^32] are rescaled before float32 normalisation
SAFE_PEAK = 2.0**32


def in_safe_range(emb: np.ndarray) -> np.ndarray:
    """``emb`` with each row whose largest |value| lies outside [2^-32, 2^32] scaled by a power of two
    to a largest |value| in [0.5, 1).

    Why: a float32 norm squares the values, so rows of 1e25 overflow to inf and rows of 1e-30 underflow
    to 0, and their cosine is wrong although the direction is fine. A power of two changes only the
    exponent (exact), so those rows normalise like the same vectors at an ordinary scale, and other
    rows are not touched: ordinary embeddings give the same bits as without this step.
    """
    if emb.ndim != 2 or emb.size == 0:
        return emb
    peak = np.maximum(emb.max(axis=1), -emb.min(axis=1)).astype(np.float64)
    extreme = ((peak > SAFE_PEAK) | (peak < 1 / SAFE_PEAK)) & (peak > 0)
    if not extreme.any():
        return emb
    out = np.array(emb, dtype=np.float32)
    _, exponent = np.frexp(peak[extreme])
    out[extreme] = np.ldexp(out[extreme].astype(np.float64), -exponent[:, None]).astype(np.float32)
    return out


@dataclass(frozen=True)
class MappedMatrix:
    """Where a memory-mapped matrix lives, so another process can map the same file."""

    filename: str
    offset: int
    shape: tuple[int, ...]
    dtype: str

    @classmethod
    def of(cls, array: np.memmap) -> MappedMatrix | None:
        """The layout of a C-contiguous map, a contiguous slice of one included (a slice keeps its
        parent's ``offset``, so its own is found from the root map's data address); else None."""
        root: Any = array
        while isinstance(getattr(root, "base", None), np.ndarray):
            root = root.base
        if not isinstance(root, np.memmap) or not root.filename or not array.flags.c_contiguous:
            return None
        offset = int(root.offset) + (array.ctypes.data - root.ctypes.data)
        return cls(str(root.filename), offset, tuple(array.shape), array.dtype.str)

    def open(self) -> np.memmap:
        try:
            return np.memmap(self.filename, self.dtype, "r", self.offset, self.shape)
        except OSError as err:
            raise UserError(
                f"embedding matrix {self.filename}: {err.strerror or err} (the embedding cache must be on "
                "storage every worker reaches)"
            ) from None


@dataclass
class DenseScoreMatrix:
    """A dense model's :class:`~hybrid_plugin.scoring.retriever.ScoreMatrix`: dot products of query and
    candidate embeddings, read block by block.

    ``cand_emb`` may be an in-memory array or an ``np.memmap`` of the embedding store: only the rows of
    the block being scored are read (and normalised, for cosine models), so the candidate matrix is
    never held whole. Queries are few and live on the device.
    """

    query_emb: torch.Tensor  # (unique query texts, dim), float32, normalised for cosine models
    query_row: np.ndarray  # query -> row of query_emb
    cand_emb: np.ndarray  # (unique candidate texts, dim), float32 as stored (not normalised)
    cand_row: np.ndarray  # candidate -> row of cand_emb
    tie: torch.Tensor  # candidate -> id tie rank (int64)
    normalize: bool = True
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    _block: tuple[Any, torch.Tensor] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        pool: Pool,
        query_emb: np.ndarray,
        query_row: np.ndarray,
        cand_emb: np.ndarray,
        cand_row: np.ndarray,
        normalize: bool = True,
        device: str | torch.device | None = None,
    ) -> DenseScoreMatrix:
        q = torch.from_numpy(np.ascontiguousarray(query_emb, dtype=np.float32))
        if not torch.isfinite(q).all():
            raise UserError(NONFINITE)
        if normalize:
            q = torch.nn.functional.normalize(torch.from_numpy(in_safe_range(q.numpy())), dim=1)
        if not isinstance(cand_emb, np.memmap):
            cand_emb = np.ascontiguousarray(cand_emb, dtype=np.float32)
            if not np.isfinite(cand_emb).all():
                raise UserError(NONFINITE)
        elif cand_emb.dtype != np.float32:
            raise UserError(f"candidate embeddings are {cand_emb.dtype}, expected float32")
        device = torch.device(device) if device is not None else torch.device("cpu")
        return cls(
            query_emb=q.to(device),
            query_row=np.asarray(query_row, dtype=np.int64),
            cand_emb=cand_emb,
            cand_row=np.asarray(cand_row, dtype=np.int64),
            tie=torch.from_numpy(id_tie_rank(pool.cand_ids)),
            normalize=normalize,
            device=device,
        )

    def on(self, device: torch.device) -> DenseScoreMatrix:
        """The same scorer computing on ``device`` (candidate blocks move there as they are read)."""
        return replace(self, query_emb=self.query_emb.to(device), device=device, _block=None)

    def __getstate__(self) -> dict:
        """Pickled for other workers without the block cache; a memory-mapped candidate matrix travels
        as its file's name and layout, and each worker maps the file again (on storage it reaches)."""
        state = dict(self.__dict__)
        state["_block"] = None
        emb = self.cand_emb
        mapped = MappedMatrix.of(emb) if isinstance(emb, np.memmap) else None
        if mapped is not None:  # else (a non-contiguous view) it pickles as its data
            state["cand_emb"] = mapped
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state.get("cand_emb"), MappedMatrix):
            state["cand_emb"] = state["cand_emb"].open()
        self.__dict__.update(state)

    def candidate_rows(self, rows: np.ndarray) -> torch.Tensor:
        """Candidate embeddings of store ``rows`` on the device, normalised as the model ranks them
        (row-wise, so a block's values equal the whole matrix's)."""
        if len(rows) and rows[-1] - rows[0] == len(rows) - 1 and bool((np.diff(rows) == 1).all()):
            block = read_rows(self.cand_emb, int(rows[0]), int(rows[-1]) + 1)
        else:
            block = gather_rows(self.cand_emb, rows)
        block = np.ascontiguousarray(block, dtype=np.float32)
        if isinstance(self.cand_emb, np.memmap) and not np.isfinite(block).all():  # in memory: checked
            raise UserError(NONFINITE)
        if self.normalize:
            block = in_safe_range(block)
        c = torch.from_numpy(block if block.flags.writeable else block.copy())  # a read-only memmap
        if self.normalize:
            c = torch.nn.functional.normalize(c, dim=1)
        return c.to(self.device)

    def scores_at(self, queries: np.ndarray, cands: slice | np.ndarray) -> torch.Tensor:
        """float32 scores (len(queries), candidates) against a candidate range or index array.

        The last candidate range is kept, so consecutive tiles of one candidate block read it once.
        """
        if isinstance(cands, slice):
            key: Any = (cands.start, cands.stop)
        else:  # the same sample or union asked for again (rank correlation's chunks)
            key = (
                len(cands),
                hashlib.blake2b(np.ascontiguousarray(cands).tobytes(), digest_size=16).digest(),
            )
        if self._block is not None and self._block[0] == key:
            c = self._block[1]
        else:
            c = self.candidate_rows(self.cand_row[cands])
            self._block = (key, c)
        q = self.query_emb[torch.from_numpy(self.query_row[queries]).to(self.device)]
        return padded_matmul(q, c)

    def scores(self, queries: np.ndarray) -> torch.Tensor:
        """float32 scores (len(queries), n_candidates): the whole rows (small pools, tests)."""
        return self.scores_at(queries, slice(0, len(self.cand_row)))

    def all_candidate_embeddings(self) -> np.ndarray:
        """One (normalised) row per candidate: for the alignment probes, which sample from it."""
        return self.candidate_rows(self.cand_row).cpu().numpy()


def read_rows(matrix: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of a matrix. A memory-mapped file is read with a plain file read instead of
    touching its mapping, so the pages read do not stay in this process's resident memory."""
    mapped = MappedMatrix.of(matrix) if isinstance(matrix, np.memmap) and matrix.ndim == 2 else None
    if mapped is not None:  # its own offset: a slice of a map keeps its parent's ``offset`` attribute
        row_bytes = matrix.shape[1] * matrix.dtype.itemsize
        count = (stop - start) * matrix.shape[1]
        out = np.fromfile(
            mapped.filename, dtype=matrix.dtype, count=count, offset=mapped.offset + start * row_bytes
        )
        return out.reshape(stop - start, matrix.shape[1])
    return np.asarray(matrix[start:stop])


def gather_rows(matrix: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``matrix[rows]``. From a memory-mapped file the rows are read run by run with ``pread``: fancy
    indexing the mapping would fault in (and keep resident) the pages around every row, most of the
    file for a scattered sample."""
    mapped = MappedMatrix.of(matrix) if isinstance(matrix, np.memmap) and matrix.ndim == 2 else None
    if mapped is None or not len(rows):
        return np.asarray(matrix[rows])
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    wanted = rows[order]
    out = np.empty((len(rows), matrix.shape[1]), dtype=matrix.dtype)
    row_bytes = matrix.shape[1] * matrix.dtype.itemsize
    starts = np.flatnonzero(np.r_[True, np.diff(wanted) != 1])
    stops = np.r_[starts[1:], len(wanted)]
    fd = os.open(mapped.filename, os.O_RDONLY)
    try:
        for a, b in zip(starts.tolist(), stops.tolist()):
            data = os.pread(fd, (b - a) * row_bytes, mapped.offset + int(wanted[a]) * row_bytes)
            out[order[a:b]] = np.frombuffer(data, dtype=matrix.dtype).reshape(b - a, -1)
    finally:
        os.close(fd)
    return out


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


@dataclass
class RelevantKeys:
    """Every query's relevant candidates in ascending key order (worst ranked first), with their keys."""

    cand: np.ndarray  # (queries, w) candidate index, -1 = padding
    keys: np.ndarray  # (queries, w) int64, PAD_KEY on padding
    finite: np.ndarray  # (queries, w) bool: the score is finite (retrieved)


def relevant_keys(pool: Pool, scorer: Any, budget: int) -> RelevantKeys:
    """Keys of (query, relevant candidate) pairs, scored against the union of a query block's relevant
    candidates (a product of at least 16 × 16, so the bits equal those of every tile)."""
    rel_all = padded_relevant(pool)
    n_query, width = rel_all.shape
    tie = scorer.tie
    block = max(1, min(n_query, int(np.sqrt(max(budget, 1) / (16 * width)))))
    cand = np.full_like(rel_all, -1)
    keys = np.full(rel_all.shape, PAD_KEY, dtype=np.int64)
    finite = np.zeros(rel_all.shape, dtype=bool)
    for start in range(0, n_query, block):
        rel = rel_all[start : start + block]
        valid = rel >= 0
        union, position = np.unique(rel[valid], return_inverse=True)
        scores = block_scores(scorer, np.arange(start, start + len(rel)), union).cpu()
        col = np.zeros(rel.shape, dtype=np.int64)
        col[valid] = position
        rel_scores = scores.gather(1, torch.from_numpy(col))
        k = ordered_keys(rel_scores, tie[torch.from_numpy(np.where(valid, rel, 0))])
        k = torch.where(torch.from_numpy(valid), k, PAD_KEY)
        k, order = k.sort(dim=1)
        order = order.numpy()
        keys[start : start + len(rel)] = k.numpy()
        cand[start : start + len(rel)] = np.take_along_axis(rel, order, 1)
        finite[start : start + len(rel)] = np.take_along_axis(
            (torch.isfinite(rel_scores).numpy() & valid), order, 1
        )
    return RelevantKeys(cand, keys, finite)


@dataclass
class TiledRanking:
    """The outcome of one pass over all tiles: relevant ranks and, if asked, each (query, language)'s
    top-k keys and candidates (best first; ``-1`` / min key where a language has fewer candidates)."""

    ranks: RelevantRanks | None
    top_keys: np.ndarray | None  # (queries, languages, k) int64
    top_cands: np.ndarray | None
    plan: TilePlan
    tiles: int
    seconds: float

    def describe(self, options: EngineOptions) -> dict[str, Any]:
        return {
            "executor": options.executor.name,
            "device": str(options.torch_device()),
            **self.plan.describe(),
            "tiles": self.tiles,
        }


def rank_pool(
    pool: Pool,
    scorer: Any,
    options: EngineOptions | None = None,
    top_k: int = 0,
    ranks: bool = True,
) -> TiledRanking:
    """One pass over the (query block × candidate block) tiles: exact relevant ranks (per language and
    in the pool) and, for ``top_k`` > 0, each query's top k per candidate language."""
    options = options or EngineOptions()
    started = time.perf_counter()
    n_query, n_cand, n_lang = len(pool.query_ids), len(pool.cand_ids), len(pool.languages)
    width = padded_relevant(pool).shape[1] if ranks else 1
    plan = options.plan(n_query, n_cand, width)
    rel = relevant_keys(pool, scorer, plan.budget) if ranks else None
    empty = np.zeros((0, 0), dtype=np.int64)
    tasks = [
        TileTask(q0, q1, c0, c1, lang, rel.keys[q0:q1] if rel is not None else empty, top_k, ranks)
        for c0, c1, lang in plan.cand_ranges(pool.lang_slices())
        for q0, q1 in plan.query_ranges(n_query)
    ]
    above = np.zeros((n_query, rel.keys.shape[1], n_lang), dtype=np.int64) if rel is not None else None
    top_keys = top_cands = None
    tops: dict[tuple[int, int], list[TileCounts]] = {}
    bar = _progress(options, len(tasks), "ranking (tiles)", "tile")
    with bar:
        for group in rank_tiles(options.executor, scorer, tasks):
            for result in group:
                if above is not None:
                    above[result.q0 : result.q1, :, result.lang] += result.above
                if top_k:
                    tops.setdefault((result.q0, result.lang), []).append(result)
                bar.update(1)
    if top_k:
        top_keys = np.full((n_query, n_lang, top_k), np.iinfo(np.int64).min, dtype=np.int64)
        top_cands = np.full((n_query, n_lang, top_k), -1, dtype=np.int64)
        for (q0, lang), parts in tops.items():
            parts.sort(key=lambda r: r.c0)  # merge order does not change the result; fixed anyway
            q1 = parts[0].q1
            keys = np.zeros((q1 - q0, 0), dtype=np.int64)
            cands = np.zeros((q1 - q0, 0), dtype=np.int64)
            for part in parts:
                keys, cands = merge_top(keys, cands, part.top_keys, part.top_cands, top_k)
            top_keys[q0:q1, lang, : keys.shape[1]] = keys
            top_cands[q0:q1, lang, : cands.shape[1]] = cands
    out_ranks = None
    if rel is not None:
        valid = rel.cand >= 0
        lang = pool.cand_lang[np.where(valid, rel.cand, 0)]
        rank_lang = np.take_along_axis(above, lang[:, :, None], 2)[:, :, 0] + 1
        rank_pool = above.sum(2) + 1
        qcol = np.broadcast_to(np.arange(n_query)[:, None], valid.shape)
        out_ranks = RelevantRanks(
            query=qcol[valid],
            cand=rel.cand[valid],
            rank_lang=rank_lang[valid],
            rank_pool=rank_pool[valid],
            retrieved=rel.finite[valid],
        )
    return TiledRanking(out_ranks, top_keys, top_cands, plan, len(tasks), time.perf_counter() - started)


def relevant_ranks(
    pool: Pool, scorer: Any, chunk: int | None = None, options: EngineOptions | None = None
) -> RelevantRanks:
    """Ranks of every relevant candidate, per language and in the pool (``chunk``: query block)."""
    options = options or EngineOptions(progress=False)
    if chunk is not None and options.tile is None:
        options = replace(options, tile=TilePlan.fixed(chunk, max(len(pool.cand_ids), 1)))
    ranking = rank_pool(pool, scorer, options)
    assert ranking.ranks is not None
    return ranking.ranks


@dataclass
class PoolRankings:
    """What the language-bias measures need from each pool query's full ranking (multilingual pool).

    ``top_counts`` counts the retrieved candidates of each language among the query's first ``k``
    (trec_eval's order: score descending, id descending); ``top1_lang`` is the language of its first
    retrieved candidate (-1: none retrieved). ``pair_*`` hold, for every two queries of one parallel
    group in different languages, the Spearman correlation of their rankings of the whole pool (both
    orders of each pair; nan where a ranking is constant). ``rank_correlation`` says how that was
    computed: exactly, or on a seeded sample of candidates with its standard error.
    """

    k: int
    top1_lang: np.ndarray  # per query
    top_counts: np.ndarray  # (queries, languages)
    pair_query: np.ndarray
    pair_other: np.ndarray
    pair_corr: np.ndarray
    rank_correlation: dict[str, Any] = field(default_factory=dict)


def pool_top(
    pool: Pool, top_keys: np.ndarray, top_cands: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each query's pool top-1 language and per-language counts of its top k (retrieved only)."""
    n_query, n_lang, _ = top_keys.shape
    keys = top_keys.reshape(n_query, -1)
    cands = top_cands.reshape(n_query, -1)
    width = min(k, keys.shape[1])
    order = np.argsort(keys, axis=1)[:, ::-1][:, :width]  # keys are distinct (padding aside)
    best = np.take_along_axis(cands, order, 1)
    best_keys = np.take_along_axis(keys, order, 1)
    # a key's score part is -inf (not retrieved) below this; padding (no candidate) is the min key
    retrieved = (best >= 0) & np.isfinite(key_scores(torch.from_numpy(best_keys)).numpy())
    counts = np.zeros((n_query, n_lang), dtype=np.int64)
    rows = np.broadcast_to(np.arange(n_query)[:, None], best.shape)
    np.add.at(counts, (rows[retrieved], pool.cand_lang[best[retrieved]]), 1)
    top1 = (
        np.where(retrieved[:, 0], pool.cand_lang[np.maximum(best[:, 0], 0)], -1)
        if width
        else np.full(n_query, -1)
    )
    return top1, counts


def sorted_keys(scores: np.ndarray, threads: int = 1) -> np.ndarray:
    """Per row, (score, column) int64 keys in ascending score order: one SIMD sort per row, ``threads``
    row bands at a time (NumPy's sort releases the GIL). The score part is the float's order-preserving
    integer image, so equal scores (and only they) have equal high halves."""
    b, n = scores.shape
    floats = np.ascontiguousarray(scores, dtype=np.float32) + np.float32(0.0)  # -0.0 -> +0.0
    ints = floats.view(np.int32)
    ints = (ints ^ ((ints >> 31) & 0x7FFFFFFF)).astype(np.int64)  # monotone map of float order onto ints
    packed = (ints << 32) | np.arange(n, dtype=np.int64)
    bands = np.array_split(np.arange(b), max(1, min(threads, b)))
    if len(bands) > 1:
        with ThreadPoolExecutor(len(bands)) as pool:
            list(pool.map(lambda rows: packed[rows[0] : rows[-1] + 1].sort(axis=1), bands))
    else:
        packed.sort(axis=1)
    return packed


def ranks_from_sorted(packed: np.ndarray) -> np.ndarray:
    """Spearman's fractional ranks (descending, ties sharing the mean of their positions) per row, float64,
    from :func:`sorted_keys`'s output (or any row-wise order-preserving subsequence of it whose columns
    were renumbered 0..n-1)."""
    b, n = packed.shape
    col = torch.from_numpy(packed & 0xFFFFFFFF)
    score = packed >> 32
    # ascending positions s..e (0-based) of a run of equal scores: descending mean rank n - (s + e) / 2;
    # a position outside any run is its own run (s = e): rank n - s
    mean = torch.arange(n, 0, -1, dtype=torch.float64).expand(b, n)
    repeat = np.flatnonzero(score[:, 1:] == score[:, :-1])  # (row, j): position j + 1 equals j
    if len(repeat):
        row, j = np.divmod(repeat, n - 1)
        pos = row * n + j + 1  # flat positions equal to their predecessor
        first = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1] + 1])  # index in pos of each run's 2nd
        last = np.r_[first[1:] - 1, len(pos) - 1]
        starts_here = np.zeros(len(pos), dtype=bool)
        starts_here[first] = True
        run = np.cumsum(starts_here) - 1
        start, end = pos[first] - 1, pos[last]  # each run's first and last flat position
        members = np.r_[start, pos]  # every position inside a run
        lo, hi = np.r_[start, start[run]], np.r_[end, end[run]]
        mean = mean.contiguous().clone().view(-1)
        mean[torch.from_numpy(members)] = torch.from_numpy(n - ((lo + hi) - 2 * (lo // n) * n) / 2.0)
        mean = mean.view(b, n)
    return torch.empty(b, n, dtype=torch.float64).scatter_(1, col, mean).numpy()


def average_ranks_np(scores: np.ndarray, threads: int = 1) -> np.ndarray:
    """Per row, each candidate's 1-based rank by score descending, tied scores sharing the mean of their
    positions (Spearman's fractional ranks), float64."""
    return ranks_from_sorted(sorted_keys(scores, threads))


def _group_chunks(pool: Pool, queries: np.ndarray, max_rows: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Chunks of whole parallel groups (of the given pool queries), at most ``max_rows`` rows where a
    group allows: (queries in group order, group sizes)."""
    by_group = queries[np.argsort(pool.query_group[queries], kind="stable")]
    group_of = pool.query_group[by_group]
    starts = np.flatnonzero(np.r_[True, group_of[1:] != group_of[:-1]]) if len(by_group) else np.zeros(0, int)
    bounds = np.r_[starts, len(by_group)]
    out = []
    i = 0
    while i < len(starts):
        j = i + 1
        while j < len(starts) and bounds[j + 1] - bounds[i] <= max_rows:
            j += 1
        out.append((by_group[bounds[i] : bounds[j]], np.diff(bounds[i : j + 1])))
        i = j
    return out


def _correlations(pool: Pool, ranks: np.ndarray, queries: np.ndarray, sizes: np.ndarray, n: int):
    """Pairs (query, other, rho) of one chunk of whole groups from their average ranks. Each group's
    correlations are one product of its own rows, so no value depends on how groups were chunked."""
    ranks -= (n + 1) / 2  # the mean rank, whatever the ties
    with np.errstate(invalid="ignore", divide="ignore"):
        ranks /= np.sqrt(np.einsum("ij,ij->i", ranks, ranks))[:, None]  # all tied: nan, no correlation
    out_q, out_o, out_c = [], [], []
    offsets = np.r_[0, np.cumsum(sizes)]
    for g, m in enumerate(sizes):
        if m < 2:
            continue
        rows = ranks[offsets[g] : offsets[g + 1]]
        corr = rows @ rows.T
        members = queries[offsets[g] : offsets[g + 1]]
        a, o = np.nonzero(pool.query_lang[members][:, None] != pool.query_lang[members][None, :])
        out_q.append(members[a])
        out_o.append(members[o])
        out_c.append(corr[a, o])
    return out_q, out_o, out_c


def _macro_mean_corr(pool: Pool, pq: np.ndarray, pc: np.ndarray) -> float:
    """The reported aggregate: mean per query over its pairs, per query language, macro."""
    n_query = len(pool.query_ids)
    ok = ~np.isnan(pc)
    total = np.bincount(pq[ok], weights=pc[ok], minlength=n_query)
    count = np.bincount(pq[ok], minlength=n_query)
    has = count > 0
    per_query = np.where(has, total / np.maximum(count, 1), np.nan)
    means = [
        np.nanmean(per_query[has & (pool.query_lang == x)])
        for x in range(len(pool.languages))
        if (has & (pool.query_lang == x)).any()
    ]
    return float(np.mean(means)) if means else float("nan")


def rank_correlations(
    pool: Pool, scorer: Any, options: EngineOptions | None = None, chunk: int = 256, parts: int = 8
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Spearman's rho between the pool rankings of every two parallel queries in different languages.

    Exact (every candidate) up to ``options.rank_corr_exact_max`` candidates. Above, on a seeded uniform
    sample of ``options.rank_corr_sample`` candidates split into ``parts`` disjoint parts: each pair's rho
    is the mean of its rho on each part, and the standard error of the macro mean is the spread of the
    parts' macro means / sqrt(parts) (batch means). Cost: one sort per query of the candidates used,
    O(Q · n log n) time and O(chunk · n) memory.
    """
    options = options or EngineOptions(progress=False)
    n_cand = len(pool.cand_ids)
    exact = n_cand <= options.rank_corr_exact_max
    if exact:
        cands: slice | np.ndarray = slice(0, n_cand)
        n = n_cand
    else:
        rng = np.random.default_rng(options.rank_corr_seed)
        n = min(options.rank_corr_sample, n_cand)
        n -= n % parts  # disjoint parts of equal size for the batch-means standard error
        cands = np.sort(rng.choice(n_cand, size=n, replace=False))
    in_groups = np.bincount(pool.query_group, minlength=len(pool.group_names))[pool.query_group] >= 2
    queries = np.flatnonzero(in_groups)
    budget = options.max_memory or default_budget(options.torch_device())  # not the tile plan's
    rows = max(1, min(chunk, budget // max(1, n * 40)))
    pieces: list[list[np.ndarray]] = [[], [], []]
    part_pieces: list[list[list[np.ndarray]]] = [[[], []] for _ in range(parts)] if not exact else []
    part_of = None
    if not exact:
        part_of = np.random.default_rng(options.rank_corr_seed + 1).permutation(n) % parts
    chunks = _group_chunks(pool, queries, rows)
    threads = torch.get_num_threads()
    bar = _progress(options, len(queries), "rank correlation", "query")
    with bar:
        for members, sizes in chunks:
            scores = block_scores(scorer, members, cands).cpu().numpy()
            if part_of is None:
                for acc, new in zip(
                    pieces, _correlations(pool, average_ranks_np(scores, threads), members, sizes, n)
                ):
                    acc += new
                bar.update(len(members))
                continue
            # sampled: rho on each of the disjoint parts; the estimate is their mean, its error their spread
            per_part = []
            for p in range(parts):
                sub = scores[:, part_of == p]
                q, o, c = _correlations(pool, average_ranks_np(sub, threads), members, sizes, sub.shape[1])
                part_pieces[p][0] += q
                part_pieces[p][1] += c
                per_part.append(c)
            pieces[0] += q
            pieces[1] += o
            pieces[2] += [np.mean(np.stack([np.concatenate(c) for c in per_part]), axis=0)] if q else []
            bar.update(len(members))
    cat = lambda parts_, dtype: np.concatenate(parts_) if parts_ else np.zeros(0, dtype=dtype)  # noqa: E731
    pq, po, pc = cat(pieces[0], np.int64), cat(pieces[1], np.int64), cat(pieces[2], np.float64)
    info: dict[str, Any] = {"method": "exact" if exact else "sample", "candidates": n}
    if not exact:
        estimates = [_macro_mean_corr(pool, cat(q, np.int64), cat(c, np.float64)) for q, c in part_pieces]
        info.update(
            seed=options.rank_corr_seed,
            pool_candidates=n_cand,
            parts=parts,
            standard_error=float(np.std(estimates, ddof=1) / np.sqrt(parts)) if parts > 1 else None,
        )
    return pq, po, pc, info


def pool_rankings(
    pool: Pool,
    scorer: Any,
    k: int = 10,
    chunk: int = 256,
    options: EngineOptions | None = None,
    ranking: TiledRanking | None = None,
) -> PoolRankings:
    """Top-k languages and cross-language rank correlations of every pool query (see
    :class:`PoolRankings`); ``ranking``: a tile pass that already holds each query's top k."""
    options = options or EngineOptions(progress=False)
    if ranking is None or ranking.top_keys is None or ranking.top_keys.shape[2] < k:
        ranking = rank_pool(pool, scorer, options, top_k=k, ranks=False)
    top1, counts = pool_top(pool, ranking.top_keys, ranking.top_cands, k)
    pq, po, pc, info = rank_correlations(pool, scorer, options, chunk=chunk)
    return PoolRankings(k, top1, counts, pq, po, pc, info)
