"""Persistent embedding cache: one folder per (model fingerprint, prompt), append-only shards.

Each shard is an ``.npz`` (text hashes + float32 embeddings) written atomically, so an interrupted
run leaves every finished shard usable and never a corrupt one. Shards are read with
``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hybrid_plugin.atomic import atomic_path, write_text

HASH_BYTES = 16


def text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:HASH_BYTES]


class EmbeddingStore:
    """Embeddings of texts under one model fingerprint and prompt."""

    def __init__(self, root: Path, fingerprint: str, prompt: str, model_name: str = "") -> None:
        prompt_id = hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:12]
        self.folder = Path(root) / fingerprint[:32] / prompt_id
        self.prompt = prompt
        self._meta = {"model": model_name, "fingerprint": fingerprint, "prompt": prompt}
        self._index: dict[bytes, tuple[int, int]] = {}
        self._shards: list[np.ndarray] = []
        self._load()

    def _load(self) -> None:
        if not self.folder.is_dir():
            return
        for shard in sorted(self.folder.glob("*.npz")):
            try:
                with np.load(shard, allow_pickle=False) as data:
                    keys, emb = data["keys"], data["emb"]
            except (OSError, ValueError, KeyError):
                continue  # unreadable shard: its texts are simply encoded again
            s = len(self._shards)
            self._shards.append(emb)
            for i, k in enumerate(keys):
                self._index[k.tobytes()] = (s, i)

    def __len__(self) -> int:
        return len(self._index)

    def missing(self, texts: Sequence[str]) -> list[str]:
        """Texts (unique, in first-seen order) that have no stored embedding."""
        seen: dict[bytes, str] = {}
        for t in texts:
            h = text_hash(t)
            if h not in self._index and h not in seen:
                seen[h] = t
        return list(seen.values())

    def add(self, texts: Sequence[str], emb: np.ndarray) -> None:
        """Persist a shard atomically, then index it."""
        emb = np.ascontiguousarray(emb, dtype=np.float32)
        keys = np.frombuffer(b"".join(text_hash(t) for t in texts), dtype=np.uint8).reshape(-1, HASH_BYTES)
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self.folder / "meta.json"
        if not meta.exists():
            write_text(meta, json.dumps(self._meta, ensure_ascii=False, indent=1))
        target = self.folder / f"{uuid.uuid4().hex}.npz"
        with atomic_path(target, suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, keys=keys, emb=emb)
        s = len(self._shards)
        self._shards.append(emb)
        for i, k in enumerate(keys):
            self._index[k.tobytes()] = (s, i)

    def get(self, texts: Sequence[str]) -> np.ndarray:
        """Stacked embeddings of ``texts`` (all must be stored)."""
        locs = [self._index[text_hash(t)] for t in texts]
        if not locs:
            return np.zeros((0, 0), dtype=np.float32)
        dim = self._shards[locs[0][0]].shape[1]
        out = np.empty((len(locs), dim), dtype=np.float32)
        for j, (s, i) in enumerate(locs):
            out[j] = self._shards[s][i]
        return out

    def ensure(
        self,
        texts: Sequence[str],
        encode: Callable[[list[str]], np.ndarray],
        shard_size: int = 2048,
        desc: str = "encoding",
    ) -> int:
        """Encode and store every missing text, longest-first in shards; returns how many were encoded."""
        todo = sorted(self.missing(texts), key=len, reverse=True)
        if not todo:
            return 0
        with tqdm(total=len(todo), desc=desc, unit="text") as bar:
            for start in range(0, len(todo), shard_size):
                batch = todo[start : start + shard_size]
                self.add(batch, encode(batch))
                bar.update(len(batch))
        return len(todo)


def count_stored(root: Path) -> int:
    """Embeddings stored under ``root`` across every model and prompt (unreadable shards count 0)."""
    total = 0
    for shard in Path(root).rglob("*.npz"):
        try:
            with np.load(shard, allow_pickle=False) as data:
                total += len(data["keys"])
        except (OSError, ValueError, KeyError):
            continue
    return total
