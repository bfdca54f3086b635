"""The retriever protocol the engine scores with, and what a scored pool carries into the results.

Three ideas, three names: a :class:`Retriever` scores a pool; the :class:`ScoreMatrix` is the
(queries × candidates) scores it produces, read block by block by the ranking kernel; a
:class:`Retrieval` is that matrix with what the results record about the retriever. The aggregate
measures computed from the ranks are :class:`~hybrid_plugin.evaluation.results.Scores`, one layer up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from hybrid_plugin.data.pool import Pool

if TYPE_CHECKING:  # annotations only: importing the protocol must not import torch
    import torch


@runtime_checkable
class ScoreMatrix(Protocol):
    """Scores of queries against every candidate of the pool (``-inf``: not retrieved).

    A matrix in meaning, not in memory: the kernel asks for rows (or tiles, see
    :func:`~hybrid_plugin.scoring.tiles.block_scores`) as it needs them. Implemented by
    :class:`~hybrid_plugin.scoring.ranking.DenseScoreMatrix` and
    :class:`~hybrid_plugin.scoring.bm25.BM25ScoreMatrix`.
    """

    tie: torch.Tensor  # candidate -> id tie rank (int64), trec_eval's tie order

    def scores(self, queries: np.ndarray) -> torch.Tensor: ...


@dataclass
class Retrieval:
    """One retriever's scoring of a pool: its score matrix, with what the results record about it."""

    matrix: ScoreMatrix
    model: dict[str, Any]  # the results' ``model`` block: name, fingerprint, prompts, similarity, ...
    device: str
    versions: dict[str, str]
    counts: dict[str, Any] = field(default_factory=dict)  # e.g. unique_texts, texts_encoded
    timings: dict[str, float] = field(default_factory=dict)  # at least encode_s
    tag: str = "hybrid_plugin"  # run tag of TREC files
    artifacts: dict[str, bytes] = field(default_factory=dict)  # files kept beside the results (name -> bytes)


@runtime_checkable
class Retriever(Protocol):
    """Anything that can score a pool: one new class is one new kind of retriever."""

    def score(self, pool: Pool) -> Retrieval: ...
