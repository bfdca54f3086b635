"""Turn what a user passes as ``--model`` (or as ``model=`` in Python) into a retriever, once, at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hybrid_plugin.baselines.bm25 import BM25Params, BM25Retriever  # Java starts only when used
from hybrid_plugin.models.ref import ModelRef, resolve_model
from hybrid_plugin.retrievers.base import Retriever
from hybrid_plugin.retrievers.dense import DenseRetriever, Encoder, SentenceTransformerEncoder

BM25_MODEL = "bm25"  # --model bm25: the Lucene BM25 baseline (a folder of that name: --model ./bm25)


def resolve_retriever(
    model: Any = None, *, batch_size: int = 64, cache_root: Path | None = None
) -> Retriever:
    """``None``/``"default"``/a folder/a hub id → dense; ``"bm25"`` or ``BM25Params`` → BM25; an
    :class:`~hybrid_plugin.retrievers.dense.Encoder` → dense over it; a retriever is returned as is.

    ``cache_root`` is the embedding store of dense retrievers (``None``: no persistent cache).
    """
    if isinstance(model, Retriever):
        return model
    if isinstance(model, BM25Params):
        return BM25Retriever(model)
    if model == BM25_MODEL:
        return BM25Retriever(BM25Params())
    if isinstance(model, ModelRef):
        encoder: Encoder = SentenceTransformerEncoder(model)
    elif isinstance(model, Encoder):
        encoder = model
    elif model is None or isinstance(model, str):
        encoder = SentenceTransformerEncoder(resolve_model(model))
    else:
        raise TypeError(
            f"cannot evaluate a {type(model).__name__}: pass a model name/folder, an Encoder or a Retriever"
        )
    return DenseRetriever(encoder, batch_size=batch_size, cache_root=cache_root)
