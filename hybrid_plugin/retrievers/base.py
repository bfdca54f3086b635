"""The retriever protocol the engine scores with, and what a scored pool carries into the results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from hybrid_plugin.data.pool import Pool

if TYPE_CHECKING:  # annotations only: importing the protocol must not import torch
    import torch


@runtime_checkable
class RankScorer(Protocol):
    """Scores of queries against every candidate of the pool (``-inf``: not retrieved)."""

    tie: torch.Tensor  # candidate -> id tie rank (int64), trec_eval's tie order

    def scores(self, queries: np.ndarray) -> torch.Tensor: ...


@dataclass
class Scored:
    """A pool scored by a retriever, with what the results record about the retriever."""

    scorer: RankScorer
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

    def score(self, pool: Pool) -> Scored: ...
