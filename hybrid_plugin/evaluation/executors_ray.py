"""The engine on Ray (``--executor ray``): tiles as Ray tasks, encoding as Ray Data with an actor pool.

Nothing here schedules, pools processes or talks RPC itself: Ray does. Tiles merge by integer addition
and top-k merge of distinct keys, so the order in which Ray finishes them does not change a bit of the
results; an encoded shard is the same batches the local store would encode, written by the store's own
writer into the same folder, so the driver then reads the store as usual.

Ray is an optional extra (``pip install 'hybrid-plugin[ray]'``) and is imported only here. On several
machines the embedding store (``HYBRID_PLUGIN_CACHE``), the data folder and the model folder must be on
storage every node reaches (docs/ray.md): workers reopen memory-mapped embeddings by file name instead
of receiving them through the object store, and actors write shards where the driver reads them.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_plugin.errors import UserError

MISSING_RAY = "--executor ray needs Ray: pip install 'hybrid-plugin[ray]'"
SHARD_TEXTS = 2048  # texts per shard, as the local store writes them (EmbeddingStore.ensure)


def import_ray() -> Any:
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(MISSING_RAY) from None
    return ray


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Connect to the cluster at ``address`` (else start a local instance), unless already connected."""
    ray = import_ray()
    if not ray.is_initialized():
        if address:
            check_reachable(address)
        try:
            ray.init(
                address=address,
                num_cpus=None if address else num_cpus,
                ignore_reinit_error=True,
                include_dashboard=False,
                logging_level=logging.ERROR,
                log_to_driver=True,
            )
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = f"at {address}" if address else "locally"
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(f"cannot start or reach a Ray cluster {where}: {first}") from None
    return ray


def check_reachable(address: str, seconds: float = 10.0) -> None:
    """One line at once for a ``HOST:PORT`` nobody listens on (Ray itself retries for minutes)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or "://" in address or not port.isdigit():
        return  # "auto", ray://... (Ray Client): left to Ray
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=seconds).close()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise UserError(
            f"--ray-address {address}: no Ray cluster answers there ({reason}); start one with "
            "`ray start --head` on that machine (see docs/ray.md)"
        ) from None


# ------------------------------------------------------------------------------------------------
# Tiles as tasks

_SHARED: dict[str, Any] = {}  # per worker process: the shared object of the current map, fetched once


def _apply(fn: Callable[[Any, Any], Any], key: str, shared: list[Any], task: Any) -> Any:
    """One task in a Ray worker: ``fn(shared, task)``. ``shared`` holds the object's reference (in a
    list, so Ray does not fetch it for every task): it is fetched and unpickled once per worker (a
    memory-mapped scorer maps its file again there, see ``DenseScoreMatrix.__getstate__``)."""
    if key not in _SHARED:
        import ray

        _SHARED.clear()  # one map at a time per worker: do not keep an earlier pool's embeddings
        _SHARED[key] = ray.get(shared[0])
        # arrays from Ray's object store are read-only views; the tiles only read them
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
    return fn(_SHARED[key], task)


def _unwrapped(err: Exception) -> BaseException:
    """The error a task raised, without Ray's wrapper (a UserError stays one line)."""
    cause = getattr(err, "cause", None)
    if isinstance(cause, UserError):
        return UserError(str(cause))
    return cause if isinstance(cause, BaseException) else err


@dataclass
class RayExecutor:
    """Tiles as Ray tasks on a local instance or the cluster at ``address`` (``HEAD:6379``).

    ``shared`` (the scorer) is put into the object store once per :meth:`map` and fetched once per
    worker (a memory-mapped scorer travels as its file, which each worker maps again); each task is
    one tile group and returns small count arrays. A task whose worker dies is run again (``max_retries``);
    an exception a task raises is not (``retry_exceptions`` stays off: the same input fails the same
    way), and a :class:`~hybrid_plugin.errors.UserError` reaches the caller as the same one line.
    """

    address: str | None = None
    num_cpus: int | None = None  # of a local instance (None: the machine's)
    max_retries: int = 3
    num_gpus: float = 0  # per tile task, where the engine's device is a GPU
    max_in_flight: int | None = None  # tasks submitted ahead (None: 4 per cluster CPU)
    name: str = field(default="ray", init=False)

    def start(self) -> Any:
        return ensure_ray(self.address, self.num_cpus)

    def map(self, fn: Callable[[Any, Any], Any], shared: Any, tasks: Sequence[Any]) -> Iterator[Any]:
        ray = self.start()
        remote = ray.remote(_apply).options(
            max_retries=self.max_retries, retry_exceptions=False, num_cpus=1, num_gpus=self.num_gpus
        )
        window = self.max_in_flight or max(2, 4 * int(ray.cluster_resources().get("CPU", 1)))
        return self._results(ray, remote, fn, shared, tasks, window)

    def _results(
        self, ray: Any, remote: Any, fn: Callable, shared: Any, tasks: Sequence[Any], window: int
    ) -> Iterator[Any]:
        shared_ref = ray.put(shared)
        key = shared_ref.hex()
        todo = list(tasks)[::-1]
        pending: list[Any] = []
        try:
            while todo or pending:
                while todo and len(pending) < window:
                    pending.append(remote.remote(fn, key, [shared_ref], todo.pop()))
                done, pending = ray.wait(pending, num_returns=1)
                try:
                    result = ray.get(done[0])
                except ray.exceptions.RayTaskError as err:
                    raise _unwrapped(err) from None
                yield result
        finally:
            for ref in pending:  # an error or an early stop: nothing goes on computing behind it
                ray.cancel(ref, force=False)


# ------------------------------------------------------------------------------------------------
# Encoding: Ray Data over the store's shards, one model per actor


def encoder_recipe(encoder: Any) -> Any:
    """What rebuilds ``encoder`` in another process: a SentenceTransformer's ModelRef without its loaded
    model, a ``module:factory`` plug-in by name (re-imported there), else the encoder itself (pickled)."""
    from hybrid_plugin.scoring.dense import SentenceTransformerEncoder
    from hybrid_plugin.scoring.plugin import PluginEncoder

    if isinstance(encoder, SentenceTransformerEncoder):
        return ("sentence-transformers", dataclasses.replace(encoder.ref, _model=None))
    if isinstance(encoder, PluginEncoder) and encoder.source:
        return ("plugin", encoder.source, encoder.task, encoder.fingerprint)
    return ("object", encoder)


def build_encoder(recipe: Any) -> Any:
    """The encoder a recipe names (in a Ray actor)."""
    kind = recipe[0]
    if kind == "sentence-transformers":
        from hybrid_plugin.scoring.dense import SentenceTransformerEncoder

        return SentenceTransformerEncoder(recipe[1])
    if kind == "plugin":
        from hybrid_plugin.scoring.plugin import PluginEncoder, load_factory

        _, source, task, fingerprint = recipe
        model, found = load_factory(source)
        if found != fingerprint:
            raise UserError(
                f"--model {source}: a Ray worker's copy has another fingerprint than the driver's "
                "(install the same plug-in version on every node)"
            )
        return PluginEncoder(model, fingerprint=fingerprint, source=source, task=task)
    return recipe[1]


class EncoderActor:
    """A Ray Data actor: loads the model once, encodes whole shards in the store's batches, and writes
    each shard with the store's own writer (``EmbeddingStore.add``) into the shared store folder."""

    def __init__(self, recipe: Any, root: str, prompt: str, role: str, batch_size: int) -> None:
        from hybrid_plugin.scoring.store import EmbeddingStore

        self.role = role
        self.batch_size = batch_size
        self.failure = ""  # a UserError while loading the model, reported with the first shard
        try:
            self.encoder = build_encoder(recipe)
            self.store = EmbeddingStore(Path(root), self.encoder.fingerprint, prompt, self.encoder.name)
        except UserError as err:
            self.failure = str(err)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        counts, seconds, errors = [], [], []
        for texts in batch["texts"]:
            started = time.perf_counter()
            shard = [str(t) for t in texts]
            try:
                if self.failure:
                    raise UserError(self.failure)
                parts = [
                    np.asarray(
                        self.encoder.encode(shard[b : b + self.batch_size], self.role, self.batch_size),
                        dtype=np.float32,
                    )
                    for b in range(0, len(shard), self.batch_size)
                ]
                self.store.add(shard, parts[0] if len(parts) == 1 else np.concatenate(parts))
                errors.append("")
            except UserError as err:  # Ray Data keeps only an exception's text: send the line back
                errors.append(str(err))
            counts.append(len(shard))
            seconds.append(time.perf_counter() - started)
        return {
            "shard": batch["shard"],
            "texts": np.asarray(counts),
            "seconds": np.asarray(seconds),
            "error": np.asarray(errors, dtype=object),
        }


def shards_of(texts: list[str], lengths: Callable[[list[str]], np.ndarray] | None) -> list[list[str]]:
    """The shards the local store would write for these missing texts: longest first, 2,048 each."""
    from hybrid_plugin.scoring.store import longest_first_order

    order = longest_first_order(texts, lengths)
    todo = [texts[i] for i in order]
    return [todo[a : a + SHARD_TEXTS] for a in range(0, len(todo), SHARD_TEXTS)]


@dataclass
class RayEncoding:
    """Fills a dense retriever's embedding store through Ray Data before the driver reads it.

    ``concurrency`` actors (default: one per cluster CPU, or per GPU where the cluster has GPUs) each
    load the model once; ``num_gpus`` per actor defaults to 1 where the cluster has GPUs, else 0.
    """

    executor: RayExecutor
    concurrency: int | None = None
    num_gpus: float | None = None

    def fill(
        self, root: Path, encoder: Any, role: str, missing: list[str], batch_size: int, desc: str
    ) -> int:
        """Encode ``missing`` texts (none of them in the store under ``root``) on the cluster, in the
        local store's shards and batches; returns how many were encoded."""
        from tqdm.auto import tqdm

        if not missing:
            return 0
        ray = self.executor.start()
        measure = getattr(encoder, "lengths", None)
        lengths = (lambda batch: measure(batch, role)) if callable(measure) else None
        shards = shards_of(missing, lengths)
        resources = ray.cluster_resources()
        gpus = resources.get("GPU", 0)
        num_gpus = self.num_gpus if self.num_gpus is not None else (1 if gpus else 0)
        concurrency = self.concurrency or max(1, int(gpus if num_gpus else resources.get("CPU", 1)))
        concurrency = min(concurrency, len(shards))
        items = [{"shard": i, "texts": shard} for i, shard in enumerate(shards)]
        context = ray.data.DataContext.get_current()  # our bar below counts texts; Ray's would log
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        args = (encoder_recipe(encoder), str(root), encoder.prompt(role), role, batch_size)
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            EncoderActor,
            fn_constructor_args=args,
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=concurrency),
            num_gpus=num_gpus,
            num_cpus=0 if num_gpus else 1,
            batch_format="numpy",
        )
        done = 0
        quiet = logging.getLogger("ray.data")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # Ray Data's execution and progress notes, not its errors
        bar = tqdm(total=len(missing), desc=f"{desc} (Ray Data, {concurrency} actors)", unit="text")
        try:
            for row in dataset.iter_rows():
                if row["error"]:
                    raise UserError(str(row["error"]))
                done += int(row["texts"])
                bar.update(int(row["texts"]))
        finally:
            bar.close()
            quiet.setLevel(level)
        return done
