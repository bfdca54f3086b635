"""Persistent embedding cache: one folder per (model fingerprint, prompt), append-only shards.

Each shard is an ``.npz`` (text hashes + float32 embeddings) written atomically, so an interrupted
run leaves every finished shard usable and never a half-written one. Shards are read with
``allow_pickle=False`` and checked on load (readable, as many keys as rows, 2-D float32 of the
store's dimension, finite): a bad shard (a disk error, a copy gone wrong, a hand edit) is moved to
``quarantine/`` with one warning and its texts are simply encoded again. A cache that cannot be
written (read-only, full) degrades to an in-memory one with one warning: results never depend on it.

Several processes may share a cache: shards are only ever added (each under a fresh name) or moved
aside, so a reader sees every shard whole or not at all; two runs missing the same texts both
encode them and store equal embeddings.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hybrid_plugin.atomic import atomic_path, remove_dead_temp_files, write_text
from hybrid_plugin.errors import UserError, warn

HASH_BYTES = 16
QUARANTINE = "quarantine"
META = "meta.json"
#: temp files of atomic writes (``.NAME.RANDOM[.npz].tmp``); older than this they belong to a dead run
TEMP_FILE = re.compile(r"\..+\.tmp")
STALE_TEMP_SECONDS = 3600
FINGERPRINT_DIR = re.compile(r"[0-9a-f]{32}")
PROMPT_DIR = re.compile(r"[0-9a-f]{12}")


def text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:HASH_BYTES]


@dataclass
class Shard:
    """One shard file after its check: ``problem`` is None for a good shard."""

    path: Path
    keys: np.ndarray | None = None
    emb: np.ndarray | None = None
    problem: str | None = None

    @property
    def dim(self) -> int | None:
        return int(self.emb.shape[1]) if self.emb is not None else None


def read_shard(path: Path) -> Shard:
    """Load and check one shard (everything but the dimension, which needs the other shards)."""
    try:
        size = path.stat().st_size
        if size == 0:
            return Shard(path, problem="empty file")
        with np.load(path, allow_pickle=False) as data:
            keys, emb = data["keys"], data["emb"]
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
    return Shard(path, keys, emb)


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
                rows[s.dim] += len(s.emb)
        dim = rows.most_common(1)[0][0] if rows else None
    for s in shards:
        if s.problem is None and s.dim != dim:
            s.problem, s.keys, s.emb = f"dimension {s.dim}, expected {dim}", None, None
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
        self._index: dict[bytes, tuple[int, int]] = {}
        self._shards: list[Shard] = []
        self._load()

    @staticmethod
    def folder_for(root: Path, fingerprint: str, prompt: str) -> Path:
        """Where the embeddings of one model and prompt live (reading it changes nothing)."""
        prompt_id = hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:12]
        return Path(root) / fingerprint[:32] / prompt_id

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
        s = len(self._shards)
        self._shards.append(shard)
        for i, k in enumerate(shard.keys):
            self._index[k.tobytes()] = (s, i)

    def _reconcile(self, dim: int) -> None:
        """The model gives ``dim``-dimensional embeddings: shards of another dimension are bad."""
        keep = [s for s in self._shards if s.dim == dim]
        for s in self._shards:
            if s.dim != dim:
                self._quarantine(s.path, f"dimension {s.dim}, but the model gives {dim}")
        self._warn_quarantined()
        self._index, self._shards, self.dim = {}, [], dim
        for s in keep:
            self._index_shard(s)
        if self.writable and _meta_dim(self.folder) not in (None, dim):
            try:
                write_text(self.folder / META, json.dumps({**self._meta, "dim": dim}, indent=1))
            except OSError as err:
                self._degrade(err, "cannot write")

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
        """Persist a shard atomically (unless the cache cannot be written), then index it."""
        emb = _checked_output(emb, len(texts))
        if self.dim is not None and emb.shape[1] != self.dim:
            self._reconcile(emb.shape[1])
        self.dim = emb.shape[1]
        keys = np.frombuffer(b"".join(text_hash(t) for t in texts), dtype=np.uint8).reshape(-1, HASH_BYTES)
        path = self.folder / f"{uuid.uuid4().hex}.npz"
        if self.writable:
            try:
                self._persist(path, keys, emb)
            except OSError as err:
                self._degrade(err, "cannot write")
        self._index_shard(Shard(path, keys, emb))

    def _persist(self, path: Path, keys: np.ndarray, emb: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self._cleaned:  # shard names are new each time: sweep dead writers' temp files once
            remove_dead_temp_files(self.folder)
            self._cleaned = True
        if _meta_dim(self.folder) is None:
            write_text(self.folder / META, json.dumps({**self._meta, "dim": self.dim}, indent=1))
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, keys=keys, emb=emb)

    def get(self, texts: Sequence[str]) -> np.ndarray:
        """Stacked embeddings of ``texts`` (all must be stored)."""
        locs = [self._index[text_hash(t)] for t in texts]
        if not locs:
            return np.zeros((0, 0), dtype=np.float32)
        out = np.empty((len(locs), self.dim or 0), dtype=np.float32)
        for j, (s, i) in enumerate(locs):
            out[j] = self._shards[s].emb[i]
        return out

    def ensure(
        self,
        texts: Sequence[str],
        encode: Callable[[list[str]], np.ndarray],
        shard_size: int = 2048,
        desc: str = "encoding",
        batch_size: int | None = None,
        lengths: Callable[[list[str]], np.ndarray] | None = None,
        map_batches: MapBatches | None = None,
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
        of the other dimension are quarantined and their texts encoded as well.
        """

        def longest_first(missing: list[str]) -> list[str]:
            return [missing[i] for i in longest_first_order(missing, lengths)]

        todo = longest_first(self.missing(texts))
        if not todo:
            return 0
        step = batch_size or shard_size
        done = 0
        with tqdm(total=len(todo), desc=desc, unit="text") as bar:
            while todo:
                shard, todo = todo[:shard_size], todo[shard_size:]
                parts = []
                batches = [shard[b : b + step] for b in range(0, len(shard), step)]
                with encoded_batches(encode, batches, map_batches) as results:
                    for emb in results:
                        parts.append(emb)
                        bar.update(len(emb))
                before = len(self._index)
                self.add(shard, parts[0] if len(parts) == 1 else np.concatenate(parts))
                done += len(shard)
                if len(self._index) < before + len(shard):  # reconciled: some stored texts were dropped
                    rest = len(todo)
                    todo = longest_first(self.missing(texts))
                    bar.total += len(todo) - rest
                    bar.refresh()
        return done


MapBatches = Callable[[Callable[[list[str]], np.ndarray], list[list[str]]], Iterable[np.ndarray]]


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
    """An encoder's output as float32 rows; NaN or infinite embeddings are refused (never cached)."""
    emb = np.ascontiguousarray(emb, dtype=np.float32)
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


def store_folders(root: Path) -> list[Path]:
    """The ``FINGERPRINT/PROMPT`` folders under ``root`` (nothing else there is ours)."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        prompt
        for fp in root.iterdir()
        if fp.is_dir() and FINGERPRINT_DIR.fullmatch(fp.name)
        for prompt in fp.iterdir()
        if prompt.is_dir() and PROMPT_DIR.fullmatch(prompt.name)
    )


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
        bytes=_size([*shards, folder / META]),
        bad=bad,
        quarantined=quarantined,
        stale_temp=stale,
    )
