"""Where a model runs (``--device``) and what it is told (``--query-prompt / --document-prompt``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import build_tiny_model

from hybrid_plugin import errors
from hybrid_plugin.cli import main
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.evaluator import EvalConfig
from hybrid_plugin.scoring.resolve import resolve_retriever

NO_PROMPTS = "has no query or document prompt in its config and none was given"


def model_folder(path: Path, prompts: dict[str, str] | None) -> Path:
    """A SentenceTransformer folder as resolution sees it (no weights are loaded before encoding)."""
    path.mkdir(parents=True)
    (path / "modules.json").write_text("[]")
    (path / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": prompts or {}, "similarity_fn_name": "cosine"})
    )
    return path


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(errors, "_WARNED", set())


@pytest.fixture(scope="module")
def bare_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SentenceTransformer whose config has no prompts."""
    texts = ["ein kleiner Satz", "a small sentence", "une petite phrase"] * 5
    return build_tiny_model(tmp_path_factory.mktemp("bare"), texts, prompts=False)


def ours(capsys) -> list[str]:
    """Our stderr lines (transformers draws its own weight-loading bar there)."""
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("hybrid-plugin")]


def test_a_model_without_prompts_is_encoded_as_is_with_one_warning(bare_model, capsys):
    encoder = resolve_retriever(str(bare_model)).encoder
    assert (encoder.prompt("query"), encoder.prompt("document")) == ("", "")
    assert capsys.readouterr().err == ""  # not before it loads: a broken model gives its error alone
    encoder.encode(["a small sentence"], "query", 1)
    err = ours(capsys)
    assert len(err) == 1 and err[0].startswith("hybrid-plugin: warning: model ") and NO_PROMPTS in err[0]
    resolve_retriever(str(bare_model)).encoder.encode(["a small sentence"], "query", 1)
    assert ours(capsys) == []  # once per model and process
    # prompts the user chose, even empty ones, are no reason to warn
    given = resolve_retriever(str(bare_model), device="cpu", query_prompt="", document_prompt="").encoder
    given.ref.fingerprint = "another"  # not silenced by the first warning's key
    given.encode(["a small sentence"], "query", 1)
    assert ours(capsys) == []


def test_given_prompts_replace_the_configs_and_are_recorded(tmp_path, capsys):
    folder = model_folder(tmp_path / "bare", None)
    encoder = resolve_retriever(str(folder), query_prompt="query: ", document_prompt="passage: ").encoder
    assert (encoder.prompt("query"), encoder.prompt("document")) == ("query: ", "passage: ")
    assert encoder.provenance()["query_prompt"] == "query: "
    assert encoder.provenance()["document_prompt"] == "passage: "
    # one given prompt replaces that one only; the config's other prompt stays
    own = model_folder(tmp_path / "e5", {"query": "query: ", "passage": "passage: "})
    encoder = resolve_retriever(str(own), document_prompt="").encoder
    assert (encoder.prompt("query"), encoder.prompt("document")) == ("query: ", "")


def test_prompts_for_a_baseline_are_refused():
    with pytest.raises(
        UserError, match="--query-prompt/--document-prompt: bm25 is not a SentenceTransformer"
    ):
        resolve_retriever("bm25", query_prompt="query: ")


def test_device_reaches_the_encoder(tmp_path):
    encoder = resolve_retriever(str(model_folder(tmp_path / "m", {"query": "q: "})), device="cpu").encoder
    assert encoder.ref.device == "cpu" and encoder.device() == "cpu"


@pytest.mark.parametrize(
    ("device", "expected"),
    [("gpu", "--device gpu: expected cpu, cuda or cuda:N"), ("cuda:7", "--device cuda:7: torch sees")],
)
def test_an_unusable_device_is_one_line_before_anything_loads(device, expected, capsys, tmp_path):
    import torch

    if device.startswith("cuda") and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    with pytest.raises(UserError, match=expected):
        EvalConfig(task="xquad-r", device=device).engine_options()
    argv = ["evaluate", "--task", "xquad-r", "--device", device, "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_train_takes_cpu_or_cuda():
    from hybrid_plugin.training.config import TrainConfig

    with pytest.raises(UserError, match="--device cpu:0: train takes cpu or cuda"):
        TrainConfig(train_data=["jsonl:x"], output="out", device="cpu:0").validate(check_output=False)
    with pytest.raises(SystemExit):
        main(["train", "--train-data", "jsonl:x", "--output", "o", "--device", "cuda:0"])
