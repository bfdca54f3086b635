"""``hybrid-plugin export mteb``: MTEB's HF layout, loadable offline; a plain MTEB task reads it back."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("mteb")

SUBSETS = ["deu-deu", "deu-eng", "eng-deu", "eng-eng"]


def test_export_subsets_of_a_language_selection():
    from hybrid_plugin.integrations.mteb_export import export_subsets

    assert export_subsets("XQuADR", ["de", "en"]) == [
        "deu-deu",
        "deu-eng",
        "deu-pool",
        "eng-deu",
        "eng-eng",
        "eng-pool",
    ]
    assert len(export_subsets("mlqa-r", None)) == 7 * 7 + 7


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "tydi-goldp"], "--task tydi-goldp: MTEB exports exist for xquad-r, mlqa-r"),
        (["--task", "mlqa-r", "--languages", "th"], "unknown language(s) th for task mlqa-r"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, argv, message):
    from hybrid_plugin.cli import main

    assert main(["export", "mteb", *argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "out").exists()


def test_refuses_a_non_empty_out(tmp_path, capsys):
    from hybrid_plugin.cli import main

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    assert main(["export", "mteb", "--task", "xquad-r", "--out", str(tmp_path / "out")]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "out" / "keep.txt").read_text() == "x"


@pytest.mark.slow
def test_export_loads_offline_and_scores_like_the_builtin_task(
    tiny_model, datasets, tmp_path, monkeypatch, capsys
):
    """Export de+en of XQuAD-R, load it with datasets, and score it with MTEB's own loader and search."""
    import datasets as hf_datasets
    import mteb
    import torch
    from sentence_transformers import SentenceTransformer

    from hybrid_plugin.cli import main
    from hybrid_plugin.data.build import build_pool
    from hybrid_plugin.data.files import resolve_files
    from hybrid_plugin.data.settings import relevant_in
    from hybrid_plugin.data.spec import get_spec
    from hybrid_plugin.integrations.mteb_export import task_from_export
    from hybrid_plugin.integrations.mteb_metadata import subset_setting
    from hybrid_plugin.integrations.mteb_tasks import XQuADR

    monkeypatch.setenv("HYBRID_PLUGIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    out = tmp_path / "XQuADR"
    argv = ["export", "mteb", "--task", "xquad-r", "--languages", "de,en"]
    argv += ["--data-dir", str(datasets), "--out", str(out)]
    assert main(argv) == 0
    assert "wrote 6 subsets of XQuADR in MTEB's dataset layout" in capsys.readouterr().out

    # the layout: one Parquet folder per config, a card with license, languages and citation
    configs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert configs == sorted(
        f"{s}-{part}" for s in [*SUBSETS, "deu-pool", "eng-pool"] for part in ("corpus", "queries", "qrels")
    )
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "license: cc-by-sa-4.0" in card and "- deu" in card and "roy-etal-2020-lareqa" in card
    assert "1-3 characters" in card and "Texts repeat across subsets by design" in card

    # datasets reads it offline, and the rows are the pool's own
    spec = get_spec("xquad-r")
    pool = build_pool(spec, resolve_files(spec, spec.languages, datasets).paths)
    corpus = hf_datasets.load_dataset(str(out), "deu-pool-corpus", split="test")
    assert corpus.column_names == ["id", "text"] and list(corpus["id"]) == pool.cand_ids
    assert list(corpus["text"]) == pool.cand_text  # exactly as published, not stripped
    qrels = hf_datasets.load_dataset(str(out), "eng-deu-qrels", split="test")
    setting = subset_setting(spec, "eng-deu")
    expected = {
        (pool.query_ids[q], pool.cand_ids[c])
        for q in range(len(pool.query_ids))
        if pool.languages[pool.query_lang[q]] == "en"
        for c in relevant_in(pool, q, setting)
    }
    assert set(zip(qrels["query-id"], qrels["corpus-id"])) == expected and set(qrels["score"]) == {1}
    queries = hf_datasets.load_dataset(str(out), "eng-deu-queries", split="test")
    assert set(queries["id"]) == {q for q, _ in expected}

    # a plain MTEB task on the export and the built-in task: the same MTEB scores
    torch.set_num_threads(1)
    model = SentenceTransformer(str(tiny_model))
    exported = task_from_export(out).filter_languages(None, hf_subsets=SUBSETS)
    builtin = XQuADR().filter_languages(None, hf_subsets=SUBSETS)
    builtin.data_dir = str(datasets)
    scores = {}
    for name, task in (("export", exported), ("builtin", builtin)):
        result = mteb.evaluate(model, [task], cache=None, encode_kwargs={"batch_size": 64}, co2_tracker=False)
        scores[name] = {e["hf_subset"]: e for e in result.task_results[0].scores["test"]}
    assert sorted(scores["export"]) == sorted(scores["builtin"]) == sorted(SUBSETS)
    compared = [
        k for k in scores["export"]["deu-eng"] if k.split("_at_")[0] in ("ndcg", "map", "recall", "mrr")
    ]
    compared = [k for k in compared if int(k.rsplit("_", 1)[1]) <= 100]  # the built-in run is cut at 100
    assert {"ndcg_at_10", "map_at_100", "recall_at_100", "mrr_at_10"} <= set(compared)
    for subset in SUBSETS:
        for key in compared:
            assert abs(scores["export"][subset][key] - scores["builtin"][subset][key]) <= 1e-5, (subset, key)
    manifest = json.loads((out / "hybrid_plugin_export.json").read_text())
    assert manifest["main_score"] == "map_at_1000" and manifest["subsets"][0] == "deu-deu"
