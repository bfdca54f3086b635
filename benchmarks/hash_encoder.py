"""A cost-free deterministic encoder for scaling runs: ``--model benchmarks.hash_encoder:factory``.

Each text becomes a pseudo-random 384-d float32 vector seeded by a hash of its UTF-8 bytes, so
encoding costs microseconds and a scaling run times only the data path, the embedding store and the
engine. Equal texts get equal vectors in every process and on every machine (no global RNG state).
The numbers it yields are meaningless as retrieval quality; they are exact and repeatable, which is
all a timing run needs.
"""

from __future__ import annotations

import hashlib

import numpy as np

DIM = 384
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, vectorised (uint64 arithmetic wraps, which is what it wants)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def hash_embed(texts: list[str], dim: int = DIM) -> np.ndarray:
    """One vector per text, uniform in [-1, 1) per coordinate, from blake2b(text) and splitmix64."""
    seeds = np.fromiter(
        (int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(), "little") for t in texts),
        dtype=np.uint64,
        count=len(texts),
    )
    with np.errstate(over="ignore"):
        x = seeds[:, None] + _GOLDEN * np.arange(1, dim + 1, dtype=np.uint64)[None, :]
        bits = _splitmix64(x) >> np.uint64(40)  # 24 random bits: exact in float32
    return (bits.astype(np.float32) * np.float32(2.0**-23) - np.float32(1.0)).astype(np.float32)


class HashEncoder:
    """The plug-in object (sentence-transformers call shape)."""

    name = "hash-encoder-384"
    fingerprint = "benchmarks.hash_encoder v1 blake2b-8 splitmix64 dim 384"
    similarity = "cosine"

    def encode(self, texts: list[str], prompt_name: str | None = None, **_: object) -> np.ndarray:
        """``prompt_name`` is ignored: queries and documents share one map (so a text is one vector)."""
        return hash_embed(list(texts))


def factory() -> HashEncoder:
    """What ``--model benchmarks.hash_encoder:factory`` calls."""
    return HashEncoder()
