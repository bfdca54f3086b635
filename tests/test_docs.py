"""The docs and the CLI agree with the code: directions from one definition, every option helped and
defaulted, a built site without stray markup, and the project's LICENSE / CITATION.cff / CHANGELOG."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hybrid_plugin.cli import build_parser
from hybrid_plugin.data.spec import tomllib  # tomli on Python 3.10
from hybrid_plugin.evaluation.measures import MEAN_RANK_MATRIX, Measure
from hybrid_plugin.evaluation.measures import MEASURES as REGISTRY

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "hooks"))
import generate  # noqa: E402  (the mkdocs hook: docs/hooks/generate.py)

MEASURES: tuple[Measure, ...] = (*REGISTRY, MEAN_RANK_MATRIX)


# --- each measure's direction, from its one definition ------------------------------------------------


def test_the_measure_table_states_each_definitions_direction():
    rows = {
        cells[0].strip("` "): cells
        for line in generate.measures_table().splitlines()
        if line.startswith("| `") and (cells := [c.strip() for c in line.strip("|").split(" | ")])
    }
    assert {m.key for m in MEASURES} <= rows.keys()
    assert [key for key in rows if key in REGISTRY] == list(REGISTRY.names())  # the registry's order
    for m in MEASURES:
        assert rows[m.key][3] == {True: "higher", False: "lower", None: "neither"}[m.higher_is_better]
    # the two that were shown as "lower" although the code says neither direction is better
    assert rows["same_language_top_share"][3] == "neither"
    assert rows["top1_correct_other_lang"][3] == "neither"
    assert (
        rows["max_rank_distance"][1] == "rank dist ↓" and rows["top1_correct_other_lang"][1] == "top1 ✓ other"
    )


DIRECTION_PHRASES = {
    "higher is better": True,
    "lower is better": False,
    "neither direction is better": None,
}


def _blocks(markdown: str) -> list[str]:
    """Paragraphs and list items of a page's prose (code fences left out)."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.S)
    return [b for b in re.split(r"\n\s*\n|\n(?=\s*- )", text) if b.strip()]


def test_the_prose_states_the_same_directions_as_the_code():
    """A paragraph or bullet that names exactly one measure key and a direction says the code's."""
    checked = 0
    for page in sorted((ROOT / "docs").glob("*.md")):
        for block in _blocks(page.read_text(encoding="utf-8")):
            keys = {m.key for m in MEASURES if f"`{m.key}`" in block}
            said = {v for phrase, v in DIRECTION_PHRASES.items() if phrase in block.lower()}
            if len(keys) == 1 and len(said) == 1:
                (key,) = keys
                (value,) = said
                measure = next(m for m in MEASURES if m.key == key)
                assert measure.higher_is_better == value, f"{page.name}: {key}: {block[:120]!r}"
                checked += 1
    assert checked >= 2  # max_rank_distance (lower) and same_language_top_share (neither) in metrics.md


def test_training_dev_metrics_read_their_direction_from_the_measures():
    from hybrid_plugin.training.config import DEV_METRICS

    assert DEV_METRICS == {"mono_map": True, "cross_map": True, "multi_map": True, "max_rank_distance": False}


# --- the CLI: help and default for every option ----------------------------------------------------------


def _parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    parser = build_parser()
    return [("hybrid-plugin", parser), *generate._subcommands(parser)]


def test_every_option_of_every_command_has_help_and_shows_its_default(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # one line per option: the default is not wrapped apart
    seen = 0
    for name, parser in _parsers():
        help_text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if isinstance(action, (argparse._SubParsersAction, argparse._HelpAction)):
                continue
            what = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help.strip(), f"{what}: no help"
            if action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS):
                assert "default" in (action.help or "") or f"(default: {action.default})" in help_text, what
            seen += 1
    assert seen > 100
    train = dict(_parsers())["train"].format_help()
    # Python 3.13 prints the metavar once: "--eval-steps, --dev-steps N" (3.10-3.12: after each)
    assert "(default: 3e-05)" in train and re.search(r"--eval-steps( N)?, --dev-steps N", train)
    assert "DEV_STEPS" not in train


def test_compare_help_prints_a_single_percent_sign(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["compare", "--help"])
    out = capsys.readouterr().out
    assert "95% bootstrap" in out and "%%" not in out


def test_the_cli_reference_is_a_table_with_defaults():
    reference = generate.cli_reference()
    assert "| `--learning-rate LEARNING_RATE` | `3e-05` | peak AdamW learning rate |" in reference
    assert "| `--device {cpu,cuda}` | — |" in reference  # train
    assert "| `--wide` | off |" in reference
    assert "## `hybrid-plugin leaderboard submit`" in reference


def test_schema_cells_keep_pipes_inside_code_and_roles_become_code():
    schema = generate.results_schema()
    assert "`float | None`" in schema and "\\|" not in schema.replace("`float | None`", "")
    assert ":data:" not in schema and "`MEASURES`" in schema
    assert generate._cell("a | b `c | d`") == "a \\| b `c | d`"


# --- the built site --------------------------------------------------------------------------------------

STRAY = {
    "a Sphinx role": re.compile(r":(?:data|func|class|mod|meth|attr|obj):"),
    "an escaped pipe": re.compile(r"\\\|"),
    "a doubled percent sign": re.compile(r"%%"),
    "literal bold markers": re.compile(r"\*\*"),
}


def stray_markup(html: str) -> list[str]:
    """What in a page's article is Markdown or reST that did not render (code blocks are left out,
    except for escapes that no code means literally)."""
    body = html[html.find("<article") : html.find("</article>")]
    prose = re.sub(r"<pre.*?</pre>|<code.*?</code>", " ", body, flags=re.S)
    found = []
    for what, pattern in STRAY.items():
        where = body if what in ("an escaped pipe", "a doubled percent sign") else prose
        found += [
            f"{what}: {where[max(0, m.start() - 50) : m.end() + 20]!r}" for m in pattern.finditer(where)
        ]
    for m in re.finditer(r"<p>(.*?)</p>", prose, flags=re.S):
        if re.search(r"\n\s*(?:[-*+]|\d+\.) ", m.group(1)):
            found.append(f"a list inside a paragraph: {m.group(1)[:80]!r}")
    return found


def test_the_stray_markup_check_finds_each_fault():
    page = (
        "<article><p>the :data:<code>x</code> list\n- swallowed **bold**</p>"
        "<code>float \\| None</code><pre>95%%</pre><code>f(**kwargs)</code></article>"
    )
    found = " ".join(stray_markup(page))
    for what in ("Sphinx role", "escaped pipe", "doubled percent", "bold markers", "list inside"):
        assert what in found
    assert stray_markup("<article><p>fine</p><code>f(**kwargs)</code></article>") == []


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_the_built_site_has_no_stray_markup(site):
    pages = sorted(site.glob("*.html"))
    assert len(pages) > 15
    faults = [f"{p.name}: {fault}" for p in pages for fault in stray_markup(p.read_text(encoding="utf-8"))]
    assert faults == []


def test_the_built_site_reads_from_disk(site):
    """Pages are files (``metrics.html``) and every internal link names one: opened from disk, no link
    lands on a directory listing."""
    assert (site / "metrics.html").is_file() and not (site / "metrics").exists()
    links = {
        href
        for page in site.glob("*.html")
        for href in re.findall(r'href="([^"#:?]*)(?:[#?][^"]*)?"', page.read_text(encoding="utf-8"))
        if href
    }
    assert not [h for h in links if h.endswith("/") or h in (".", "..")]
    metrics = (site / "metrics.html").read_text(encoding="utf-8")
    assert "<td><code>same_language_top_share</code></td>" in metrics


# --- LICENSE, CITATION.cff, CHANGELOG --------------------------------------------------------------------


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_license_is_the_apache_2_text_pyproject_names():
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert _project()["license"] == "Apache-2.0"
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text and text.count("\n") > 190


def test_citation_file_is_cff_1_2_0_of_this_version():
    yaml = pytest.importorskip("yaml")
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0"
    assert {"message", "title", "authors"} <= cff.keys()  # the three other required keys
    assert all("name" in a or "family-names" in a for a in cff["authors"])
    assert str(cff["version"]) == _project()["version"] and cff["license"] == _project()["license"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(cff["date-released"]))


def test_changelog_follows_keep_a_changelog():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    versions = re.findall(r"^## \[([^\]]+)\]", text, flags=re.M)
    assert versions[0] == "Unreleased" and _project()["version"] in versions
    assert "keepachangelog.com" in text
    sections = set(re.findall(r"^### (\w+)", text, flags=re.M))
    assert sections <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"} and sections
