"""Encode texts with a SentenceTransformer as fast as the CPU allows, without changing what it computes.

Why not ``SentenceTransformer.encode`` on the whole list: it sorts texts by *characters*, and
character length is a poor proxy for token length when scripts are mixed (a 100-character Chinese
sentence is ~80 tokens, an English one ~25). On XQuAD-R that pads batches of 64 to 1.64x the real
tokens; sorting by token count pads to 1.02x, and every padded token costs as much as a real one in
the linear layers. ``benchmarks/encode_speed.py`` measures this and the other settings tried
(batch size, threads, attention implementation); ``benchmarks/results/encode_speed.md`` has the
numbers.

Each batch is still encoded by ``SentenceTransformer.encode`` (prompts, truncation, pooling and
normalisation exactly as the model defines them). A text's embedding depends on the other texts of
its batch only through float rounding (padding changes reduction lengths), within ~1e-6.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer


Batch = TypeVar("Batch")


def encode_on_threads(
    encode: Callable[[Batch], np.ndarray], batches: Iterable[Batch], workers: int = 2
) -> Iterator[np.ndarray]:
    """``encode`` of each batch, in order, with ``workers`` batches in flight at once on the CPU.

    Why: on a few cores one batch's small matrix products and its GELU, attention and norms do not
    keep every core busy through torch's own intra-op threads (which synchronise after each
    operator). Two batches at a time, each on half of the threads, kept 2 cores busier:
    ``benchmarks/results/encode_speed_xquad-r__threads.md`` measured 6–10 % less wall time and bit-identical
    embeddings. The batches are the same as encoded one after another, so what is computed is the same.

    The first batch runs in the calling thread before the others start, so lazy state (the model
    load, the tokenizer's padding and truncation settings) is set once and the workers only read it.
    Torch's thread count is process-wide: it is lowered while the workers run and restored after,
    also when the caller stops early or a batch fails.

    At most ``2 * workers`` batches are submitted ahead of the one the caller waits for, so finished
    embeddings never pile up behind a slow consumer and a failing batch stops the run within that
    window (``Executor.map`` would submit every batch up front).
    """
    import torch

    batches = list(batches)
    threads = torch.get_num_threads()
    if workers <= 1 or threads < workers or len(batches) <= 1:
        for batch in batches:
            yield encode(batch)
        return
    yield encode(batches[0])
    per_worker = threads // workers
    torch.set_num_threads(per_worker)
    pool = ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(per_worker,))
    in_flight: deque[Future[np.ndarray]] = deque()
    try:
        for batch in batches[1:]:
            in_flight.append(pool.submit(encode, batch))
            if len(in_flight) >= 2 * workers:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(threads)


def token_lengths(model: SentenceTransformer, texts: Sequence[str], prompt: str) -> np.ndarray:
    """Tokens per text as the model will see it (prompt and special tokens included, truncated).

    Falls back to character counts for a model without a text tokenizer: only the order matters.
    """
    tokenizer = getattr(model, "tokenizer", None)
    max_len = getattr(model, "max_seq_length", None) or None
    if tokenizer is None or not callable(tokenizer):
        return np.fromiter((len(prompt) + len(t) for t in texts), dtype=np.int64, count=len(texts))
    ids = tokenizer(
        [prompt + t for t in texts],
        add_special_tokens=True,
        truncation=max_len is not None,
        max_length=max_len,
    )["input_ids"]
    return np.fromiter((len(i) for i in ids), dtype=np.int64, count=len(texts))


def length_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Row indices per batch, longest first: similar lengths share a batch, so little is padded.

    Ties keep input order (stable), so the batches depend only on the texts, not on a sort's whims.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def encode_texts(
    model: SentenceTransformer,
    texts: Sequence[str],
    prompt: str,
    batch_size: int,
    on_batch: Callable[[int], None] | None = None,
) -> np.ndarray:
    """float32 embeddings of ``texts`` (one row each, input order), batched by token count.

    ``prompt`` is prepended as the model's prompt ("" for none). ``on_batch(n)`` is called after
    each batch with the number of texts it encoded, so a caller can advance a progress bar often
    (a batch takes well under a second to a few seconds on 2 CPU cores).
    """
    texts = list(texts)
    dim = model.get_embedding_dimension()
    if not texts:
        return np.empty((0, dim or 0), dtype=np.float32)
    out: np.ndarray | None = None
    for rows in length_batches(token_lengths(model, texts, prompt), batch_size):
        emb = model.encode(
            [texts[i] for i in rows],
            prompt=prompt or None,
            batch_size=len(rows),
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        if out is None:
            out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
        out[rows] = emb
        if on_batch is not None:
            on_batch(len(rows))
    assert out is not None
    return out
