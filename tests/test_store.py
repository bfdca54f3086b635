"""Encode once: unique texts only, a persistent cache that a second run reuses, and interruption safety."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate
from hybrid_plugin.models.ref import resolve_model
from hybrid_plugin.scoring.store import EmbeddingStore, Shard, _as_words, shard_check, text_hash


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


# --- reading in place: memory that does not grow with the store ------------------------------------


def _vectors(texts, dim=6):
    """A fixed pseudo-random vector per text (the same in every call)."""
    return np.stack(
        [np.random.default_rng(int.from_bytes(text_hash(t)[:8], "little")).random(dim) for t in texts]
    ).astype(np.float32)


def test_matrix_is_a_memmap_bit_identical_to_get_and_reused(tmp_path):
    texts = [f"candidate {i}" for i in range(50)]
    store = EmbeddingStore(tmp_path, "a" * 64, "passage: ")
    assert store.ensure(texts, _vectors, shard_size=7) == 50
    assert all(s.emb is None and s.offset is not None for s in store._shards)  # read from the files
    wanted = texts[::-1] + texts[:5]  # any order, repeats allowed
    in_memory = store.get(wanted)
    np.testing.assert_array_equal(in_memory, _vectors(wanted))
    mapped = EmbeddingStore(tmp_path, "a" * 64, "passage: ").matrix(wanted)
    assert isinstance(mapped, np.memmap) and mapped.dtype == np.float32 and mapped.mode == "c"
    assert mapped.tobytes() == in_memory.tobytes()  # bit-identical
    (made,) = (store.folder / "matrices").glob("*.npy")
    before = made.stat().st_mtime_ns
    again = EmbeddingStore(tmp_path, "a" * 64, "passage: ").matrix(wanted)
    assert again.filename == mapped.filename and made.stat().st_mtime_ns == before  # reused, not rebuilt
    again[0] = 7.0  # copy-on-write: the file does not change
    np.testing.assert_array_equal(np.load(made), in_memory)
    assert not list(store.folder.rglob("*.tmp"))


def test_a_damaged_matrix_is_assembled_again(tmp_path):
    texts = [f"t{i}" for i in range(20)]
    store = EmbeddingStore(tmp_path, "b" * 64, "")
    store.ensure(texts, _vectors, shard_size=8)
    path = Path(store.matrix(texts).filename)
    data = bytearray(path.read_bytes())
    data[-4:] = np.float32(np.nan).tobytes()  # a NaN where a value was
    path.write_bytes(bytes(data))
    np.testing.assert_array_equal(EmbeddingStore(tmp_path, "b" * 64, "").matrix(texts), _vectors(texts))


def test_index_keeps_the_latest_of_a_text_stored_twice_and_reads_compressed_shards(tmp_path):
    """Two runs that encoded one text both stored it: the later shard wins, as a dict would; an
    ``.npz`` saved compressed (not ours, still valid) is read into memory instead of in place."""
    store = EmbeddingStore(tmp_path, "c" * 64, "")
    store.ensure(["x", "y"], lambda b: np.zeros((len(b), 3), np.float32))
    keys = np.frombuffer(text_hash("y") + text_hash("z"), dtype=np.uint8).reshape(2, -1)
    emb = np.array([[1, 1, 1], [2, 2, 2]], dtype=np.float32)
    with open(store.folder / ("f" * 32 + ".npz"), "wb") as fh:  # sorts after the first shard's name
        np.savez_compressed(fh, keys=keys, emb=emb, check=shard_check(keys, emb))
    reopened = EmbeddingStore(tmp_path, "c" * 64, "")
    assert len(reopened) == 3 and reopened.missing(["z", "w", "x", "w"]) == ["w"]
    compressed = [s for s in reopened._shards if s.path.name.startswith("f" * 32)]
    assert compressed[0].emb is not None and compressed[0].offset is None
    np.testing.assert_array_equal(reopened.matrix(["x", "y", "z"]), [[0, 0, 0], [1, 1, 1], [2, 2, 2]])


def test_dense_retriever_hands_the_scorer_a_memmap(tmp_path):
    from hybrid_plugin.data.pool import Pool
    from hybrid_plugin.scoring.dense import DenseRetriever

    class Encoder:
        name, fingerprint, similarity = "vec", "d" * 64, "cosine"

        def prompt(self, role):
            return role

        def encode(self, texts, role, batch_size):
            return _vectors(texts)

        def provenance(self):
            return {"fingerprint": self.fingerprint}

        def device(self):
            return "cpu"

    pool = Pool(
        task="t",
        languages=("de", "en"),
        candidate_format="sentence",
        cand_ids=["d1", "e1", "e2"],
        cand_lang=np.array([0, 1, 1]),
        cand_sentence=["eins", "one", "one"],
        cand_context=["eins", "one", "one"],
        query_ids=["q1"],
        query_lang=np.array([0]),
        query_text=["frage"],
        query_group=np.array([0]),
        group_names=["g"],
        group_ptr=np.array([0, 1]),
        group_cands=np.array([1]),
    )
    retriever = DenseRetriever(Encoder(), cache_root=tmp_path)
    emb = retriever.embed_pool(pool)
    assert isinstance(emb.cand, np.memmap) and emb.cand.shape == (2, 6)
    assert emb.cand_row.tolist() == [0, 1, 1]
    assert emb.cand.tobytes() == _vectors(["eins", "one"]).tobytes()
    uncached = DenseRetriever(Encoder(), cache_root=None).embed_pool(pool)
    assert type(uncached.cand) is np.ndarray and uncached.cand.tobytes() == emb.cand.tobytes()
    assert retriever.retrieval(pool, emb).matrix is not None


def test_keys_sharing_their_first_64_bits_are_still_told_apart(tmp_path):
    """The index sorts and searches a key's first 8 bytes as one integer; two different keys that
    share them (a 64-bit collision) are ordered and found by both words."""

    def key(hi: int, lo: int) -> bytes:
        return hi.to_bytes(8, "big") + lo.to_bytes(8, "big")

    raw = [key(5, 9), key(5, 1), key(2, 7), key(5, 4), key(2, 7)]  # (2, 7) twice: the later one wins
    store = EmbeddingStore(tmp_path, "e" * 64, "")
    for i, k in enumerate(raw):
        keys = np.frombuffer(k, dtype=np.uint8).reshape(1, 16)
        store._index_shard(Shard(tmp_path / f"{i}.npz", keys, np.full((1, 2), i, np.float32)))
    store.dim = 2
    wanted = np.frombuffer(b"".join([key(5, 4), key(5, 9), key(2, 7), key(5, 1)]), dtype=np.uint8)
    words = _as_words(wanted)
    assert store._find(words).min() >= 0 and len(store) == 4
    np.testing.assert_array_equal(store._gather(*store._locate(words))[:, 0], [3, 0, 4, 1])
    assert (store._find(_as_words(np.frombuffer(key(5, 5) + key(6, 9), dtype=np.uint8))) == -1).all()
