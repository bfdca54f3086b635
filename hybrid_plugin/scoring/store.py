"""Persistent embedding cache: one folder per (model fingerprint, prompt), append-only shards.

Each shard is an ``.npz`` (text hashes + float32 embeddings + a sha256 over both) written
atomically, so an interrupted run leaves every finished shard usable and never a half-written one.
Shards are read with ``allow_pickle=False`` and checked on load (readable, as many keys as rows,
2-D float32 of the store's dimension, finite, and the sha256 that ties each row to its text, so rows
reordered or moved between shards are caught): a bad shard (a disk error, a copy gone wrong, a hand
edit) is moved to ``quarantine/`` with one warning and its texts are simply encoded again. A cache
that cannot be written (read-only, full) degrades to an in-memory one with one warning: results
never depend on it.

Memory does not grow with the store (10^7 texts are 15 GB at 384-d): a checked shard keeps only its
keys and where its embeddings lie in the file (``np.savez`` stores members uncompressed, so they can
be read in place); the index is one sorted array of keys (``searchsorted``), not a dict per text.
:meth:`EmbeddingStore.matrix` assembles the embeddings of many texts, block by block, into a ``.npy``
under ``matrices/`` (named by the hash of the requested texts, written atomically, reused by later
runs) and returns it memory-mapped, so a caller reads it in row blocks and never holds it whole.

Several processes may share a cache: shards are only ever added (each under a fresh name) or moved
aside, so a reader sees every shard whole or not at all; two runs missing the same texts both
encode them and store equal embeddings.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import struct
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hybrid_plugin.atomic import atomic_path, remove_dead_temp_files, write_text
from hybrid_plugin.errors import UserError, warn
from hybrid_plugin.paths import path_component

HASH_BYTES = 16
QUARANTINE = "quarantine"
MATRICES = "matrices"
#: assembled matrices kept per store folder (newest first); older ones are rebuilt when asked again
KEEP_MATRICES = 4
#: bytes of embeddings gathered at a time when a matrix is assembled or checked
BLOCK_BYTES = 64 * 2**20
META = "meta.json"
#: temp files of atomic writes (``.NAME.RANDOM[.npz].tmp``); older than this they belong to a dead run
TEMP_FILE = re.compile(r"\..+\.tmp")
STALE_TEMP_SECONDS = 3600
FINGERPRINT_DIR = re.compile(r"[0-9a-f]{32}")
PROMPT_DIR = re.compile(r"[0-9a-f]{12}")
#: the shard member holding :func:`shard_check`
CHECK = "check"
_CHECK_TAG = b"hybrid-plugin shard v1\0"


def text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:HASH_BYTES]


def text_hashes(texts: Sequence[str]) -> np.ndarray:
    """Every text's hash as a row of two uint64 (its bytes 0–7 and 8–15, big-endian, so the order
    of rows is the order of the bytes): sorted and searched as integers, with no Python object per
    text (NumPy's byte-string sort and search are an order of magnitude slower)."""
    return _as_words(np.frombuffer(b"".join(text_hash(t) for t in texts), dtype=np.uint8))


def shard_check(keys: np.ndarray, emb: np.ndarray) -> np.ndarray:
    """sha256 over a shard's keys and its embeddings (as little-endian float32), both in row order:
    a file whose rows were reordered, or whose keys or rows were edited, no longer matches. One pass
    over bytes the load reads anyway (the finite check), so it costs little."""
    digest = hashlib.sha256(_CHECK_TAG + struct.pack("<qq", *emb.shape))
    digest.update(np.ascontiguousarray(keys, dtype=np.uint8).tobytes())
    digest.update(np.ascontiguousarray(emb, dtype="<f4").data)
    return np.frombuffer(digest.digest(), dtype=np.uint8)


def _as_words(keys: np.ndarray) -> np.ndarray:
    """Hash bytes (any shape holding 16 a key) as (n, 2) native uint64."""
    return np.ascontiguousarray(keys).view(">u8").reshape(-1, 2).astype(np.uint64)


def _key_order(words: np.ndarray) -> np.ndarray:
    """A stable order of (n, 2) keys by (first word, second word). Sorting by the first word alone
    suffices unless two different keys share it (a 64-bit collision): then both words."""
    order = np.argsort(words[:, 0], kind="stable")
    hi, lo = words[order, 0], words[order, 1]
    if ((hi[1:] == hi[:-1]) & (lo[1:] != lo[:-1])).any():
        order = np.lexsort((words[:, 1], words[:, 0]))
    return order


def _first_of_runs(sorted_words: np.ndarray) -> np.ndarray:
    """True where a key differs from the one before it (keys sorted by :func:`_key_order`)."""
    new = np.ones(len(sorted_words), dtype=bool)
    new[1:] = (sorted_words[1:] != sorted_words[:-1]).any(axis=1)
    return new


@dataclass
class Shard:
    """One shard file after its check: ``problem`` is None for a good shard.

    The embeddings of a good shard on disk are not kept: ``offset`` and ``shape`` say where they lie
    in the file, and :meth:`take` reads rows. ``emb`` holds them only for a shard that cannot be read
    in place (a compressed ``.npz`` from elsewhere, or a shard a read-only cache could not write).
    """

    path: Path
    keys: np.ndarray | None = None
    emb: np.ndarray | None = None
    problem: str | None = None
    offset: int | None = None
    shape: tuple[int, int] | None = None

    @property
    def dim(self) -> int | None:
        if self.emb is not None:
            return int(self.emb.shape[1])
        return int(self.shape[1]) if self.shape is not None else None

    def release(self) -> None:
        """Forget the embeddings in memory where they can be read from the file instead."""
        if self.emb is not None and self.problem is None:
            where = _member_data(self.path, "emb.npy", self.emb.shape)
            if where is not None:
                self.offset, self.shape, self.emb = where, tuple(self.emb.shape), None

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` of the embeddings (a copy), read in place from the file."""
        if self.emb is not None:
            return self.emb[rows]
        path = self.path
        if not path.exists() and (path.parent / QUARANTINE / path.name).exists():
            path = path.parent / QUARANTINE / path.name  # moved aside by another process since
        mapped = np.memmap(path, dtype=np.float32, mode="r", offset=self.offset, shape=self.shape)
        try:
            return np.array(mapped[rows])
        finally:
            del mapped  # unmapped at once: the pages read do not stay in this process


def _member_data(path: Path, member: str, shape: tuple[int, ...]) -> int | None:
    """Byte offset of the C-order float32 data of ``member`` (an ``.npy`` stored uncompressed in the
    ``.npz`` at ``path``) with this ``shape``; None if it cannot be read in place."""
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo(member)
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        with open(path, "rb") as fh:
            fh.seek(info.header_offset)
            local = fh.read(30)
            if len(local) < 30 or local[:4] != b"PK\x03\x04":
                return None
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            fh.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(fh)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            got_shape, fortran, dtype = read_header(fh)
            offset = fh.tell()
        if fortran or dtype != np.dtype("<f4") or tuple(got_shape) != tuple(shape):
            return None
        if offset + int(np.prod(shape)) * 4 > info.header_offset + 30 + name_len + extra_len + info.file_size:
            return None
        return offset
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, struct.error):
        return None


def read_shard(path: Path) -> Shard:
    """Load and check one shard (everything but the dimension, which needs the other shards)."""
    try:
        size = path.stat().st_size
        if size == 0:
            return Shard(path, problem="empty file")
        with np.load(path, allow_pickle=False) as data:
            keys, emb = data["keys"], data["emb"]
            check = data[CHECK] if CHECK in data.files else None
    except FileNotFoundError:
        return Shard(path, problem="gone (moved aside by another process)")
    except Exception as err:  # any failure to parse a cache file makes it a bad shard, never a crash
        return Shard(path, problem=f"unreadable ({type(err).__name__})")
    if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != HASH_BYTES:
        return Shard(path, problem=f"keys of shape {keys.shape} and dtype {keys.dtype}")
    if emb.ndim != 2:
        return Shard(path, problem=f"embeddings are {emb.ndim}-D, expected 2-D")
    if emb.dtype != np.float32:
        return Shard(path, problem=f"embeddings are {emb.dtype}, expected float32")
    if len(keys) != len(emb):
        return Shard(path, problem=f"{len(keys)} keys but {len(emb)} embeddings")
    if len(emb) == 0 or emb.shape[1] == 0:
        return Shard(path, problem="no embeddings")
    if not np.isfinite(emb).all():
        return Shard(path, problem="NaN or infinite values")
    if check is None:
        return Shard(path, problem="no content checksum (not written by this hybrid-plugin version)")
    if check.dtype != np.uint8 or check.shape != (32,) or not np.array_equal(check, shard_check(keys, emb)):
        return Shard(path, problem="content checksum does not match (rows reordered or edited)")
    shard = Shard(path, keys, emb)
    shard.release()
    return shard


def _meta_dim(folder: Path) -> int | None:
    try:
        dim = json.loads((folder / META).read_text(encoding="utf-8")).get("dim")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return dim if isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 else None


def expected_dim(folder: Path) -> int | None:
    """The dimension recorded in ``meta.json`` here or beside (same model, other prompt), if any."""
    folder = Path(folder)
    dim = _meta_dim(folder)
    if dim is None and folder.parent.is_dir():
        for sibling in sorted(folder.parent.iterdir()):
            dim = dim or (_meta_dim(sibling) if sibling != folder else None)
    return dim


def check_folder(folder: Path) -> tuple[list[Shard], int | None]:
    """Every shard of a store folder, checked; the dimension is the recorded one, else the majority's."""
    shards = [read_shard(p) for p in sorted(Path(folder).glob("*.npz"))]
    dim = expected_dim(folder)
    if dim is None:
        rows: Counter[int] = Counter()
        for s in shards:
            if s.problem is None:
                rows[s.dim] += len(s.keys)
        dim = rows.most_common(1)[0][0] if rows else None
    for s in shards:
        if s.problem is None and s.dim != dim:
            s.problem, s.keys, s.emb, s.shape = f"dimension {s.dim}, expected {dim}", None, None, None
    return shards, dim


def quarantine(shard: Path) -> Path:
    """Move a bad shard into ``quarantine/`` beside it (kept for inspection, never read again)."""
    dest_dir = shard.parent / QUARANTINE
    dest_dir.mkdir(exist_ok=True)
    dest = dest_dir / shard.name
    os.replace(shard, dest)
    return dest


class EmbeddingStore:
    """Embeddings of texts under one model fingerprint and prompt."""

    def __init__(self, root: Path, fingerprint: str, prompt: str, model_name: str = "") -> None:
        self.folder = self.folder_for(root, fingerprint, prompt)
        self.prompt = prompt
        self.dim: int | None = None
        self.writable = True
        self._cleaned = False
        self.quarantined: list[tuple[Path, str]] = []
        self._meta = {"model": model_name, "fingerprint": fingerprint, "prompt": prompt}
        self._shards: list[Shard] = []
        # the index: sorted keys, and the shard and row of each (rebuilt when shards were added)
        self._keys = np.empty((0, 2), dtype=np.uint64)
        self._key_shard = np.empty(0, dtype=np.int32)
        self._key_row = np.empty(0, dtype=np.int32)
        self._indexed = 0  # shards in the index
        self.reconciled = 0  # times shards of another dimension were dropped
        self._load()

    @staticmethod
    def folder_for(root: Path, fingerprint: str, prompt: str) -> Path:
        """Where the embeddings of one model and prompt live (reading it changes nothing)."""
        prompt_id = hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:12]
        return Path(root) / path_component(fingerprint[:32], "model fingerprint") / prompt_id

    def _load(self) -> None:
        try:
            if not self.folder.is_dir():
                return
            shards, self.dim = check_folder(self.folder)
        except OSError as err:
            self._degrade(err, "cannot read")
            return
        for shard in shards:
            if shard.problem is None:
                self._index_shard(shard)
            else:
                self._quarantine(shard.path, shard.problem)
        self._warn_quarantined()

    def _quarantine(self, path: Path, problem: str) -> None:
        try:
            quarantine(path)
        except FileNotFoundError:
            return  # another process moved it first
        except OSError:
            pass  # read-only cache: the bad shard stays where it is and is simply not used
        self.quarantined.append((path, problem))

    def _warn_quarantined(self) -> None:
        if self.quarantined:
            problems = "; ".join(f"{p.name}: {why}" for p, why in self.quarantined)
            warn(
                f"{len(self.quarantined)} bad embedding cache shard(s) in {self.folder} moved to "
                f"{QUARANTINE}/, their texts are encoded again ({problems})"
            )
            self.quarantined = []

    def _degrade(self, err: OSError, what: str) -> None:
        """Carry on without persisting (one warning per cache root and process)."""
        self.writable = False
        cause = err.strerror or type(err).__name__
        warn(
            f"{what} the embedding cache at {self.folder} ({cause}); continuing without caching",
            once=f"cache:{self.folder.parent.parent}",
        )

    def _index_shard(self, shard: Shard) -> None:
        self._shards.append(shard)  # indexed at the next lookup: adding shards costs no sorting

    def _index(self) -> None:
        """Bring the sorted key index up to date. A text stored twice (two runs encoded it at once)
        is read from the later shard, as a dict filled shard by shard would."""
        if self._indexed == len(self._shards):
            return
        if not self._shards:
            self._keys, self._key_shard, self._key_row = (
                self._keys[:0],
                self._key_shard[:0],
                self._key_row[:0],
            )
            self._indexed = 0
            return
        sizes = np.array([len(s.keys) for s in self._shards], dtype=np.int64)
        words = np.concatenate([_as_words(s.keys) for s in self._shards])
        order = _key_order(words)
        words = words[order]
        last = np.ones(len(words), dtype=bool)
        last[:-1] = _first_of_runs(words)[1:]  # the last of equal keys: the latest shard's
        order = order[last]
        starts = np.cumsum(sizes) - sizes
        shard = (np.searchsorted(starts, order, side="right") - 1).astype(np.int32)
        self._keys = words[last]
        self._key_shard, self._key_row = shard, (order - starts[shard]).astype(np.int32)
        self._indexed = len(self._shards)

    def _find(self, hashes: np.ndarray) -> np.ndarray:
        """Position of each hash (rows of :func:`text_hashes`) in the index, -1 where it is not stored."""
        self._index()
        keys, n = self._keys, len(self._keys)
        needles = np.argsort(hashes[:, 0])  # searched in order, each search starts where the last ended:
        pos = np.empty(len(hashes), dtype=np.int64)  # 10x faster than random needles at 10^7
        pos[needles] = np.searchsorted(keys[:, 0], hashes[needles, 0])
        at = np.minimum(pos, max(n - 1, 0))
        same_hi = (pos < n) & (keys[at, 0] == hashes[:, 0]) if n else np.zeros(len(hashes), dtype=bool)
        found = same_hi & (keys[at, 1] == hashes[:, 1]) if n else same_hi
        for i in np.flatnonzero(same_hi & ~found).tolist():  # a shared first word: look along its run
            j = int(pos[i])
            while j < n and keys[j, 0] == hashes[i, 0] and keys[j, 1] != hashes[i, 1]:
                j += 1
            if j < n and keys[j, 0] == hashes[i, 0]:
                found[i], pos[i] = True, j
        return np.where(found, pos, -1)

    def _reconcile(self, dim: int) -> None:
        """The model gives ``dim``-dimensional embeddings: shards of another dimension are bad."""
        keep = [s for s in self._shards if s.dim == dim]
        for s in self._shards:
            if s.dim != dim:
                self._quarantine(s.path, f"dimension {s.dim}, but the model gives {dim}")
        self._warn_quarantined()
        self._shards, self._indexed, self.dim = keep, -1, dim
        self.reconciled += 1
        if self.writable and _meta_dim(self.folder) not in (None, dim):
            try:
                write_text(self.folder / META, json.dumps({**self._meta, "dim": dim}, indent=1))
            except OSError as err:
                self._degrade(err, "cannot write")

    def __len__(self) -> int:
        self._index()
        return len(self._keys)

    def missing(self, texts: Sequence[str], hashes: np.ndarray | None = None) -> list[str]:
        """Texts (unique, in first-seen order) that have no stored embedding (``hashes``: theirs,
        from :func:`text_hashes`, if already computed)."""
        hashes = text_hashes(texts) if hashes is None else hashes
        absent = np.flatnonzero(self._find(hashes) < 0)
        order = _key_order(hashes[absent])
        first = order[_first_of_runs(hashes[absent][order])]  # stable: the first of equal texts
        return [texts[i] for i in absent[np.sort(first)].tolist()]

    def add(self, texts: Sequence[str], emb: np.ndarray) -> None:
        """Persist a shard atomically (unless the cache cannot be written), then index it."""
        emb = _checked_output(emb, len(texts))
        if self.dim is not None and emb.shape[1] != self.dim:
            self._reconcile(emb.shape[1])
        self.dim = emb.shape[1]
        keys = np.frombuffer(b"".join(text_hash(t) for t in texts), dtype=np.uint8).reshape(-1, HASH_BYTES)
        path = self.folder / f"{uuid.uuid4().hex}.npz"
        shard = Shard(path, keys, emb)
        if self.writable:
            try:
                self._persist(path, keys, emb)
                shard.release()  # written: read from the file from now on, not kept in memory
            except OSError as err:
                self._degrade(err, "cannot write")
        self._index_shard(shard)

    def _persist(self, path: Path, keys: np.ndarray, emb: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self._cleaned:  # shard names are new each time: sweep dead writers' temp files once
            remove_dead_temp_files(self.folder)
            self._cleaned = True
        if _meta_dim(self.folder) is None:
            write_text(self.folder / META, json.dumps({**self._meta, "dim": self.dim}, indent=1))
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, keys=keys, emb=emb, **{CHECK: shard_check(keys, emb)})

    def _locate(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shard and row of each hash (all must be stored)."""
        pos = self._find(hashes)
        if (pos < 0).any():
            raise KeyError(f"{int((pos < 0).sum())} of {len(hashes)} texts are not stored in {self.folder}")
        return self._key_shard[pos], self._key_row[pos]

    def _gather(self, shard: np.ndarray, row: np.ndarray) -> np.ndarray:
        """The embeddings at (shard, row), in that order, in memory."""
        out = np.empty((len(shard), self.dim or 0), dtype=np.float32)
        order = np.argsort(shard, kind="stable")
        bounds = np.flatnonzero(np.diff(shard[order])) + 1
        for part in np.split(order, bounds) if len(order) else []:
            out[part] = self._shards[int(shard[part[0]])].take(row[part])
        return out

    def _assemble(self, tmp: Path, shard: np.ndarray, row: np.ndarray) -> None:
        """Write the embeddings at (shard, row) as an ``.npy`` at ``tmp``, shard by shard (each
        shard's file is read once) into a file of the full size allocated first (a full disk is an
        OSError here, not a fault while writing through the mapping). The mapping is renewed every
        :data:`BLOCK_BYTES` of pages written, so the pages do not accumulate in this process."""
        shape = (len(shard), self.dim or 0)
        with open(tmp, "wb") as fh:
            np.lib.format.write_array_header_2_0(fh, {"descr": "<f4", "fortran_order": False, "shape": shape})
            offset = fh.tell()
            os.posix_fallocate(fh.fileno(), 0, offset + 4 * shape[0] * shape[1])
        order = np.argsort(shard, kind="stable")
        bounds = np.flatnonzero(np.diff(shard[order])) + 1
        out, written = None, 0
        for part in np.split(order, bounds) if len(order) else []:
            if out is None:
                out = np.memmap(tmp, dtype=np.float32, mode="r+", offset=offset, shape=shape)
            out[part] = self._shards[int(shard[part[0]])].take(row[part])
            written += len(part)
            if written * mmap.PAGESIZE >= BLOCK_BYTES:  # (each row may dirty its own page)
                out.flush()
                out, written = None, 0
        if out is not None:
            out.flush()

    def get(self, texts: Sequence[str], hashes: np.ndarray | None = None) -> np.ndarray:
        """Stacked embeddings of ``texts`` in memory (all must be stored)."""
        if not len(texts):
            return np.zeros((0, 0), dtype=np.float32)
        return self._gather(*self._locate(text_hashes(texts) if hashes is None else hashes))

    def matrix(self, texts: Sequence[str], hashes: np.ndarray | None = None) -> np.ndarray:
        """Embeddings of ``texts`` (all must be stored) as an ``np.memmap`` of an ``.npy`` under
        ``matrices/``, assembled once and reused while the same texts are asked for; an in-memory
        array where the cache cannot be written. The map is copy-on-write (``mmap_mode="c"``): a
        write stays in this process and never reaches the file, and torch can wrap its row blocks
        without copying them or warning about a read-only array."""
        hashes = text_hashes(texts) if hashes is None else hashes
        shard, row = self._locate(hashes)
        if not self.writable or not len(hashes):
            return self.get(texts, hashes)
        name = hashlib.sha256(hashes.astype(">u8").tobytes() + f"/{self.dim}".encode()).hexdigest()[:32]
        path = self.folder / MATRICES / f"{name}.npy"
        found = _open_matrix(path, (len(hashes), self.dim or 0))
        if found is not None:
            return found
        try:
            with atomic_path(path, suffix=".npy") as tmp:
                self._assemble(tmp, shard, row)
            _drop_old_matrices(path.parent, keep=path)
        except OSError as err:
            self._degrade(err, "cannot write")
            return self.get(texts, hashes)
        return np.load(path, mmap_mode="c", allow_pickle=False)

    def ensure(
        self,
        texts: Sequence[str],
        encode: Callable[[list[str]], np.ndarray],
        shard_size: int = 2048,
        desc: str = "encoding",
        batch_size: int | None = None,
        lengths: Callable[[list[str]], np.ndarray] | None = None,
        map_batches: MapBatches | None = None,
        hashes: np.ndarray | None = None,
    ) -> int:
        """Encode and store every missing text, longest-first in shards; returns how many were encoded.

        A shard is the unit of caching (written whole or not at all). With ``batch_size`` each shard
        goes to ``encode`` in consecutive batches of that size, so the progress bar, its rate and ETA
        move per batch, not per shard. "Longest" is by ``lengths`` (the encoder's token counts) when
        given, else by characters: batches of similar token counts pad little, and every padded token
        costs as much as a real one (characters are a poor proxy across scripts). ``map_batches``
        (the encoder's, optional) runs ``encode`` over a shard's batches, e.g. several at a time; the
        results come back in order, so shards and their contents do not depend on it.
        If the first embeddings differ in dimension from what the cache holds, the cache's shards
        of the other dimension are quarantined and their texts encoded as well. Each shard is written
        as it is finished and then read from its file: memory does not grow with the texts encoded.
        ``hashes``: the texts' :func:`text_hashes`, if already computed.
        """
        hashes = text_hashes(texts) if hashes is None else hashes

        def longest_first(missing: list[str]) -> list[str]:
            return [missing[i] for i in longest_first_order(missing, lengths)]

        todo = longest_first(self.missing(texts, hashes))
        if not todo:
            return 0
        step = batch_size or shard_size
        done, at = 0, 0  # todo[at:] is still to encode (no re-slicing of a long list per shard)
        with tqdm(total=len(todo), desc=desc, unit="text") as bar:
            while at < len(todo):
                shard = todo[at : at + shard_size]
                at += len(shard)
                parts = []
                batches = [shard[b : b + step] for b in range(0, len(shard), step)]
                with encoded_batches(encode, batches, map_batches) as results:
                    for emb in results:
                        parts.append(emb)
                        bar.update(len(emb))
                before = self.reconciled
                self.add(shard, parts[0] if len(parts) == 1 else np.concatenate(parts))
                done += len(shard)
                if self.reconciled != before:  # shards of another dimension were dropped
                    rest = len(todo) - at
                    todo, at = longest_first(self.missing(texts, hashes)), 0
                    bar.total += len(todo) - rest
                    bar.refresh()
        return done


MapBatches = Callable[[Callable[[list[str]], np.ndarray], list[list[str]]], Iterable[np.ndarray]]


def _open_matrix(path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """A matrix assembled before, memory-mapped, if it is whole: float32 of ``shape``, every value
    finite (checked in blocks read from the file, so its pages do not stay in this process)."""
    try:
        mapped = np.load(path, mmap_mode="c", allow_pickle=False)
    except (OSError, ValueError):
        return None  # absent, or not an .npy of ours: assembled again (replacing it atomically)
    if mapped.dtype != np.float32 or mapped.shape != shape or not mapped.flags.c_contiguous:
        return None
    step = max(1, BLOCK_BYTES // (4 * max(shape[1], 1)))
    try:
        with open(path, "rb") as fh:
            fh.seek(mapped.offset)
            for start in range(0, shape[0], step):
                block = np.fromfile(fh, dtype=np.float32, count=min(step, shape[0] - start) * shape[1])
                if len(block) != min(step, shape[0] - start) * shape[1] or not np.isfinite(block).all():
                    return None
    except OSError:
        return None
    return mapped


def _drop_old_matrices(folder: Path, keep: Path) -> None:
    """Keep the newest :data:`KEEP_MATRICES` assembled matrices (a process still reading one that is
    removed keeps its mapping; a later run assembles it again)."""
    try:
        found = sorted(folder.glob("*.npy"), key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for old in [p for p in found if p != keep][KEEP_MATRICES - 1 :]:
        try:
            old.unlink()
        except OSError:
            continue


@contextmanager
def encoded_batches(
    encode: Callable[[list[str]], np.ndarray], batches: list[list[str]], map_batches: MapBatches | None
) -> Iterator[Iterator[np.ndarray]]:
    """Checked embeddings of each batch, in order; whatever runs them is closed on exit, also when
    a batch fails or the caller stops early (so no encoding goes on behind an error)."""
    results = iter(map_batches(encode, batches) if map_batches is not None else map(encode, batches))
    try:
        yield (_checked_output(emb, len(batch)) for batch, emb in zip(batches, results))
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()


def longest_first_order(
    texts: Sequence[str], lengths: Callable[[list[str]], np.ndarray] | None = None
) -> np.ndarray:
    """Indices of ``texts``, longest first by ``lengths`` (token counts) or else by characters;
    ties keep input order, so batches depend only on the texts."""
    if lengths is not None and len(texts):
        sizes = np.asarray(lengths(list(texts)), dtype=np.int64)
    else:
        sizes = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    return np.argsort(-sizes, kind="stable")


def encode_uncached(
    texts: Sequence[str],
    encode: Callable[[list[str]], np.ndarray],
    batch_size: int,
    desc: str = "encoding",
    lengths: Callable[[list[str]], np.ndarray] | None = None,
    map_batches: MapBatches | None = None,
) -> np.ndarray:
    """Embeddings of ``texts`` in input order, encoded longest-first in batches with a moving bar
    (the same batches the store would make, without writing anything)."""
    order = longest_first_order(texts, lengths)
    rows_of = [order[b : b + batch_size] for b in range(0, len(order), batch_size)]
    batches = [[texts[i] for i in rows] for rows in rows_of]
    out: np.ndarray | None = None
    with (
        tqdm(total=len(texts), desc=desc, unit="text") as bar,
        encoded_batches(encode, batches, map_batches) as results,
    ):
        for rows, emb in zip(rows_of, results):
            if out is None:
                out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
            out[rows] = emb
            bar.update(len(rows))
    return out if out is not None else np.empty((0, 0), dtype=np.float32)


def _checked_output(emb: np.ndarray, n: int) -> np.ndarray:
    """An encoder's output as float32 rows, copied (the store keeps a shard's batches until it is
    written, and an encoder may reuse one buffer on every call); NaN or infinite embeddings are
    refused (never cached)."""
    emb = np.array(emb, dtype=np.float32, order="C")
    if emb.ndim != 2 or len(emb) != n:
        raise ValueError(f"expected {n} embeddings as a 2-D array, got shape {emb.shape}")
    finite = np.isfinite(emb).all(axis=1)
    if not finite.all():
        raise UserError(
            f"the model produced NaN or infinite embeddings for {int((~finite).sum())} of {n} texts; "
            "it cannot be evaluated (did its training diverge?)"
        )
    return emb


def count_stored(root: Path) -> int:
    """Embeddings stored under ``root`` across every model and prompt (bad shards count 0)."""
    total = 0
    for shard in Path(root).rglob("*.npz"):
        if shard.parent.name == QUARANTINE:
            continue
        checked = read_shard(shard)
        total += len(checked.keys) if checked.problem is None else 0
    return total


# ---------------------------------------------------------------------------------------------
# The whole cache, for ``hybrid-plugin cache info|verify|prune|clear``


@dataclass
class FolderReport:
    """One store folder (model fingerprint / prompt) of a cache root."""

    folder: Path
    model: str
    prompt: str
    shards: int
    embeddings: int
    bytes: int
    bad: list[tuple[Path, str]]
    quarantined: list[Path]
    stale_temp: list[Path]


def is_store_folder(folder: Path) -> bool:
    """Whether ``folder`` is provably one of ours: a real folder whose ``meta.json`` (written before
    its first shard) names the fingerprint and prompt that its path is made of. Hex names alone
    prove nothing (a user's folders may have them), and what is not ours is never touched."""
    folder = Path(folder)
    if folder.is_symlink() or folder.parent.is_symlink() or not folder.is_dir():
        return False
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    if not isinstance(meta, dict):
        return False
    fingerprint, prompt = meta.get("fingerprint"), meta.get("prompt")
    if not isinstance(fingerprint, str) or not isinstance(prompt, str):
        return False
    return EmbeddingStore.folder_for(folder.parent.parent, fingerprint, prompt) == folder


def store_folders(root: Path) -> list[Path]:
    """The ``FINGERPRINT/PROMPT`` folders under ``root`` that are ours (:func:`is_store_folder`)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        prompt
        for fp in root.iterdir()
        if fp.is_dir() and FINGERPRINT_DIR.fullmatch(fp.name)
        for prompt in fp.iterdir()
        if PROMPT_DIR.fullmatch(prompt.name) and is_store_folder(prompt)
    )


def _written_by_us(folder: Path) -> list[Path]:
    """The files a store writes into ``folder``: shards, ``meta.json``, assembled matrices,
    quarantined shards and temp files (nothing else found there is removed)."""

    def ours(path: Path, suffix: str) -> bool:
        return path.suffix == suffix or TEMP_FILE.fullmatch(path.name) is not None

    found = [p for p in folder.iterdir() if ours(p, ".npz") or p.name == META]
    for sub, suffix in ((MATRICES, ".npy"), (QUARANTINE, ".npz")):
        if (folder / sub).is_dir() and not (folder / sub).is_symlink():
            found += [p for p in (folder / sub).iterdir() if ours(p, suffix)]
    return [p for p in found if p.is_file() and not p.is_symlink()]


def clear_store_folder(folder: Path) -> tuple[int, int]:
    """Delete what the store wrote into ``folder`` (one of :func:`store_folders`), then the folders
    that are left empty; returns (bytes freed, entries of someone else's that were kept)."""
    freed = 0
    for path in _written_by_us(folder):
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue  # another process moved or removed it
        freed += size
    for sub in (folder / MATRICES, folder / QUARANTINE, folder, folder.parent):
        if sub.is_dir() and not sub.is_symlink() and not any(sub.iterdir()):
            sub.rmdir()
    kept = sum(1 for p in folder.rglob("*") if not p.is_dir()) if folder.is_dir() else 0
    return freed, kept


def _size(paths: Sequence[Path]) -> int:
    total = 0
    for p in paths:
        try:
            total += p.stat().st_size
        except OSError:
            continue
    return total


def report_folder(folder: Path, verify: bool = True, now: float | None = None) -> FolderReport:
    """Sizes of one store folder; with ``verify`` every shard is read and checked."""
    try:
        meta = json.loads((folder / META).read_text(encoding="utf-8"))
        meta = meta if isinstance(meta, dict) else {}
    except (OSError, ValueError, RecursionError):
        meta = {}
    now = time.time() if now is None else now
    files = list(folder.iterdir())
    shards = [p for p in files if p.suffix == ".npz" and p.is_file()]
    stale = [p for p in files if TEMP_FILE.fullmatch(p.name) and now - p.stat().st_mtime > STALE_TEMP_SECONDS]
    qdir = folder / QUARANTINE
    quarantined = sorted(qdir.iterdir()) if qdir.is_dir() else []
    bad: list[tuple[Path, str]] = []
    embeddings = 0
    if verify:
        checked, _ = check_folder(folder)
        bad = [(s.path, s.problem) for s in checked if s.problem is not None]
        embeddings = sum(len(s.keys) for s in checked if s.problem is None)
    return FolderReport(
        folder=folder,
        model=str(meta.get("model") or meta.get("fingerprint", "?")[:12]),
        prompt=str(meta.get("prompt", "?")),
        shards=len(shards),
        embeddings=embeddings,
        bytes=_size([*shards, folder / META, *(folder / MATRICES).glob("*.npy")]),
        bad=bad,
        quarantined=quarantined,
        stale_temp=stale,
    )
