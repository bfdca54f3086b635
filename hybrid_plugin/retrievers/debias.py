"""Training-free de-biasing: language-mean centering (``--debias center``), a wrapper of a dense retriever.

Every embedding has the mean embedding of its language subtracted, then ranking is by the model's own
similarity (cosine re-normalises). Part of what makes a multilingual encoder prefer same-language
candidates is a language-specific offset shared by all texts of a language; removing it is the
simplest baseline a trained de-biasing method should beat (Libovický et al., 2020, "On the
Language Neutrality of Pre-trained Multilingual Representations").

**Which means.** Each language's mean is computed over the pool's *candidates* of that language, and a
query is centered with the candidate mean of its own language. This is transductive over the
collection but uses no query and no relevance label: a deployed system has every document of its
index, with its language, at indexing time, so it can compute these means there; queries are
centered with the means of the index (a query mean would need the test queries themselves). The
price is that the means come from the evaluated collection: a setting that must not look at the
collection would compute them on a separate text set instead. Cosine models' embeddings are
L2-normalised before averaging so every text weighs the same.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from hybrid_plugin.data.pool import Pool
from hybrid_plugin.errors import UserError
from hybrid_plugin.retrievers.base import Retriever, Scored
from hybrid_plugin.retrievers.dense import DenseRetriever, PoolEmbeddings

DEBIAS_METHODS = ("center",)
MEANS_FROM = "pool candidates of each language (queries: the candidate mean of their language)"


def _unit_rows(emb: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.where(norms > 0, norms, 1.0)


def language_means(pool: Pool, emb: PoolEmbeddings, normalize: bool) -> np.ndarray:
    """(languages, dim) float64 mean embedding of each language's candidates (every candidate counts,
    also a text shared by several candidates, as in the pool)."""
    cand = emb.cand[emb.cand_row].astype(np.float64)
    if normalize:
        cand = _unit_rows(cand)
    means = np.zeros((len(pool.languages), cand.shape[1]))
    for lang, rows in enumerate(pool.lang_slices()):
        if rows.stop > rows.start:
            means[lang] = cand[rows].mean(axis=0)
    return means


def center_by_language(pool: Pool, emb: PoolEmbeddings, normalize: bool) -> PoolEmbeddings:
    """Embeddings with their language's candidate mean subtracted, one row per query and candidate.

    A distinct text is embedded once but belongs to one language per row, so rows are expanded to
    one per query / candidate before centering.
    """
    means = language_means(pool, emb, normalize)
    query = emb.query[emb.query_row].astype(np.float64)
    cand = emb.cand[emb.cand_row].astype(np.float64)
    if normalize:
        query, cand = _unit_rows(query), _unit_rows(cand)
    query = (query - means[pool.query_lang]).astype(np.float32)
    cand = (cand - means[pool.cand_lang]).astype(np.float32)
    return PoolEmbeddings(
        query, np.arange(len(query)), cand, np.arange(len(cand)), emb.encoded, emb.seconds, emb.unique_texts
    )


def debiased_fingerprint(fingerprint: str, method: str) -> str:
    """The wrapped model's identity: a centered model never shares a key with the plain one."""
    return hashlib.sha256(f"{fingerprint}|debias={method}|means={MEANS_FROM}".encode()).hexdigest()


@dataclass
class CenteredRetriever:
    """Language-mean centering over a dense retriever (its embeddings still come from its store)."""

    inner: DenseRetriever

    def score(self, pool: Pool) -> Scored:
        emb = self.inner.embed_pool(pool)
        centered = center_by_language(pool, emb, normalize=self.inner.encoder.similarity == "cosine")
        model: dict[str, Any] = dict(self.inner.encoder.provenance())
        base = model.get("fingerprint")
        model["name"] = f"{model.get('name')} + center"
        model["fingerprint"] = debiased_fingerprint(base, "center") if base else None
        model["debias"] = {"method": "center", "means_from": MEANS_FROM, "base_fingerprint": base}
        return self.inner.scored(pool, centered, model)


def debias_retriever(retriever: Retriever, method: str | None) -> Retriever:
    """``retriever`` wrapped by the de-biasing ``method`` (``None``/``"none"``: as is)."""
    if method in (None, "", "none"):
        return retriever
    if method not in DEBIAS_METHODS:
        raise UserError(f"--debias {method}: expected one of none, {', '.join(DEBIAS_METHODS)}")
    if not isinstance(retriever, DenseRetriever):
        raise UserError(f"--debias {method} needs an embedding model; this retriever has no embeddings")
    return CenteredRetriever(retriever)
