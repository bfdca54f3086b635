"""The trainer as sentence-transformers users expect: dev retrieval evaluator, best model, loggers, card."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import torch_threads

from hybrid_plugin.errors import UserError
from hybrid_plugin.training.config import TrainConfig
from hybrid_plugin.training.data import ParallelItems, build_pairs, split_dev

pytest.importorskip("accelerate", reason="training needs the train extra")


def _items(rows: dict[str, dict[str, tuple[str | None, str | None]]]) -> ParallelItems:
    """Items from ``{id: {lang: (question, passage)}}``."""
    items = ParallelItems(passage_unit="given")
    for item_id, langs in rows.items():
        i = items.item(item_id)
        for lang, (question, passage) in langs.items():
            if question is not None:
                items.questions[i][lang] = question
            if passage is not None:
                items.passages[i][lang] = passage
    return items


# ----------------------------------------------------------------------------- the dev pool (fast)


def test_dev_pool_is_one_query_per_question_and_relevance_by_item() -> None:
    from hybrid_plugin.training.dev_eval import dev_pool

    items = _items(
        {
            "a": {"de": ("qa", "pa"), "en": ("qA", "pA")},
            "b": {"de": ("qb", "pa"), "en": ("qB", None)},  # asks about a's German paragraph; no en passage
            "c": {"de": ("qc", "pc"), "en": ("qC", "pC")},
        }
    )
    pairs = build_pairs(items)
    pool = dev_pool(items, pairs)  # every item held out
    assert pool.languages == ("de", "en")
    assert pool.cand_sentence == ["pa", "pc", "pA", "pC"]  # "pa" once: one text, one candidate
    assert pool.query_text == ["qa", "qb", "qc", "qA", "qB", "qC"]
    relevant = {pool.query_text[q]: sorted(pool.cand_sentence[c] for c in pool.relevant(q)) for q in range(6)}
    assert relevant == {
        "qa": ["pA", "pa"],
        "qb": ["pa"],
        "qc": ["pC", "pc"],
        "qA": ["pA", "pa"],
        "qB": ["pa"],  # no English passage: cross and pool settings only
        "qC": ["pC", "pc"],
    }
    train, dev = split_dev(pairs, 0.34, seed=0)  # one of the two conflict groups ({a, b}, {c})
    held = dev_pool(items, dev)
    assert set(held.group_names) in ({"a", "b"}, {"c"})


class _FixedEncoder:
    """A stand-in SentenceTransformer whose embedding of each text is given."""

    def __init__(self, vectors: dict[str, tuple[float, float]]) -> None:
        from sentence_transformers import SentenceTransformerModelCardData

        self.vectors = vectors
        self.device = "cpu"
        self.model_card_data = SentenceTransformerModelCardData()

    def encode(self, texts, prompt=None, **_) -> np.ndarray:
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)


def test_dev_evaluator_gives_hand_computed_map_and_rank_distance() -> None:
    """Two items in de/en with fixed embeddings; every value below is worked out by hand.

    qa=(1,0): pa 1, pA .8, pB .6, pb 0 → mono 1, cross 1, pool ranks 1,2: AP 1, distance 1.
    qb=(.6,.8): pB 1, pA .96, pb .8, pa .6 → mono 1, cross 1, pool ranks 1,3: AP (1+2/3)/2, distance 2.
    qA=(0,1): pb 1, pB .8, pA .6, pa 0 → mono 1/2, cross 1/2, pool ranks 3,4: AP (1/3+2/4)/2, distance 1.
    qB=(0,1): mono 1, cross 1, pool ranks 1,2: AP 1, distance 1.
    """
    from hybrid_plugin.training.dev_eval import dev_evaluator, dev_pool

    items = _items(
        {"a": {"de": ("qa", "pa"), "en": ("qA", "pA")}, "b": {"de": ("qb", "pb"), "en": ("qB", "pB")}}
    )
    pool = dev_pool(items, build_pairs(items))
    model = _FixedEncoder(
        {
            "pa": (1, 0),
            "pb": (0, 1),
            "pA": (0.8, 0.6),
            "pB": (0.6, 0.8),
            "qa": (1, 0),
            "qb": (0.6, 0.8),
            "qA": (0, 1),
            "qB": (0, 1),
        }
    )
    evaluator = dev_evaluator(pool, "fixed", {}, "cosine", primary="max_rank_distance")
    metrics = evaluator(model, steps=7)
    multi_de, multi_en = (1 + (1 + 2 / 3) / 2) / 2, ((1 / 3 + 2 / 4) / 2 + 1) / 2
    assert metrics == pytest.approx(
        {
            "dev_mono_map": (1 + 0.75) / 2,
            "dev_cross_map": (1 + 0.75) / 2,
            "dev_multi_map": (multi_de + multi_en) / 2,
            "dev_max_rank_distance": ((1 + 2) / 2 + 1) / 2,
        },
        abs=1e-7,
    )
    assert evaluator.primary_metric == "dev_max_rank_distance" and evaluator.greater_is_better is False
    # the card's training log gets every dev metric of the step, not only the primary one
    assert model.model_card_data.training_logs[-1] == {"Epoch": -1, "Step": 7, **metrics}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"load_best_model_at_end": True}, "needs a dev split"),
        ({"dev_fraction": 0.1, "metric_for_best_model": "ndcg"}, "expected one of"),
        ({"dev_fraction": 0.1, "load_best_model_at_end": True, "save_steps": 7}, "multiple of --eval-steps"),
        ({"report_to": "mlflow"}, "expected one of none, tensorboard, wandb"),
        ({"push_to_hub": "no-owner"}, "USER/NAME"),
    ],
)
def test_evaluation_options_are_checked_before_training(options: dict, message: str) -> None:
    cfg = TrainConfig(train_data=["jsonl:x"], output="out", **options)
    with pytest.raises(UserError, match=message):
        cfg.validate(check_output=False)


def test_a_missing_logger_package_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a)
    )
    cfg = TrainConfig(train_data=["jsonl:x"], output="out", report_to="wandb")
    with pytest.raises(UserError, match="pip install wandb"):
        cfg.validate(check_output=False)


# ----------------------------------------------------------------------------- training (tiny model)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread_for_the_module() -> Iterator[None]:
    """One intra-op thread for training and evaluation alike: the tests below compare the trainer's dev
    scores with a second evaluation to 1e-9, and on a tiny random model a near-tie can flip with the
    order of a multi-threaded float reduction (seen once: one query's rank moved)."""
    with torch_threads(1):
        yield


def _options(train_jsonl: Path, tiny_model: Path, output: Path, **extra) -> dict:
    return {
        "train_data": [f"jsonl:{train_jsonl}"],
        "output": str(output),
        "base_model": str(tiny_model),
        "strategy": "hybrid",
        "batch_size": 8,
        "max_seq_length": None,  # evaluate with the length the saved model has
        "learning_rate": 1e-3,
        "dev_fraction": 0.3,
        "dev_steps": 1,
        "progress": False,
        **extra,
    }


def _saved_model_on_the_dev_pool(options: dict) -> dict[str, float]:
    """The saved model scored on the run's dev pool by the evaluation API's own retriever (no trainer)."""
    from hybrid_plugin.evaluation.engine import TaskContext, evaluate_pool
    from hybrid_plugin.models.ref import resolve_model
    from hybrid_plugin.scoring.dense import DenseRetriever, SentenceTransformerEncoder
    from hybrid_plugin.training.build import load_training_data
    from hybrid_plugin.training.dev_eval import dev_pool

    cfg = TrainConfig(**options)
    data = load_training_data(cfg)
    retriever = DenseRetriever(SentenceTransformerEncoder(resolve_model(cfg.output)), cache_root=None)
    scores = evaluate_pool(dev_pool(data.items, data.dev), retriever, TaskContext("dev", "dev"), measures=())
    s = scores.results.scores
    return {k: getattr(s, k) for k in ("mono_map", "cross_map", "multi_map", "max_rank_distance")}


@pytest.fixture(scope="module")
def two_step_run(tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, train_jsonl: Path):
    from hybrid_plugin.training.trainer import train

    pytest.importorskip("tensorboard", reason="--report-to tensorboard needs the train-logs extra")
    out = tmp_path_factory.mktemp("st") / "two-steps"
    options = _options(train_jsonl, tiny_model, out, max_steps=2, report_to="tensorboard", license="mit")
    return options, train(**options)


def test_two_steps_log_dev_map_into_the_record_and_tensorboard(two_step_run) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    options, record = two_step_run
    curve = record["dev_retrieval"]
    assert [e["step"] for e in curve] == [0, 1, 2]
    for entry in curve:
        assert all(0 <= entry[k] <= 1 for k in ("mono_map", "cross_map", "multi_map"))
        assert entry["max_rank_distance"] >= 0
    # the last evaluation is the saved model's: the evaluation API on the same pool gives the same numbers
    assert _saved_model_on_the_dev_pool(options) == pytest.approx(
        {k: curve[-1][k] for k in ("mono_map", "cross_map", "multi_map", "max_rank_distance")}, abs=1e-9
    )
    written = json.loads((Path(options["output"]) / "training.json").read_text(encoding="utf-8"))
    assert written["dev_retrieval"] == curve and written["best_model"] is None
    logs = Path(options["output"] + ".logs")
    events = list(logs.glob("events.out.tfevents.*"))
    assert events, f"no TensorBoard event file in {logs}"
    acc = EventAccumulator(str(logs))
    acc.Reload()
    logged = [(e.step, e.value) for e in acc.Scalars("eval/dev_multi_map")]
    assert logged == [(e["step"], pytest.approx(e["multi_map"], rel=1e-6)) for e in curve]
    assert "train/loss" in acc.Tags()["scalars"] or "eval/loss" in acc.Tags()["scalars"]


def test_the_card_is_sentence_transformers_and_keeps_our_fields(two_step_run, tmp_path: Path) -> None:
    from huggingface_hub import ModelCard, metadata_load

    from hybrid_plugin.training.card import SECTION_END, SECTION_START, write_card

    options, record = two_step_run
    folder = Path(options["output"])
    readme = folder / "README.md"
    card = ModelCard.load(readme)
    data = card.data
    assert data.library_name == "sentence-transformers" and data.license == "mit"
    assert data.language == ["de", "es", "zh"]
    assert {"sentence-transformers", "generated_from_trainer", "hybrid-batch-training"} <= set(data.tags)
    ours = data.to_dict()["hybrid_plugin"]
    assert ours["strategy"] == "hybrid" and ours["alpha"] == 0.5 and ours["batch_size"] == 8
    assert ours["dev_retrieval"] == [
        {k: v for k, v in e.items() if k != "epoch"} for e in record["dev_retrieval"]
    ]
    # model-index: the dev evaluator's scores of the saved weights, as the Hub reads them
    dev = {r.metric_type: r.metric_value for r in data.eval_results if r.dataset_type == "dev"}
    assert dev == pytest.approx({k: record["dev_retrieval"][-1][k] for k in dev}) and len(dev) == 4
    text = card.text
    assert "## Training Details" in text and "### Training Logs" in text  # sentence-transformers' parts
    assert text.count(SECTION_START) == 1 and "Dev retrieval on" in text and "dev_multi_map" in text
    assert str(tmp_path.parent) not in readme.read_text(encoding="utf-8")  # no machine paths
    # benchmark scores (--evaluate) join model-index and the section; rewriting keeps one section
    copy = tmp_path / "model"
    copy.mkdir()
    (copy / "README.md").write_bytes(readme.read_bytes())
    scores = {"mono_map": 0.5, "cross_map": 0.25, "multi_map": 0.125, "max_rank_distance": 10.0}
    for _ in range(2):
        write_card(copy, {**record, "evaluation": {"xquad-r": scores}}, name="model")
    again = ModelCard.load(copy / "README.md")
    bench = {
        r.metric_type: r.metric_value
        for r in again.data.eval_results
        if r.dataset_type == "hybrid-plugin/xquad-r"
    }
    assert bench == scores and {r.task_type for r in again.data.eval_results} >= {"Retrieval"}
    assert again.text.count(SECTION_START) == 1 == again.text.count(SECTION_END)
    assert "| xquad-r | 0.5000 | 0.2500 | 0.1250 | 10.0 |" in again.text
    assert metadata_load(copy / "README.md")["hybrid_plugin"]["strategy"] == "hybrid"


def test_load_best_model_keeps_the_best_evaluation_by_the_chosen_metric(
    tmp_path: Path, tiny_model: Path, train_jsonl: Path
) -> None:
    """Lower is better for the rank distance: the kept weights are those of its smallest evaluation."""
    from hybrid_plugin.training.trainer import train

    options = _options(
        train_jsonl,
        tiny_model,
        tmp_path / "best",
        max_steps=4,
        learning_rate=5e-3,
        load_best_model_at_end=True,
        metric_for_best_model="max_rank_distance",
    )
    record = train(**options)
    saved = [e for e in record["dev_retrieval"] if e["step"] > 0]  # step 0 is the base: no checkpoint
    assert [e["step"] for e in saved] == [1, 2, 3, 4]
    best = min(saved, key=lambda e: e["max_rank_distance"])  # the first of equals, as transformers keeps
    assert record["best_model"]["step"] == best["step"]
    assert record["best_model"]["value"] == pytest.approx(best["max_rank_distance"])
    assert record["best_model"]["greater_is_better"] is False
    assert _saved_model_on_the_dev_pool(options) == pytest.approx(
        {k: best[k] for k in ("mono_map", "cross_map", "multi_map", "max_rank_distance")}, abs=1e-9
    )
    assert not Path(str(options["output"]) + ".checkpoints").exists()


def test_push_to_hub_uploads_the_written_folder_and_a_failure_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Not exercised against the Hub (offline): the call made, and what a failed upload says."""
    from hybrid_plugin.training.trainer import _push

    calls = []

    class Model:
        def push_to_hub(self, repo, **options):
            calls.append((repo, options))
            if repo == "me/down":
                raise OSError("Connection refused\nlong traceback text")
            return f"https://huggingface.co/{repo}"

    _push(Model(), "me/model", tmp_path)
    assert calls == [("me/model", {"local_model_path": str(tmp_path), "exist_ok": True})]
    assert f"pushed {tmp_path} to https://huggingface.co/me/model" in capsys.readouterr().out
    with pytest.raises(UserError) as err:
        _push(Model(), "me/down", tmp_path)
    assert str(err.value) == f"--push-to-hub me/down: Connection refused; the model is saved at {tmp_path}"


def test_cli_parses_the_new_options(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import argparse

    from hybrid_plugin.cli import main
    from hybrid_plugin.training.cli import add_train_parser

    base = ["train", "--train-data", "jsonl:x", "--output", str(tmp_path / "m")]
    assert main([*base, "--load-best-model-at-end"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs a dev split" in err
    parser = argparse.ArgumentParser()
    add_train_parser(parser.add_subparsers())
    args = parser.parse_args(
        [*base, "--eval-steps", "25", "--report-to", "tensorboard", "--metric-for-best-model"]
        + ["max_rank_distance", "--push-to-hub", "me/m", "--license", "mit"]
    )
    assert (args.dev_steps, args.report_to) == (25, "tensorboard")
    assert args.metric_for_best_model == "max_rank_distance"
    assert (args.push_to_hub, args.license) == ("me/m", "mit")
    assert parser.parse_args([*base, "--dev-steps", "7"]).dev_steps == 7
