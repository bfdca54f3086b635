"""Fault suite (issue 25): user text is shown literally and names never leave their folder.

Model names (a plug-in's ``name``, a results file's), task folder titles and command-line names reach
matplotlib (math text), Markdown (README, ``compare``), LaTeX (``compare``) and paths (MTEB's results
folder, the embedding cache). Text that is accepted is drawn or escaped so it shows as written; a name
that would become a path outside the chosen folder is refused in one line, exit 2, before anything is
written.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
from conftest import REPO
from matplotlib.text import Text
from test_faults import cli_error, tree
from test_taskdir import write_task

from hybrid_plugin.cli import main
from hybrid_plugin.errors import UserError
from hybrid_plugin.escape import latex, markdown
from hybrid_plugin.paths import path_component

#: malformed math text: matplotlib raises ParseSyntaxException while drawing it unless math is off
MATH = r"$\frac{$"
TITLE = f"Pool {MATH} 50% <script>alert(1)</script> [x](javascript:alert(1)) ![](http://track.example/p.png)"
NAME = f"net {MATH} #1"
LABEL = NAME.replace("\\", "/")  # evaluate's plot titles show a name as a path: '\\' as '/'

TOML = f"""name = "hostile-pool"
title = {json.dumps(TITLE)}
description = "Two languages, hand-made."
languages = ["de", "en"]
license = "CC0-1.0"
citation = "none"
candidate_unit = "sentence"
"""

PLUGIN = f"""
import hashlib

import numpy as np


class Encoder:
    name = {NAME!r}
    fingerprint = "hostile-names-test"

    def encode(self, texts, prompt_name=None):
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[:8], dtype=np.uint8) for t in texts]
        return np.array(rows, dtype=np.float32) / 255.0 + 0.01


def make():
    return Encoder()
"""


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool, bool]]:
    """Every text matplotlib draws from now on: (text, parse_math, usetex)."""
    seen: list[tuple[str, bool, bool]] = []
    real = Text.draw

    def draw(self: Text, renderer) -> None:
        if self.get_visible() and self.get_text():
            seen.append((self.get_text(), self.get_parse_math(), self.get_usetex()))
        return real(self, renderer)

    monkeypatch.setattr(Text, "draw", draw)
    return seen


def assert_literal(drawn: list[tuple[str, bool, bool]], *wanted: str) -> None:
    """Each of ``wanted`` was drawn, and every text holding a '$' was drawn without math or TeX."""
    texts = [t for t, _, _ in drawn]
    for text in wanted:
        assert any(text in t for t in texts), (text, texts)
    dollars = [(t, math, tex) for t, math, tex in drawn if "$" in t]
    assert dollars and all(not math and not tex for _, math, tex in dollars), dollars


@pytest.fixture
def hostile_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> Path:
    """``evaluate --model hostile_plugin:make`` on a task folder whose title is hostile: the results JSON."""
    (tmp_path / "hostile_plugin.py").write_text(PLUGIN, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "hostile_plugin", raising=False)
    folder = write_task(tmp_path / "task", toml=TOML)
    out = tmp_path / "res"
    code = main(["evaluate", "--task", str(folder), "--model", "hostile_plugin:make", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, err
    return next(out.glob("*.json"))


# ---------------------------------------------------------------------------------------------
# 1. matplotlib: names and titles drawn as written (no math text, no TeX), never a crash


def test_evaluate_plots_draw_a_hostile_model_name_and_title_literally(drawn, hostile_results) -> None:
    """Before: the plug-in's name made evaluate crash (ParseSyntaxException) after writing JSON and
    Parquet, without plots."""
    stem = hostile_results.name.removesuffix(".json")
    written = sorted(p.name for p in hostile_results.parent.iterdir())
    assert written == sorted(
        [f"{stem}.json", f"{stem}.queries.parquet", f"{stem}__cross_map.png", f"{stem}__rank_distance.png"]
    )
    assert json.loads(hostile_results.read_text())["model"]["name"] == NAME
    assert_literal(drawn, TITLE, LABEL)


def test_report_plots_ignore_a_usetex_matplotlibrc(hostile_results, tmp_path, drawn) -> None:
    """A user's matplotlibrc with ``text.usetex: True`` would send '$', '%' and '#' to TeX: off here too."""
    import matplotlib

    from hybrid_plugin.evaluation.plots import plot_cross_heatmap, plot_mono, plot_rank_distance
    from hybrid_plugin.evaluation.results import Results

    results = Results.model_validate_json(hostile_results.read_text())
    with matplotlib.rc_context({"text.usetex": True, "text.parse_math": True}):
        for plot in (plot_cross_heatmap, plot_rank_distance, plot_mono):
            plot(results, tmp_path / f"{plot.__name__}.png")
            assert (tmp_path / f"{plot.__name__}.png").stat().st_size > 1000
        assert matplotlib.rcParams["text.usetex"] is True  # the caller's settings are left alone
    assert_literal(drawn, TITLE, LABEL)


def test_leaderboard_renders_a_task_folder_with_a_hostile_title(hostile_results, tmp_path, capsys, drawn):
    """Before: submit accepted the folder, then every ``leaderboard render`` raised until the row went.
    The README heading and alt texts are escaped Markdown (no tag, link or image); the page escapes HTML."""
    board = tmp_path / "lb"
    task = str(hostile_results.parents[1] / "task")
    argv = ["leaderboard", "submit", str(hostile_results), "--task", task, "--dir", str(board)]
    assert main([*argv, "--submitter", "tester"]) == 0
    assert main(["leaderboard", "render", "--dir", str(board)]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in (board / "plots").iterdir()) == [
        "hostile-pool__maps.png",
        "hostile-pool__multi_vs_bias.png",
    ]
    assert_literal(drawn, TITLE)

    readme = (board / "README.md").read_text(encoding="utf-8")
    heading = (
        r"## Pool \$\\frac\{\$ 50% &lt;script&gt;alert(1)&lt;/script&gt; \[x\](javascript:alert(1)) "
        r"!\[\](http://track.example/p.png) (`hostile-pool`)"
    )
    assert heading in readme.splitlines()
    assert "<script" not in readme and not re.search(r"(?<!\\)!\[\]\(http", readme)  # no tracking image
    assert f"![{markdown(TITLE)}: multilingual mAP vs max rank distance](plots/" in readme
    page = (board / "index.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def _study():
    folder = REPO / "benchmarks" / "study"
    spec = importlib.util.spec_from_file_location(
        "study", folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["study"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_study_plots_draw_hostile_labels_literally(tmp_path, drawn, monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "study", raising=False)
    study = _study()
    points = [
        {"label": NAME, "mono": 0.7, "multi": 0.5, "dominated_by": []},
        {"label": "plain", "mono": 0.6, "multi": 0.4, "dominated_by": [NAME]},
    ]
    study.plot_pareto(points, "xquad-r", tmp_path / "pareto.png")
    rows = [
        {"label": label, "tasks": {"xquad-r": {"max_rank_distance": d, "multi_map": m}}}
        for label, d, m in ((NAME, 3.0, 0.5), ("plain", 5.0, 0.4))
    ]
    study.plot_scatter(rows, "xquad-r", tmp_path / "scatter.png")
    assert (tmp_path / "pareto.png").stat().st_size > 1000 and (
        tmp_path / "scatter.png"
    ).stat().st_size > 1000
    assert_literal(drawn, NAME)


# ---------------------------------------------------------------------------------------------
# 2. Markdown and LaTeX: names escaped to show as written


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        ("[x](javascript:alert(1))", r"\[x\](javascript:alert(1))"),
        ("![](http://t.example/p.png)", r"!\[\](http://t.example/p.png)"),
        ("a | b", r"a \| b"),
        ("*bold* _it_ `code` ~s~ $x$", r"\*bold\* \_it\_ \`code\` \~s\~ \$x\$"),
        ("two\nlines\r\n\u2028three", "two lines three"),
        ("&amp;", "&amp;amp;"),
    ],
)
def test_markdown_escapes_every_markup(text: str, escaped: str) -> None:
    assert markdown(text) == escaped


def test_latex_escapes_every_special_character() -> None:
    assert latex(r"& % $ # _ { } ~ ^ \ < > |") == (
        r"\& \% \$ \# \_ \{ \} \textasciitilde{} \textasciicircum{} \textbackslash{} "
        r"\textless{} \textgreater{} \textbar{}"
    )
    assert latex("a\n\\input{x}") == r"a \textbackslash{}input\{x\}"  # one line: no new command line
    assert latex("−1 ↑", {"−": "$-$", "↑": r"$\uparrow$"}) == r"$-$1 $\uparrow$"  # not escaped again


HOSTILE_BASE = "base | <img src=x onerror=alert(1)> ![](http://t.example/p.png)"
HOSTILE_SYSTEM = "sys $\\frac{$ & 50% #1 _x_ {y} ~z^\n\\input{/etc/passwd}"


@pytest.fixture(scope="module")
def hostile_comparison(tmp_path_factory):
    from test_stats import scores, synthetic_pool, write_run

    from hybrid_plugin.stats import compare

    pool = synthetic_pool()
    out = tmp_path_factory.mktemp("hostile-runs")
    base = write_run(pool, scores(pool, 1, 3.0), out / "a", HOSTILE_BASE)
    system = write_run(pool, scores(pool, 2, 3.0), out / "b", HOSTILE_SYSTEM)
    return compare(base, system, permutations=200, bootstraps=50)


def test_compare_markdown_shows_hostile_names_literally(hostile_comparison) -> None:
    from hybrid_plugin.stats import render

    text = render(hostile_comparison, "markdown")
    assert "<" not in text and not re.search(r"(?<!\\)!\[", text)  # no tag, no image
    assert f"## {markdown(HOSTILE_SYSTEM)} vs {markdown(HOSTILE_BASE)}" in text.splitlines()
    header = next(line for line in text.splitlines() if line.startswith("| measure |"))
    cells = re.split(r"(?<!\\)\|", header)[1:-1]  # unescaped pipes only: one cell per column
    assert len(cells) == 6
    assert cells[1].strip() == markdown(f"{HOSTILE_BASE} (baseline)")
    assert cells[2].strip() == markdown(HOSTILE_SYSTEM)


def test_compare_latex_escapes_names_and_keeps_comments_on_one_line(hostile_comparison) -> None:
    """Before: '$', '{', '}', '~', '^' went into the table raw, and a line break in a name ended the
    heading's comment, so ``\\input{/etc/passwd}`` became a LaTeX line of its own."""
    from hybrid_plugin.stats import render

    lines = render(hostile_comparison, "latex").splitlines()
    system = latex(HOSTILE_SYSTEM)
    assert system == (
        r"sys \$\textbackslash{}frac\{\$ \& 50\% \#1 \_x\_ \{y\} \textasciitilde{}z\textasciicircum{} "
        r"\textbackslash{}input\{/etc/passwd\}"
    )
    header = f"measure & {latex(HOSTILE_BASE + ' (baseline)')} & {system} & difference & p (adj.) & "
    assert header + r"higher/lower/tied \\" in lines
    assert r"% sys $\frac{$ & 50% #1 _x_ {y} ~z^ \input{/etc/passwd} vs " + HOSTILE_BASE in lines
    assert not any(line.startswith("\\input") for line in lines)


# ---------------------------------------------------------------------------------------------
# 3. names that become folders: one folder name each, or one line and exit 2


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is empty"),
        ("../../../../X", "contains a path separator"),
        ("a\\b", "contains a path separator"),
        ("..", "starts with '.'"),
        (".", "starts with '.'"),
        (".hidden", "starts with '.'"),
        ("a\x00b", "contains a NUL or control character"),
        ("a\nb", "contains a NUL or control character"),
        ("C:x", "contains ':'"),
        ("x" * 256, "is longer than 255 bytes"),
    ],
)
def test_path_component_refuses(value: str, problem: str) -> None:
    with pytest.raises(UserError) as err:
        path_component(value, "--revision")
    assert str(err.value).startswith(f"--revision {value!r}: {problem}") and "\n" not in str(err.value)


@pytest.mark.parametrize("value", ["abc123", "v1.0", "main", "my-model_2", "a..b", "x" * 255])
def test_path_component_accepts(value: str) -> None:
    assert path_component(value, "--revision") == value


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("--revision", "../../../../X", "--revision '../../../../X': contains a path separator"),
        ("--revision", "..", "--revision '..': starts with '.'"),
        ("--revision", "", "--revision '': is empty"),
        ("--model-name", "org/..", "--model-name 'org/..': part '..': starts with '.'"),
        ("--model-name", "../x", "--model-name '../x': part '..': starts with '.'"),
        ("--model-name", "org\\x", "--model-name 'org\\\\x': part 'org\\\\x': contains a path separator"),
    ],
)
def test_mteb_run_refuses_names_that_leave_the_output_folder(
    option, value, fragment, tmp_path, monkeypatch, capsys
) -> None:
    """Before: ``--revision ../../../../X`` wrote X/XQuADR.json four folders above --output-folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "modules.json").write_text("[]", encoding="utf-8")
    before = tree(tmp_path)
    argv = [
        "mteb",
        "run",
        "-m",
        "./model",
        "-t",
        "XQuADR",
        "--output-folder",
        str(tmp_path / "a" / "b" / "out"),
    ]
    line = cli_error(capsys, [*argv, option, value])
    assert fragment in line and line.endswith("expected one folder name")
    assert tree(tmp_path) == before  # nothing made: no output folder, no results above it


def test_local_model_meta_refuses_a_revision_outside(tmp_path) -> None:
    from hybrid_plugin.integrations.mteb_models import local_model_meta

    with pytest.raises(UserError, match=r"^--revision '\.\./x': contains a path separator"):
        local_model_meta(str(tmp_path), revision="../x")


def test_embedding_store_refuses_a_fingerprint_outside_its_root(tmp_path) -> None:
    from hybrid_plugin.scoring.store import EmbeddingStore

    root = tmp_path / "cache" / "embeddings"
    for fingerprint in ("../../escaped", "..", ""):
        with pytest.raises(UserError, match="model fingerprint"):
            EmbeddingStore(root, fingerprint, "query: ")
    assert not (tmp_path / "escaped").exists() and not root.exists()
    digest = hashlib.sha256(b"m").hexdigest()
    assert EmbeddingStore.folder_for(root, digest, "").parent == root / digest[:32]
