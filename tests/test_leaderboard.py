"""Leaderboards: submit → validate round trip, duplicates, atomic writes, hostile and malformed cells,
tampered results files, provenance checks, rendering; the committed CSVs validate."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from pathlib import Path

import pytest

from hybrid_plugin.cli import main
from hybrid_plugin.escape import markdown as md
from hybrid_plugin.leaderboard import board as board_module
from hybrid_plugin.leaderboard import csvfile
from hybrid_plugin.leaderboard.board import LOCK_FILE, read_board, results_relpath
from hybrid_plugin.leaderboard.csvfile import to_csv_text, write_csv
from hybrid_plugin.leaderboard.markdown import render_readme
from hybrid_plugin.leaderboard.page import render_html
from hybrid_plugin.leaderboard.schema import header

REPO = Path(__file__).resolve().parents[1]


def run_cli(capsys, *argv: str) -> tuple[int, str, list[str]]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, [line for line in out.err.splitlines() if line.strip()]


def one_error(code: int, err: list[str], *fragments: str) -> str:
    assert code == 2, err
    assert len(err) == 1, err
    for f in fragments:
        assert f in err[0], err[0]
    return err[0]


@pytest.fixture
def board(tmp_path: Path, tiny_results: dict[str, Path], capsys) -> Path:
    """A leaderboard folder with the tiny model's two rows (sentence, sentence+context) on XQuAD-R de+en."""
    folder = tmp_path / "lb"
    for fmt, path in tiny_results.items():
        options = ["--name", f"tiny {fmt}", "--submitter", "tester", "--notes", "zero-shot"]
        code, _, err = run_cli(capsys, "leaderboard", "submit", path, "--dir", folder, *options)
        assert code == 0, err
    return folder


def read_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    """Write rows as a spreadsheet would (csv's excel dialect: CRLF line ends, any cell allowed)."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=header("xquad-r"))
        writer.writeheader()
        writer.writerows(rows)


def validate_errors(capsys, *files: Path) -> tuple[int, list[str]]:
    code, _, err = run_cli(capsys, "leaderboard", "validate", *files)
    problems = [line for line in err if "problem(s) in" not in line]
    return code, problems


# --- round trip ----------------------------------------------------------------------------------


def test_submit_then_validate_round_trip(board: Path, tiny_results: dict[str, Path], capsys) -> None:
    code, out, err = run_cli(capsys, "leaderboard", "validate", "--dir", board)
    assert code == 0 and not err
    assert "1 row(s)" not in out and "2 row(s) of xquad-r" in out
    rows = read_rows(board / "xquad-r.csv")
    assert list(rows[0]) == header("xquad-r")
    by_format = {r["candidate_format"]: r for r in rows}
    for fmt, path in tiny_results.items():
        raw = path.read_bytes()
        results = json.loads(raw)
        row = by_format[fmt]
        # every number passes through from the results file, rounded for the CSV
        for key in ("mono_map", "cross_map", "multi_map", "same_language_top_share"):
            assert row[key] == f"{results['scores'][key]:.4f}"
        assert row["max_rank_distance"] == f"{results['scores']['max_rank_distance']:.1f}"
        assert row["multi_map_de"] == f"{results['per_language']['de']['multi_map']:.4f}"
        assert row["multi_map_ar"] == ""
        assert row["model_fingerprint"] == results["model"]["fingerprint"]
        # the tiny model's folder (named "model": its parent's name, e.g. tiny0), never its path
        assert row["model_id"] == Path(results["model"]["name"]).parent.name
        assert row["embedding_dim"] == "32" and int(row["parameters"]) > 10_000
        assert row["training_strategy"] == "zero-shot" and row["in_domain_training"] == "false"
        assert row["languages"] == "de,en" and row["task"] == "xquad-r"
        assert row["plugin_version"] == results["provenance"]["versions"]["hybrid-plugin"]
        assert row["date"] == results["provenance"]["started"][:10]
        assert row["name"] == f"tiny {fmt}" and row["submitter"] == "tester" and row["notes"] == "zero-shot"
        copy = board / results_relpath("xquad-r", row["results_sha256"])
        assert copy.read_bytes() == raw
    assert [float(r["multi_map"]) for r in rows] == sorted(
        (float(r["multi_map"]) for r in rows), reverse=True
    )


def test_duplicate_refused_unless_replace(board: Path, tiny_results: dict[str, Path], capsys) -> None:
    csv_file = board / "xquad-r.csv"
    before = csv_file.read_bytes()
    code, _, err = run_cli(capsys, "leaderboard", "submit", tiny_results["sentence"], "--dir", board)
    one_error(code, err, "xquad-r.csv: row", "already holds model", "--replace")
    assert csv_file.read_bytes() == before
    code, out, err = run_cli(capsys, "leaderboard", "submit", tiny_results["sentence"], "--dir", board,
                             "--replace", "--name", "renamed", "--submitter", "tester")  # fmt: skip
    assert code == 0, err
    assert out.startswith("replaced renamed")
    # ranked among comparable rows only: the sentence+context row is another candidate format
    assert "place 1 of 1 on de,en (sentence), multi" in out
    rows = read_rows(csv_file)
    assert len(rows) == 2 and {r["name"] for r in rows} == {"renamed", "tiny sentence+context"}
    assert validate_errors(capsys, csv_file) == (0, [])


def test_submit_normalises_free_text_and_refuses_hostile(
    tmp_path: Path, tiny_results: dict[str, Path], capsys
) -> None:
    folder = tmp_path / "lb"
    path = tiny_results["sentence"]
    for option, value, fragment in [
        ("--notes", '=HYPERLINK("http://x","y")', "--notes: starts with '='"),
        ("--notes", "<script>alert(1)</script>", "--notes: HTML markup"),
        ("--name", "../../etc/passwd", "--name: looks like a file path"),
        ("--submitter", "@me", "--submitter: starts with '@'"),
        ("--notes", "x" * 501, "--notes: String should have at most 500 characters"),
        ("--name", "bad\udcffbytes", "--name: not valid UTF-8"),
    ]:
        code, _, err = run_cli(capsys, "leaderboard", "submit", path, "--dir", folder, option, value)
        one_error(code, err, fragment)
    assert not (folder / "xquad-r.csv").exists()
    code, _, err = run_cli(capsys, "leaderboard", "submit", path, "--dir", folder, "--submitter", "t",
                           "--notes", "  zero-shot,\n\tsecond line  ")  # fmt: skip
    assert code == 0, err
    assert read_rows(folder / "xquad-r.csv")[0]["notes"] == "zero-shot, second line"


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (
            lambda r: r["scores"].update(multi_map=r["scores"]["multi_map"] + 0.1),
            "scores.multi_map is not the macro",
        ),
        (lambda r: r["per_language"]["de"].update(mono_map=0.99), "per_language.de.mono_map does not follow"),
        (lambda r: r["provenance"].update(data_verified=False), "unverified data (--no-verify)"),
        (
            lambda r: r["provenance"]["config"].update(query_perturbation="typo:0.05"),
            "evaluated on perturbed queries (hybrid-plugin perturb)",
        ),
        (lambda r: r.pop("scores"), "field scores: Field required"),
        (lambda r: r["model"].update(fingerprint="../x"), "field model.fingerprint"),
        (lambda r: r.update(task="squad"), "task 'squad': expected one of mlqa-r, xquad-r"),
        (lambda r: r.update(languages=["en", "de"]), "expected distinct languages of xquad-r in its order"),
    ],
)
def test_submit_refuses_tampered_results(tmp_path, tiny_results, capsys, edit, fragment) -> None:
    results = json.loads(tiny_results["sentence"].read_text(encoding="utf-8"))
    edit(results)
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(results), encoding="utf-8")
    code, _, err = run_cli(capsys, "leaderboard", "submit", path, "--dir", tmp_path / "lb")
    one_error(code, err, fragment)


def test_submit_refuses_unreadable_results(tmp_path, capsys) -> None:
    for name, data, fragment in [
        ("broken.json", b'{"format": 1,', "malformed json at line 1"),
        ("latin1.json", '{"name": "M\u00fcller"}'.encode("latin-1"), "not UTF-8 text"),
        ("other.json", b'{"a": 1}', "field format: None is not a results format"),
    ]:
        (tmp_path / name).write_bytes(data)
        code, _, err = run_cli(capsys, "leaderboard", "submit", tmp_path / name, "--dir", tmp_path / "lb")
        one_error(code, err, name, fragment)
    code, _, err = run_cli(capsys, "leaderboard", "submit", tmp_path / "missing.json", "--dir", tmp_path)
    one_error(code, err, "missing.json: cannot read")


def test_submit_refuses_to_write_over_an_invalid_csv(board, tiny_results, capsys) -> None:
    csv_file = board / "xquad-r.csv"
    rows = read_rows(csv_file)
    rows[0]["notes"] = "=1+1"
    write_rows(csv_file, rows)
    before = csv_file.read_bytes()
    code, _, err = run_cli(
        capsys, "leaderboard", "submit", tiny_results["sentence"], "--dir", board, "--replace"
    )
    one_error(code, err, "has 1 problem(s)", "column notes")
    assert csv_file.read_bytes() == before


# --- atomic writes --------------------------------------------------------------------------------


def test_failure_mid_write_leaves_the_old_file(board: Path, tiny_results, monkeypatch, capsys) -> None:
    csv_file = board / "xquad-r.csv"
    before = csv_file.read_bytes()
    rows = read_rows(csv_file)

    def rows_then_crash():
        yield rows[0]
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_csv(csv_file, header("xquad-r"), rows_then_crash())
    assert csv_file.read_bytes() == before
    # (the lock file of submit/render is not a temp file: empty, gitignored, kept for the next one)
    assert sorted(p.name for p in board.iterdir() if p.name != LOCK_FILE) == ["results", "xquad-r.csv"]

    # the same through submit: the writer dies after the header line
    real = csvfile._write_rows

    def write_header_then_crash(out, columns, rows):
        real(out, columns, [])
        out.flush()
        raise KeyboardInterrupt

    monkeypatch.setattr(csvfile, "_write_rows", write_header_then_crash)
    copies = sorted((board / "results" / "xquad-r").iterdir())
    with pytest.raises(KeyboardInterrupt):
        board_module.submit(tiny_results["sentence"], board, name="new", submitter="t", replace=True)
    # a new results file (another model's) is removed again when its CSV write fails
    other = REPO / "leaderboards" / "results" / "xquad-r"
    with pytest.raises(KeyboardInterrupt):
        board_module.submit(next(other.glob("*.json")), board, submitter="t")
    assert csv_file.read_bytes() == before
    assert sorted(p.name for p in board.iterdir() if p.name != LOCK_FILE) == ["results", "xquad-r.csv"]
    assert sorted((board / "results" / "xquad-r").iterdir()) == copies
    monkeypatch.undo()
    assert validate_errors(capsys, csv_file) == (0, [])


# --- validation: one line per problem, naming row and column -------------------------------------

HOSTILE_CELLS = [
    ("name", '=HYPERLINK("http://evil","click")', "starts with '=' (a spreadsheet formula)"),
    ("notes", "+1+1", "starts with '+' (a spreadsheet formula)"),
    ("submitter", "-2+3", "starts with '-' (a spreadsheet formula)"),
    ("notes", "@SUM(A1:A2)", "starts with '@' (a spreadsheet formula)"),
    ("multi_map", "=0.9", "starts with '=' (a spreadsheet formula)"),
    ("notes", "<script>alert(1)</script>", "HTML markup"),
    ("name", "<img src=x onerror=alert(1)>", "HTML markup"),
    ("notes", "x" * 501, "String should have at most 500 characters"),
    ("notes", "y" * 1001, "longer than 1000 characters"),
    ("name", "../../etc/passwd", "looks like a file path"),
    ("name", "/etc/passwd", "looks like a file path"),
    ("submitter", "C:\\Users\\me", "looks like a file path"),
    ("name", "https://evil.example/x", "looks like a file path or URL"),
    ("model_id", "a/b/c", "expected a hub id org/name or a folder name"),
    ("model_id", "../secret", "expected a hub id org/name or a folder name"),
    ("base_model", "/abs/path", "expected a hub id org/name or a folder name"),
    ("notes", "tab\there", "control character U+0009"),
    ("notes", "line\rbreak", "control character U+000D"),
    ("notes", "line\nbreak", "control character U+000A"),
    ("notes", "abc\u202edcba", "control character U+202E"),
    ("notes", " padded", "leading or trailing whitespace"),
    ("mono_map", "1.5", "less than or equal to 1"),
    ("max_rank_distance", "-3", "greater than or equal to 0"),
    ("multi_map", "abc", "expected a decimal number"),
    ("cross_map", "NaN", "expected a decimal number"),
    ("cross_map", "1e-3", "expected a decimal number"),
    ("batch_size", "0", "greater than or equal to 1"),
    ("training_strategy", "magic", "Input should be 'zero-shot'"),
    ("candidate_format", "paragraph", "Input should be 'sentence' or 'sentence+context'"),
    ("in_domain_training", "yes", "expected true or false"),
    ("in_domain_training", "true", "must be false for a zero-shot row"),
    ("date", "22/11/2026", "expected a date YYYY-MM-DD"),
    ("model_fingerprint", "", "required: the cell is empty"),
    ("results_sha256", "abc", "64 lowercase hex digits"),
    ("task", "mlqa-r", "Input should be 'xquad-r'"),
    ("languages", "de,xx", "xx not in xquad-r"),
    ("languages", "en,de", "in the task's order"),
    ("multi_map_ar", "0.1", "must be empty: ar is not among the row's languages"),
    ("multi_map_de", "", "required: de is among the row's languages"),
    ("alpha", "0.5", "must be empty for a zero-shot row"),
]


@pytest.mark.parametrize(("column", "value", "fragment"), HOSTILE_CELLS)
def test_validate_refuses_hostile_or_malformed_cells(board: Path, capsys, column, value, fragment) -> None:
    csv_file = board / "xquad-r.csv"
    rows = read_rows(csv_file)
    rows[0][column] = value
    write_rows(csv_file, rows)
    code, problems = validate_errors(capsys, csv_file)
    assert code == 2
    if column == "results_sha256":  # the results file the row named is now unreferenced too
        assert problems[1].endswith("not referenced by any row of xquad-r.csv")
        problems = problems[:1]
    assert problems == [problems[0]], problems  # exactly one line
    assert problems[0].startswith(f"{csv_file}: row 2, column {column}: "), problems[0]
    assert fragment in problems[0], problems[0]


def _file_problems(capsys, csv_file: Path) -> list[str]:
    code, problems = validate_errors(capsys, csv_file)
    assert code == 2
    return problems


def test_validate_file_level_problems(board: Path, capsys) -> None:
    csv_file = board / "xquad-r.csv"
    good = csv_file.read_bytes()
    text = good.decode("utf-8")

    csv_file.write_bytes(text.replace("tiny sentence+context", "M\u00fcller").encode("latin-1"))
    (problem,) = _file_problems(capsys, csv_file)
    assert "row 2: not UTF-8 text (byte 0xfc" in problem or "row 3: not UTF-8 text (byte 0xfc" in problem

    csv_file.write_bytes(b"\xef\xbb\xbf" + good)
    assert _file_problems(capsys, csv_file) == [
        f"{csv_file}: row 1: starts with a UTF-8 byte-order mark: save as UTF-8 without BOM"
    ]

    lines = text.splitlines(keepends=True)
    csv_file.write_text(lines[0].replace(",notes", "") + "".join(lines[1:]), encoding="utf-8")
    assert _file_problems(capsys, csv_file) == [
        f"{csv_file}: row 1: header does not match the xquad-r schema: missing notes"
    ]

    csv_file.write_text(lines[0] + lines[1].rstrip("\n") + ",extra\n" + lines[2], encoding="utf-8")
    assert _file_problems(capsys, csv_file) == [f"{csv_file}: row 2: 42 cells, expected 41 (one per column)"]

    csv_file.write_text(text + '"unterminated,quote\n', encoding="utf-8")
    (problem,) = _file_problems(capsys, csv_file)
    assert problem.startswith(f"{csv_file}: row 4: malformed CSV")

    csv_file.write_text(lines[0] + lines[2] + lines[1], encoding="utf-8")
    assert _file_problems(capsys, csv_file) == [
        f"{csv_file}: row 2: rows are not sorted best multi_map first (submit rewrites the order)"
    ]

    csv_file.write_text(text + lines[2], encoding="utf-8")
    (problem,) = _file_problems(capsys, csv_file)
    assert problem.startswith(f"{csv_file}: row 4: duplicate key") and problem.endswith("of row 3")

    csv_file.write_text("", encoding="utf-8")
    assert _file_problems(capsys, csv_file) == [f"{csv_file}: empty file: expected the header line"]

    other = board / "scores.csv"
    other.write_text(lines[0], encoding="utf-8")
    (problem,) = _file_problems(capsys, other)
    assert "cannot tell the task: name the file" in problem


def test_validate_checks_rows_against_committed_results(board: Path, capsys) -> None:
    csv_file = board / "xquad-r.csv"
    rows = read_rows(csv_file)
    good = csv_file.read_bytes()
    first = board / results_relpath("xquad-r", rows[0]["results_sha256"])

    # a better number typed into the CSV: still a valid cell, but not what the results file says
    real = rows[0]["multi_map"]
    rows[0]["multi_map"] = "0.9999"
    write_rows(csv_file, rows)
    (problem,) = _file_problems(capsys, csv_file)
    assert problem == (
        f"{csv_file}: row 2, column multi_map: '0.9999' differs from "
        f"{results_relpath('xquad-r', rows[0]['results_sha256'])} ({real!r})"
    )
    csv_file.write_bytes(good)

    raw = first.read_bytes()
    first.write_bytes(raw.replace(b'"task"', b' "task"', 1))
    (problem,) = _file_problems(capsys, csv_file)
    assert "row 2, column results_sha256:" in problem and "does not have this sha256" in problem
    first.unlink()
    (problem,) = _file_problems(capsys, csv_file)
    assert "row 2, column results_sha256: no committed results file results/xquad-r/" in problem
    first.write_bytes(raw)

    orphan = first.with_name("0123456789abcdef.json")
    orphan.write_bytes(raw)
    assert _file_problems(capsys, csv_file) == [f"{orphan}: not referenced by any row of xquad-r.csv"]
    orphan.unlink()
    assert validate_errors(capsys, csv_file) == (0, [])


def test_validate_needs_files(tmp_path, capsys) -> None:
    code, _, err = run_cli(capsys, "leaderboard", "validate", "--dir", tmp_path)
    one_error(code, err, "no CSV files given and none in")
    code, problems = validate_errors(capsys, tmp_path / "xquad-r.csv")
    assert code == 2 and "cannot read" in problems[0]


# --- the committed leaderboards -------------------------------------------------------------------


def test_committed_leaderboards_validate_and_are_rendered(capsys) -> None:
    folder = REPO / "leaderboards"
    files = sorted(folder.glob("*.csv"))
    assert [f.name for f in files] == ["mlqa-r.csv", "xquad-r.csv"]
    code, out, err = run_cli(capsys, "leaderboard", "validate", *files)
    assert code == 0, err
    code, _, err = run_cli(capsys, "leaderboard", "render", "--dir", folder, "--check")
    assert code == 0, err


# --- rendering ------------------------------------------------------------------------------------


def test_render_writes_readme_page_and_plots(board: Path, tiny_results, capsys) -> None:
    code, out, err = run_cli(capsys, "leaderboard", "render", "--dir", board)
    assert code == 0, err
    readme = (board / "README.md").read_text(encoding="utf-8")
    page = (board / "index.html").read_text(encoding="utf-8")
    rows = read_rows(board / "xquad-r.csv")
    # de+en rows are partial (XQuAD-R has 11 languages): listed apart, not ranked, no plots
    assert "0 row(s) on all of them" in readme and "Partial language sets" in readme
    for row in rows:
        assert f"]({results_relpath('xquad-r', row['results_sha256'])})" in readme
        assert f'href="{results_relpath("xquad-r", row["results_sha256"])}"' in page
    assert "| `results_sha256` | yes |" in readme  # schema table from the pydantic descriptions
    assert page.count("<script>") == 1 and "http" not in page.replace("http-equiv", "")
    assert not list(board.glob("plots/*.png"))
    code, _, err = run_cli(capsys, "leaderboard", "render", "--dir", board, "--check")
    assert code == 0, err

    # a full-language row (the committed default-model row) gets the main table and both plots
    committed = REPO / "leaderboards"
    full = next(p for p in (committed / "results" / "xquad-r").glob("*.json"))
    code, _, err = run_cli(capsys, "leaderboard", "submit", full, "--dir", board, "--name", "default",
                           "--submitter", "tester")  # fmt: skip
    assert code == 0, err
    code, _, err = run_cli(capsys, "leaderboard", "render", "--dir", board, "--check")
    assert code == 2 and any("README.md: out of date" in line for line in err)
    code, out, err = run_cli(capsys, "leaderboard", "render", "--dir", board)
    assert code == 0, err
    readme = (board / "README.md").read_text(encoding="utf-8")
    assert "1 row(s) on all of them" in readme and "| 1 | [default](" in readme
    for name in ("xquad-r__multi_vs_bias.png", "xquad-r__maps.png"):
        assert (board / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(plots/{name})" in readme


HOSTILE_NOTES = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> | *bold* [x](y)'
HOSTILE_NAME = '"><svg onload=window.__pwned=3>$\\frac{1}{0}$'


def hostile_boards(folder: Path) -> dict:
    """The folder's rows with hostile free text put in after validation (render must still escape it)."""
    boards = read_board(folder)
    for rows in boards.values():
        for row in rows:
            row.model = row.model.model_copy(update={"notes": HOSTILE_NOTES, "name": HOSTILE_NAME})
    return boards


def test_render_escapes_a_hostile_row(board: Path) -> None:
    boards = hostile_boards(board)
    page = render_html(boards, {})
    assert "<script>window" not in page and "<img src=x" not in page and "<svg" not in page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in page
    assert "&quot;&gt;&lt;svg onload=window.__pwned=3&gt;" in page
    readme = render_readme(boards, {})
    assert "<script>" not in readme and "<img" not in readme and "<svg" not in readme
    assert md(HOSTILE_NOTES) in readme and "\\| \\*bold\\* \\[x\\](y)" in md(HOSTILE_NOTES)


def test_render_plots_draw_hostile_names_literally(board: Path, tmp_path: Path) -> None:
    from hybrid_plugin.leaderboard.plots import plot_map_bars, plot_map_vs_bias

    rows = [r.model for r in hostile_boards(board)["xquad-r"]]
    plot_map_vs_bias("xquad-r", rows, tmp_path / "a.png")  # math text off: "$\frac{1}{0}$" is no error
    plot_map_bars("xquad-r", rows, tmp_path / "b.png")
    assert (tmp_path / "a.png").stat().st_size > 0 and (tmp_path / "b.png").stat().st_size > 0


def _number_boxes(fig) -> list[tuple[str, object]]:
    """(number, display box) of every numbered point label in the plot axes (the key is the last axes)."""
    from matplotlib.text import Text

    fig.canvas.draw()  # annotations take their final place when drawn
    renderer = fig.canvas.get_renderer()
    plot = fig.axes[0]
    return [
        (t.get_text(), Text.get_window_extent(t, renderer))  # the text itself, not its leader line
        for ax in [plot, *plot.child_axes]  # the inset, where there is one
        for t in ax.texts
        if t.get_text().isdigit()
    ]


def _assert_readable(fig, n: int) -> None:
    boxes = _number_boxes(fig)
    assert sorted(int(text) for text, _ in boxes) == list(range(1, n + 1))  # every row numbered once
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1 :]:
            assert not box_a.overlaps(box_b), f"labels {a} and {b} overlap"


def test_scatter_numbers_never_overlap_and_bm25_gets_a_log_axis() -> None:
    import matplotlib.pyplot as plt

    from hybrid_plugin.leaderboard.columns import split_rows
    from hybrid_plugin.leaderboard.plots import scatter_figure

    rows = split_rows("xquad-r", read_board(REPO / "leaderboards")["xquad-r"])[0]
    assert any(r.model_id == "bm25" for r in rows)
    fig = scatter_figure("xquad-r", rows)
    assert fig.axes[0].get_xscale() == "log"  # BM25's ~11,000 next to a few hundred
    _assert_readable(fig, len(rows))
    key = [t.get_text() for t in fig.axes[1].texts]
    assert all(r.name in key for r in rows)  # full names in the key, never on the data
    plt.close(fig)

    # fifteen rows within a few pixels of each other: magnified in an inset, still apart
    dense = [r for r in rows if r.model_id != "bm25"][:1] * 15

    def moved(r, i: int):
        """The row at a new point, its interval (where it has one) moved with it."""
        multi = 0.55 - 0.001 * i
        shift = {
            k: getattr(r, k) + multi - r.multi_map
            for k in ("multi_map_ci_low", "multi_map_ci_high")
            if getattr(r, k) is not None
        }
        return r.model_copy(
            update={"max_rank_distance": 350 + 0.7 * i, "multi_map": multi, "name": f"m{i}", **shift}
        )

    crowd = [moved(r, i) for i, r in enumerate(dense)]
    fig = scatter_figure("xquad-r", crowd)
    assert fig.axes[0].get_xscale() == "linear" and len(fig.axes[0].child_axes) == 1  # the inset
    _assert_readable(fig, len(crowd))
    plt.close(fig)


def _diamonds(ax) -> list[tuple[float, float]]:
    """The points an axes draws with the diamond marker (in-domain rows)."""
    import numpy as np
    from matplotlib.collections import PathCollection
    from matplotlib.markers import MarkerStyle

    diamond = MarkerStyle("D")
    shape = diamond.get_path().transformed(diamond.get_transform()).vertices
    return [
        (float(x), float(y))
        for c in ax.collections
        if isinstance(c, PathCollection)
        and c.get_paths()[0].vertices.shape == shape.shape
        and np.allclose(c.get_paths()[0].vertices, shape)
        for x, y in c.get_offsets()
    ]


def test_plots_mark_in_domain_rows_with_diamonds_hatches_and_a_legend() -> None:
    """MLQA-R's rows trained on MLQA data: diamonds in the scatter (inset too), hatched bars, ◆ in the
    key with its legend line; XQuAD-R, where nothing is in-domain, has none of them."""
    import matplotlib.pyplot as plt

    from hybrid_plugin.leaderboard.columns import split_rows
    from hybrid_plugin.leaderboard.plots import (
        IN_DOMAIN_HATCH,
        IN_DOMAIN_LEGEND,
        IN_DOMAIN_MARK,
        bars_figure,
        scatter_figure,
    )

    boards = read_board(REPO / "leaderboards")
    for task in ("mlqa-r", "xquad-r"):
        rows = split_rows(task, boards[task])[0]
        in_domain = [(r.max_rank_distance, r.multi_map) for r in rows if r.in_domain_training]
        assert bool(in_domain) == (task == "mlqa-r"), task  # MLQA-R's trained study rows are in-domain
        fig = scatter_figure(task, rows)
        plot, key = fig.axes[0], fig.axes[1]
        assert sorted(_diamonds(plot)) == sorted(in_domain)
        for inset in plot.child_axes:  # the crowded points again, same markers
            assert set(_diamonds(inset)) <= set(in_domain)
            (x0, x1), (y0, y1) = inset.get_xlim(), inset.get_ylim()
            magnified = sum(x0 < x < x1 and y0 < y < y1 for x, y in in_domain)
            assert len(_diamonds(inset)) == magnified and (magnified > 0) == bool(in_domain)
        texts = [t.get_text() for t in key.texts]
        assert texts.count(IN_DOMAIN_MARK) == (len(in_domain) + 1 if in_domain else 0)  # rows + legend
        assert (IN_DOMAIN_LEGEND in texts) == bool(in_domain)
        plt.close(fig)

    # the bars: hatched for in-domain rows (mono, cross and multi), explained in the key
    rows = split_rows("mlqa-r", boards["mlqa-r"])[0]
    fig = bars_figure("mlqa-r", rows)
    hatched = [p for p in fig.axes[0].patches if p.get_hatch() == IN_DOMAIN_HATCH]
    assert len(hatched) == 3 * sum(r.in_domain_training for r in rows) > 0
    assert f"hatched bars: {IN_DOMAIN_LEGEND}" in [t.get_text() for t in fig.axes[1].texts]
    plt.close(fig)
    fig = bars_figure("xquad-r", split_rows("xquad-r", boards["xquad-r"])[0])
    assert not [p for p in fig.axes[0].patches if p.get_hatch()]
    plt.close(fig)


def test_scatter_inset_draws_the_error_bars_of_its_points() -> None:
    """The magnified points keep their 95% intervals, each whole inside the inset."""
    import matplotlib.pyplot as plt
    from matplotlib.container import ErrorbarContainer

    from hybrid_plugin.leaderboard.columns import split_rows
    from hybrid_plugin.leaderboard.plots import scatter_figure

    rows = split_rows("xquad-r", read_board(REPO / "leaderboards")["xquad-r"])[0]
    fig = scatter_figure("xquad-r", rows)
    (inset,) = fig.axes[0].child_axes
    low_x, high_x = inset.get_xlim()
    members = [r for r in rows if low_x < r.max_rank_distance < high_x and r.multi_map_ci_low is not None]
    assert len(members) >= 10  # the trained variants crowded near a rank distance of 350
    (bars,) = [c for c in inset.containers if isinstance(c, ErrorbarContainer)]
    segments = bars.lines[2][0].get_segments()
    drawn = sorted((round(s[0][1], 6), round(s[1][1], 6)) for s in segments)
    assert drawn == sorted((round(r.multi_map_ci_low, 6), round(r.multi_map_ci_high, 6)) for r in members)
    bottom, top = inset.get_ylim()
    assert (
        bottom < min(r.multi_map_ci_low for r in members) and max(r.multi_map_ci_high for r in members) < top
    )
    plt.close(fig)


# --- a trained model: training columns and the in-domain flag -------------------------------------


def test_trained_model_row_carries_training_and_in_domain_flag(
    tmp_path: Path, tiny_model: Path, datasets: Path, capsys
) -> None:
    pytest.importorskip("accelerate", reason="training needs the train extra")
    from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate
    from hybrid_plugin.evaluation.report import write_results
    from hybrid_plugin.training.trainer import train

    source = datasets / "train" / "mlqa-test" / "test-context-de-question-es.json"
    if not source.is_file():
        pytest.skip(f"{source} not present")
    mini = json.loads(source.read_text(encoding="utf-8"))
    mini["data"] = mini["data"][:40]  # one question per article
    (tmp_path / "mlqa-mini").mkdir()
    (tmp_path / "mlqa-mini" / source.name).write_text(json.dumps(mini), encoding="utf-8")
    model = tmp_path / "tiny-cross"
    train(
        train_data=[f"mlqa:{tmp_path / 'mlqa-mini'}"], output=str(model), base_model=str(tiny_model),
        strategy="cross", passage_unit="context", batch_size=4, max_steps=2, max_seq_length=32,
        progress=False,
    )  # fmt: skip
    folder = tmp_path / "lb"
    for task in ("mlqa-r", "xquad-r"):
        cfg = EvalConfig(task=task, model=str(model), languages="de,es", data_dir=str(datasets), run_depth=0,
                         cache_dir=str(tmp_path / "emb"))  # fmt: skip
        results = evaluate(cfg)
        assert results.model["training"]["strategy"] == "cross"
        path = write_results(results, tmp_path / "results")["results"]
        code, _, err = run_cli(capsys, "leaderboard", "submit", path, "--dir", folder, "--submitter", "t")
        assert code == 0, err
        (row,) = read_rows(folder / f"{task}.csv")
        assert (
            row["model_id"] == "tiny-cross" and row["base_model"] == tiny_model.parent.name
        )  # "model": its parent's name
        assert row["training_strategy"] == "cross" and row["alpha"] == "0" and row["batch_size"] == "4"
        assert row["training_data"] == "mlqa:mlqa-mini" and row["training_languages"] == "de,es"
        assert row["in_domain_training"] == ("true" if task == "mlqa-r" else "false")
    code, _, err = run_cli(capsys, "leaderboard", "validate", "--dir", folder)
    assert code == 0, err
    code, _, err = run_cli(capsys, "leaderboard", "render", "--dir", folder)
    assert code == 0, err
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "yes ⚠" in readme
    assert f"cross α=0, batch 4, mlqa:mlqa-mini, from {tiny_model.parent.name}" in readme

    # a hand edit that hides the in-domain flag is refused
    rows = read_rows(folder / "mlqa-r.csv")
    rows[0]["in_domain_training"] = "false"
    (folder / "mlqa-r.csv").write_text(to_csv_text(header("mlqa-r"), rows), encoding="utf-8")
    code, problems = validate_errors(capsys, folder / "mlqa-r.csv")
    assert code == 2 and problems == [
        f"{folder / 'mlqa-r.csv'}: row 2, column in_domain_training: "
        "must be true for training data mlqa:mlqa-mini"
    ]
    shutil.rmtree(folder)


def test_only_cross_lingual_tasks_have_leaderboards() -> None:
    from hybrid_plugin.data.spec import all_specs
    from hybrid_plugin.leaderboard.tasks import ranked_specs

    assert "tydi-goldp" in all_specs()
    assert sorted(ranked_specs()) == ["mlqa-r", "xquad-r"]  # tydi-goldp has no multilingual mAP


def test_rules_are_filled_in_from_the_checks(monkeypatch) -> None:
    """The README's rules say the bounds, lengths and strategies the schema checks: a change to a
    check's constant changes the sentence; the committed README shows exactly these rules."""
    from hybrid_plugin.data.pool import CANDIDATE_FORMATS
    from hybrid_plugin.leaderboard import rules
    from hybrid_plugin.leaderboard.markdown import rules_list
    from hybrid_plugin.leaderboard.schema import ROW_CANDIDATE_FORMATS, RowBase

    text = "\n".join(rules.rules())
    assert "no cell is longer than\n1000 characters (`name` 120, `submitter` 80, `notes` 500);" in text
    assert "mAPs and shares in [0, 1], `max_rank_distance` ≥ 0, `alpha` in [0, 1], `batch_size` ≥ 1;" in text
    assert (
        "no cell starts with `=`, `+`, `-` or `@`" in text and "(and α: hybrid any, mono 1, cross 0)" in text
    )
    monkeypatch.setattr(rules, "FIXED_ALPHA", {"mono": 1.0})
    monkeypatch.setattr(rules, "CELL_MAX", 900)
    changed = "\n".join(rules.rules())
    assert "(and α: hybrid any, mono 1)" in changed and "\n900 characters" in changed
    monkeypatch.undo()
    assert rules_list() + "\n\nErrors read" in (REPO / "leaderboards" / "README.md").read_text(
        encoding="utf-8"
    )
    # the board's candidate formats are the sentence tasks' ones (a passage task has no board)
    assert ROW_CANDIDATE_FORMATS == ("sentence", "sentence+context") and "passage" in CANDIDATE_FORMATS
    assert RowBase.model_fields["candidate_format"].description == "`sentence` or `sentence+context`"


def test_per_query_file_travels_with_its_row(tmp_path: Path, tiny_results: dict[str, Path], capsys) -> None:
    """submit copies the per-query file beside the committed results; validate checks its sha256;
    a results file whose per-query file is missing is refused in one line."""
    board = tmp_path / "lb"
    source = tiny_results["sentence"]
    recorded = json.loads(source.read_text(encoding="utf-8"))["per_query"]
    code, _, err = run_cli(capsys, "leaderboard", "submit", source, "--dir", board, "--name", "tiny")
    assert code == 0, err
    row = read_rows(board / "xquad-r.csv")[0]
    copy = board / results_relpath("xquad-r", row["results_sha256"])
    per_query = copy.with_name(copy.stem + ".queries.parquet")
    assert hashlib.sha256(per_query.read_bytes()).hexdigest() == recorded["sha256"]
    assert per_query.read_bytes() == (source.parent / recorded["file"]).read_bytes()
    assert validate_errors(capsys, board / "xquad-r.csv") == (0, [])

    per_query.write_bytes(per_query.read_bytes()[:-10])  # a truncated copy
    code, problems = validate_errors(capsys, board / "xquad-r.csv")
    assert code == 2 and any("no committed per-query file" in p for p in problems)

    lonely = tmp_path / "lonely.json"
    lonely.write_bytes(source.read_bytes())  # the JSON without its per-query file
    code, _, err = run_cli(capsys, "leaderboard", "submit", lonely, "--dir", tmp_path / "lb2")
    one_error(code, err, "lonely.json", "per-query file", "missing")
    assert not (tmp_path / "lb2" / "xquad-r.csv").exists()


def test_remove_by_name_or_fingerprint(board: Path, tiny_results: dict[str, Path], capsys) -> None:
    """A row goes with its results copy; the rows left still validate; nothing matched is one line."""
    csv_file = board / "xquad-r.csv"
    rows = {r["name"]: r for r in read_rows(csv_file)}
    gone = rows["tiny sentence"]
    copy = board / results_relpath("xquad-r", gone["results_sha256"])
    assert copy.is_file()
    code, out, err = run_cli(capsys, "leaderboard", "remove", "--task", "xquad-r", "--name", "tiny sentence",
                             "--dir", board)  # fmt: skip
    assert code == 0, err
    assert out.splitlines()[0] == f"removed tiny sentence ({gone['model_fingerprint'][:12]}, de,en, sentence)"
    assert [r["name"] for r in read_rows(csv_file)] == ["tiny sentence+context"]
    per_query = board / board_module.per_query_relpath(results_relpath("xquad-r", gone["results_sha256"]))
    assert not copy.exists() and not per_query.exists()
    assert validate_errors(capsys, csv_file) == (0, [])
    before = csv_file.read_bytes()
    code, _, err = run_cli(capsys, "leaderboard", "remove", "--task", "xquad-r", "--name", "tiny sentence",
                           "--dir", board)  # fmt: skip
    one_error(code, err, "xquad-r.csv: no row named 'tiny sentence'")
    code, _, err = run_cli(capsys, "leaderboard", "remove", "--task", "xquad-r", "--fingerprint", "abc",
                           "--dir", board)  # fmt: skip
    one_error(code, err, "--fingerprint abc: give at least 8 hex digits")
    assert csv_file.read_bytes() == before
    left = read_rows(csv_file)[0]["model_fingerprint"]
    code, out, err = run_cli(capsys, "leaderboard", "remove", "--task", "xquad-r", "--fingerprint",
                             left[:8].upper(), "--dir", board)  # fmt: skip
    assert code == 0 and read_rows(csv_file) == [], err
