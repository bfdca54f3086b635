"""The leaderboard README: one Markdown table per task, the CSV schema and the rules ``validate`` checks.

The prose around the tables is ``assets/readme.md.tmpl``; the schema table comes from the row
schema's field descriptions and the rules from :mod:`~hybrid_plugin.leaderboard.rules` (filled in
from the checks' own constants), so neither is written twice.
"""

from __future__ import annotations

from importlib.resources import files

from hybrid_plugin.escape import markdown as md  # a cell, heading or alt text shown literally
from hybrid_plugin.leaderboard.board import Row, results_relpath
from hybrid_plugin.leaderboard.columns import columns, split_rows, task_summary
from hybrid_plugin.leaderboard.rules import rules
from hybrid_plugin.leaderboard.schema import (
    PER_LANGUAGE_PREFIX,
    RowBase,
    language_column,
    row_model,
)
from hybrid_plugin.leaderboard.tasks import ranked_specs

README_TEMPLATE = "readme.md.tmpl"


def markdown_table(task: str, rows: list[RowBase], partial: bool = False) -> str:
    rank_of = {id(r): i for i, r in enumerate(rows, 1)}
    cols = [c for c in columns(task, rank_of, partial) if c.markdown]
    lines = ["| " + " | ".join(md(c.heading) for c in cols) + " |"]
    lines.append("|" + "|".join("---:" if c.numeric else "---" for c in cols) + "|")
    for row in rows:
        cells = []
        for c in cols:
            text = md(c.text(row))
            if c.heading == "model":
                text = f"[{text}]({results_relpath(task, row.results_sha256)})"
            elif c.heading == "fingerprint":
                text = f"`{c.text(row)}`"  # hex only (validated)
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def schema_table() -> str:
    """The CSV columns and what they hold, from the schema's own descriptions."""
    task = next(iter(ranked_specs()))
    fields = row_model(task).model_fields
    lines = ["| column | required | meaning |", "|---|---|---|"]
    for name, f in fields.items():
        if name.startswith(PER_LANGUAGE_PREFIX):
            continue
        lines.append(f"| `{name}` | {'yes' if f.is_required() else ''} | {f.description or ''} |")
    each = language_column("<lang>")
    lines.append(f"| `{each}` | for the row's languages | multilingual mAP of that language's queries |")
    return "\n".join(lines)


def rules_list() -> str:
    """The rules as a Markdown list (a rule's further lines indented under its bullet)."""
    return "\n".join("- " + rule.replace("\n", "\n  ") for rule in rules())


def render_readme(boards: dict[str, list[Row]], plots: dict[str, list[tuple[str, str]]]) -> str:
    specs = ranked_specs()
    parts = []
    for task, spec in specs.items():
        main, partial = split_rows(task, boards.get(task, []))
        parts.append(f"## {md(spec.title)} (`{task}`)\n")  # a task folder's own title
        parts.append(md(task_summary(task, len(main))) + "\n")
        parts.append((markdown_table(task, main) if main else "_No rows yet._") + "\n")
        if partial:
            parts.append("Partial language sets (not ranked with the rows above):\n")
            parts.append(markdown_table(task, partial, partial=True) + "\n")
        parts.extend(f"![{md(alt)}]({src})\n" for src, alt in plots.get(task, []))
    template = (files("hybrid_plugin.leaderboard") / "assets" / README_TEMPLATE).read_text(encoding="utf-8")
    return template.format(
        csv_list=", ".join(f"[`{t}.csv`]({t}.csv)" for t in specs),
        tasks="\n".join(parts),
        schema=schema_table(),
        rules=rules_list(),
    )
