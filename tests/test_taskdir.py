"""User task folders (``--task PATH``): settings and AP on hand-made folders, each bad folder as one
line, and built-in tasks exported (``export task``) and read back giving identical numbers."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from test_faults import cli_error

from hybrid_plugin.cli import main
from hybrid_plugin.data.build import load_pool
from hybrid_plugin.data.settings import pool_settings
from hybrid_plugin.data.taskdir import (
    load_folder,
    read_records,
    read_records_fast,
    read_records_precise,
    valid_language,
    write_folder,
)
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate, run_evaluation
from hybrid_plugin.evaluation.perquery import to_arrow

TOML = """name = "tiny-pool"
title = "Tiny pool"
description = "Two languages, hand-made."
languages = ["de", "en"]
license = "CC0-1.0"
citation = "none"
candidate_unit = "sentence"
"""

# two parallel queries (group g1), relevant: d1 (de) and e1 (en)
CORPUS = [
    {"_id": "d1", "text": "eins", "language": "de"},
    {"_id": "d2", "text": "zwei", "language": "de"},
    {"_id": "e1", "text": "one", "language": "en"},
    {"_id": "e2", "text": "two", "language": "en"},
]
QUERIES = [
    {"_id": "qd", "text": "frage", "language": "de", "group": "g1"},
    {"_id": "qe", "text": "question", "language": "en", "group": "g1"},
]
QRELS = [("qd", "d1", 1), ("qd", "e1", 1), ("qe", "d1", 1), ("qe", "e1", 1)]

# dot products: qd scores d2 .9, e1 .5, d1 .2, e2 .1; qe scores d1 .8, e2 .6, d2 .3, e1 .1
VECTORS = {
    "frage": [1.0, 0.0],
    "question": [0.0, 1.0],
    "eins": [0.2, 0.8],
    "zwei": [0.9, 0.3],
    "one": [0.5, 0.1],
    "two": [0.1, 0.6],
}


class TableEncoder:
    """A fixed vector per text (dot product), so every rank in the tests is known by hand."""

    name = "table"
    fingerprint = None
    similarity = "dot"

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def prompt(self, role: str) -> str:
        return ""

    def encode(self, texts: list[str], role: str, batch_size: int) -> np.ndarray:
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)

    def provenance(self) -> dict:
        return {}

    def device(self) -> str:
        return "cpu"


def write_task(
    folder: Path,
    corpus: list[dict] = CORPUS,
    queries: list[dict] = QUERIES,
    qrels: list[tuple] = QRELS,
    toml: str = TOML,
) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "task.toml").write_text(toml, encoding="utf-8")
    for name, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    lines = ["query-id\tcorpus-id\tscore", *("\t".join(map(str, r)) for r in qrels)]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def evaluate_folder(folder: Path, vectors=VECTORS, **kw):
    return evaluate(EvalConfig(task=str(folder), use_cache=False, **kw), model=TableEncoder(vectors))


def test_hand_checked_settings_and_ap(tmp_path):
    results = evaluate_folder(write_task(tmp_path / "t"))
    assert results.task == "tiny-pool" and results.setting_kinds == ["mono", "cross", "multi"]
    maps = {key: s.map for key, s in results.settings.items()}
    # de→de: d2, d1 → 1/2; de→en: e1 first → 1; de→pool: d2 e1 d1 e2 → (1/2 + 2/3)/2
    # en→en: e2, e1 → 1/2; en→de: d1 first → 1; en→pool: d1 e2 d2 e1 → (1 + 2/4)/2
    expected = {"de-de": 0.5, "de-en": 1.0, "de-pool": 7 / 12, "en-de": 1.0, "en-en": 0.5, "en-pool": 0.75}
    assert maps.keys() == expected.keys()
    for key, value in expected.items():
        assert maps[key] == pytest.approx(value, abs=1e-12)
    assert results.scores.mono_map == pytest.approx(0.5)
    assert results.scores.cross_map == pytest.approx(1.0)
    assert results.scores.multi_map == pytest.approx((7 / 12 + 0.75) / 2)
    # rank distance: qd 3 − 2 = 1, qe 4 − 1 = 3
    assert results.per_language["de"].max_rank_distance == 1.0
    assert results.per_language["en"].max_rank_distance == 3.0
    assert results.provenance["data_origin"] == "task-folder"
    assert results.provenance["spec"] == "task.toml"
    assert set(results.provenance["data_sha256"]) == {
        "task.toml",
        "corpus.jsonl",
        "queries.jsonl",
        "qrels/test.tsv",
    }
    assert results.provenance["group_source"] == "queries.jsonl 'group'"


def test_settings_follow_the_qrels_and_a_query_without_group_is_its_own(tmp_path):
    queries = [*QUERIES, {"_id": "qe2", "text": "other", "language": "en"}]
    corpus = [*CORPUS, {"_id": "e3", "title": "Title", "text": "three", "language": "en"}]
    folder = write_task(tmp_path / "t", corpus, queries, [*QRELS, ("qe2", "e3", 2), ("qe2", "e2", 0)])
    loaded = load_folder(folder)
    pool = loaded.pool
    assert pool.cand_sentence[-1] == "Title three"  # BEIR/MTEB: title + " " + text
    members = {s.key: [pool.query_ids[q] for q in qs] for s, qs in pool_settings(pool).items()}
    assert members == {
        "de-de": ["qd"],
        "de-en": ["qd"],
        "de-pool": ["qd"],
        "en-de": ["qe"],  # qe2 has no relevant candidate in de (score 0 is not relevant)
        "en-en": ["qe", "qe2"],
        "en-pool": ["qe", "qe2"],
    }
    assert pool.group_names == ["g1", "qe2"]
    assert [pool.cand_ids[c] for c in pool.relevant(2)] == ["e3"]
    assert loaded.grouped


def test_no_cross_language_relevance_is_monolingual_only(tmp_path):
    qrels = [("qd", "d1", 1), ("qe", "e1", 1)]
    folder = write_task(tmp_path / "t", qrels=qrels)
    results = evaluate_folder(folder)
    assert results.setting_kinds == ["mono"]
    assert set(results.settings) == {"de-de", "en-en"}
    assert results.scores.mono_map == pytest.approx(0.5)  # both relevant candidates second
    assert results.scores.multi_map is None
    # the shared group name still pairs them (compare), the relevance stays per query
    pool = load_folder(folder).pool
    assert pool.group_names == ["g1", "g1"] and pool.query_group.tolist() == [0, 1]


def test_without_groups_each_query_is_its_own_group(tmp_path):
    queries = [{k: v for k, v in q.items() if k != "group"} for q in QUERIES]
    folder = write_task(tmp_path / "t", queries=queries)
    results = evaluate_folder(folder)
    assert results.provenance["group_source"] == "none: each query is its own group"
    assert results.scores.multi_map == pytest.approx((7 / 12 + 0.75) / 2)  # relevance is the qrels'
    assert load_folder(folder).pool.group_names == ["qd", "qe"]


def test_language_selection_drops_queries_without_relevant_in_it(tmp_path):
    queries = [*QUERIES, {"_id": "qx", "text": "frage", "language": "de"}]
    folder = write_task(tmp_path / "t", queries=queries, qrels=[*QRELS, ("qx", "e2", 1)])
    results = evaluate_folder(folder, languages="de")
    assert results.languages == ["de"]
    assert {k: s.queries for k, s in results.settings.items()} == {"de-de": 1, "de-pool": 1}
    assert results.provenance["queries_without_relevant_in_selection"] == 1
    assert results.settings["de-de"].map == pytest.approx(0.5)


def test_iso_codes():
    assert all(valid_language(c) for c in ("de", "en", "zh", "deu", "yue", "fil"))
    assert not any(valid_language(c) for c in ("xx", "zzz", "DE", "de-AT", "und", "qab", "", 3))


def test_written_folder_reads_back_as_the_same_pool(tmp_path):
    queries = [*QUERIES, {"_id": "qe2", "text": "other", "language": "en"}]
    folder = write_task(tmp_path / "t", queries=queries, qrels=[*QRELS, ("qe2", "e2", 1)])
    loaded = load_folder(folder)
    out = tmp_path / "copy"
    out.mkdir()
    write_folder(loaded.pool, loaded.spec, "tiny-copy", out)
    again = load_folder(out)
    for f in dataclasses.fields(loaded.pool):
        a, b = getattr(loaded.pool, f.name), getattr(again.pool, f.name)
        if f.name != "task":
            assert np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b, f.name
    assert again.spec.name == "tiny-copy" and again.spec.languages == ("de", "en")


# --- bad folders: one line naming file and line, exit 2 -------------------------------------------


def _bad(tmp_path: Path, capsys, **files) -> str:
    folder = write_task(tmp_path / "t", **files)
    return cli_error(capsys, ["evaluate", "--task", str(folder), "--out", str(tmp_path / "out")])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"corpus": [*CORPUS, {"_id": "d1", "text": "x", "language": "de"}]},
            r"corpus.jsonl: line 5: duplicate _id 'd1' \(first on line 1\)",
        ),
        (
            {"queries": [QUERIES[0], {**QUERIES[1], "_id": "qd"}]},
            r"queries.jsonl: line 2: duplicate _id 'qd'",
        ),
        (
            {"corpus": [*CORPUS, {"_id": "x", "text": "x", "language": "xx"}]},
            r"corpus.jsonl: line 5: unknown language 'xx'",
        ),
        (
            {"queries": [QUERIES[0], {**QUERIES[1], "language": "fr"}]},
            r"queries.jsonl: line 2: language 'fr' is not among task.toml's languages",
        ),
        (
            {"corpus": [CORPUS[0], {**CORPUS[1], "text": "  "}, *CORPUS[2:]]},
            r"corpus.jsonl: line 2: field 'text' is empty",
        ),
        (
            {"queries": [{**QUERIES[0], "text": ""}, QUERIES[1]]},
            r"queries.jsonl: line 1: field 'text' is empty",
        ),
        (
            {"corpus": [CORPUS[0], {"_id": "d2", "language": "de"}, *CORPUS[2:]]},
            r"corpus.jsonl: line 2: no field 'text'",
        ),
        (
            {"queries": [QUERIES[0], {**QUERIES[1], "language": 3}]},
            r"queries.jsonl: line 2: field 'language' should be a string",
        ),
        (
            {"qrels": [*QRELS, ("qz", "d1", 1)]},
            r"qrels/test.tsv: line 6: query-id 'qz' names no query of queries.jsonl",
        ),
        (
            {"qrels": [*QRELS, ("qd", "d9", 1)]},
            r"qrels/test.tsv: line 6: corpus-id 'd9' names no document of corpus.jsonl",
        ),
        ({"qrels": [*QRELS, ("qd", "d2", "x")]}, r"qrels/test.tsv: line 6: score 'x' is not an integer"),
        (
            {"qrels": [*QRELS, ("qd", "d1", 1)]},
            r"qrels/test.tsv: line 6: pair qd d1 appears twice \(first on line 2\)",
        ),
        (
            {"qrels": QRELS[:2] + [("qe", "d1", 0)]},
            r"queries.jsonl: line 2: query 'qe' has no relevant document",
        ),
        (
            {"toml": TOML.replace('"en"]', '"xx"]')},
            r"task.toml: languages: 'xx' is not an ISO 639-1 or ISO 639-3",
        ),
        (
            {"toml": TOML.replace('name = "tiny-pool"', 'name = "xquad-r"')},
            r"task.toml: name 'xquad-r' is a built-in task",
        ),
        (
            {"toml": TOML.replace('citation = "none"\n', "")},
            r"task.toml: field 'citation' must be a non-empty string",
        ),
        ({"toml": TOML.replace('"sentence"', '"paragraph"')}, r"task.toml: candidate_unit must be one of"),
        ({"toml": TOML + "languages = 3\n"}, r"task.toml: not valid TOML"),
        (
            {"queries": [QUERIES[0], {**QUERIES[1], "_id": "d1"}]},
            r"queries.jsonl: line 2: _id 'd1' is also a document id",
        ),
    ],
)
def test_bad_folder_is_one_line(change, expected, tmp_path, capsys):
    import re

    line = _bad(tmp_path, capsys, **change)
    assert re.search(expected, line), line
    assert str(tmp_path / "t") in line


def test_malformed_json_line_and_missing_file(tmp_path, capsys):
    folder = write_task(tmp_path / "t")
    with open(folder / "corpus.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"_id": "x", "text": \n')
    line = cli_error(capsys, ["evaluate", "--task", str(folder), "--out", str(tmp_path / "o")])
    assert "corpus.jsonl: line 5: malformed json" in line
    (folder / "qrels" / "test.tsv").unlink()
    line = cli_error(capsys, ["evaluate", "--task", str(folder), "--out", str(tmp_path / "o")])
    layout = "task.toml, corpus.jsonl, queries.jsonl, qrels/test.tsv"
    assert line.endswith(f"{folder}: no qrels/test.tsv (a task folder holds {layout})")
    line = cli_error(capsys, ["evaluate", "--task", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    assert "no such folder" in line


def test_candidate_format_does_not_apply(tmp_path, capsys):
    folder = write_task(tmp_path / "t")
    argv = [
        "evaluate",
        "--task",
        str(folder),
        "--candidate-format",
        "sentence+context",
        "--out",
        str(tmp_path / "o"),
    ]
    assert "--candidate-format sentence+context does not apply to task folder" in cli_error(capsys, argv)


# --- the CLI end to end on a folder, with a tiny model built here ----------------------------------


@pytest.fixture(scope="module")
def folder_model(tmp_path_factory):
    from conftest import build_tiny_model

    texts = [r["text"] for r in CORPUS + QUERIES] * 3
    return build_tiny_model(tmp_path_factory.mktemp("tiny-folder"), texts)


def test_cli_evaluate_compare_and_export_beir_on_a_folder(folder_model, tmp_path, capsys):
    folder = write_task(tmp_path / "t")
    for name in ("a", "b"):
        code = main(
            ["evaluate", "--task", str(folder), "--model", str(folder_model), "--out", str(tmp_path / name)]
        )
        assert code == 0
    out = capsys.readouterr().out
    assert "tiny-pool" in out
    written = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert any(n.endswith(".json") for n in written) and any(n.endswith(".parquet") for n in written)
    assert any(n.endswith(".png") for n in written)
    results = next(p for p in (tmp_path / "a").glob("*.json"))
    assert (
        main(["compare", str(results), str(next((tmp_path / "b").glob("*.json"))), "--format", "json"]) == 0
    )
    comparison = json.loads(capsys.readouterr().out)
    assert comparison  # two identical runs: compare reads the folder's per-query files
    assert main(["export", "beir", "--task", str(folder), "--out", str(tmp_path / "beir")]) == 0
    manifest = json.loads((tmp_path / "beir" / "manifest.json").read_text())
    assert manifest["task"] == "tiny-pool" and set(manifest["settings"]) == {
        "de-de",
        "de-en",
        "de-pool",
        "en-de",
        "en-en",
        "en-pool",
    }
    qrels = (tmp_path / "beir" / "pool" / "en-qrels" / "test.tsv").read_text().splitlines()
    assert qrels[1:] == ["qe\td1\t1", "qe\te1\t1"]


# --- built-in tasks exported and read back: identical numbers (data) -------------------------------


def _numbers(obj, path=""):
    if isinstance(obj, dict):
        out = {}
        for key, value in obj.items():
            if key not in ("timings", "provenance", "task"):
                out |= _numbers(value, f"{path}/{key}")
        return out
    if isinstance(obj, list):
        out = {}
        for i, value in enumerate(obj):
            out |= _numbers(value, f"{path}[{i}]")
        return out
    return {path: obj}


@pytest.mark.parametrize(
    ("task", "languages"), [("mlqa-r", "de,en,zh"), ("xquad-r", "de,en,zh"), ("tydi-goldp", "bn,fi")]
)
def test_exported_builtin_task_gives_identical_numbers(
    task, languages, datasets, tiny_model, tmp_path, capsys
):
    folder = tmp_path / "folder"
    argv = ["export", "task", "--task", task, "--languages", languages, "--out", str(folder)]
    assert main([*argv, "--data-dir", str(datasets)]) == 0
    assert f"evaluate it with --task {folder}" in capsys.readouterr().out
    runs = []
    for name in (task, str(folder)):
        cfg = EvalConfig(
            task=name, languages=languages, data_dir=str(datasets), cache_dir=str(tmp_path / "cache")
        )
        runs.append(run_evaluation(cfg, model=str(tiny_model)))
    builtin, user = runs
    assert user.results.task == f"{task}-export" and builtin.results.task == task
    a, b = _numbers(builtin.results.to_json()), _numbers(user.results.to_json())
    assert a.pop("/counts/texts_encoded") == a["/counts/unique_texts"]  # the first run encodes ...
    assert b.pop("/counts/texts_encoded") == 0  # ... the same texts: all from the embedding cache
    assert a == b  # every other number, every setting and language key: identical
    assert len(a) > 80  # (a monolingual-only task has fewer)
    ta, tb = to_arrow(builtin.table, builtin.pool), to_arrow(user.table, user.pool)
    assert ta.equals(tb)
    assert user.results.provenance["data_origin"] == "task-folder"
    assert user.results.setting_kinds == builtin.results.setting_kinds  # tydi-goldp: monolingual-only
    source = (folder / "task.toml").read_text()
    assert f'task = "{task}"' in source and "[exported_from]" in source
    # the folder's own pool is the built-in one (all fields but the task name)
    built, read = load_pool(task, languages, data_dir=str(datasets)).pool, load_pool(str(folder)).pool
    assert read.cand_ids == built.cand_ids and read.group_names == built.group_names
    assert np.array_equal(read.group_cands, built.group_cands)


def test_export_task_refuses_a_foreign_folder_and_replaces_its_own(datasets, tmp_path, capsys):
    out = tmp_path / "folder"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    argv = [
        "export",
        "task",
        "--task",
        "mlqa-r",
        "--languages",
        "de",
        "--out",
        str(out),
        "--data-dir",
        str(datasets),
    ]
    assert "is not a previous task folder export" in cli_error(capsys, argv)
    assert (out / "notes.txt").read_text() == "mine"
    other = tmp_path / "other"
    argv[argv.index(str(out))] = str(other)
    assert main(argv) == 0
    assert "holds a previous export" in cli_error(capsys, argv)
    assert main([*argv, "--force", "--name", "mlqa-de"]) == 0
    assert 'name = "mlqa-de"' in (other / "task.toml").read_text()
    assert "--name 'xquad-r'" in cli_error(capsys, [*argv, "--force", "--name", "xquad-r"])
    line = cli_error(capsys, [*argv, "--force", "--candidate-format", "sentence+context"])
    assert "export task writes mlqa-r's default format (sentence)" in line


def test_mteb_task_object_of_a_folder(folder_model, tmp_path, monkeypatch):
    """``folder_task(PATH)`` under ``mteb.evaluate``: its subsets are the folder's settings and every
    main score is the map of ``evaluate --task PATH``."""
    mteb = pytest.importorskip("mteb")  # the mteb extra (absent on Python 3.10)

    from hybrid_plugin.integrations.mteb_tasks import folder_task

    monkeypatch.setenv("HYBRID_PLUGIN_CACHE", str(tmp_path / "cache"))
    folder = write_task(tmp_path / "t", corpus=[*CORPUS, {"_id": "y1", "text": "jat1", "language": "yue"}])
    toml = TOML.replace('["de", "en"]', '["de", "en", "yue"]')
    (folder / "task.toml").write_text(toml)
    task = folder_task(folder)
    assert task.metadata.name == "tiny-pool" and task.metadata.license == "cc0-1.0"
    # no query has a relevant candidate in yue: no X→yue subsets; yue-pool would need a yue query
    subsets = ["deu-deu", "deu-eng", "deu-pool", "eng-deu", "eng-eng", "eng-pool"]
    assert list(task.metadata.eval_langs) == subsets
    assert task.metadata.eval_langs["deu-pool"] == ["deu-Latn", "eng-Latn", "yue-Hant"]
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder_model))  # the documented route for a local folder in Python
    result = mteb.evaluate(model, task, cache=None, encode_kwargs={"batch_size": 8}, co2_tracker=False)
    scores = {e["hf_subset"]: e["main_score"] for e in result.task_results[0].scores["test"]}
    ours = evaluate(EvalConfig(task=str(folder), model=str(folder_model), run_depth=0))
    assert set(scores) == set(task.metadata.eval_langs)
    for subset, setting in (("deu-eng", "de-en"), ("eng-pool", "en-pool"), ("deu-deu", "de-de")):
        assert abs(scores[subset] - ours.settings[setting].map) <= 1e-6


def test_mteb_task_of_a_monolingual_folder_has_only_mono_subsets(tmp_path):
    pytest.importorskip("mteb")
    from hybrid_plugin.integrations.mteb_tasks import folder_task

    task = folder_task(write_task(tmp_path / "t", qrels=[("qd", "d1", 1), ("qe", "e1", 1)]))
    assert list(task.metadata.eval_langs) == ["deu-deu", "eng-eng"]


def test_leaderboard_submit_validate_render_of_a_folder_task(folder_model, tmp_path, capsys):
    folder = write_task(tmp_path / "t")
    board = tmp_path / "board"
    argv = ["evaluate", "--task", str(folder), "--model", str(folder_model), "--out", str(tmp_path / "r")]
    assert main(argv) == 0
    results = str(next((tmp_path / "r").glob("*.json")))
    line = cli_error(capsys, ["leaderboard", "submit", results, "--dir", str(board), "--submitter", "t"])
    assert "task 'tiny-pool': expected one of" in line  # a folder's results need --task
    other = write_task(tmp_path / "other", qrels=[*QRELS, ("qd", "e2", 1)])
    argv = ["leaderboard", "submit", results, "--dir", str(board), "--submitter", "t", "--task"]
    assert "not computed on the task folder" in cli_error(capsys, [*argv, str(other)])
    assert not board.exists() or not any(board.rglob("*.csv"))
    assert main([*argv, str(folder)]) == 0
    assert "in " + str(board / "tiny-pool.csv") in capsys.readouterr().out
    copy = (board / "tasks" / "tiny-pool.toml").read_text()
    assert 'settings = ["mono", "cross", "multi"]' in copy and '"qrels/test.tsv" = ' in copy
    assert main(["leaderboard", "validate", "--dir", str(board)]) == 0
    assert f"ok {board / 'tiny-pool.csv'}: 1 row(s) of tiny-pool" in capsys.readouterr().out
    assert main(["leaderboard", "render", "--dir", str(board)]) == 0
    readme = (board / "README.md").read_text()
    assert "## Tiny pool (`tiny-pool`)" in readme and "## XQuAD-R (`xquad-r`)" in readme
    # another board knows nothing of it
    assert main(["leaderboard", "render", "--dir", str(tmp_path / "empty")]) == 0
    assert "tiny-pool" not in (tmp_path / "empty" / "README.md").read_text()


# --- the pyarrow reader and the line-by-line reader -------------------------------------------------


def _records_as_lists(records) -> dict:
    """Every field of FolderRecords as plain Python values (arrays and pyarrow columns as lists)."""
    out = {}
    for f in dataclasses.fields(records):
        value = getattr(records, f.name)
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif hasattr(value, "to_pylist"):
            value = value.to_pylist()
        out[f.name] = value
    return out


def _both_readers(folder: Path, languages=("de", "en")):
    return read_records_fast(folder, languages), read_records_precise(folder, languages)


def test_fast_reader_gives_the_precise_readers_records_on_awkward_clean_files(tmp_path):
    corpus = [
        {"_id": "d1", "text": " eins ", "language": "de", "title": "Titel"},
        {"_id": "d2", "text": "zwei", "language": "de", "title": "  "},  # a blank title is no title
        {"_id": "e1", "text": "one", "language": "en", "metadata": {"a": [1, {"b": None}]}},
        {"_id": "e2", "text": "two\nlines ünï", "language": "en", "extra": 3.5},
    ]
    queries = [QUERIES[0], {"_id": "qe", "text": "question", "language": "en"}]  # qe: no group
    folder = write_task(tmp_path / "t", corpus=corpus, queries=queries, qrels=[*QRELS, ("qd", "e2", 0)])
    lines = (folder / "corpus.jsonl").read_bytes().split(b"\n")
    (folder / "corpus.jsonl").write_bytes(b"\xef\xbb\xbf" + b"\n  \t\n".join(lines))  # BOM, blank lines
    (folder / "queries.jsonl").write_bytes((folder / "queries.jsonl").read_bytes().replace(b"\n", b"\r\n"))
    qrels = (folder / "qrels" / "test.tsv").read_text().split("\n", 1)[1]  # no header line
    (folder / "qrels" / "test.tsv").write_text(qrels.replace("\t1\n", "\t01\n"))
    fast, precise = _both_readers(folder)
    assert fast is not None
    assert _records_as_lists(fast) == _records_as_lists(precise)
    assert precise.cand_text == ["Titel  eins", "zwei", "one", "two\nlines ünï"]
    assert precise.query_group == ["g1", "qe"] and precise.grouped
    assert precise.qrel_query.tolist() == [0, 0, 1, 1] and precise.qrel_cand.tolist() == [0, 2, 0, 2]
    (folder / "corpus.jsonl").write_bytes(b'{"_id": "d1", "text": "x", "language": "de"} ' + lines[0])
    assert read_records_fast(folder, ("de", "en")) is None  # two records on a line: the precise reader


@pytest.mark.parametrize(
    ("corpus_text", "expected"),
    [
        (
            '{"_id": "d1", "text": "x", "language": "de"} {"_id": "d2", "text": "y", "language": "de"}\n',
            "line 1: malformed json",
        ),
        (
            '{"_id": "d1", "text": "x", "language": "de", "title": null}\n',
            "line 1: field 'title' should be a string, got NoneType",
        ),
        ('{"_id": "d1", "text": "\\u001c\\u2003", "language": "de"}\n', "line 1: field 'text' is empty"),
        ('{"_id": "d1",\n "text": "x", "language": "de"}\n', "line 1: malformed json"),
        (
            '{"_id": "d1", "text": "x", "language": "de"}\n'
            '\ufeff{"_id": "d2", "text": "y", "language": "de"}\n',
            "line 2: malformed json",
        ),
        (
            '{"_id": "d1", "text": "x", "language": "de", "_id": "d2"}\n'
            '{"_id": "d2", "text": "y", "language": "de"}\n',
            "line 2: duplicate _id 'd2' (first on line 1)",
        ),
    ],
)
def test_what_the_fast_reader_might_read_otherwise_gets_the_precise_message(corpus_text, expected, tmp_path):
    folder = write_task(tmp_path / "t")
    (folder / "corpus.jsonl").write_text(corpus_text, encoding="utf-8")
    assert read_records_fast(folder, ("de", "en")) is None
    with pytest.raises(UserError) as err:
        read_records(folder, ("de", "en"))
    assert f"corpus.jsonl: {expected}" in str(err.value)


def test_a_bad_byte_is_reported_where_a_whole_file_decode_puts_it(tmp_path):
    folder = write_task(tmp_path / "t")
    for data in (
        b"\xef\xbb\xbf" + (folder / "corpus.jsonl").read_bytes() + b'{"_id": "x\xc3\n',  # cut sequence
        (folder / "corpus.jsonl").read_bytes() + b'{"_id": "x\xff"}',  # last line, no newline
    ):
        (folder / "corpus.jsonl").write_bytes(data)
        with pytest.raises(UnicodeDecodeError) as whole:
            data.decode("utf-8-sig")
        with pytest.raises(UserError) as err:
            read_records(folder, ("de", "en"))
        assert str(err.value) == (
            f"{folder / 'corpus.jsonl'}: not UTF-8 text ({whole.value.reason} at byte {whole.value.start})"
        )


def test_qrels_the_fast_reader_leaves_to_the_precise_one(tmp_path):
    folder = write_task(tmp_path / "t", qrels=[("qd", "d1", "+1"), *QRELS[1:]])  # int() reads "+1"
    fast, precise = _both_readers(folder)
    assert fast is None and precise.qrel_query.tolist() == [0, 0, 1, 1]
    folder = write_task(tmp_path / "u", qrels=[*QRELS, ("qd", "d1", 1)])  # a pair twice
    assert read_records_fast(folder, ("de", "en")) is None  # (the message: test_bad_folder_is_one_line)


def test_exported_builtin_folder_reads_the_same_both_ways(datasets, tmp_path):
    folder = tmp_path / "folder"
    argv = ["export", "task", "--task", "mlqa-r", "--languages", "de,en,zh", "--out", str(folder)]
    assert main([*argv, "--data-dir", str(datasets)]) == 0
    fast, precise = _both_readers(folder, ("de", "en", "zh"))
    assert fast is not None and _records_as_lists(fast) == _records_as_lists(precise)
    assert len(precise.cand_ids) > 10_000


def test_record_lines_are_counted_across_blocks(tmp_path):
    """The count the fast reader checks pyarrow's rows against: lines holding more than JSON white
    space, whatever block boundaries fall inside them."""
    from hybrid_plugin.data.taskdir import _content_lines

    rng = np.random.default_rng(0)
    path = tmp_path / "f"
    for _ in range(200):
        data = b"".join(rng.choice([b"{}", b" ", b"\n", b"\r", b"x", b"\t"], size=rng.integers(0, 40)))
        path.write_bytes(data)
        expected = sum(1 for line in data.split(b"\n") if line.strip(b" \t\r"))
        assert {_content_lines(path, block) for block in (1, 2, 3, 7, 1 << 20)} == {expected}, data
