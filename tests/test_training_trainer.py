"""The trainer end to end on a tiny model: CLI, saved model, record, prompts, evaluation, errors."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from hybrid_plugin.errors import UserError
from hybrid_plugin.training.cli import add_train_parser
from hybrid_plugin.training.data import read_sources

pytest.importorskip("accelerate", reason="training needs the train extra")


def run_cli(argv: Sequence[str]) -> int:
    """What ``hybrid-plugin train ...`` does: parse, run, print a UserError as one line, exit 2."""
    parser = argparse.ArgumentParser(prog="hybrid-plugin")
    add_train_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", *argv])
    try:
        return args.func(args)
    except UserError as err:
        print(f"hybrid-plugin: error: {err}", file=sys.stderr)
        return 2


@pytest.fixture(scope="module")
def train_jsonl(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> Path:
    """300 items of the offline MLQA training copy as jsonl (de, es, zh questions and paragraphs)."""
    folder = datasets / "train" / "mlqa-test"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    items = read_sources([f"mlqa:{folder}"], progress=False)
    lines = []
    for item_id, qs, ps in zip(items.ids, items.questions, items.passages):
        langs = sorted(set(qs) & set(ps) & {"de", "es", "zh"})
        for lang in langs:
            lines.append(
                json.dumps({"id": item_id, "lang": lang, "query": qs[lang], "passage": ps[lang][:100]})
            )
        if len(lines) >= 600:
            break
    path = tmp_path_factory.mktemp("train") / "mlqa-sample.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _weights(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    files = list(folder.rglob("model.safetensors"))
    assert len(files) == 1
    return load_file(str(files[0]))


def test_cli_trains_saves_records_and_evaluates(
    tmp_path: Path, tiny_model: Path, train_jsonl: Path, datasets: Path
) -> None:
    out = tmp_path / "hybrid"
    rc = run_cli(
        [
            "--train-data", f"jsonl:{train_jsonl}",
            "--output", str(out),
            "--base-model", str(tiny_model),
            "--strategy", "hybrid", "--alpha", "0.5",
            "--batch-size", "8", "--max-steps", "3", "--max-seq-length", "32",
            "--learning-rate", "1e-3", "--logging-steps", "1", "--no-progress",
            "--evaluate", "xquad-r", "--eval-languages", "de,zh", "--data-dir", str(datasets),
        ]
    )  # fmt: skip
    assert rc == 0
    record = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert record["steps"] == 3
    assert record["config"]["strategy"] == "hybrid" and record["sampler"]["alpha"] == 0.5
    assert record["loss"] == "mnrl"
    assert record["data"]["languages"] == ["de", "es", "zh"]
    assert record["sampler"]["mono_languages"] == ["de", "es", "zh"]
    assert sum(record["sampler"]["batches_drawn"].values()) >= 3
    assert record["seconds_per_step"] > 0 and record["pairs_per_second"] > 0
    assert record["max_seq_length"] == {"training": 32, "saved": 128}

    # the saved model loads, keeps the base model's prompts and length, and its weights moved
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(out), device="cpu")
    assert model.prompts == {"query": "query: ", "document": "passage: "}
    assert model.max_seq_length == 128
    for name in ("tokenizer.json", "tokenizer_config.json"):  # the base's, byte for byte
        assert (out / name).read_bytes() == (tiny_model / name).read_bytes()
    base_cfg = json.loads((tiny_model / "sentence_bert_config.json").read_text(encoding="utf-8"))
    saved_cfg = json.loads((out / "sentence_bert_config.json").read_text(encoding="utf-8"))
    assert base_cfg.items() <= saved_cfg.items()
    before, after = _weights(tiny_model), _weights(out)
    assert before.keys() <= after.keys()  # the tiny model has no pooler file; loading adds an unused one
    assert any(not np.array_equal(before[k], after[k]) for k in before)

    results = list((tmp_path / "hybrid-eval").glob("*.json"))
    assert len(results) == 1
    evaluated = json.loads(results[0].read_text(encoding="utf-8"))
    assert evaluated["task"] == "xquad-r" and evaluated["languages"] == ["de", "zh"]
    scores = evaluated["scores"]
    assert 0.0 < scores["mono_map"] <= 1.0 and scores["max_rank_distance"] > 0
    card = (out / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\n") and "# hybrid\n" in card and "| xquad-r |" in card
    assert not list(tmp_path.glob(".hybrid*")), "no temp folder left behind"


def test_batches_reach_the_model_with_prompts_and_one_kind(
    tmp_path: Path, tiny_model: Path, train_jsonl: Path
) -> None:
    from hybrid_plugin.models.ref import resolve_model
    from hybrid_plugin.training.samplers import batch_kind
    from hybrid_plugin.training.trainer import TrainConfig, build_trainer, load_training_data

    cfg = TrainConfig(
        train_data=[f"jsonl:{train_jsonl}"],
        output=str(tmp_path / "m"),
        batch_size=8,
        strategy="mono",
        progress=False,
    )
    ref = resolve_model(str(tiny_model))
    data = load_training_data(cfg)
    trainer, model, samplers = build_trainer(cfg, ref, data, tmp_path / "work")
    batch = next(iter(trainer.get_train_dataloader()))
    assert batch["query_input_ids"].shape[0] == 8 and batch["passage_input_ids"].shape[0] == 8
    assert len(samplers) == 1
    first = next(iter(samplers[0]))  # the same seed and epoch: the batch the loader just read
    assert batch_kind(first, data.labels)[0] == "mono"
    tok = model.tokenizer
    for column, prompt in (("query", "query: "), ("passage", "passage: ")):
        text = getattr(data.pairs, column)[first[0]]
        got = batch[f"{column}_input_ids"][0][batch[f"{column}_attention_mask"][0].bool()].tolist()
        assert got == tok(prompt + text, truncation=True, max_length=128)["input_ids"]
        assert got != tok(text, truncation=True, max_length=128)["input_ids"]


def test_python_entry_point_with_gradcache_loss_and_frozen_embeddings(
    tmp_path: Path, tiny_model: Path, train_jsonl: Path
) -> None:
    from hybrid_plugin.training.trainer import train

    record = train(
        train_data=[f"jsonl:{train_jsonl}"],
        output=str(tmp_path / "cross"),
        base_model=str(tiny_model),
        strategy="cross",
        batch_size=8,
        mini_batch_size=4,
        max_steps=2,
        max_seq_length=32,
        freeze_embeddings=True,
        learning_rate=1e-3,
        progress=False,
    )
    assert record["loss"] == "cached-mnrl" and record["steps"] == 2
    assert set(record["sampler"]["batches_drawn"]) == {"cross"}
    before, after = _weights(tiny_model), _weights(tmp_path / "cross")
    key = "embeddings.word_embeddings.weight"
    assert np.array_equal(before[key], after[key])  # frozen
    assert not np.array_equal(
        before["encoder.layer.0.output.dense.weight"], after["encoder.layer.0.output.dense.weight"]
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--alpha", "2"], "--alpha must be in [0, 1], got 2.0"),
        (["--strategy", "cross", "--alpha", "0.5"], "--alpha applies to --strategy hybrid only"),
        (["--batch-size", "1"], "--batch-size must be ≥ 2"),
        (["--languages", "de,fr"], "--languages: fr not in the training data"),
        (["--batch-size", "400", "--strategy", "mono"], "independent items for batch size 400"),
        (["--evaluate", "nope"], "nope"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    tmp_path: Path,
    tiny_model: Path,
    train_jsonl: Path,
    capsys: pytest.CaptureFixture,
    extra: list[str],
    message: str,
) -> None:
    argv = [
        "--train-data",
        f"jsonl:{train_jsonl}",
        "--output",
        str(tmp_path / "o"),
        "--base-model",
        str(tiny_model),
    ]
    rc = run_cli([*argv, "--max-steps", "1", "--no-progress", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("hybrid-plugin: error: ") and message in err[-1]
    assert not (tmp_path / "o").exists()


def test_cli_refuses_missing_data_and_a_used_output(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert run_cli(["--train-data", f"mlqa:{tmp_path / 'none'}", "--output", str(tmp_path / "o")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("keep", encoding="utf-8")
    assert run_cli(["--train-data", f"mlqa:{tmp_path}", "--output", str(used)]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert (used / "x").read_text(encoding="utf-8") == "keep"


def test_saved_model_keeps_base_tokenizer_and_module_settings(tmp_path: Path) -> None:
    from hybrid_plugin.training.trainer import keep_base_files

    base, saved = tmp_path / "base", tmp_path / "saved"
    for folder in (base, saved):
        (folder / "0_Transformer").mkdir(parents=True)
    (base / "tokenizer.json").write_text('{"truncation": null}', encoding="utf-8")
    (saved / "tokenizer.json").write_text('{"truncation": {"max_length": 256}}', encoding="utf-8")
    (base / "0_Transformer" / "vocab.txt").write_text("a\nb\n", encoding="utf-8")
    (saved / "0_Transformer" / "vocab.txt").write_text("b\na\n", encoding="utf-8")
    (base / "special_tokens_map.json").write_text("{}", encoding="utf-8")  # absent from saved: not added
    (base / "sentence_bert_config.json").write_text(
        json.dumps({"task": "x", "model_kwargs": {"add_pooling_layer": False}}), encoding="utf-8"
    )
    (saved / "sentence_bert_config.json").write_text(json.dumps({"task": "y"}), encoding="utf-8")
    keep_base_files(base, saved)
    assert (saved / "tokenizer.json").read_text(encoding="utf-8") == '{"truncation": null}'
    assert (saved / "0_Transformer" / "vocab.txt").read_text(encoding="utf-8") == "a\nb\n"
    assert not (saved / "special_tokens_map.json").exists()
    merged = json.loads((saved / "sentence_bert_config.json").read_text(encoding="utf-8"))
    assert merged == {"task": "y", "model_kwargs": {"add_pooling_layer": False}}


def test_crashed_run_leaves_no_model_and_resumes_from_checkpoints(
    tmp_path: Path, tiny_model: Path, train_jsonl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hybrid_plugin.training import trainer as trainer_module

    options = dict(
        train_data=[f"jsonl:{train_jsonl}"],
        output=str(tmp_path / "run"),
        base_model=str(tiny_model),
        batch_size=8,
        max_steps=3,
        save_steps=2,
        max_seq_length=32,
        progress=False,
    )

    def crash(*args, **kwargs):
        raise RuntimeError("simulated crash after training")

    monkeypatch.setattr(trainer_module, "keep_base_files", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        trainer_module.train(**options)
    assert not (tmp_path / "run").exists()  # no half-written model
    checkpoints = tmp_path / "run.checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir() if p.name.startswith("checkpoint-")) == [
        "checkpoint-2",
        "checkpoint-3",
    ]
    shutil.rmtree(checkpoints / "checkpoint-3")  # as if it had crashed during step 3
    monkeypatch.undo()
    record = trainer_module.train(**options, resume=True)
    assert record["steps"] == 3
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert not checkpoints.exists()  # removed once the model is saved
