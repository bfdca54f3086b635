"""encode_texts: batches by token count, keeps input order, reports every batch, and gives the
embeddings SentenceTransformer.encode gives (to float rounding)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import build_tiny_model, torch_threads

from hybrid_plugin.models.encode import encode_on_threads, encode_texts, length_batches, token_lengths

TEXTS = [
    "short",
    "a much longer sentence about rivers, mountains and the history of some European town",
    "北京是中国的首都，也是一座历史悠久的城市。",
    "mid-length text here",
    "Der Rhein fließt durch mehrere Länder Europas.",
    "",
    "short",  # a duplicate keeps its own row
    "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):
    from sentence_transformers import SentenceTransformer

    folder = build_tiny_model(tmp_path_factory.mktemp("tiny-encode"), TEXTS * 20)
    return SentenceTransformer(str(folder), device="cpu")


def test_length_batches_longest_first_stable() -> None:
    batches = length_batches(np.array([3, 9, 3, 5, 9, 1]), 2)
    assert [b.tolist() for b in batches] == [[1, 4], [3, 0], [2, 5]]
    with pytest.raises(ValueError):
        length_batches(np.array([1]), 0)


def test_token_lengths_count_prompt_and_special_tokens(model) -> None:
    plain = token_lengths(model, ["short"], "")
    prompted = token_lengths(model, ["short"], "query: ")
    ids = model.tokenizer("query: short")["input_ids"]
    assert prompted[0] == len(ids) and prompted[0] > plain[0]


def test_matches_sentence_transformers_and_reports_batches(model) -> None:
    seen: list[int] = []
    out = encode_texts(model, TEXTS, "query: ", batch_size=3, on_batch=seen.append)
    assert out.dtype == np.float32 and out.shape == (len(TEXTS), model.get_embedding_dimension())
    assert seen == [3, 3, 2]  # one call per batch, summing to the number of texts
    reference = model.encode(TEXTS, prompt="query: ", batch_size=len(TEXTS), convert_to_numpy=True)
    np.testing.assert_allclose(out, reference, atol=1e-5)  # same rows in input order
    np.testing.assert_allclose(out[0], out[6], atol=1e-6)  # a duplicate text: its own row, same vector
    one_by_one = np.stack([model.encode([t], prompt="query: ", convert_to_numpy=True)[0] for t in TEXTS])
    np.testing.assert_allclose(out, one_by_one, atol=1e-5)


def test_empty_input(model) -> None:
    out = encode_texts(model, [], "", batch_size=8)
    assert out.shape == (0, model.get_embedding_dimension()) and out.dtype == np.float32


def test_prompt_matters(model) -> None:
    a = encode_texts(model, TEXTS[:2], "", batch_size=8)
    b = encode_texts(model, TEXTS[:2], "query: ", batch_size=8)
    assert not np.allclose(a, b)


def test_store_encodes_longest_first_by_the_given_lengths(tmp_path) -> None:
    """The store hands batches ordered by the encoder's token counts, not by characters, and keeps
    every text's own embedding whatever its batch."""
    from hybrid_plugin.scoring.store import EmbeddingStore

    texts = ["aaaaaaaaaa", "b", "cc cc cc cc", "d d", "eeeee"]
    words = {t: len(t.split()) for t in texts}  # "tokens": words; characters would order them otherwise
    batches: list[list[str]] = []

    def encode(batch: list[str]) -> np.ndarray:
        batches.append(list(batch))
        return np.array([[float(len(t)), float(words[t])] for t in batch], dtype=np.float32)

    store = EmbeddingStore(tmp_path, "f" * 64, "")
    lengths = lambda batch: np.array([words[t] for t in batch])  # noqa: E731
    assert store.ensure(texts, encode, shard_size=4, batch_size=2, lengths=lengths) == 5
    # 4 words, 2 words, then the 1-word texts in input order (stable); shards of 4, batches of 2
    assert batches == [["cc cc cc cc", "d d"], ["aaaaaaaaaa", "b"], ["eeeee"]]
    np.testing.assert_array_equal(store.get(texts), [[len(t), words[t]] for t in texts])
    by_chars = EmbeddingStore(tmp_path / "chars", "f" * 64, "")
    batches.clear()
    by_chars.ensure(texts, encode, batch_size=2)
    assert batches[0] == ["cc cc cc cc", "aaaaaaaaaa"]  # without lengths: characters, as before


def test_uncached_encoding_uses_the_same_batches_and_moves_the_bar(capsys) -> None:
    from hybrid_plugin.scoring.store import encode_uncached

    texts = ["x y z", "x", "x y", "w v u t"]
    seen: list[list[str]] = []

    def encode(batch: list[str]) -> np.ndarray:
        seen.append(list(batch))
        return np.array([[len(t.split())] for t in batch], dtype=np.float32)

    out = encode_uncached(
        texts, encode, 3, desc="encoding test", lengths=lambda b: [len(t.split()) for t in b]
    )
    assert seen == [["w v u t", "x y z", "x y"], ["x"]]
    np.testing.assert_array_equal(out[:, 0], [3, 1, 2, 4])  # input order
    assert "encoding test" in capsys.readouterr().err  # a bar, even without the cache
    assert encode_uncached([], encode, 3).shape[0] == 0


def test_dense_retriever_batches_by_token_count_and_matches_the_model(model, tmp_path) -> None:
    """Through the store, the SentenceTransformer encoder's batches are token-homogeneous and the
    embeddings equal the model's own (to float rounding), cached or not."""
    from hybrid_plugin.models.ref import ModelRef
    from hybrid_plugin.scoring.dense import DenseRetriever, SentenceTransformerEncoder

    ref = ModelRef(
        name="tiny", path=Path("tiny"), fingerprint="a" * 64, query_prompt="query: ", document_prompt=""
    )
    ref._model = model
    encoder = SentenceTransformerEncoder(ref)
    calls: list[list[str]] = []
    real = encoder.encode
    encoder.encode = lambda batch, role, bs: calls.append(list(batch)) or real(batch, role, bs)  # type: ignore[method-assign]
    unique = list(dict.fromkeys(TEXTS))
    for cache in (tmp_path, None):
        calls.clear()
        emb, encoded = DenseRetriever(encoder, batch_size=3, cache_root=cache).embed(unique, "query", "enc")
        assert encoded == len(unique)
        tokens = token_lengths(model, unique, encoder.prompt("query"))
        # the batches are cut longest first by tokens; two may run at once, so compare as a set
        expected = [[unique[i] for i in rows] for rows in length_batches(tokens, 3)]
        assert sorted(calls) == sorted(expected)
        assert calls[0] == expected[0]  # the first runs alone, before any other starts
        reference = model.encode(unique, prompt=encoder.prompt("query") or None, convert_to_numpy=True)
        np.testing.assert_allclose(emb, reference, atol=1e-5)


@pytest.fixture
def two_torch_threads():
    with torch_threads(2):
        yield


def test_encode_on_threads_keeps_order_and_restores_torch_threads(two_torch_threads) -> None:
    """Results come back in batch order whatever finishes first; the first batch runs in the calling
    thread alone; the workers run on one torch thread each, and the caller gets its 2 threads back."""
    import threading
    import time

    import torch

    caller = threading.get_ident()
    seen: list[tuple[int, int, int]] = []  # (batch, thread id, torch threads inside)

    def encode(batch: list[int]) -> np.ndarray:
        time.sleep(0.02 * (batch[0] % 3))  # later batches may finish first
        seen.append((batch[0], threading.get_ident(), torch.get_num_threads()))
        return np.array([[float(x)] for x in batch], dtype=np.float32)

    batches = [[i, i + 100] for i in range(7)]
    out = list(encode_on_threads(encode, batches, workers=2))
    assert [o[:, 0].tolist() for o in out] == [[float(i), i + 100.0] for i in range(7)]
    assert seen[0] == (0, caller, 2)  # alone, before the workers start, with all threads
    workers = {tid for b, tid, _ in seen[1:]}
    assert caller not in workers and 1 <= len(workers) <= 2
    assert all(n == 1 for _, _, n in seen[1:])
    assert torch.get_num_threads() == 2


def test_encode_on_threads_sequential_without_spare_threads() -> None:
    import threading

    with torch_threads(1):
        ids: set[int] = set()
        out = list(encode_on_threads(lambda b: ids.add(threading.get_ident()) or np.ones((1, 1)), [1, 2, 3]))
        assert len(out) == 3 and ids == {threading.get_ident()}


def test_encode_on_threads_stops_and_restores_on_a_failing_batch(two_torch_threads) -> None:
    import torch

    started: list[int] = []

    def encode(batch: int) -> np.ndarray:
        started.append(batch)
        if batch == 2:
            raise RuntimeError("batch 2 failed")
        return np.zeros((1, 1))

    with pytest.raises(RuntimeError, match="batch 2 failed"):
        list(encode_on_threads(encode, range(40), workers=2))
    assert torch.get_num_threads() == 2
    # batch 0 in the caller, then at most 2 * workers submitted ahead of the one awaited: 0..5
    assert max(started) <= 5 and len(started) <= 6


def test_store_closes_the_batch_runner_when_a_batch_is_refused(tmp_path, two_torch_threads) -> None:
    """A NaN embedding stops the shard; the threads are back to 2 right away, nothing is cached."""
    import torch

    from hybrid_plugin.errors import UserError
    from hybrid_plugin.scoring.store import EmbeddingStore

    def encode(batch: list[str]) -> np.ndarray:
        return np.full((len(batch), 2), np.nan if "bad" in batch else 1.0, dtype=np.float32)

    store = EmbeddingStore(tmp_path, "e" * 64, "")
    texts = [f"text {i}" for i in range(10)] + ["bad"]
    with pytest.raises(UserError, match="NaN or infinite"):
        store.ensure(texts, encode, batch_size=2, map_batches=lambda f, b: encode_on_threads(f, b, 2))
    assert torch.get_num_threads() == 2 and len(store) == 0


def test_dense_retriever_on_threads_equals_one_batch_at_a_time(model, tmp_path, two_torch_threads) -> None:
    """The CPU path runs two batches at once; the embeddings are those of one batch at a time."""
    from hybrid_plugin.models.ref import ModelRef
    from hybrid_plugin.scoring.dense import DenseRetriever, SentenceTransformerEncoder

    ref = ModelRef(name="tiny", path=Path("tiny"), fingerprint=None, query_prompt="", document_prompt="")
    ref._model = model
    texts = list(dict.fromkeys(TEXTS * 3))
    threaded, _ = DenseRetriever(SentenceTransformerEncoder(ref), batch_size=2).embed(texts, "query", "e")
    sequential = encode_texts(model, texts, "", batch_size=2)
    np.testing.assert_allclose(threaded, sequential, rtol=0, atol=1e-6)
