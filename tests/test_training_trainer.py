"""The trainer end to end on a tiny model: CLI, saved model, record, prompts, evaluation, errors."""

from __future__ import annotations

import argparse
import hashlib
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
    # saved as `evaluate` saves: with the per-query file that compare and the board's intervals read
    per_query = results[0].with_name(evaluated["per_query"]["file"])
    assert hashlib.sha256(per_query.read_bytes()).hexdigest() == evaluated["per_query"]["sha256"]
    assert evaluated["per_query"]["rows"] == sum(s["queries"] for s in evaluated["settings"].values())
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


def _plain_options(train_jsonl: Path, tiny_model: Path, output: Path, **extra) -> dict:
    return dict(
        train_data=[f"jsonl:{train_jsonl}"],
        output=str(output),
        base_model=str(tiny_model),
        strategy="hybrid",
        batch_size=8,
        max_steps=4,
        max_seq_length=32,
        learning_rate=1e-3,
        progress=False,
        **extra,
    )


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, train_jsonl: Path) -> Path:
    """Four uninterrupted hybrid steps: the reference for the resume and merge tests."""
    from hybrid_plugin.training.trainer import train

    out = tmp_path_factory.mktemp("plain") / "model"
    train(**_plain_options(train_jsonl, tiny_model, out))
    return out


def test_ctrl_c_leaves_a_checkpoint_and_resume_ends_where_an_uninterrupted_run_ends(
    tmp_path: Path, tiny_model: Path, train_jsonl: Path, plain_run: Path
) -> None:
    import os
    import signal

    from transformers import TrainerCallback

    from hybrid_plugin.errors import Interrupted
    from hybrid_plugin.training.trainer import train

    class CtrlCBeforeStep2(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if state.global_step == 1:
                os.kill(os.getpid(), signal.SIGINT)

    out = tmp_path / "model"
    options = _plain_options(train_jsonl, tiny_model, out)
    # whatever handler the process had (a shell's background job starts with SIGINT ignored)
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted, match=r"checkpoint of step 2 in .*model\.checkpoints.*--resume"):
        train(**options, callbacks=[CtrlCBeforeStep2()])
    assert not out.exists()  # nothing half-written
    checkpoints = tmp_path / "model.checkpoints"
    assert [p.name for p in checkpoints.glob("checkpoint-*")] == ["checkpoint-2"]
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    with pytest.raises(UserError, match="holds checkpoints of an unfinished run: add --resume"):
        train(**options)

    record = train(**options, resume=True)
    assert record["steps"] == 4 and not checkpoints.exists()
    resumed, reference = _weights(out), _weights(plain_run)
    assert resumed.keys() == reference.keys()
    for key in _weights(tiny_model):  # same batches, same RNG state: the same model (the pooler,
        # absent from the tiny model and unused, is initialised at random on each load)
        np.testing.assert_allclose(resumed[key], reference[key], rtol=0, atol=1e-6, err_msg=key)


def test_a_checkpoint_loads_into_a_model_without_a_pooler(tmp_path: Path, tiny_model: Path) -> None:
    """The default model is loaded without BERT's unused pooler; sentence-transformers reloads a checkpoint
    with one (at random), and its strict load made --resume crash on the extra keys."""
    import torch
    from sentence_transformers import SentenceTransformer

    from hybrid_plugin.training.build import load_checkpoint_weights

    def without_pooler() -> SentenceTransformer:
        return SentenceTransformer(str(tiny_model), model_kwargs={"add_pooling_layer": False})

    model, trained = without_pooler(), without_pooler()
    assert not any("pooler" in key for key in model.state_dict())
    with torch.no_grad():
        for weight in trained.parameters():
            weight.add_(0.25)
    trained.save(str(tmp_path / "checkpoint-2"))
    assert any("pooler" in key for key in SentenceTransformer(str(tmp_path / "checkpoint-2")).state_dict())
    with pytest.raises(RuntimeError, match="Unexpected key"):  # what sentence-transformers' resume does
        model.load_state_dict(SentenceTransformer(str(tmp_path / "checkpoint-2")).state_dict())
    load_checkpoint_weights(model, str(tmp_path / "checkpoint-2"))
    loaded, expected = model.state_dict(), trained.state_dict()
    assert loaded.keys() == expected.keys()
    assert all(torch.equal(loaded[key], expected[key]) for key in expected)


def test_cli_reports_an_interrupted_run_on_one_line_with_exit_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from hybrid_plugin import cli
    from hybrid_plugin.errors import Interrupted
    from hybrid_plugin.training import trainer

    def interrupted(cfg):
        raise Interrupted("checkpoint of step 7 in out.checkpoints; continue with --resume")

    monkeypatch.setattr(trainer, "train", interrupted)
    assert cli.main(["train", "--train-data", "jsonl:x", "--output", "o"]) == 130
    assert capsys.readouterr().err.strip() == (
        "hybrid-plugin: interrupted: checkpoint of step 7 in out.checkpoints; continue with --resume"
    )


def test_merge_with_base_interpolates_the_trained_and_base_weights(
    tmp_path: Path, tiny_model: Path, train_jsonl: Path, plain_run: Path
) -> None:
    from hybrid_plugin.training.trainer import train

    out = tmp_path / "merged"
    record = train(**_plain_options(train_jsonl, tiny_model, out, merge_with_base=0.25))
    assert record["merge_with_base"]["weight"] == 0.25 and record["merge_with_base"]["tensors"] > 0
    base, trained, merged = _weights(tiny_model), _weights(plain_run), _weights(out)
    moved = 0
    for key in base:
        np.testing.assert_allclose(
            merged[key], 0.25 * trained[key] + 0.75 * base[key], rtol=0, atol=1e-6, err_msg=key
        )
        moved += not np.array_equal(trained[key], base[key])
    assert moved > 0
    assert "| merged with base | 0.25 |" in (out / "README.md").read_text(encoding="utf-8")


def test_merging_a_saved_model_equals_training_with_merge_with_base(
    tmp_path: Path, tiny_model: Path, train_jsonl: Path, plain_run: Path
) -> None:
    from hybrid_plugin.errors import UserError
    from hybrid_plugin.training.trainer import merge_saved, train

    trained_merged = tmp_path / "trained-merged"
    train(**_plain_options(train_jsonl, tiny_model, trained_merged, merge_with_base=0.25))
    out = tmp_path / "merged-after"
    record = merge_saved(plain_run, 0.25, out)
    assert record["merge_with_base"]["weight"] == 0.25
    assert record["merge_with_base"]["merged_from"] == str(plain_run)
    a, b = _weights(trained_merged), _weights(out)
    for key in _weights(tiny_model):  # the tiny base has no pooler; the randomly initialised one is unused
        np.testing.assert_allclose(b[key], a[key], rtol=0, atol=1e-6, err_msg=key)
    saved = json.loads((out / "training.json").read_text(encoding="utf-8"))
    assert saved["config"]["merge_with_base"] == 0.25 and saved["config"]["strategy"] == "hybrid"
    assert (out / "tokenizer.json").read_bytes() == (plain_run / "tokenizer.json").read_bytes()
    with pytest.raises(UserError, match="already merged"):
        merge_saved(out, 0.5, tmp_path / "twice")
    with pytest.raises(UserError, match="exists"):
        merge_saved(plain_run, 0.5, out)


def test_dev_split_logs_a_dev_loss_on_held_out_items(
    tmp_path: Path, tiny_model: Path, train_jsonl: Path
) -> None:
    from hybrid_plugin.training.trainer import train

    record = train(**_plain_options(train_jsonl, tiny_model, tmp_path / "m", dev_fraction=0.3, dev_steps=2))
    assert record["data"]["dev_pairs"] > 0 and record["data"]["dev_items"] > 0
    from hybrid_plugin.training.data import build_pairs

    everything = build_pairs(read_sources([f"jsonl:{train_jsonl}"], progress=False))
    assert record["data"]["pairs"] + record["data"]["dev_pairs"] == len(everything)
    assert [e["step"] for e in record["dev_loss"]] == [0, 2, 4]
    assert all(np.isfinite(e["loss"]) and e["loss"] > 0 for e in record["dev_loss"])
    card = (tmp_path / "m" / "README.md").read_text(encoding="utf-8")
    assert "dev loss" in card


def test_two_process_torchrun_steps_share_kind_and_never_an_item(
    tmp_path: Path, tiny_model: Path, train_jsonl: Path
) -> None:
    """A real 2-process CPU run (gloo): what each process's data loader yields, then training."""
    import os
    import socket
    import subprocess

    from hybrid_plugin.training.samplers import batch_kind
    from hybrid_plugin.training.trainer import TrainConfig, load_training_data

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    worker = Path(__file__).with_name("distributed_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    run = subprocess.run(
        [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--nnodes", "1",
            "--master_addr", "127.0.0.1", "--master_port", str(port),
            str(worker), str(train_jsonl), str(tiny_model), str(tmp_path),
        ],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"batches-{r}.json").read_text(encoding="utf-8")) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    steps0, steps1 = ranks[0]["batches"], ranks[1]["batches"]
    assert len(steps0) == len(steps1) > 10
    labels = load_training_data(
        TrainConfig(train_data=[f"jsonl:{train_jsonl}"], output=str(tmp_path / "x"), progress=False)
    ).labels
    kinds = set()
    for a, b in zip(steps0, steps1):
        assert len(a) == len(b) == 4
        assert batch_kind(a, labels) == batch_kind(b, labels)  # same kind, same language
        assert not set(labels.group[a].tolist()) & set(labels.group[b].tolist())
        kinds.add(batch_kind(a, labels)[0])
    assert kinds == {"mono", "cross"}

    record = json.loads((tmp_path / "model" / "training.json").read_text(encoding="utf-8"))
    assert record["processes"] == 2 and record["steps"] == 3 and record["pairs_seen"] == 24
    assert record["sampler"]["world_size"] == 2 and record["sampler"]["batch_size"] == 4
    assert not list(tmp_path.glob("model.*")) and not list(tmp_path.glob(".model*"))


def test_dry_run_draws_an_epoch_without_a_model_or_an_output(
    tmp_path: Path, train_jsonl: Path, capsys: pytest.CaptureFixture
) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep").write_text("x", encoding="utf-8")  # a dry run writes nothing, so this is fine
    argv = ["--train-data", f"jsonl:{train_jsonl}", "--output", str(used), "--batch-size", "8"]
    assert run_cli([*argv, "--dry-run", "--no-progress", "--strategy", "X-Y"]) == 0
    out = capsys.readouterr().out
    assert "pairs (query-passage): de-de " in out
    steps = int(out.split("batch size 8, ")[1].split(" steps")[0])
    assert f"one epoch of batches by kind: cross {steps}" in out
    assert sorted(p.name for p in used.iterdir()) == ["keep"]
