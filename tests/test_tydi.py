"""tydi-goldp: the monolingual-only task spec (question → its gold passage), its pool, results and CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import ir_measures
import numpy as np
import pytest
from conftest import build_tiny_model
from test_cli import assert_one_line_error, run_cli

from hybrid_plugin.data.build import build_pool
from hybrid_plugin.data.files import resolve_files, sha256_file
from hybrid_plugin.data.passages import read_passage_file
from hybrid_plugin.data.settings import Setting, pool_settings
from hybrid_plugin.data.spec import all_specs, get_spec
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.console import console_table, scores_line
from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate
from hybrid_plugin.evaluation.perquery import query_table
from hybrid_plugin.evaluation.report import write_results
from hybrid_plugin.evaluation.results import Results
from hybrid_plugin.scoring.ranking import relevant_ranks

TASK = "tydi-goldp"
LANGS = ("ar", "bn", "en", "fi", "id", "ko", "ru", "sw", "te")
# SOURCES.md (TyDi QA GoldP v1.1 dev)
QUESTIONS = dict(ar=921, bn=113, en=440, fi=782, id=565, ko=276, ru=812, sw=499, te=669)
# distinct `context` texts per language, counted in the files (identical paragraphs are one candidate)
PASSAGES = dict(ar=842, bn=105, en=429, fi=634, id=514, ko=228, ru=778, sw=357, te=601)
SMALL = ("bn", "sw")  # the two smallest languages: the tiny-model tests


@pytest.fixture(scope="module")
def tydi_dir(datasets: Path) -> Path:
    folder = datasets / TASK
    if not folder.is_dir():
        pytest.skip(f"{folder} not present")
    return folder


@pytest.fixture(scope="module")
def full_pool(tydi_dir: Path):
    spec = get_spec(TASK)
    return build_pool(spec, resolve_files(spec, spec.languages, tydi_dir.parent).paths)


# --- the spec ------------------------------------------------------------------------------------


def test_spec_is_monolingual_passages_with_sources_counts():
    spec = all_specs()[TASK]
    assert spec.languages == LANGS
    assert spec.settings == ("mono",) and spec.candidate_unit == "passage"
    assert spec.candidate_formats == ("passage",)
    assert spec.expected_questions == QUESTIONS and sum(QUESTIONS.values()) == 5077
    assert spec.expected_candidates == PASSAGES and sum(PASSAGES.values()) == 4488
    assert (spec.n_settings("mono"), spec.n_settings("cross"), spec.n_settings("multi")) == (9, 0, 0)
    assert spec.file_for("sw") == "tydiqa.goldp.sw.dev.json"
    assert spec.url_for(spec.file_for("sw")) == (
        "https://raw.githubusercontent.com/GautamGupta17/MESH/68f82e29e71a4e425069ff398a61387c24c0f30d/"
        "data/tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.sw.dev.json"
    )
    assert spec.license == "Apache 2.0" and "clark-etal-2020-tydi" in spec.citation
    # the sentence tasks keep their defaults
    assert get_spec("xquad-r").settings == ("mono", "cross", "multi")
    assert get_spec("xquad-r").candidate_formats == ("sentence", "sentence+context")


def test_spec_sha256_equal_the_shared_sha256sums(tydi_dir: Path):
    sums = dict(
        reversed(line.split()) for line in (tydi_dir / "SHA256SUMS").read_text().splitlines() if line.strip()
    )
    assert get_spec(TASK).files == sums
    for name, sha in sums.items():
        assert sha256_file(tydi_dir / name) == sha


def test_candidate_format_is_checked_against_the_task():
    spec = get_spec(TASK)
    assert spec.candidate_format(None) == "passage"
    with pytest.raises(UserError, match="--candidate-format sentence does not apply to tydi-goldp"):
        spec.candidate_format("sentence")
    with pytest.raises(UserError, match="does not apply to xquad-r"):
        get_spec("xquad-r").candidate_format("passage")


# --- the pool from the real files ----------------------------------------------------------------


def test_counts_per_language(full_pool):
    counts = full_pool.counts()
    assert {k: v["questions"] for k, v in counts.items()} == QUESTIONS
    assert {k: v["candidates"] for k, v in counts.items()} == PASSAGES
    assert full_pool.candidate_format == "passage" and full_pool.settings == ("mono",)
    # one relevant passage per question, in the question's own language; ids never collide
    assert set(np.diff(full_pool.group_ptr)) == {1}
    assert len(full_pool.group_names) == 5077
    assert (full_pool.cand_lang[full_pool.group_cands[full_pool.query_group]] == full_pool.query_lang).all()
    assert not set(full_pool.query_ids) & set(full_pool.cand_ids)
    # candidates are distinct texts within a language
    for sl in full_pool.lang_slices():
        assert len(set(full_pool.cand_sentence[sl])) == sl.stop - sl.start


def test_gold_mapping_against_the_raw_files(full_pool, tydi_dir: Path):
    """Every question's relevant candidate is exactly its own paragraph's text; repeated paragraphs
    (589 questions in all share a passage with another question) map to one candidate."""
    index = {q: i for i, q in enumerate(full_pool.query_ids)}
    shared = 0
    for lang in LANGS:
        raw = json.loads((tydi_dir / f"tydiqa.goldp.{lang}.dev.json").read_text(encoding="utf-8"))
        contexts = [p["context"] for a in raw["data"] for p in a["paragraphs"]]
        shared += len(contexts) - len(set(contexts))
        for article in raw["data"]:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    (cand,) = full_pool.relevant(index[f"{lang}-q-{qa['id']}"])
                    assert full_pool.cand_sentence[cand] == para["context"]
                    assert full_pool.cand_text[cand] == para["context"]  # passage format: the passage
    assert shared == sum(QUESTIONS.values()) - sum(PASSAGES.values()) == 589


def test_only_monolingual_settings(full_pool):
    members = pool_settings(full_pool)
    assert list(members) == [Setting(lang, lang) for lang in full_pool.languages]
    assert {s.query_lang: len(q) for s, q in members.items()} == QUESTIONS


# --- the passage reader on a hand-made file ------------------------------------------------------


def squad(*paragraphs: tuple[str, list[tuple[str, str]]]) -> dict:
    """SQuAD json with one article per paragraph (as TyDi QA GoldP has): (context, [(id, question)])."""
    return {
        "version": "test",
        "data": [
            {
                "paragraphs": [
                    {
                        "context": ctx,
                        "qas": [
                            {"id": qid, "question": q, "answers": [{"text": ctx[:3], "answer_start": 0}]}
                            for qid, q in qas
                        ],
                    }
                ]
            }
            for ctx, qas in paragraphs
        ],
    }


def write(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def test_duplicated_paragraph_is_one_candidate(tmp_path: Path):
    raw = squad(
        ("Alpha passage.", [("q1", "first?")]),
        ("Beta passage.", [("q2", "second?"), ("q3", "third?")]),
        ("Alpha passage.", [("q4", "fourth, same passage as q1?")]),
        ("Alpha passage. ", [("q5", "near-duplicate text: a passage of its own")]),
    )
    lf = read_passage_file(write(tmp_path / "xx.json", raw), "xx")
    assert lf.sentences == ["Alpha passage.", "Beta passage.", "Alpha passage. "]
    assert lf.sentences == lf.contexts
    assert lf.cand_ids == ["xx-p00000", "xx-p00001", "xx-p00002"]
    assert lf.question_ids == ["q1", "q2", "q3", "q4", "q5"]
    assert lf.answer_cand == [0, 1, 1, 0, 2]


def test_hand_made_pool_without_shared_ids_across_languages(tmp_path: Path):
    """Monolingual-only: the same question id in two languages does not make them parallel."""
    from hybrid_plugin.data.pool import pool_from_files

    a = read_passage_file(write(tmp_path / "a.json", squad(("P one", [("q", "x?")]))), "aa")
    b = read_passage_file(write(tmp_path / "b.json", squad(("P two", [("q", "y?")]))), "bb")
    mono = pool_from_files("t", ("aa", "bb"), [a, b], "passage", ("mono",))
    assert [mono.relevant(q).tolist() for q in range(2)] == [[0], [1]]
    parallel = pool_from_files("t", ("aa", "bb"), [a, b], "passage")
    assert [parallel.relevant(q).tolist() for q in range(2)] == [[0, 1], [0, 1]]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (squad(("", [("q1", "a?")])), r"data\[0\]\.paragraphs\[0\]: field .context. is empty"),
        (squad(("P", [("q1", "a?")]), ("Q", [("q1", "b?")])), "question id q1 appears twice"),
        (squad(("P", [("q1", " ")])), r"qas\[0\]: field .question. is empty"),
        ({"data": [{"paragraphs": [{"qas": []}]}]}, r"data\[0\]\.paragraphs\[0\] has no field 'context'"),
        ({"data": [{"paragraphs": [{"context": "P", "qas": [{"id": "q"}]}]}]}, "has no field 'question'"),
    ],
)
def test_bad_passage_files(tmp_path: Path, raw: dict, message: str):
    with pytest.raises(UserError, match=message):
        read_passage_file(write(tmp_path / "xx.json", raw), "xx")


# --- a tiny model on bn and sw: results shape and exact AP ---------------------------------------


@pytest.fixture(scope="module")
def tiny_tydi(tmp_path_factory: pytest.TempPathFactory, tydi_dir: Path) -> Path:
    """A tiny random model whose tokenizer was trained on the bn and sw questions and passages."""
    texts: list[str] = []
    for lang in SMALL:
        raw = json.loads((tydi_dir / f"tydiqa.goldp.{lang}.dev.json").read_text(encoding="utf-8"))
        for article in raw["data"]:
            for para in article["paragraphs"]:
                texts += [para["context"]] + [qa["question"] for qa in para["qas"]]
    return build_tiny_model(tmp_path_factory.mktemp("tiny-tydi"), texts)


@pytest.fixture(scope="module")
def small_results(tiny_tydi: Path, tydi_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Results:
    cfg = EvalConfig(
        task=TASK,
        model=str(tiny_tydi),
        languages=",".join(SMALL),
        data_dir=str(tydi_dir.parent),
        cache_dir=str(tmp_path_factory.mktemp("emb")),
        run_depth=None,  # full runs: ir-measures' AP on them must equal our exact AP
        ir_measures=("nDCG@10", "AP", "RR"),
    )
    return evaluate(cfg)


def test_results_shape_is_monolingual_only(small_results: Results):
    r = small_results.to_json()  # the JSON a user reads
    assert r["task"] == TASK and r["candidate_format"] == "passage" and r["setting_kinds"] == ["mono"]
    assert r["counts"]["settings"] == {"mono": 2, "cross": 0, "multi": 0}
    assert set(r["settings"]) == {"bn-bn", "sw-sw"}
    assert r["settings"]["bn-bn"]["queries"] == 113 and r["settings"]["bn-bn"]["candidates"] == 105
    assert r["settings"]["sw-sw"]["queries"] == 499 and r["settings"]["sw-sw"]["candidates"] == 357
    assert r["counts"]["queries"] == 612 and r["counts"]["candidates"] == 462
    assert 0 < r["scores"]["mono_map"] < 1
    for key in ("cross_map", "multi_map", "max_rank_distance", "same_language_top_share"):
        assert r["scores"][key] is None
        assert {v[key] for v in r["per_language"].values()} == {None}
    assert r["bias"]["mean_rank"] == {}
    assert list(r["standard_measures"]["by_kind"]) == ["mono"]
    for lang in SMALL:
        entry = r["settings"][f"{lang}-{lang}"]
        assert entry["kind"] == "mono" and r["per_language"][lang]["mono_map"] == entry["map"]
        assert 0 <= entry["measures"]["nDCG@10"] <= 1
        # full-depth runs: ir-measures' AP equals the exact AP (mean over the setting's queries)
        assert entry["measures"]["AP"] == pytest.approx(entry["map"], abs=1e-9)
    assert r["scores"]["mono_map"] == pytest.approx(
        np.mean([r["settings"][f"{x}-{x}"]["map"] for x in SMALL])
    )
    assert r["provenance"]["data_sha256"]["sw"] == get_spec(TASK).files["tydiqa.goldp.sw.dev.json"]


def test_per_query_ap_equals_ir_measures_on_full_runs(tiny_tydi: Path, tydi_dir: Path, tmp_path: Path):
    """Full runs written from the raw score matrix (no ranking code of ours) for every query."""
    from hybrid_plugin.models.ref import resolve_model
    from hybrid_plugin.scoring.dense import DenseRetriever, SentenceTransformerEncoder

    spec = get_spec(TASK)
    pool = build_pool(spec, resolve_files(spec, SMALL, tydi_dir.parent).paths)
    encoder = SentenceTransformerEncoder(resolve_model(str(tiny_tydi)))
    scorer = DenseRetriever(encoder, cache_root=tmp_path).score(pool).matrix
    qs = query_table(pool, relevant_ranks(pool, scorer))
    scores = scorer.scores(np.arange(len(pool.query_ids))).numpy()
    slices = pool.lang_slices()
    qrels, run = {}, {}
    for q in range(len(pool.query_ids)):
        sl = slices[pool.query_lang[q]]
        qrels[str(q)] = {pool.cand_ids[c]: 1 for c in pool.relevant(q)}
        run[str(q)] = {pool.cand_ids[c]: float(scores[q, c]) for c in range(sl.start, sl.stop)}
    ref = {m.query_id: m.value for m in ir_measures.iter_calc([ir_measures.AP], qrels, run)}
    mono = qs.target_index >= 0
    ours = {str(q): ap for q, ap in zip(qs.query[mono], qs.ap[mono])}
    assert set(ours) == set(ref) == {str(q) for q in range(612)}
    assert max(abs(ours[k] - ref[k]) for k in ref) < 1e-9


def test_console_table_and_plots_cope(small_results: Results, tmp_path: Path):
    table = console_table(small_results)
    assert "2 monolingual settings (no cross-lingual or multilingual ones)" in table
    header = table.splitlines()[1].split()
    assert header == ["lang", "queries", "candidates", "mAP", "nDCG@10"]
    assert "rank dist" not in table and "multi " not in table
    bn = next(line for line in table.splitlines() if line.startswith("bn "))
    assert bn.split()[:3] == ["bn", "113", "105"]
    line = scores_line(small_results.scores)
    assert line.startswith("mono 0.") and "cross" not in line and "multi" not in line
    paths = write_results(small_results, tmp_path)
    assert set(paths) == {"results", "mono"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())
    assert paths["mono"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(paths["results"].read_text())["settings"].keys() == {"bn-bn", "sw-sw"}


def test_beir_export_has_only_monolingual_settings(tydi_dir: Path, tmp_path: Path):
    from hybrid_plugin.integrations.beir import export_beir

    manifest = export_beir(TASK, tmp_path / "beir", "bn", data_dir=str(tydi_dir.parent))
    assert manifest["candidate_format"] == "passage"
    assert manifest["settings"] == {"bn-bn": {"folder": "bn", "prefix": "bn", "queries": 113}}
    assert sorted(p.name for p in (tmp_path / "beir").iterdir()) == ["bn", "manifest.json"]
    corpus = (tmp_path / "beir" / "bn" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(corpus) == 105
    with pytest.raises(UserError, match="does not apply to tydi-goldp"):
        export_beir(TASK, tmp_path / "other", "bn", "sentence+context", str(tydi_dir.parent))


# --- CLI -----------------------------------------------------------------------------------------


def test_tasks_lists_tydi(capsys):
    code, out, _ = run_cli(capsys, "tasks")
    assert code == 0
    block = out[out.index("tydi-goldp") :]
    assert "(TyDi QA GoldP, Apache 2.0)" in block
    assert (
        "questions   5077 (ar 921, bn 113, en 440, fi 782, id 565, ko 276, ru 812, sw 499, te 669)" in block
    )
    assert "candidates  4488 (ar 842, bn 105" in block
    assert "mono 9 (monolingual only" in block
    assert "https://github.com/GautamGupta17/MESH @ 68f82e29e7" in block


def test_cli_evaluate_tydi(capsys, tiny_tydi: Path, tydi_dir: Path, tmp_path: Path):
    code, out, err = run_cli(
        capsys,
        "evaluate", "--task", TASK, "--model", str(tiny_tydi), "--languages", "bn",
        "--data-dir", str(tydi_dir.parent), "--out", str(tmp_path), "--no-cache",
    )  # fmt: skip
    assert code == 0, err
    assert "TyDi QA GoldP" in out and "passage candidates" in out and "macro" in out
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 3 and names[0].startswith(f"{TASK}__")
    assert names[0].endswith("model__passage.json") and names[1].endswith("model__passage.queries.parquet")
    assert names[2].endswith("model__passage__mono.png")


@pytest.mark.parametrize("fmt", ["sentence", "sentence+context"])
def test_cli_refuses_sentence_formats(capsys, fmt: str):
    code, _, err = run_cli(capsys, "evaluate", "--task", TASK, "--candidate-format", fmt)
    assert_one_line_error(code, err, f"--candidate-format {fmt} does not apply to tydi-goldp", "use passage")


def test_cli_refuses_passage_format_for_sentence_tasks(capsys):
    code, _, err = run_cli(capsys, "evaluate", "--task", "xquad-r", "--candidate-format", "passage")
    assert_one_line_error(code, err, "does not apply to xquad-r", "use sentence or sentence+context")


def test_cli_unknown_language(capsys):
    code, _, err = run_cli(capsys, "evaluate", "--task", TASK, "--languages", "sw,de")
    assert_one_line_error(code, err, "unknown language(s) de for task tydi-goldp", "ar, bn, en")


@pytest.fixture
def tydi_copy(tydi_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "data" / TASK
    folder.mkdir(parents=True)
    return Path(shutil.copy(tydi_dir / "tydiqa.goldp.bn.dev.json", folder))


def bn_args(data_dir: Path, *extra: str) -> list[str]:
    return ["evaluate", "--task", TASK, "--languages", "bn", "--data-dir", str(data_dir), *extra]


def test_cli_missing_and_mis_checksummed_files(capsys, tydi_copy: Path, tmp_path: Path):
    (tmp_path / "empty" / TASK).mkdir(parents=True)
    code, _, err = run_cli(capsys, *bn_args(tmp_path / "empty"))
    assert_one_line_error(code, err, "no tydi-goldp/tydiqa.goldp.bn.dev.json")
    raw = json.loads(tydi_copy.read_text(encoding="utf-8"))
    raw["data"][0]["paragraphs"][0]["qas"][0]["question"] += "?"
    write(tydi_copy, raw)
    code, _, err = run_cli(capsys, *bn_args(tydi_copy.parents[1]))
    assert_one_line_error(code, err, "tydiqa.goldp.bn.dev.json: sha256", "does not match")


def test_cli_malformed_and_wrong_counts(capsys, tydi_copy: Path):
    raw = json.loads(tydi_copy.read_text(encoding="utf-8"))
    raw["data"].pop()
    write(tydi_copy, raw)
    # with --no-verify the counts are not checked either: a modified copy evaluates
    code, _, err = run_cli(capsys, *bn_args(tydi_copy.parents[1], "--no-verify", "--model", "/nonexistent"))
    assert_one_line_error(code, err, "no such folder")
    tydi_copy.write_text('{"data": [', encoding="utf-8")
    code, _, err = run_cli(capsys, *bn_args(tydi_copy.parents[1], "--no-verify"))
    assert_one_line_error(code, err, "tydiqa.goldp.bn.dev.json: malformed json at line 1")


def test_wrong_counts_are_refused(tydi_copy: Path):
    raw = json.loads(tydi_copy.read_text(encoding="utf-8"))
    raw["data"].pop()
    write(tydi_copy, raw)
    spec = get_spec(TASK)
    with pytest.raises(UserError, match="112 questions for bn, the tydi-goldp spec expects 113"):
        build_pool(spec, {"bn": tydi_copy})


def test_mteb_refuses_tydi_with_a_clear_line(capsys):
    pytest.importorskip("mteb")
    code, _, err = run_cli(capsys, "mteb", "run", "-m", "x", "-t", TASK)
    assert_one_line_error(code, err, "no MTEB form", "hybrid-plugin evaluate --task tydi-goldp")


# --- never trained on ----------------------------------------------------------------------------


def test_training_refuses_tydi_files(tydi_dir: Path, tmp_path: Path):
    from hybrid_plugin.training.data import read_sources

    folder = tmp_path / "sneaky"
    folder.mkdir()
    shutil.copy(tydi_dir / "tydiqa.goldp.sw.dev.json", folder / "train.sw.json")
    with pytest.raises(
        UserError,
        match=r"train\.sw\.json is the evaluation file tydi-goldp/tydiqa\.goldp\.sw\.dev\.json; never",
    ):
        read_sources([f"squad:{folder}"], passage_unit="context", progress=False)


def test_train_evaluates_on_tydi_after_merge_with_base(capsys, tiny_tydi: Path, tydi_dir: Path, tmp_path):
    """The issue's check: train, merge with the base, evaluate on tydi-goldp; the card copes with nulls."""
    pytest.importorskip("accelerate", reason="training needs the train extra")
    lines = [
        json.dumps({"id": f"i{i}", "lang": lang, "query": f"swali {i} {lang}", "passage": f"jibu {i} {lang}"})
        for i in range(24)
        for lang in ("de", "es")
    ]
    data = tmp_path / "pairs.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "merged"
    code, stdout, err = run_cli(
        capsys,
        "train", "--train-data", f"jsonl:{data}", "--output", str(out), "--base-model", str(tiny_tydi),
        "--strategy", "hybrid", "--batch-size", "8", "--max-steps", "2", "--max-seq-length", "32",
        "--merge-with-base", "0.5", "--no-progress",
        "--evaluate", TASK, "--eval-languages", "bn", "--data-dir", str(tydi_dir.parent),
    )  # fmt: skip
    assert code == 0, err
    line = next(x for x in stdout.splitlines() if x.startswith(f"{TASK}: "))
    assert "mono 0." in line and "cross" not in line and "None" not in line
    (result,) = (tmp_path / "merged-eval").glob("*.json")
    evaluated = json.loads(result.read_text(encoding="utf-8"))
    assert evaluated["settings"].keys() == {"bn-bn"}
    assert "nDCG@10" in evaluated["settings"]["bn-bn"]["measures"]
    card = (out / "README.md").read_text(encoding="utf-8")
    assert f"| {TASK} | {evaluated['scores']['mono_map']:.4f} | – | – | – |" in card
