"""Leaderboard rows with uncertainty: a bootstrap interval per row and the paired test against the best row,
rebuilt by ``validate`` from the committed per-query files; rows without one show "n/a"."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from conftest import REPO, build_tiny_model

from hybrid_plugin.cli import main
from hybrid_plugin.escape import markdown as md
from hybrid_plugin.evaluation.measures import MULTI_MAP
from hybrid_plugin.leaderboard.board import read_board
from hybrid_plugin.leaderboard.columns import versus_text
from hybrid_plugin.leaderboard.markdown import render_readme
from hybrid_plugin.leaderboard.plots import plot_map_bars, plot_map_vs_bias
from hybrid_plugin.stats import compare, score_interval


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def rows_of(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


@pytest.fixture(scope="module")
def other_results(tmp_path_factory, datasets) -> Path:
    """A second tiny model (another seed) on XQuAD-R de+en sentences: a row of the same class."""
    from hybrid_plugin.evaluation.evaluator import EvalConfig, run_evaluation
    from hybrid_plugin.evaluation.perquery import to_arrow
    from hybrid_plugin.evaluation.report import write_results

    texts = []
    for lang in ("de", "en"):
        raw = json.loads((datasets / "xquad-r" / f"{lang}.json").read_text(encoding="utf-8"))
        for art in raw["data"]:
            for para in art["paragraphs"]:
                texts += para["sentences"] + [qa["question"] for qa in para["qas"]]
    out = tmp_path_factory.mktemp("other")
    model = build_tiny_model(out / "tiny-b", texts, seed=1)
    cfg = EvalConfig(task="xquad-r", model=str(model), languages="de,en", data_dir=str(datasets), run_depth=0,
                     cache_dir=str(out / "emb"))  # fmt: skip
    evaluation = run_evaluation(cfg)
    return write_results(evaluation.results, out / "res", to_arrow(evaluation.table, evaluation.pool))[
        "results"
    ]


def test_rows_get_intervals_and_a_test_against_the_best(tmp_path, tiny_results, other_results, capsys):
    board = tmp_path / "lb"
    for path, name in ((tiny_results["sentence"], "tiny a"), (other_results, "tiny b")):
        code, _, err = run(
            capsys, "leaderboard", "submit", path, "--dir", board, "--name", name, "--submitter", "t"
        )
        assert code == 0, err
    rows = rows_of(board / "xquad-r.csv")
    best, other = rows
    assert float(best["multi_map"]) >= float(other["multi_map"])
    by_name = {"tiny a": tiny_results["sentence"], "tiny b": other_results}
    # the interval is the row's own bootstrap over question groups (2,000 resamples, seed 0)
    for row in rows:
        low, high = score_interval(by_name[row["name"]], MULTI_MAP, bootstraps=2000, seed=0)
        assert (row["multi_map_ci_low"], row["multi_map_ci_high"]) == (f"{low:.4f}", f"{high:.4f}")
        assert low <= float(row["multi_map"]) <= high
    # the test: compare's grouped randomization test, best row as baseline
    assert best["vs_best"] == "best" and best["vs_best_p"] == ""
    cmp = compare(by_name[best["name"]], by_name[other["name"]], permutations=10_000, bootstraps=1, seed=0)
    p = cmp.pairs[0].measure("multi_map").macro.test.p_adjusted
    assert other["vs_best_p"] == f"{p:.4f}"
    assert other["vs_best"] == ("tied" if p >= 0.05 else "below")
    code, out, err = run(capsys, "leaderboard", "validate", board / "xquad-r.csv")
    assert code == 0, err

    # validate rebuilds the cells: an edited interval or marker is caught
    text = (board / "xquad-r.csv").read_text(encoding="utf-8")
    edited = text.replace(f",{best['multi_map_ci_low']},", ",0.0001,", 1)
    assert edited != text
    (board / "xquad-r.csv").write_text(edited, encoding="utf-8")
    code, _, err = run(capsys, "leaderboard", "validate", board / "xquad-r.csv")
    assert (
        code == 2 and "column multi_map_ci_low" in err and "differs from the committed per-query files" in err
    )
    (board / "xquad-r.csv").write_text(text, encoding="utf-8")

    # rendered: interval and marker in the table
    code, _, err = run(capsys, "leaderboard", "render", "--dir", board)
    assert code == 0, err
    readme = (board / "README.md").read_text(encoding="utf-8")
    interval = f"[{float(best['multi_map_ci_low']):.3f}, {float(best['multi_map_ci_high']):.3f}]"
    assert md(interval) in readme
    assert "| best |" in readme and ("≈ best (p " in readme or "below (p " in readme)


def test_a_row_without_per_query_file_shows_na(tmp_path, tiny_results, capsys):
    """Results without a per-query file (format 1, --no-per-query) get empty cells, rendered "n/a"."""
    doc = json.loads(tiny_results["sentence"].read_text(encoding="utf-8"))
    doc.pop("per_query")
    old = tmp_path / "old" / "results.json"
    old.parent.mkdir()
    old.write_text(json.dumps(doc), encoding="utf-8")
    board = tmp_path / "lb"
    for path in (old, tiny_results["sentence+context"]):
        code, _, err = run(capsys, "leaderboard", "submit", path, "--dir", board, "--submitter", "t")
        assert code == 0, err
    rows = {r["candidate_format"]: r for r in rows_of(board / "xquad-r.csv")}
    assert [rows["sentence"][c] for c in ("multi_map_ci_low", "vs_best", "vs_best_p")] == ["", "", ""]
    assert rows["sentence+context"]["vs_best"] == "best"  # its own class (other candidates)
    assert rows["sentence+context"]["multi_map_ci_low"] != ""
    boards = read_board(board)
    readme = render_readme(boards, {})
    model = next(r.model for r in boards["xquad-r"] if r.model.candidate_format == "sentence")
    assert versus_text(model) == "n/a" and "| n/a | n/a |" in readme


def test_committed_rows_claim_an_interval_exactly_when_they_have_a_per_query_file():
    """Rows evaluated before per-query files existed claim nothing; the others carry an interval
    around their own multi mAP (``validate`` checks the exact values)."""
    board = Path(__file__).resolve().parents[1] / "leaderboards"
    with_interval = 0
    for task, rows in read_board(board).items():
        for row in rows:
            m = row.model
            per_query = board / "results" / task / f"{m.results_sha256[:16]}.queries.parquet"
            assert (m.multi_map_ci_low is not None) == per_query.is_file(), (task, row.line)
            if m.multi_map_ci_low is not None:
                assert m.multi_map_ci_low < m.multi_map < m.multi_map_ci_high, (task, row.line)
                with_interval += 1
            else:
                assert m.vs_best is None, (task, row.line)
    assert with_interval >= 4  # the default model and BM25 on both tasks


def test_plots_draw_error_bars_where_rows_have_intervals(tmp_path):
    """Error bars are drawn for rows with an interval only (a committed row given one here)."""
    board = Path(__file__).resolve().parents[1] / "leaderboards"
    rows = [r.model for r in read_board(board)["xquad-r"]]
    with_ci = [rows[0].model_copy(update={"multi_map_ci_low": 0.54, "multi_map_ci_high": 0.566}), *rows[1:]]
    for draw in (plot_map_vs_bias, plot_map_bars):
        plain, bars = tmp_path / f"{draw.__name__}-plain.png", tmp_path / f"{draw.__name__}-ci.png"
        draw("xquad-r", rows, plain)
        draw("xquad-r", with_ci, bars)
        assert plain.read_bytes() != bars.read_bytes()


def test_intervals_are_reused_only_for_identical_file_contents(tmp_path):
    """The process-wide reuse is keyed by content: new files at the same path give their own interval."""
    from types import SimpleNamespace

    from hybrid_plugin.leaderboard.uncertainty import uncertainty_cells

    committed = REPO / "leaderboards" / "results" / "xquad-r"
    first, second = sorted(
        p for p in committed.glob("*.json") if p.with_suffix(".queries.parquet").is_file()
    )[:2]
    path = tmp_path / "row.json"
    row = SimpleNamespace(results_sha256="x", languages="all", candidate_format="sentence")
    cells = []
    for source in (first, second, first):
        path.write_bytes(source.read_bytes())
        path.with_suffix(".queries.parquet").write_bytes(source.with_suffix(".queries.parquet").read_bytes())
        cells.append(uncertainty_cells([row], {"x": path})["x"])
        low, high = score_interval(source, MULTI_MAP, bootstraps=2_000, seed=0)
        assert (cells[-1]["multi_map_ci_low"], cells[-1]["multi_map_ci_high"]) == (
            f"{low:.4f}",
            f"{high:.4f}",
        )
    assert cells[0] != cells[1] and cells[0] == cells[2]
