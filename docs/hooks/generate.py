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
import re
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


def _default(action: argparse.Action) -> str:
    """The default as the reference table shows it: the value, or what having none means."""
    if action.required:
        return "required"
    if isinstance(action, argparse._StoreTrueAction):
        return "off"
    if action.default in (None, [], argparse.SUPPRESS):
        return "—"
    return f"`{action.default}`"


def _options_table(parser: argparse.ArgumentParser) -> list[str]:
    """One row per option and argument: how it is written, its default and its help (expanded)."""
    formatter = parser._get_formatter()
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for action in parser._actions:
        if isinstance(action, (argparse._SubParsersAction, argparse._HelpAction)):
            continue
        written = formatter._format_action_invocation(action)
        meaning = action.help % {**vars(action), "prog": parser.prog} if action.help else ""
        rows.append(f"| {_cell(f'`{written}`')} | {_cell(_default(action))} | {_cell(meaning)} |")
    return rows if len(rows) > 2 else []


def _subcommand_list(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            rows += [f"- `{name}`: {helps.get(name) or ''}" for name in action.choices]
    return rows


def cli_reference() -> str:
    """Each command: what it does, its usage line and a table of its options with their defaults."""
    from hybrid_plugin.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = HELP_WIDTH
    try:
        parser = build_parser()
        parts: list[str] = []
        for name, sub in [("", parser), *_subcommands(parser)]:
            parts += [f"## `{f'hybrid-plugin {name}'.strip()}`", ""]
            if sub.description:
                parts += [" ".join(sub.description.split()), ""]
            parts += ["```text", sub.format_usage().removeprefix("usage: ").rstrip(), "```", ""]
            listing = _subcommand_list(sub)
            if listing:
                parts += ["Subcommands:", "", *listing, ""]
            table = _options_table(sub)
            if table:
                parts += [*table, ""]
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(parts)


_ROLE = re.compile(r":(?:data|func|class|mod|meth|attr|obj):`~?(?:[\w.]+\.)?(\w+)`")


def _plain(text: str) -> str:
    """A docstring's Sphinx roles (``:data:`~a.b.C` ``) as Markdown code (`` `C` ``)."""
    return _ROLE.sub(lambda m: f"`{m.group(1)}`", text)


def _cell(text: str) -> str:
    """Table cell text: one line, pipes escaped outside code spans (inside them Markdown keeps them)."""
    parts = " ".join(text.split()).split("`")
    return "`".join(part if i % 2 else part.replace("|", "\\|") for i, part in enumerate(parts))


def measures_table() -> str:
    from hybrid_plugin.evaluation.measures import MEAN_RANK_MATRIX, MEASURES, RANK_FAMILIES

    lines = [
        "| results key | shown as | definition | better | settings | source |",
        "|---|---|---|---|---|---|",
    ]
    for m in (*MEASURES, MEAN_RANK_MATRIX):
        label = f"{m.label} {m.arrow}".strip()
        lines.append(
            f"| `{m.key}` | {_cell(label)} | {_cell(m.description)} | {m.direction} | {m.kind} "
            f"| {_cell(m.reference)} |"
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
        doc = _plain(" ".join((model.__doc__ or "").split("\n\n")[0].split()))
        lines += [f"### `{model.__name__}`", "", doc, "", "| field | type | default |", "|---|---|---|"]
        for name, field in model.model_fields.items():
            value = None if field.is_required() else field.get_default(call_default_factory=True)
            default = "required" if field.is_required() else f"`{value!r}`"
            lines.append(f"| `{name}` | {_cell(f'`{_type_name(field.annotation)}`')} | {_cell(default)} |")
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
