"""Exact ranks in bounded memory: (query block × candidate block) tiles sized from a memory budget.

For a query q and a relevant candidate r, trec_eval's rank is ``1 + #{c : key(q, c) > key(q, r)}`` with
the key (score descending, id descending) of :func:`~hybrid_plugin.scoring.ranking.ordered_keys`.
That count is a sum over candidate blocks, so a tile returns, for each of its queries and each of the
query's relevant candidates, how many of the block's candidates rank above it, and tiles merge by
addition, in any order, on any worker. Candidate blocks never straddle two languages, so the same
counts give the rank per language and in the pool. Top-k lists (the pool's top-10 languages, runs for
TREC files and ir-measures) come from each tile's top k merged across blocks: exact, because every key
is distinct (the id rank is part of it).

Nothing of size queries × candidates is ever held: a tile's working set is at most the budget, and the
accumulators are (queries × relevant per query × languages) counts plus (queries × languages × k) keys.
Cost: one score per (query, candidate), i.e. O(Q·C·dim) arithmetic, plus O(Q·C) passes over the tile
(keys, a batched binary search into at most ``w`` relevant keys, a histogram): linear in the pool.

Scores must not depend on the tile: a float32 matrix product's element (i, j) does depend on the shape
of the call on small operands (BLAS picks other kernels below 16 rows or columns). Every product here
is therefore made on operands of at least :data:`MIN_GEMM` rows and columns (zero-padded), which gives
the same bits as one big product (tested on 1-query × 7-candidate tiles).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from hybrid_plugin.errors import UserError

PAD_KEY = torch.iinfo(torch.int64).max
MIN_GEMM = 16
#: working bytes per tile element: float32 score, int64 key, int64 slot, int64 histogram bin, masks
BYTES_PER_ELEMENT = 40
DEFAULT_SHARE = 0.25  # of the memory the machine has available, for the engine's working set
DEFAULT_CAP = 1 << 30  # larger tiles do not run faster; leave the rest to the rest of the process
MIN_BUDGET = 16 << 20
MAX_QUERY_BLOCK = 1024

_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(i?b)?\s*", re.IGNORECASE)


def check_device(text: str | None, option: str = "--device") -> str | None:
    """``cpu``, ``cuda`` or ``cuda:N`` that torch can use here, else one UserError naming the option
    (before any model is loaded: a typo must not cost an encoding)."""
    if text is None:
        return None
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise UserError(f"{option} {text}: expected cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise UserError(f"{option} {text}: expected cpu, cuda or cuda:N")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise UserError(f"{option} {text}: torch sees {count} CUDA device(s) here")
    return text


def parse_memory(text: str | int | None) -> int | None:
    """Bytes of ``--max-memory`` (``512M``, ``2G``, ``1.5GiB``, plain bytes); ``None``: the default."""
    if text is None or text == "":
        return None
    if isinstance(text, int):
        value = text
    else:
        match = _SIZE.fullmatch(str(text))
        if not match:
            raise UserError(f"--max-memory {text!r}: expected a size such as 512M, 2G or 1.5GiB")
        scale = 1024 ** "bkmgt".index((match[2] or "b").lower())
        value = int(float(match[1]) * scale)
    if value < MIN_BUDGET:
        raise UserError(f"--max-memory {text}: at least {MIN_BUDGET >> 20} MiB is needed for the tiles")
    return value


def available_memory() -> int | None:
    """Bytes the kernel says are available (Linux ``MemAvailable``), else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_budget(device: torch.device | None = None) -> int:
    """A safe share of free memory (of the GPU's, on CUDA), capped: the engine's tile working set."""
    if device is not None and device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return max(MIN_BUDGET, int(free * DEFAULT_SHARE))
    free = available_memory() or (4 << 30)
    return max(MIN_BUDGET, min(DEFAULT_CAP, int(free * DEFAULT_SHARE)))


@dataclass(frozen=True)
class TilePlan:
    """How the (queries × candidates) plane is cut. ``query_block`` / ``cand_block`` are the largest
    tile sides; candidate blocks are also cut at language boundaries."""

    query_block: int
    cand_block: int
    budget: int  # bytes

    @classmethod
    def from_budget(cls, n_query: int, n_cand: int, budget: int | None = None, width: int = 1) -> TilePlan:
        """The widest tiles that fit ``budget`` (default :func:`default_budget`)."""
        budget = budget or default_budget()
        query_block = max(1, min(n_query, MAX_QUERY_BLOCK))
        per_row = BYTES_PER_ELEMENT + 16 * width  # the row's relevant keys are small but not free
        cand_block = max(MIN_GEMM, min(max(n_cand, 1), budget // (per_row * query_block)))
        return cls(query_block, int(cand_block), budget)

    @classmethod
    def fixed(cls, query_block: int, cand_block: int) -> TilePlan:
        """Given tile sides (tests, ``--tile QxC``)."""
        if query_block < 1 or cand_block < 1:
            raise UserError(f"--tile {query_block}x{cand_block}: both sides must be at least 1")
        return cls(query_block, cand_block, query_block * cand_block * BYTES_PER_ELEMENT)

    def query_ranges(self, n_query: int) -> list[tuple[int, int]]:
        return [(a, min(a + self.query_block, n_query)) for a in range(0, n_query, self.query_block)]

    def cand_ranges(self, lang_slices: Sequence[slice]) -> list[tuple[int, int, int]]:
        """(start, stop, language) of every candidate block, in pool order."""
        out = []
        for lang, sl in enumerate(lang_slices):
            for a in range(sl.start, sl.stop, self.cand_block):
                out.append((a, min(a + self.cand_block, sl.stop), lang))
        return out

    def describe(self) -> dict[str, int]:
        return {"query_block": self.query_block, "cand_block": self.cand_block, "budget_bytes": self.budget}


def parse_tile(text: str) -> TilePlan:
    """``--tile QxC`` (e.g. ``1x7``): fixed tile sides instead of the budget's."""
    match = re.fullmatch(r"\s*([0-9]+)\s*[xX×]\s*([0-9]+)\s*", text or "")
    if not match:
        raise UserError(f"--tile {text!r}: expected QUERIESxCANDIDATES, e.g. 256x65536")
    return TilePlan.fixed(int(match[1]), int(match[2]))


# ------------------------------------------------------------------------------------------------
# Scores of a block: the scorer protocol's optional fast path, and a fallback for plain scorers


def block_scores(scorer: Any, queries: np.ndarray, cands: slice | np.ndarray) -> torch.Tensor:
    """float32 scores (len(queries), candidates) of ``queries`` against ``cands`` (a range or indices).

    Score matrices with ``scores_at`` compute only the block; one with only ``scores(queries)`` (the
    :class:`~hybrid_plugin.scoring.retriever.ScoreMatrix` protocol) is asked for the whole row and cut,
    which is exact but not bounded in memory.
    """
    at = getattr(scorer, "scores_at", None)
    if at is not None:
        return at(queries, cands)
    full = scorer.scores(queries)
    if isinstance(cands, slice):
        return full[:, cands]
    return full.index_select(1, torch.from_numpy(np.asarray(cands, dtype=np.int64)))


def padded_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b.T`` with both operands padded to at least :data:`MIN_GEMM` rows, so an element's bits do
    not depend on how many rows or columns were multiplied with it (see the module docstring)."""
    m, n = a.shape[0], b.shape[0]
    if m < MIN_GEMM:
        a = torch.cat([a, a.new_zeros(MIN_GEMM - m, a.shape[1])])
    if n < MIN_GEMM:
        b = torch.cat([b, b.new_zeros(MIN_GEMM - n, b.shape[1])])
    out = a @ b.T
    return out[:m, :n] if (m < MIN_GEMM or n < MIN_GEMM) else out


def ordered_keys(scores: torch.Tensor, tie: torch.Tensor) -> torch.Tensor:
    """int64 keys whose order is trec_eval's ranking order (larger key = ranked higher)."""
    s = (scores.to(torch.float32) + 0.0).contiguous()  # -0.0 -> +0.0, as float comparison has them equal
    bits = s.view(torch.int32).to(torch.int64)
    bits = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)  # monotone map of float order onto ints
    return (bits << 32) | tie


# ------------------------------------------------------------------------------------------------
# One tile


@dataclass
class TileTask:
    """A tile: queries ``q0:q1`` against candidates ``c0:c1`` (all of language ``lang``).

    ``rel_keys`` (queries × w, ascending, padded with :data:`PAD_KEY`) are the keys of each query's
    relevant candidates; ``k`` > 0 asks for the tile's top-k keys per query as well.
    """

    q0: int
    q1: int
    c0: int
    c1: int
    lang: int
    rel_keys: np.ndarray
    k: int = 0
    count: bool = True  # False: only the top k (runs, the pool's top languages)


@dataclass
class TileCounts:
    """What a tile returns: small arrays, merged by addition (``above``) and top-k merge."""

    q0: int
    q1: int
    c0: int
    lang: int
    above: np.ndarray | None  # (queries, w) int64: the block's candidates ranked above relevant slot j
    top_keys: np.ndarray | None = None  # (queries, <= k) int64, best first
    top_cands: np.ndarray | None = None  # (queries, <= k) candidate index


def rank_tile(scorer: Any, task: TileTask) -> TileCounts:
    """Count, for each query and relevant slot of ``task``, the candidates of the block ranked above it."""
    queries = np.arange(task.q0, task.q1)
    scores = block_scores(scorer, queries, slice(task.c0, task.c1)).contiguous()
    tie = scorer.tie[task.c0 : task.c1].to(scores.device)
    result = TileCounts(task.q0, task.q1, task.c0, task.lang, None)
    if task.count:
        result.above = _count_above(scores, tie, task.rel_keys)
    if task.k:
        result.top_keys, result.top_cands = _tile_top(scores, tie, task.k, task.c0)
    return result


def key_scores(keys: torch.Tensor) -> torch.Tensor:
    """The float32 scores inside :func:`ordered_keys` keys (the inverse of its monotone map)."""
    mapped = keys >> 32
    return torch.where(mapped < 0, mapped ^ 0x7FFFFFFF, mapped).to(torch.int32).view(torch.float32)


def _count_above(scores: torch.Tensor, tie: torch.Tensor, relevant: np.ndarray) -> np.ndarray:
    """(queries, w): how many of the block's candidates have a key above each relevant key.

    A candidate's slot among a row's sorted relevant keys is found on the float scores (a batched binary
    search); only a candidate whose score equals a relevant one needs the id part of the key.
    """
    rel_keys = torch.from_numpy(relevant).to(scores.device)
    b, width = rel_keys.shape
    if width <= COMPARE_MAX_WIDTH:
        return _count_above_by_comparison(scores, tie, rel_keys)
    padding = rel_keys == PAD_KEY
    rel_scores = torch.where(padding, torch.inf, key_scores(rel_keys))  # ascending, like the keys
    floor = rel_scores[:, :1]  # only candidates scoring at least this can rank above any relevant one
    sample = scores[:, :: max(1, scores.shape[1] // 64)]  # the share above the floor, estimated cheaply
    if float((sample >= floor).float().mean()) < 0.3:  # sparse: key only the candidates that can count
        row, col = (scores >= floor).nonzero(as_tuple=True)
        keys = ordered_keys(scores[row, col], tie[col])
        slot = torch.searchsorted(rel_keys[row], keys.unsqueeze(1)).squeeze(1)
        bins = row * (width + 1) + slot
    else:
        slot = torch.searchsorted(rel_scores, scores)
        row, col = (slot != torch.searchsorted(rel_scores, scores, right=True)).nonzero(as_tuple=True)
        if len(row):  # equal to a relevant score: the id decides
            keys = ordered_keys(scores[row, col], tie[col])
            slot[row, col] = torch.searchsorted(rel_keys[row], keys.unsqueeze(1)).squeeze(1)
        slot += (torch.arange(b, device=scores.device) * (width + 1)).unsqueeze(1)
        bins = slot.flatten()
    hist = torch.bincount(bins, minlength=b * (width + 1)).view(b, width + 1)
    return hist.flip(1).cumsum(1).flip(1)[:, 1:].cpu().numpy()


COMPARE_MAX_WIDTH = 32  # up to this many relevant per query, w comparison passes beat a binary search


def _count_above_by_comparison(scores: torch.Tensor, tie: torch.Tensor, rel_keys: torch.Tensor) -> np.ndarray:
    """The same counts as :func:`_count_above` by one vectorised comparison pass per relevant slot:
    above_j = #(score > s_j) + #(score == s_j and id rank > t_j). Padding keys decode to NaN and count 0."""
    b, width = rel_keys.shape
    rel_scores = key_scores(rel_keys)
    rel_tie = rel_keys & 0xFFFFFFFF
    if scores.device.type == "cpu":  # NumPy counts a comparison ~20x faster than torch's bool sum
        return _count_by_comparison_np(scores.numpy(), tie.numpy(), rel_scores.numpy(), rel_tie.numpy())
    above = torch.empty(b, width, dtype=torch.int64, device=scores.device)
    for j in range(width):
        threshold = rel_scores[:, j : j + 1]
        above[:, j] = (scores > threshold).sum(1)
        tied = ((scores == threshold).sum(1) > 0).nonzero().squeeze(1)
        if len(tied):  # the relevant candidate itself, and any other with its exact score: ids decide
            rows = scores[tied]
            above[tied, j] += ((rows == threshold[tied]) & (tie > rel_tie[tied, j : j + 1])).sum(1)
    return above.cpu().numpy()


def _count_by_comparison_np(
    scores: np.ndarray, tie: np.ndarray, rel_scores: np.ndarray, rel_tie: np.ndarray
) -> np.ndarray:
    """:func:`_count_above_by_comparison` on the CPU, in NumPy."""
    b, width = rel_scores.shape
    above = np.empty((b, width), dtype=np.int64)
    with np.errstate(invalid="ignore"):  # padding slots are NaN: they count nothing
        for j in range(width):
            threshold = rel_scores[:, j : j + 1]
            above[:, j] = np.count_nonzero(scores > threshold, axis=1)
            tied = np.flatnonzero(np.count_nonzero(scores == threshold, axis=1))
            if len(tied):  # the relevant candidate itself, and any other with its exact score: ids decide
                rows = scores[tied]
                same = (rows == threshold[tied]) & (tie > rel_tie[tied, j : j + 1])
                above[tied, j] += np.count_nonzero(same, axis=1)
    return above


def _tile_top(scores: torch.Tensor, tie: torch.Tensor, k: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k best keys (score descending, id descending) and their candidates, exactly: the float
    top k is the key top k unless the k-th score is tied beyond k; such rows are keyed in full."""
    k = min(k, scores.shape[1])
    extra = min(k + 1, scores.shape[1])  # the (k+1)-th score tells whether the k-th is tied beyond k
    values, index = scores.topk(extra, dim=1)
    if values.numel() and bool(torch.isnan(values[:, 0]).any()):
        raise UserError("the scores contain NaN, so nothing can be ranked")
    threshold = values[:, k - 1 : k]
    spill = torch.zeros(0, dtype=torch.int64, device=scores.device)
    if extra > k:
        spill = (values[:, k - 1] == values[:, k]).nonzero().squeeze(1)
    values, index = values[:, :k], index[:, :k]
    keys = ordered_keys(values, tie[index])
    if len(spill):
        rows = scores[spill]
        full = torch.where(rows >= threshold[spill], ordered_keys(rows, tie), torch.iinfo(torch.int64).min)
        top = full.topk(k, dim=1)
        keys[spill], index[spill] = top.values, top.indices
    keys, order = keys.sort(dim=1, descending=True)
    return keys.cpu().numpy(), (index.gather(1, order) + offset).cpu().numpy()


def merge_top(
    keys: np.ndarray, cands: np.ndarray, new_keys: np.ndarray, new_cands: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of two (rows, ·) key lists (keys are distinct within a row; best first)."""
    all_keys = np.concatenate([keys, new_keys], axis=1)
    all_cands = np.concatenate([cands, new_cands], axis=1)
    k = min(k, all_keys.shape[1])
    order = np.argsort(all_keys, axis=1)[:, ::-1][:, :k]  # distinct keys: no tie to break
    return np.take_along_axis(all_keys, order, 1), np.take_along_axis(all_cands, order, 1)


# ------------------------------------------------------------------------------------------------
# Executors: where tiles run. Local runs them in this process; Ray (executors_ray) runs them as tasks.


class Executor(Protocol):
    """Runs ``fn(shared, task)`` for every task, yielding results in any order.

    ``shared`` is sent once per worker (the scorer: embeddings or sparse hits); tasks and results are
    small. Merges are exact in any order (integer addition, top-k of distinct keys).
    """

    name: str

    def map(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any]) -> Iterator[Any]: ...


@dataclass
class LocalExecutor:
    """Tiles one after the other in this process (torch uses the machine's cores inside each)."""

    name: str = "local"

    def map(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any]) -> Iterator[Any]:
        return (fn(shared, task) for task in tasks)


@dataclass
class EngineOptions:
    """How the engine works, not what it computes: tiles, memory, executor, device, rank correlation."""

    max_memory: int | None = None  # bytes for the tile working set; None: default_budget()
    tile: TilePlan | None = None  # fixed tile sides (tests, --tile); overrides max_memory
    executor: Executor = field(default_factory=LocalExecutor)
    device: str | None = None  # "cpu", "cuda", "cuda:1"; None: cuda where torch sees one, else cpu
    #: above this many candidates the mean rank correlation is estimated on a seeded candidate sample
    rank_corr_exact_max: int = 65_536
    rank_corr_sample: int = 65_536
    rank_corr_seed: int = 0
    progress: bool = True

    def plan(self, n_query: int, n_cand: int, width: int) -> TilePlan:
        if self.tile is not None:
            return self.tile
        return TilePlan.from_budget(
            n_query, n_cand, self.max_memory or default_budget(self.torch_device()), width
        )

    def torch_device(self) -> torch.device:
        if self.device:
            return torch.device(self.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def rank_tile_group(scorer: Any, tasks: Sequence[TileTask]) -> list[TileCounts]:
    """The tiles of one candidate block: the unit of work an executor ships (the block is read once)."""
    return [rank_tile(scorer, task) for task in tasks]


def rank_tiles(executor: Executor, scorer: Any, tasks: Iterable[TileTask]) -> Iterator[list[TileCounts]]:
    """Every tile's counts, one list per candidate block, in whatever order the executor finishes."""
    groups: dict[tuple[int, int], list[TileTask]] = {}
    for task in tasks:
        groups.setdefault((task.c0, task.c1), []).append(task)
    return executor.map(rank_tile_group, scorer, list(groups.values()))
