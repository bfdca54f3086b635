"""encode_texts: batches by token count, keeps input order, reports every batch, and gives the
embeddings SentenceTransformer.encode gives (to float rounding)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build_tiny_model

from hybrid_plugin.models.encode import encode_texts, length_batches, token_lengths

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
