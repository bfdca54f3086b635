"""MTEB integration: the real ``mteb run`` CLI (plugin registered by its .pth hook) against the evaluator."""

from __future__ import annotations

import os
import re
import site
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hybrid_plugin.evaluation.store import count_stored

pytest.importorskip("mteb")
pytest.importorskip("wrapt")

REPO = Path(__file__).resolve().parents[1]
PTH = REPO / "hybrid_plugin_mteb.pth"
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
    (site_dir / PTH.name).write_text(PTH.read_text())
    return [sys.executable, "-c", MTEB_SHIM, str(site_dir)]


def one_thread_env(datasets: Path) -> dict[str, str]:
    # one BLAS thread: on 2 busy cores torch's thread pool makes tiny models 10-20x slower
    return os.environ | {"HYBRID_PLUGIN_DATA": str(datasets), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def registered() -> tuple[str, ...]:
    from hybrid_plugin.integrations.mteb import register

    return register()


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
    """Plain `mteb run` on MLQA-R, German subsets: every main score equals the evaluator's map."""
    from mteb.cache import ResultCache
    from mteb.results import TaskResult

    from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate

    cache = tmp_path / "cache"
    monkeypatch.setenv("HYBRID_PLUGIN_CACHE", str(cache))  # empty: what mteb encodes is counted below
    out = tmp_path / "mteb-results"
    args = ["run", "-m", f"./{tiny_model.name}", "-t", "MLQAR", "-l", "deu", "--batch-size", "64"]
    args += ["--output-folder", str(out), "-v", "2"]
    proc = subprocess.run(  # a local model folder, given relative to the working directory
        mteb_command(tmp_path) + args,
        cwd=tiny_model.parent,
        env=one_thread_env(datasets),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = " ".join(re.sub(r"\S+\.py:\d+", "", proc.stdout + proc.stderr).split())  # unwrap rich's log lines
    # every unique text (4199 questions + 20496 sentences) encoded once for all 20 subsets
    assert "MLQAR: 24695 unique texts, 24695 encoded, 0 from the embedding cache" in log
    assert count_stored(cache / "embeddings") == 24695

    # results in MTEB's layout, loaded back with mteb's own objects
    files = list((out / "results").glob("local__model/*/MLQAR.json"))
    assert len(files) == 1
    result = TaskResult.from_disk(files[0])
    loaded = ResultCache(out).load_results(tasks=["MLQAR"])
    assert loaded.model_results[0].task_results[0].task_name == "MLQAR"
    by_subset = {e["hf_subset"]: e for e in result.scores["test"]}
    assert sorted(by_subset) == sorted(MLQA_DE_SUBSETS)

    # the evaluator on the same data reuses those embeddings (same keys: fingerprint, prompts, texts)
    ours = evaluate(EvalConfig(task="mlqa-r", model=str(tiny_model), data_dir=str(datasets), run_depth=0))
    assert ours["counts"]["texts_encoded"] == 0
    for subset, entry in by_subset.items():
        x, _, y = subset.partition("-")
        key = f"{_iso1(x)}-{'pool' if y == 'pool' else _iso1(y)}"
        setting = ours["settings"][key]
        assert abs(entry["main_score"] - setting["map"]) <= 1e-6, subset  # mteb writes 6 decimals
        assert entry["map"] == entry["main_score"]
        assert (entry["n_queries"], entry["n_candidates"]) == (setting["queries"], setting["candidates"])
        assert 0.0 <= entry["ndcg_at_10"] <= 1.0 and "recall_at_100" in entry
        if y == "pool":
            lang = ours["per_language"][_iso1(x)]
            assert abs(entry["max_rank_distance"] - lang["max_rank_distance"]) <= 1e-6
            assert abs(entry["same_language_top_share"] - lang["same_language_top_share"]) <= 1e-6
    # MLQA-R is 2-4-way parallel: X→Y counts only the questions answered in Y
    assert by_subset["deu-deu"]["n_queries"] == 512 and by_subset["deu-ara"]["n_queries"] < 512
    assert by_subset["deu-pool"]["n_candidates"] == 20534


def _iso1(code: str) -> str:
    from hybrid_plugin.integrations.mteb_tasks import LANGUAGE_SCRIPTS

    return next(k for k, v in LANGUAGE_SCRIPTS.items() if v.startswith(code + "-"))


def test_python_api_encodes_once_then_reads_the_cache(
    registered, tiny_model, datasets, tmp_path, monkeypatch, one_torch_thread
):
    """mteb.evaluate on four XQuAD-R subsets: each unique text encoded once; a rerun encodes nothing."""
    import mteb
    from sentence_transformers import SentenceTransformer

    from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate

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
    model = mteb.get_model(str(tiny_model))
    assert model.mteb_model_meta.name == "local/model"
    scores = {}
    for run in range(2):
        task = mteb.get_task("XQuADR", hf_subsets=subsets)
        result = mteb.evaluate(model, task, cache=None, encode_kwargs={"batch_size": 64}, co2_tracker=False)
        scores[run] = {e["hf_subset"]: e["main_score"] for e in result.task_results[0].scores["test"]}
        assert sum(encoded) == unique_de_en  # the second run reads the embedding cache
    assert scores[0] == scores[1]
    ours = evaluate(EvalConfig(task="xquad-r", model=str(tiny_model), languages="de,en", run_depth=0))
    assert ours["counts"]["texts_encoded"] == 0
    for subset, value in scores[0].items():
        assert abs(value - ours["settings"][subset.replace("deu", "de").replace("eng", "en")]["map"]) <= 1e-6


def test_mteb_encoding_is_bit_identical_to_the_evaluator(registered, tiny_model, datasets):
    """The same shard through mteb's SentenceTransformer wrapper and through the evaluator: equal bits."""
    import mteb
    from mteb.types import PromptType

    from hybrid_plugin.data.build import build_pool
    from hybrid_plugin.data.files import resolve_files
    from hybrid_plugin.data.spec import get_spec
    from hybrid_plugin.integrations.mteb_tasks import encode_with_mteb_model
    from hybrid_plugin.models.ref import resolve_model

    spec = get_spec("xquad-r")
    pool = build_pool(spec, resolve_files(spec, spec.languages, datasets).paths)
    padded = [t for t in pool.cand_text if t != t.strip()]  # kept as they are (mteb's corpus loader strips)
    texts = sorted(padded + pool.cand_text[:300], key=len, reverse=True)
    assert len(padded) == 33
    task = mteb.get_task("XQuADR")
    wrapper = mteb.get_model(str(tiny_model))
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


def test_incompatible_registry_fails_with_one_line(capsys):
    import types

    from hybrid_plugin.integrations.mteb import IncompatibleMTEB, on_task_lookup_imported, register_tasks

    future = types.ModuleType("mteb.get_tasks")
    future.TASK_REGISTRY = {}  # renamed in a hypothetical future mteb
    with pytest.raises(IncompatibleMTEB, match=r"supported: mteb>=2\.26,<3") as info:
        register_tasks(future)
    assert "\n" not in str(info.value)
    on_task_lookup_imported(future)  # the import hook reports and never breaks `import mteb`
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("hybrid-plugin: cannot register XQuADR, MLQAR with mteb")


def test_pth_costs_nothing_at_interpreter_start(tmp_path):
    """The .pth arms only a stdlib watcher at start-up: no mteb, wrapt, numpy or torch; switchable off."""
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    (site_dir / PTH.name).write_text(PTH.read_text())
    probe = (
        "import site, sys; site.addsitedir(sys.argv[1]); "
        "from hybrid_plugin.integrations._mteb_autoload import MTEBImportWatcher as W; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mteb', 'wrapt', 'numpy', 'torch')), "
        "any(isinstance(f, W) for f in sys.meta_path))"
    )
    for switch, armed in (("1", True), ("0", False)):
        env = os.environ | {"HYBRID_PLUGIN_MTEB_AUTOREGISTER": switch}
        out = subprocess.run(
            [sys.executable, "-c", probe, str(site_dir)], env=env, capture_output=True, text=True, check=True
        ).stdout
        assert out.strip() == f"[] {armed}"
