"""MkDocs hook: pages that describe the code are generated from it at build time, never copied by hand.

- ``<!-- generated: cli-reference -->`` (cli.md): the help of every ``hybrid-plugin`` command and
  subcommand, from ``hybrid_plugin.cli.build_parser()``;
- ``<!-- generated: measures -->`` (metrics.md): the reported measures and the standard rank
  measures with their meaning and source, from ``hybrid_plugin.evaluation.measures``;
- ``<!-- generated: results-schema -->`` (results-schema.md): every field of the typed results
  objects, from ``hybrid_plugin.evaluation.results``.

The checkout being built is put first on ``sys.path``, so the site documents its own code even where
another copy of the package is installed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HELP_WIDTH = "80"  # argparse wraps help to $COLUMNS: fixed, so the page does not depend on the terminal


def on_config(config, **_):
    root = str(Path(config.config_file_path).resolve().parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return config


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """(name, parser) of every subcommand below ``parser``, depth first, in definition order."""
    out = []
    for action in parser._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append((name, sub))
                out.extend((f"{name} {n}", p) for n, p in _subcommands(sub))
    return out


def cli_reference() -> str:
    from hybrid_plugin.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH
    try:
        parser = build_parser()
        parts = ["## `hybrid-plugin`", "", "```text", parser.format_help().rstrip(), "```", ""]
        for name, sub in _subcommands(parser):
            parts += [f"## `hybrid-plugin {name}`", "", "```text", sub.format_help().rstrip(), "```", ""]
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(parts)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def measures_table() -> str:
    from hybrid_plugin.evaluation.measures import AGGREGATES, MEAN_RANK_MATRIX, RANK_FAMILIES

    lines = [
        "| results key | shown as | definition | better | source |",
        "|---|---|---|---|---|",
    ]
    for m in (*AGGREGATES, MEAN_RANK_MATRIX):
        better = "higher" if m.higher_is_better else "lower"
        lines.append(
            f"| `{m.key}` | {_cell(m.label)} | {_cell(m.description)} | {better} | {_cell(m.reference)} |"
        )
    lines += [
        "",
        "Standard rank measures (ir-measures' names; computed exactly over the full ranking):",
        "",
        "| measure | cutoff `@k` | definition | source |",
        "|---|---|---|---|",
    ]
    for family in RANK_FAMILIES.values():
        lines.append(
            f"| `{family.name}` | {family.cutoff} | {_cell(family.description)} | {_cell(family.reference)} |"
        )
    return "\n".join(lines)


def _type_name(annotation) -> str:
    text = getattr(annotation, "__name__", None) if not getattr(annotation, "__args__", None) else None
    return text or str(annotation).replace("typing.", "")


def results_schema() -> str:
    """Every field of the typed results (``hybrid_plugin.evaluation.results``), object by object."""
    from hybrid_plugin.evaluation import results as r

    lines = []
    for model in (r.Results, r.SettingResult, r.LanguageScores, r.Scores, r.StandardMeasures, r.PerQueryFile):
        doc = " ".join((model.__doc__ or "").split("\n\n")[0].split())
        lines += [f"### `{model.__name__}`", "", doc, "", "| field | type | default |", "|---|---|---|"]
        for name, field in model.model_fields.items():
            value = None if field.is_required() else field.get_default(call_default_factory=True)
            default = "required" if field.is_required() else f"`{value!r}`"
            lines.append(f"| `{name}` | `{_cell(_type_name(field.annotation))}` | {_cell(default)} |")
        lines.append("")
    readable = ", ".join(map(str, r.READABLE_FORMATS))
    lines.append(f"Current `format`: {r.RESULTS_FORMAT}; readable: {readable}.")
    return "\n".join(lines)


GENERATORS = {
    "<!-- generated: cli-reference -->": cli_reference,
    "<!-- generated: measures -->": measures_table,
    "<!-- generated: results-schema -->": results_schema,
}


def on_page_markdown(markdown: str, **_) -> str:
    for marker, generate in GENERATORS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, generate())
    return markdown
