"""MTEB integration: the official Python route, ``hybrid-plugin mteb run`` and ``mteb run`` (through the .pth
hook) against the evaluator; results where mteb's ResultCache finds them."""

from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import torch_threads

from hybrid_plugin.data.spec import get_spec
from hybrid_plugin.evaluation.measures import DEFAULT_MEASURES
from hybrid_plugin.scoring.store import count_stored

pytest.importorskip("mteb")

from hybrid_plugin.integrations.mteb_metadata import iso3, subset_setting  # noqa: E402 - needs mteb

REPO = Path(__file__).resolve().parents[1]
PTH = REPO / "hybrid_plugin_mteb.pth"
HOOK = REPO / "_hybrid_plugin_mteb.py"


def pythonpath(*first: Path) -> str:
    """``first``, then the caller's PYTHONPATH (e.g. another mteb version under test)."""
    kept = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join([*map(str, first), *kept])


# the CLI's own entry point, run after site.addsitedir() processed the plugin's .pth like an install does
MTEB_SHIM = (
    "import site, sys; site.addsitedir(sys.argv.pop(1)); sys.argv[0] = 'mteb'; "
    "from mteb.cli.build_cli import main; main()"
)
MLQA_DE_SUBSETS = (
    [f"deu-{y}" for y in ("ara", "deu", "eng", "spa", "hin", "vie", "zho")]
    + [f"{x}-deu" for x in ("ara", "eng", "spa", "hin", "vie", "zho")]
    + [f"{x}-pool" for x in ("ara", "deu", "eng", "spa", "hin", "vie", "zho")]
)


def pth_installed() -> bool:
    return any((Path(p) / PTH.name).is_file() for p in site.getsitepackages())


def mteb_command(tmp_path: Path) -> list[str]:
    """``mteb`` itself when the .pth is installed; else the same CLI with the .pth processed first."""
    if pth_installed():
        return [str(Path(sys.executable).with_name("mteb"))]
    site_dir = tmp_path / "site"
    site_dir.mkdir(exist_ok=True)
    for source in (PTH, HOOK):
        (site_dir / source.name).write_text(source.read_text())
    return [sys.executable, "-c", MTEB_SHIM, str(site_dir)]


def one_thread_env(datasets: Path) -> dict[str, str]:
    # one BLAS thread: on 2 busy cores torch's thread pool makes tiny models 10-20x slower
    return os.environ | {"HYBRID_PLUGIN_DATA": str(datasets), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture
def one_torch_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def registered() -> tuple[str, ...]:
    from hybrid_plugin.integrations.mteb import register

    return register()


def test_subsets_are_settings_both_ways():
    """Every subset names one Setting and back; the metadata lists them in the same order."""
    from hybrid_plugin.data.settings import Setting
    from hybrid_plugin.integrations.mteb_metadata import eval_langs, spec_settings, subset_of, subsets

    for name in ("xquad-r", "mlqa-r"):
        spec = get_spec(name)
        table = subsets(name)
        assert list(table) == list(eval_langs(spec)) == [subset_of(s) for s in spec_settings(spec)]
        assert all(subset_setting(spec, subset_of(s)) == s for s in spec_settings(spec))
    assert subset_setting(get_spec("xquad-r"), "deu-pool") == Setting("de", None)
    assert subset_setting(get_spec("xquad-r"), "zho-eng") == Setting("zh", "en")
    with pytest.raises(KeyError):
        subset_setting(get_spec("mlqa-r"), "tha-tha")


class HashModel:
    """An MTEB-style model without metadata: embeddings from the texts' bytes (no weights, no identity)."""

    def __init__(self, meta=None, dim: int = 16) -> None:
        self.mteb_model_meta = meta  # None: unidentifiable (MTEB's search protocol still wants the name)
        self.dim = dim
        self.calls: list[tuple[str, int]] = []

    def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type, **kwargs):
        texts = [t for batch in inputs for t in batch["text"]]
        self.calls.append((prompt_type.value, len(texts)))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            raw = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.float32)
            out[i, : min(self.dim, raw.size)] = raw[: self.dim] / 255.0
            out[i, -1] += len(text) % 7  # some ties, some order
        return out


def parallel_pool(seed: int = 0):
    """de/en/zh candidates, partly parallel questions: a pool with every setting kind, no files."""
    from hybrid_plugin.data.pool import LanguageFile, pool_from_files

    rng = np.random.default_rng(seed)
    files = []
    for lang, n_cand in (("de", 30), ("en", 25), ("zh", 20)):
        n_q = 12
        files.append(
            LanguageFile(
                lang,
                cand_ids=[f"{lang}-a000-p00-s{i:03d}" for i in range(n_cand)],
                sentences=[f"{lang} sentence {i % 9}" for i in range(n_cand)],  # repeated texts
                contexts=[""] * n_cand,
                question_ids=[f"g{i}" for i in rng.choice(16, n_q, replace=False)],
                questions=[f"{lang} question {i}?" for i in range(n_q)],
                answer_cand=list(rng.integers(0, n_cand, n_q)),
            )
        )
    return pool_from_files("xquad-r", ("de", "en", "zh"), files, "sentence")


def evaluate_subsets(task, model, subsets) -> dict:
    """MTEB's per-subset evaluation of a loaded task, as ``mteb.evaluate`` calls it (batches of 8)."""
    from mteb.timing import TimingStack

    return {
        subset: task._evaluate_subset(
            model,
            task.dataset[subset]["test"],
            encode_kwargs={"batch_size": 8},
            hf_split="test",
            hf_subset=subset,
            timer=TimingStack(),
        )
        for subset in subsets
    }


def test_unidentified_model_is_encoded_once_without_the_store(tmp_path):
    """No metadata: no fingerprint, so nothing is written to the store; each unique text is encoded once."""
    from hybrid_plugin.data.pool import unique_texts
    from hybrid_plugin.integrations.mteb_encoder import MTEBEncoder
    from hybrid_plugin.integrations.mteb_tasks import XQuADR
    from hybrid_plugin.scoring.dense import DenseRetriever, Encoder

    pool = parallel_pool()
    model = HashModel()
    encoder = MTEBEncoder(model, XQuADR.metadata, "test", "deu-pool", {"batch_size": 8})
    assert isinstance(encoder, Encoder) and encoder.fingerprint is None and encoder.name == "HashModel"
    assert encoder.prompt("query") == "<mteb XQuADR query>" != encoder.prompt("document")
    DenseRetriever(encoder, batch_size=encoder.batch_size, cache_root=tmp_path).score(pool)
    texts_per_role: dict[str, int] = {}
    for role, n in model.calls:  # in batches of encode_kwargs' batch size, queries first
        assert n <= 8
        texts_per_role[role] = texts_per_role.get(role, 0) + n
    assert list(texts_per_role) == ["query", "document"]
    assert texts_per_role == {
        "query": len(unique_texts(pool.query_text)[0]),
        "document": len(unique_texts(pool.cand_text)[0]),
    }
    assert not any(tmp_path.iterdir())


def test_identified_model_uses_the_store(tmp_path):
    """name@revision identifies a hub model: embeddings are stored, and a second scoring encodes nothing."""
    import types

    from hybrid_plugin.integrations.mteb_encoder import MTEBEncoder
    from hybrid_plugin.integrations.mteb_tasks import XQuADR
    from hybrid_plugin.scoring.dense import DenseRetriever

    meta = types.SimpleNamespace(name="org/model", revision="abc123", similarity_fn_name="cosine")
    model = HashModel(meta)
    for _ in range(2):
        encoder = MTEBEncoder(model, XQuADR.metadata, "test", "deu-pool", {})
        scored = DenseRetriever(encoder, batch_size=encoder.batch_size, cache_root=tmp_path).score(
            parallel_pool()
        )
    # the first scoring encoded every unique text once (in encode batches), the second nothing
    assert encoder.fingerprint and scored.counts["texts_encoded"] == 0
    assert sum(n for _, n in model.calls) == scored.counts["unique_texts"] == count_stored(tmp_path)
    assert {role for role, _ in model.calls} == {"query", "document"}


def test_task_scores_are_the_engines(tmp_path, monkeypatch):
    """A task's subsets through MTEB's own retrieval scoring: every engine value, read from typed results."""

    from hybrid_plugin.data.pool import unique_texts
    from hybrid_plugin.evaluation.engine import TaskContext
    from hybrid_plugin.integrations.mteb_tasks import XQuADR, keep_queries_of

    monkeypatch.setenv("HYBRID_PLUGIN_CACHE", str(tmp_path))
    wanted = ["deu-deu", "deu-eng", "zho-deu", "deu-pool", "eng-pool"]
    task = XQuADR().filter_languages(None, hf_subsets=wanted)
    pool = parallel_pool()
    task._pool = keep_queries_of(pool, ("de", "en", "zh"))
    assert task._pool is pool  # every language has queries: nothing dropped
    task._context = TaskContext("xquad-r", "toy")
    task.dataset = task._subsets(pool)
    task.data_loaded = True
    model = HashModel()
    entries = evaluate_subsets(task, model, wanted)
    # queries and candidates encoded once for all subsets (in batches of 8)
    assert sum(n for _, n in model.calls) == len(unique_texts(pool.query_text)[0]) + len(
        unique_texts(pool.cand_text)[0]
    )
    typed = next(iter(task._scored.values())).evaluation.results
    for subset, entry in entries.items():
        setting = subset_setting(task.spec, subset)
        result = typed.setting(setting)
        assert entry["map"] == result.map and entry["n_queries"] == result.queries
        assert entry["n_candidates"] == result.candidates
        assert {name: entry[name] for name in DEFAULT_MEASURES} == result.measures
        assert abs(entry["ndcg_at_10"] - result.measures["nDCG@10"]) <= 5e-6  # MTEB rounds to 5 decimals
        if setting.is_pool:
            lang = typed.per_language[setting.query_lang]
            assert entry["max_rank_distance"] == lang.max_rank_distance
            assert {
                k: v for k, v in entry.items() if k.startswith("mean_rank_") and k != "mean_rank_correlation"
            } == {f"mean_rank_{iso3(y)}": v for y, v in typed.mean_rank[setting.query_lang].items()}
            for key in ("lang_ndcg_10", "top1_wrong_query_lang", "mean_rank_correlation"):
                assert entry[key] == getattr(lang, key)
            assert {k: v for k, v in entry.items() if k.startswith("rank_correlation_")} == {
                f"rank_correlation_{iso3(y)}": v
                for y, v in typed.rank_correlation[setting.query_lang].items()
            }
        else:
            assert "max_rank_distance" not in entry and "mean_rank_deu" not in entry


def test_dropping_other_queries_moves_no_number():
    """A pool subset loads every language but only its queries: the kept queries' values are unchanged."""
    from hybrid_plugin.integrations.mteb_tasks import keep_queries_of
    from tests.conftest import MatrixScorer, engine_run

    pool = parallel_pool(seed=3)
    rng = np.random.default_rng(3)
    matrix = rng.integers(0, 5, (len(pool.query_ids), len(pool.cand_ids))).astype(np.float32)  # ties
    kept = keep_queries_of(pool, ("en",))
    rows = [pool.query_ids.index(q) for q in kept.query_ids]
    assert 0 < len(rows) < len(pool.query_ids)
    full = engine_run(pool, MatrixScorer(pool, matrix)).results
    part = engine_run(kept, MatrixScorer(kept, matrix[rows])).results
    assert set(part.settings) == {k for k in full.settings if k.startswith("en-")}
    for key, entry in part.settings.items():
        assert entry == full.settings[key], key
    # but the mean rank correlation: it needs the parallel queries of the other languages
    kept_en = part.per_language["en"].model_dump()
    assert kept_en.pop("mean_rank_correlation") is None
    assert full.per_language["en"].mean_rank_correlation is not None
    assert kept_en == {
        k: v for k, v in full.per_language["en"].model_dump().items() if k != "mean_rank_correlation"
    }
    assert part.mean_rank["en"] == full.mean_rank["en"]
    assert part.per_language["de"].multi_map is None


def test_task_metadata_and_subsets(registered):
    import mteb

    assert registered == ("XQuADR", "MLQAR")
    task = mteb.get_task("XQuADR")
    meta = task.metadata
    assert meta.main_score == "map" and meta.type == "Retrieval" and meta.eval_splits == ["test"]
    assert meta.license == "cc-by-sa-4.0" and "roy-etal-2020-lareqa" in meta.bibtex_citation
    assert meta.languages == sorted(
        ["ara", "deu", "ell", "eng", "spa", "hin", "rus", "tha", "tur", "vie", "zho"]
    )
    assert len(task.hf_subsets) == 11 * 11 + 11
    assert meta.eval_langs["deu-eng"] == ["deu-Latn", "eng-Latn"]
    assert meta.eval_langs["tha-tha"] == ["tha-Thai"]
    assert meta.eval_langs["zho-pool"][0] == "zho-Hans" and len(meta.eval_langs["zho-pool"]) == 11
    assert mteb.get_task("MLQAR").metadata.license == "cc-by-nc-4.0"
    # mteb's own -l semantics: every subset with German in it, including every pool (German candidates)
    assert sorted(mteb.get_task("MLQAR", languages=["deu"]).hf_subsets) == sorted(MLQA_DE_SUBSETS)
    exclusive = mteb.get_task("XQuADR", languages=["deu", "eng"], exclusive_language_filter=True)
    assert exclusive.hf_subsets == ["deu-deu", "deu-eng", "eng-deu", "eng-eng"]
    # descriptive statistics ship with the plugin and hold the per-subset counts
    stats = meta.descriptive_stats["test"]["hf_subset_descriptive_stats"]
    assert stats["deu-pool"]["num_documents"] == 13014 and stats["deu-pool"]["num_queries"] == 1190
    assert stats["deu-eng"]["relevant_docs_statistics"]["num_relevant_docs"] == 1190
    # plain mteb listings include the tasks
    assert "XQuADR" in [t.metadata.name for t in mteb.get_tasks(languages=["tha"], task_types=["Retrieval"])]


def test_mteb_run_cli_matches_evaluator(tiny_model, datasets, tmp_path, monkeypatch, one_torch_thread):
    """`hybrid-plugin mteb run` on a local folder, MLQA-R German subsets: every main score is the evaluator's.

    No --output-folder: results go where mteb's ResultCache looks ($MTEB_CACHE), in the results
    repository's layout under the model name and revision given for submission.
    """
    from mteb.cache import ResultCache
    from mteb.results import TaskResult

    from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate
    from hybrid_plugin.integrations.mteb_tasks import MLQAR

    cache = tmp_path / "cache"
    monkeypatch.setenv("HYBRID_PLUGIN_CACHE", str(cache))  # empty: what mteb encodes is counted below
    mteb_cache = tmp_path / "mteb-cache"
    args = ["mteb", "run", "-m", f"./{tiny_model.name}", "-t", "MLQAR", "-l", "deu", "--batch-size", "64"]
    args += ["--model-name", "my-org/tiny-model", "--revision", "abc123"]
    proc = subprocess.run(  # a local model folder, given relative to the working directory
        [sys.executable, "-m", "hybrid_plugin", *args],
        cwd=tiny_model.parent,
        env=one_thread_env(datasets) | {"MTEB_CACHE": str(mteb_cache), "PYTHONPATH": pythonpath(REPO)},
        capture_output=True,
        text=True,
        timeout=1800,  # 24695 texts on 2 shared cores
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # every unique text (4199 questions + 20496 sentences) encoded once for all 20 subsets
    assert count_stored(cache / "embeddings") == 24695
    assert proc.stdout.splitlines()[0].startswith("MLQAR: 20 subsets  mono_map 0.")

    # results in the results repository's layout, found by mteb's own ResultCache at its default path
    folder = mteb_cache / "results" / "my-org__tiny-model" / "abc123"
    assert {"MLQAR.json", "model_meta.json"} <= {p.name for p in folder.iterdir()}  # + mteb's run settings
    assert proc.stdout.splitlines()[1].strip() == str(folder / "MLQAR.json")
    monkeypatch.setenv("MTEB_CACHE", str(mteb_cache))
    loaded = ResultCache().load_results(models=["my-org/tiny-model"], tasks=[MLQAR()], include_remote=False)
    assert [r.model_name for r in loaded.model_results] == ["my-org/tiny-model"]
    assert loaded.model_results[0].model_revision == "abc123"
    assert loaded.model_results[0].task_results[0].task_name == "MLQAR"
    result = TaskResult.from_disk(folder / "MLQAR.json")
    by_subset = {e["hf_subset"]: e for e in result.scores["test"]}
    assert sorted(by_subset) == sorted(MLQA_DE_SUBSETS)

    # the evaluator on the same data reuses those embeddings (same keys: fingerprint, prompts, texts)
    ours = evaluate(EvalConfig(task="mlqa-r", model=str(tiny_model), data_dir=str(datasets), run_depth=0))
    assert ours.counts["texts_encoded"] == 0
    for subset, entry in by_subset.items():
        setting = subset_setting(get_spec("mlqa-r"), subset)
        result = ours.setting(setting)
        assert abs(entry["main_score"] - result.map) <= 1e-6, subset  # mteb writes 6 decimals
        assert entry["map"] == entry["main_score"]
        assert (entry["n_queries"], entry["n_candidates"]) == (result.queries, result.candidates)
        assert 0.0 <= entry["ndcg_at_10"] <= 1.0 and "recall_at_100" in entry
        assert set(result.measures) == set(DEFAULT_MEASURES)  # every engine measure, under its own name
        for name, value in result.measures.items():
            assert abs(entry[name] - value) <= 1e-6, (subset, name)
        if setting.is_pool:
            lang = ours.per_language[setting.query_lang]
            assert abs(entry["max_rank_distance"] - lang.max_rank_distance) <= 1e-6
            assert abs(entry["same_language_top_share"] - lang.same_language_top_share) <= 1e-6
            for y, rank in ours.mean_rank[setting.query_lang].items():
                assert abs(entry[f"mean_rank_{iso3(y)}"] - rank) <= 1e-6
    # MLQA-R is 2-4-way parallel: X→Y counts only the questions answered in Y
    assert by_subset["deu-deu"]["n_queries"] == 512 and by_subset["deu-ara"]["n_queries"] < 512
    assert by_subset["deu-pool"]["n_candidates"] == 20534


def test_python_api_encodes_once_then_reads_the_cache(
    tiny_model, datasets, tmp_path, monkeypatch, one_torch_thread
):
    """mteb.evaluate on four XQuAD-R subsets: each unique text encoded once; a rerun encodes nothing."""
    import mteb
    from sentence_transformers import SentenceTransformer

    from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate
    from hybrid_plugin.integrations.mteb import XQuADR
    from hybrid_plugin.integrations.mteb_models import local_model_meta

    monkeypatch.setenv("HYBRID_PLUGIN_DATA", str(datasets))
    monkeypatch.setenv("HYBRID_PLUGIN_CACHE", str(tmp_path / "cache"))
    unique_de_en = 2369 + 2456  # unique German and English questions, sentences
    encoded: list[int] = []
    original = SentenceTransformer.encode

    def counting(self, inputs, *args, **kwargs):
        encoded.append(len(inputs))
        return original(self, inputs, *args, **kwargs)

    monkeypatch.setattr(SentenceTransformer, "encode", counting)
    subsets = ["deu-deu", "deu-eng", "eng-deu", "eng-eng"]
    model = local_model_meta(str(tiny_model)).load_model()  # what `hybrid-plugin mteb run -m DIR` loads
    assert model.mteb_model_meta.name == "local/model"
    scores = {}
    for run in range(2):
        task = XQuADR().filter_languages(None, hf_subsets=subsets)
        result = mteb.evaluate(model, task, cache=None, encode_kwargs={"batch_size": 64}, co2_tracker=False)
        scores[run] = {e["hf_subset"]: e["main_score"] for e in result.task_results[0].scores["test"]}
        assert sum(encoded) == unique_de_en  # the second run reads the embedding cache
    assert scores[0] == scores[1]
    ours = evaluate(EvalConfig(task="xquad-r", model=str(tiny_model), languages="de,en", run_depth=0))
    assert ours.counts["texts_encoded"] == 0
    for subset, value in scores[0].items():
        assert abs(value - ours.setting(subset_setting(get_spec("xquad-r"), subset)).map) <= 1e-6


def test_mteb_encoding_is_bit_identical_to_the_evaluator(tiny_model, datasets):
    """The same shard through mteb's SentenceTransformer wrapper and through the evaluator: equal bits."""
    from mteb.types import PromptType

    from hybrid_plugin.data.build import build_pool
    from hybrid_plugin.data.files import resolve_files
    from hybrid_plugin.data.spec import get_spec
    from hybrid_plugin.integrations.mteb import XQuADR
    from hybrid_plugin.integrations.mteb_models import local_model_meta
    from hybrid_plugin.integrations.mteb_tasks import encode_with_mteb_model
    from hybrid_plugin.models.ref import resolve_model

    spec = get_spec("xquad-r")
    pool = build_pool(spec, resolve_files(spec, spec.languages, datasets).paths)
    padded = [t for t in pool.cand_text if t != t.strip()]  # kept as they are (mteb's corpus loader strips)
    texts = sorted(padded + pool.cand_text[:300], key=len, reverse=True)
    assert len(padded) == 33
    task = XQuADR()
    wrapper = local_model_meta(str(tiny_model)).load_model()
    via_mteb = encode_with_mteb_model(
        wrapper, texts, PromptType.document, task.metadata, "test", "tha-tha", {"batch_size": 64}
    )
    ref = resolve_model(str(tiny_model))
    direct = ref.load().encode(texts, prompt=ref.document_prompt, batch_size=64, convert_to_numpy=True)
    assert ref.document_prompt == "passage: " and np.array_equal(via_mteb, direct)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "-m", "MODEL", "-t", "XQuADRR"], "unknown task 'XQuADRR'; plugin tasks: XQuADR, MLQAR"),
        (
            ["run", "-m", "MODEL", "-t", "XQuADR", "--subsets", "deu-xx"],
            "unknown subset(s) 'deu-xx' for XQuADR",
        ),
        (["run", "-m", "MODEL", "-t", "MLQAR", "-l", "tha"], "unknown language 'tha' for MLQAR; it has ara,"),
        (
            ["run", "-m", "./no/such/model", "-t", "XQuADR"],
            "--model ./no/such/model: not a SentenceTransformer",
        ),
        (["run", "-m", "MODEL", "-t", "XQuADR", "--batch-size", "0"], "--batch-size must be ≥ 1, got 0"),
    ],
)
def test_bad_input_is_one_line(registered, tiny_model, capsys, argv, message):
    from hybrid_plugin.integrations.mteb import main

    assert main([a.replace("MODEL", str(tiny_model)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hybrid-plugin: error: ") and message in err


def test_cli_wrapper_runs_a_subset(
    registered, tiny_model, datasets, tmp_path, monkeypatch, capsys, one_torch_thread
):
    """`hybrid-plugin mteb run` (explicit registration) with --subsets and --data-dir."""
    from hybrid_plugin.integrations.mteb import main

    monkeypatch.setenv("HYBRID_PLUGIN_CACHE", str(tmp_path / "cache"))
    argv = ["run", "-m", str(tiny_model), "-t", "xquad-r", "--subsets", "deu-eng", "eng-eng"]
    argv += ["--data-dir", str(datasets), "--output-folder", str(tmp_path / "out"), "--batch-size", "64"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("XQuADR: 2 subsets  mono_map 0.") and "cross_map 0." in lines[0]
    assert Path(lines[1].strip()).is_file() and lines[1].strip().endswith("XQuADR.json")


def test_python_api_unknown_subset_is_one_line(registered):
    import mteb

    with pytest.raises(ValueError, match=r"^unknown subset\(s\) 'eng-xyz' for MLQAR; subsets are") as info:
        mteb.get_task("MLQAR", hf_subsets=["eng-xyz"])
    assert "\n" not in str(info.value)


def test_incompatible_registry_fails_with_one_line(capsys, monkeypatch):
    import types

    import _hybrid_plugin_mteb as hook
    from hybrid_plugin.integrations.mteb import IncompatibleMTEB, register_tasks

    future = types.ModuleType("mteb.get_tasks")
    future.TASK_REGISTRY = {}  # renamed in a hypothetical future mteb
    with pytest.raises(IncompatibleMTEB, match=r"supported: mteb>=2\.26,<3") as info:
        register_tasks(future)
    assert "\n" not in str(info.value)
    monkeypatch.setitem(sys.modules, "mteb.get_tasks", future)
    hook.register_with_mteb()  # the hook's one call into the plugin reports and never breaks `import mteb`
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hybrid-plugin: cannot register XQuADR, MLQAR with mteb")
    assert err.rstrip().endswith("HYBRID_PLUGIN_MTEB_AUTOREGISTER=0 silences this")


def test_signature_change_in_mteb_is_reported(monkeypatch):
    """A retrieval base class whose hooks changed: registering refuses, naming the supported versions."""
    import inspect
    import types

    from mteb.abstasks.retrieval import AbsTaskRetrieval

    from hybrid_plugin.integrations.mteb import IncompatibleMTEB, register_tasks

    def task_specific_scores(self, scores, qrels, results, hf_split):  # hf_subset dropped
        return {}

    monkeypatch.setattr(AbsTaskRetrieval, "task_specific_scores", task_specific_scores)
    assert "hf_subset" not in inspect.signature(AbsTaskRetrieval.task_specific_scores).parameters
    lookup = types.ModuleType("mteb.get_tasks")
    lookup._TASKS_REGISTRY, lookup.TASK_LIST = {}, ()
    with pytest.raises(IncompatibleMTEB, match="AbsTaskRetrieval.task_specific_scores takes no 'hf_subset'"):
        register_tasks(lookup)
    assert lookup._TASKS_REGISTRY == {}


@pytest.mark.slow  # three fresh interpreters importing mteb: seconds each
@pytest.mark.parametrize("first", ["mteb_metadata", "mteb_encoder", "mteb_tasks"])
def test_importing_a_plugin_module_first_still_registers(tmp_path, first):
    """A plugin module importing mteb runs the .pth hook mid-import: registration waits for it, silently."""
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    for source in (PTH, HOOK):
        (site_dir / source.name).write_text(source.read_text())
    probe = (
        "import site, sys; site.addsitedir(sys.argv[1]); "
        f"import hybrid_plugin.integrations.{first}; import mteb; "
        "print(mteb.get_task('XQuADR').metadata.name, mteb.get_task('MLQAR').metadata.name)"
    )
    env = os.environ | {"HYBRID_PLUGIN_MTEB_AUTOREGISTER": "1", "PYTHONPATH": pythonpath(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", probe, str(site_dir)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "XQuADR MLQAR" and "hybrid-plugin" not in proc.stderr


def test_benchmark_object():
    """The LAReQA Benchmark: both tasks, every subset, with what MTEB's benchmark listings show."""
    from mteb import Benchmark

    from hybrid_plugin.integrations.mteb import BENCHMARK_NAME, benchmark

    bench = benchmark()
    assert isinstance(bench, Benchmark) and bench.name == BENCHMARK_NAME == "LAReQA"
    assert [t.metadata.name for t in bench.tasks] == ["XQuADR", "MLQAR"]
    assert [len(t.hf_subsets) for t in bench.tasks] == [11 * 12, 7 * 8]
    assert bench.reference == "https://arxiv.org/abs/2408.10536"
    assert bench.citation.count("@inproceedings{") == 1 and "roy-etal-2020-lareqa" in bench.citation
    assert "monolingual" in bench.description and "language-bias" in bench.description


DOCUMENTED_ROUTE = """
import json, sys, mteb
from sentence_transformers import SentenceTransformer
from hybrid_plugin.integrations.mteb import XQuADR

model = SentenceTransformer(sys.argv[1])
task = XQuADR().filter_languages(["deu", "eng"], exclusive_language_filter=True)
result = mteb.evaluate(model, tasks=[task], cache=None, encode_kwargs={"batch_size": 64}, co2_tracker=False)
registry = sys.modules["mteb.get_tasks"]._TASKS_REGISTRY
print(json.dumps({
    "registered": "XQuADR" in registry,
    "scores": {e["hf_subset"]: e["main_score"] for e in result.task_results[0].scores["test"]},
}))
"""


def test_documented_route_without_the_hook(tiny_model, datasets, tmp_path):
    """docs/mteb.md's Python route, with HYBRID_PLUGIN_MTEB_AUTOREGISTER=0: a SentenceTransformer and the
    task object; nothing registered, and every main score equals the evaluator's exact map."""
    from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate

    env = one_thread_env(datasets) | {
        "HYBRID_PLUGIN_MTEB_AUTOREGISTER": "0",
        "HYBRID_PLUGIN_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": pythonpath(REPO),
    }
    proc = subprocess.run(
        [sys.executable, "-c", DOCUMENTED_ROUTE, str(tiny_model)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["registered"] is False
    assert sorted(out["scores"]) == ["deu-deu", "deu-eng", "eng-deu", "eng-eng"]
    ours = evaluate(EvalConfig(task="xquad-r", model=str(tiny_model), languages="de,en", run_depth=0))
    for subset, value in out["scores"].items():
        assert abs(value - ours.setting(subset_setting(get_spec("xquad-r"), subset)).map) <= 1e-6, subset


@pytest.mark.slow
def test_mteb_run_with_the_hook_equals_the_python_route(datasets, tmp_path, monkeypatch):
    """Plain `mteb run -t MLQAR` (tasks registered by the .pth hook) with mteb's own offline random
    encoder: the same scores as `mteb.evaluate` on the task object, and results in mteb's layout."""
    import mteb
    from mteb.results import TaskResult

    from hybrid_plugin.integrations.mteb import MLQAR

    monkeypatch.setenv("HYBRID_PLUGIN_DATA", str(datasets))
    monkeypatch.setenv("HYBRID_PLUGIN_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "results"
    args = [
        "run",
        "-m",
        "mteb/baseline-random-encoder",
        "-t",
        "MLQAR",
        "-l",
        "deu",
        "--output-folder",
        str(out),
    ]
    env = one_thread_env(datasets) | {"HYBRID_PLUGIN_CACHE": str(tmp_path / "cache")}
    env |= {"HYBRID_PLUGIN_MTEB_AUTOREGISTER": "1", "PYTHONPATH": pythonpath(REPO)}
    proc = subprocess.run(
        mteb_command(tmp_path) + args, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "hybrid-plugin:" not in proc.stderr
    files = list((out / "results" / "mteb__baseline-random-encoder").glob("*/MLQAR.json"))
    assert len(files) == 1 and (files[0].parent / "model_meta.json").is_file()
    via_cli = {e["hf_subset"]: e["main_score"] for e in TaskResult.from_disk(files[0]).scores["test"]}
    assert sorted(via_cli) == sorted(MLQA_DE_SUBSETS)

    model = mteb.get_model("mteb/baseline-random-encoder")
    task = MLQAR().filter_languages(["deu"])
    result = mteb.evaluate(model, [task], cache=None, co2_tracker=False)
    via_python = {e["hf_subset"]: e["main_score"] for e in result.task_results[0].scores["test"]}
    assert via_python.keys() == via_cli.keys()
    assert all(abs(via_python[s] - via_cli[s]) <= 1e-6 for s in via_cli)
    assert len(set(via_cli.values())) > 1  # real, differing scores


def _mteb_bibtex_form(citation: str) -> str | None:
    """A citation as MTEB's citation test rewrites it (bibtexparser 1.x, 2-space indent, trailing commas)."""
    bibtexparser = pytest.importorskip("bibtexparser")
    from bibtexparser.bparser import BibTexParser
    from bibtexparser.bwriter import BibTexWriter

    parser = BibTexParser(common_strings=True, ignore_nonstandard_types=False, interpolate_strings=False)
    database = bibtexparser.loads(citation, parser)
    if not database.entries:
        return None
    writer = BibTexWriter()
    writer.indent, writer.comma_first, writer.add_trailing_comma = "  ", False, True
    return writer.write(database).strip()


@pytest.mark.parametrize("name", ["XQuADR", "MLQAR"])
def test_tasks_pass_mtebs_own_task_checks(name):
    """What MTEB's test suite checks on every task: metadata filled and valid, no remote code, shipped
    descriptive statistics, citation in MTEB's canonical BibTeX form, and its dataset-quality rules
    (re-implemented here: text length > 3, ≤ 1 % duplicates, relevant docs within the corpus, every query
    with a relevant doc). The two findings inherent to LAReQA pools are exactly the expected ones and
    the description says so."""
    from hybrid_plugin.integrations.mteb import benchmark
    from hybrid_plugin.integrations.mteb_metadata import QUALITY_NOTE
    from hybrid_plugin.integrations.mteb_tasks import TASK_CLASSES

    task = TASK_CLASSES[name]()
    meta = task.metadata
    meta._validate_metadata()
    assert meta.is_filled() and meta.dataset.get("trust_remote_code", False) is False
    assert meta.descriptive_stats is not None and meta.n_samples is not None
    assert _mteb_bibtex_form(meta.bibtex_citation.strip()) == meta.bibtex_citation.strip()
    assert _mteb_bibtex_form(benchmark().citation.strip()) == benchmark().citation.strip()

    def findings(stats: dict) -> set[str]:
        out = set()
        if stats["num_samples"] == 0:
            out.add("empty_split")
        for field, expected in (("documents", stats["num_documents"]), ("queries", stats["num_queries"])):
            text = stats[f"{field}_text_statistics"]
            if not text["min_text_length"] > 3:
                out.add(f"short_text:{field}")
            if text["unique_texts"] < expected * 0.99:
                out.add(f"duplicate_text:{field}")
            elif text["unique_texts"] > expected:
                out.add(f"impossible_unique_count:{field}")
        relevant = stats["relevant_docs_statistics"]
        if relevant["min_relevant_docs_per_query"] == 0:
            out.add("zero_relevant_docs")
        if relevant["unique_relevant_docs"] > stats["num_documents"]:
            out.add("relevant_docs_exceed_corpus")
        return out

    split = meta.descriptive_stats["test"]
    per_subset = {s: findings(v) for s, v in split["hf_subset_descriptive_stats"].items()}
    assert findings(split) == {"short_text:documents", "duplicate_text:documents", "duplicate_text:queries"}
    assert set().union(*per_subset.values()) == {"short_text:documents"}  # within a subset: no duplicates
    assert QUALITY_NOTE in meta.description and "1-3 characters" in QUALITY_NOTE
    assert "repeat across subsets" in QUALITY_NOTE


@pytest.mark.data
def test_quality_note_counts_are_the_data(datasets):
    """The short candidates the docs count (XQuAD-R 21, MLQA-R 41) are what the LAReQA files hold."""
    from hybrid_plugin.data.build import build_pool
    from hybrid_plugin.data.files import resolve_files

    for task, expected in (("xquad-r", 21), ("mlqa-r", 41)):
        spec = get_spec(task)
        pool = build_pool(spec, resolve_files(spec, spec.languages, datasets).paths)
        assert sum(len(t) <= 3 for t in pool.cand_text) == expected, task
