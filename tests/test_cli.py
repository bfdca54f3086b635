"""The CLI: listing, a real evaluation on a tiny model, and one clear line + exit 2 for each bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import pytest

from hybrid_plugin.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], lines[0]


def test_tasks_lists_both(capsys):
    code, out, _ = run_cli(capsys, "tasks")
    assert code == 0
    assert "xquad-r" in out and "mlqa-r" in out
    assert "mono 11 · cross 110 · multi 11" in out
    assert "mono 7 · cross 42 · multi 7" in out
    assert "CC BY-NC 4.0" in out and "13014" in out


def test_evaluate_tiny_model_writes_results_and_plots(capsys, datasets, tiny_model, tmp_path):
    code, out, err = run_cli(
        capsys,
        "evaluate", "--task", "xquad-r", "--model", str(tiny_model), "--languages", "de,th",
        "--data-dir", str(datasets), "--out", str(tmp_path), "--run-depth", "20",
    )  # fmt: skip
    assert code == 0, err
    assert "macro" in out and "rank dist" in out
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 4 and any(f.endswith("__cross_map.png") for f in files)
    res = json.loads(next(tmp_path.glob("*.json")).read_text())
    per_query = tmp_path / res["per_query"]["file"]  # beside the JSON, named in it with its sha256
    assert hashlib.sha256(per_query.read_bytes()).hexdigest() == res["per_query"]["sha256"]
    assert res["format"] == 2
    assert res["per_query"]["rows"] == sum(e["queries"] for e in res["settings"].values())
    assert res["counts"]["settings"] == {"mono": 2, "cross": 2, "multi": 2}
    assert set(res["settings"]) == {"de-de", "de-th", "th-de", "th-th", "de-pool", "th-pool"}
    assert res["settings"]["de-th"]["queries"] == 1190
    assert res["model"]["query_prompt"] == "query: " and res["model"]["document_prompt"] == "passage: "
    assert len(res["model"]["fingerprint"]) == 64
    assert res["candidate_format"] == "sentence"
    assert res["provenance"]["versions"]["hybrid-plugin"]
    assert res["standard_measures"]["native"] == ["nDCG@10", "R@100", "RR", "P@1", "AP@20"]
    assert res["standard_measures"]["run_depth"] is None  # all native: no runs needed
    for key in ("mono_map", "cross_map", "multi_map", "max_rank_distance", "same_language_top_share"):
        assert res["scores"][key] is not None
    assert 0 < res["scores"]["multi_map"] < 1
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def broken_copy(datasets, tmp_path):
    """A writable copy of XQuAD-R de to break in various ways."""
    folder = tmp_path / "data" / "xquad-r"
    folder.mkdir(parents=True)
    shutil.copy(datasets / "xquad-r" / "de.json", folder / "de.json")
    return folder / "de.json"


def evaluate_args(data_dir, *extra):
    return ["evaluate", "--task", "xquad-r", "--languages", "de", "--data-dir", str(data_dir), *extra]


def test_unknown_task(capsys):
    assert_one_line_error(*run_cli(capsys, "evaluate", "--task", "squad")[::2], "unknown task 'squad'")


def test_unknown_language(capsys, datasets):
    code, _, err = run_cli(capsys, "evaluate", "--task", "mlqa-r", "--languages", "de,el")
    assert_one_line_error(code, err, "unknown language(s) el", "ar, de, en")


def test_empty_selection(capsys):
    code, _, err = run_cli(capsys, "evaluate", "--task", "xquad-r", "--languages", ",")
    assert_one_line_error(code, err, "empty language selection")


def test_missing_file(capsys, tmp_path):
    (tmp_path / "xquad-r").mkdir()
    code, _, err = run_cli(capsys, *evaluate_args(tmp_path))
    assert_one_line_error(code, err, "no xquad-r/de.json")


def test_mis_checksummed_file(capsys, broken_copy):
    broken_copy.write_bytes(broken_copy.read_bytes().replace(b"Panthers", b"Panthera", 1))
    code, _, err = run_cli(capsys, *evaluate_args(broken_copy.parents[1]))
    assert_one_line_error(code, err, "de.json: sha256", "does not match")


def test_malformed_json(capsys, broken_copy):
    broken_copy.write_text('{"data": [', encoding="utf-8")
    code, _, err = run_cli(capsys, *evaluate_args(broken_copy.parents[1], "--no-verify"))
    assert_one_line_error(code, err, "de.json: malformed json at line 1")


def test_missing_field(capsys, broken_copy):
    raw = json.loads(broken_copy.read_text(encoding="utf-8"))
    del raw["data"][0]["paragraphs"][1]["sentence_breaks"]
    broken_copy.write_text(json.dumps(raw), encoding="utf-8")
    code, _, err = run_cli(capsys, *evaluate_args(broken_copy.parents[1], "--no-verify"))
    assert_one_line_error(code, err, "data[0].paragraphs[1] has no field 'sentence_breaks'")


def test_answer_outside_every_sentence(capsys, broken_copy):
    raw = json.loads(broken_copy.read_text(encoding="utf-8"))
    qa = raw["data"][0]["paragraphs"][0]["qas"][0]
    qa["answers"][0]["answer_start"] = 10**6
    broken_copy.write_text(json.dumps(raw), encoding="utf-8")
    code, _, err = run_cli(capsys, *evaluate_args(broken_copy.parents[1], "--no-verify"))
    assert_one_line_error(code, err, f"question {qa['id']}", "answer_start 1000000 outside every sentence")


def test_wrong_counts(capsys, broken_copy):
    raw = json.loads(broken_copy.read_text(encoding="utf-8"))
    raw["data"][0]["paragraphs"][0]["qas"].pop()
    broken_copy.write_text(json.dumps(raw), encoding="utf-8")
    # verified: the checksum catches it first; counts are checked for files that pass it
    code, _, err = run_cli(capsys, *evaluate_args(broken_copy.parents[1]))
    assert_one_line_error(code, err, "sha256")


def test_unreadable_model_paths(capsys, datasets, tmp_path):
    code, _, err = run_cli(capsys, *evaluate_args(datasets, "--model", str(tmp_path / "none")))
    assert_one_line_error(code, err, "no such folder")
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, *evaluate_args(datasets, "--model", str(tmp_path / "empty")))
    assert_one_line_error(code, err, "not a SentenceTransformer or transformers model folder")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "modules.json").write_text("[{oops")
    code, _, err = run_cli(capsys, *evaluate_args(datasets, "--model", str(broken), "--no-cache"))
    assert_one_line_error(code, err, "cannot load model")


def test_bad_option_values(capsys):
    code, _, err = run_cli(capsys, "evaluate", "--task", "xquad-r", "--run-depth", "-1")
    assert_one_line_error(code, err, "--run-depth")
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--task", "xquad-r", "--candidate-format", "paragraph"])
    assert exc.value.code == 2
    assert_one_line_error(2, capsys.readouterr().err, "invalid choice")


def test_console_script_error_is_one_line(tmp_path):
    """The installed entry point itself: exit 2, one line, no traceback."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hybrid_plugin",
            "evaluate",
            "--task",
            "xquad-r",
            "--data-dir",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_line_error(proc.returncode, proc.stderr, "does not exist")
    assert proc.stdout == ""


HEAVY = ("scipy", "matplotlib", "torch", "transformers", "sentence_transformers", "mteb", "pandas")


def heavy_imports(code: str) -> list[str]:
    """The libraries of :data:`HEAVY` that running ``code`` in a fresh interpreter imports."""
    probe = f"{code}\nimport sys\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"'))


def test_parser_and_help_import_no_heavy_library():
    """Start-up stays cheap: building every subcommand's parser (``evaluate --help``) imports none of
    scipy (``scipy.stats`` alone took 1.5 s, for the compare parser's choices), matplotlib or torch."""
    code = (
        "import contextlib, io\n"
        "from hybrid_plugin.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['evaluate', '--help'])"
    )
    assert heavy_imports(code) == []


def test_way_to_the_numbers_imports_no_scipy_or_plotting():
    """The modules an evaluation runs through up to its numbers and files import neither scipy nor
    matplotlib (a plot imports matplotlib when it is drawn; ``compare`` imports scipy for its t-test)."""
    code = (
        "import hybrid_plugin.cli, hybrid_plugin.evaluation.evaluator, hybrid_plugin.evaluation.report, "
        "hybrid_plugin.evaluation.perquery, hybrid_plugin.stats"
    )
    assert not {"scipy", "matplotlib"} & set(heavy_imports(code))
