"""Encode once: unique texts only, a persistent cache that a second run reuses, and interruption safety."""

from __future__ import annotations

import numpy as np
import pytest

from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate
from hybrid_plugin.evaluation.store import EmbeddingStore, text_hash
from hybrid_plugin.models.ref import resolve_model


class CountingModel:
    """Wraps a SentenceTransformer and records every text it is asked to encode."""

    def __init__(self, st):
        self.st, self.texts, self.device = st, [], st.device

    def encode(self, texts, **kw):
        self.texts += [(kw.get("prompt"), t) for t in texts]
        return self.st.encode(texts, **kw)


def counted(tiny_model):
    ref = resolve_model(str(tiny_model))
    ref._model = CountingModel(ref.load())
    return ref


def test_second_evaluation_encodes_nothing(datasets, tiny_model, tmp_path):
    cfg = EvalConfig(
        task="xquad-r", languages="de,zh", data_dir=str(datasets), cache_dir=str(tmp_path), run_depth=0
    )
    first_model = counted(tiny_model)
    first = evaluate(cfg, model=first_model)
    # each unique text exactly once per prompt, whatever the number of settings
    encoded = first_model._model.texts
    assert len(encoded) == len(set(encoded)) == first.counts["unique_texts"]
    assert {p for p, _ in encoded} == {"query: ", "passage: "}
    assert first.counts["texts_encoded"] == first.counts["unique_texts"]
    second_model = counted(tiny_model)
    second = evaluate(cfg, model=second_model)
    assert second_model._model.texts == []
    assert second.counts["texts_encoded"] == 0
    assert second.scores == first.scores


def test_interrupted_encoding_leaves_a_usable_cache(tmp_path):
    store = EmbeddingStore(tmp_path, "f" * 64, "query: ")
    texts = [f"text {i}" for i in range(10)]
    calls = []

    def flaky(batch):
        calls.append(list(batch))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return np.full((len(batch), 4), len(calls), dtype=np.float32)

    with pytest.raises(KeyboardInterrupt):
        store.ensure(texts, flaky, shard_size=4)
    assert not list(store.folder.glob("*.tmp")) and not list(store.folder.glob(".*"))
    reopened = EmbeddingStore(tmp_path, "f" * 64, "query: ")
    assert len(reopened) == 4  # the finished shard survived
    todo = reopened.missing(texts)
    assert len(todo) == 6 and not set(todo) & set(calls[0])
    assert reopened.ensure(texts, lambda b: np.zeros((len(b), 4), np.float32), shard_size=4) == 6
    assert np.all(reopened.get(calls[0]) == 1)


def test_unreadable_shard_is_ignored(tmp_path):
    store = EmbeddingStore(tmp_path, "a" * 64, "")
    store.add(["x"], np.ones((1, 3), np.float32))
    (store.folder / "garbage.npz").write_bytes(b"not a zip")
    assert len(EmbeddingStore(tmp_path, "a" * 64, "")) == 1


def test_keys_depend_on_prompt_and_fingerprint(tmp_path):
    a = EmbeddingStore(tmp_path, "a" * 64, "query: ")
    b = EmbeddingStore(tmp_path, "a" * 64, "passage: ")
    c = EmbeddingStore(tmp_path, "b" * 64, "query: ")
    assert len({a.folder, b.folder, c.folder}) == 3
    assert text_hash("x") != text_hash("x ")


def test_fingerprint_changes_with_weights(tiny_model, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    assert resolve_model(str(copy)).fingerprint == resolve_model(str(tiny_model)).fingerprint
    (copy / "README.md").write_text("a different card")  # cards do not change what a model computes
    assert resolve_model(str(copy)).fingerprint == resolve_model(str(tiny_model)).fingerprint
    weights = next(copy.rglob("model.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    assert resolve_model(str(copy)).fingerprint != resolve_model(str(tiny_model)).fingerprint
