"""Turn what a user passes as ``--model`` (or as ``model=`` in Python) into a retriever, once, at the edge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hybrid_plugin.errors import UserError
from hybrid_plugin.models.ref import ModelRef, resolve_model
from hybrid_plugin.scoring.bm25 import BM25Params, BM25Retriever  # Java starts only when used
from hybrid_plugin.scoring.debias import debias_retriever, resolve_fit
from hybrid_plugin.scoring.dense import DenseRetriever, Encoder, SentenceTransformerEncoder
from hybrid_plugin.scoring.muse import MUSE_MODEL, MUSEEncoder
from hybrid_plugin.scoring.plugin import PluginEncoder, TextEncoder, is_plugin_spec, load_factory
from hybrid_plugin.scoring.retriever import Retriever

BM25_MODEL = "bm25"  # --model bm25: the Lucene BM25 baseline (a folder of that name: --model ./bm25)
# --model muse: USE multilingual v3 (a folder of that name: --model ./muse)


def resolve_retriever(
    model: Any = None,
    *,
    batch_size: int = 64,
    cache_root: Path | None = None,
    debias: str | None = None,
    task: str | None = None,
    encoding: Any = None,
    device: str | None = None,
    query_prompt: str | None = None,
    document_prompt: str | None = None,
    debias_fit: Any = None,
) -> Retriever:
    """``None``/``"default"``/a folder/a hub id → dense; ``"muse"`` → USE multilingual v3;
    ``"module:factory"`` → dense over the plug-in the factory returns; ``"bm25"`` or ``BM25Params`` →
    BM25; an :class:`~hybrid_plugin.scoring.dense.Encoder` or any object with ``encode``
    (:class:`~hybrid_plugin.scoring.plugin.TextEncoder`) → dense over it; a retriever as is.

    ``cache_root`` is the embedding store of dense retrievers (``None``: no persistent cache);
    ``debias`` wraps the retriever (``"center"``, ``"lsar[:R]"``, ``"leace"``) fitted on ``debias_fit``
    (``"pool"``/None, a ``.jsonl``/``.npz`` path, :class:`FitTexts` or a :class:`Debiaser`); ``task`` is
    the pool's task (MTEB-protocol plug-ins need its MTEB metadata); ``encoding`` encodes a dense retriever's
    missing texts elsewhere first (``RayEncoding``: Ray Data into the same store). ``device`` is where a
    SentenceTransformer model encodes; ``query_prompt``/``document_prompt`` replace its config's prompts
    (a model with none and none given gets one warning: E5-style models lose much without theirs).
    """
    prompts = (query_prompt, document_prompt)
    if (
        isinstance(model, ModelRef)
        or model is None
        or (isinstance(model, str) and model not in (BM25_MODEL, MUSE_MODEL) and not is_plugin_spec(model))
    ):
        model = (model if isinstance(model, ModelRef) else resolve_model(model)).configured(device, *prompts)
    elif prompts != (None, None):
        what = model if isinstance(model, str) else type(model).__name__
        raise UserError(
            f"--query-prompt/--document-prompt: {what} is not a SentenceTransformer model "
            "(a plug-in or baseline applies its own prompts)"
        )
    retriever = _retriever(model, batch_size, cache_root, task, encoding)
    if debias in (None, "", "none"):
        return retriever
    return debias_retriever(retriever, debias, resolve_fit(debias_fit))


def _retriever(
    model: Any, batch_size: int, cache_root: Path | None, task: str | None, encoding: Any = None
) -> Retriever:
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
    elif model == MUSE_MODEL:
        encoder = MUSEEncoder()
    elif isinstance(model, str) and is_plugin_spec(model):
        plugin, fingerprint = load_factory(model)
        encoder = PluginEncoder(plugin, fingerprint=fingerprint, source=model, task=task)
    elif model is None or isinstance(model, str):
        encoder = SentenceTransformerEncoder(resolve_model(model))
    elif isinstance(model, TextEncoder):
        encoder = PluginEncoder(model, task=task)
    else:
        raise TypeError(
            f"cannot evaluate a {type(model).__name__}: pass a model name/folder, an object with encode, "
            "an Encoder or a Retriever"
        )
    return DenseRetriever(encoder, batch_size=batch_size, cache_root=cache_root, encoding=encoding)
