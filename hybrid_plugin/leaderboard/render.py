"""Render the leaderboards: ``README.md`` (tables + schema), ``index.html`` (sortable, offline) and plots.

Nothing a row says reaches the output unescaped: Markdown cells are HTML-escaped and have Markdown's
special characters backslash-escaped; every HTML text and attribute goes through :func:`html.escape`;
the page loads no external resource and its Content-Security-Policy allows only its own inline
style and script (by hash), so even a markup cell that slipped past validation would not run.
Plot labels are drawn with math text off (``$`` in a name stays a dollar sign).
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hybrid_plugin.atomic import write_text, write_with
from hybrid_plugin.data.spec import get_spec
from hybrid_plugin.leaderboard.board import Row, read_board, results_relpath
from hybrid_plugin.leaderboard.schema import RowBase, language_column, row_model
from hybrid_plugin.leaderboard.tasks import ranked_specs

PLOTS_DIR = "plots"


@dataclass(frozen=True)
class Column:
    """A rendered column: its heading, the text of a cell, the value it sorts by, and where it shows."""

    heading: str
    text: Callable[[RowBase], str]
    sort: Callable[[RowBase], str | float | None] | None = None  # None: sort by the text
    numeric: bool = False
    markdown: bool = True
    title: str = ""


def _num(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:.{places}f}"


def interval_text(row: RowBase) -> str:
    """``[0.287, 0.309]``, or ``n/a`` for a row whose results have no per-query file."""
    if row.multi_map_ci_low is None or row.multi_map_ci_high is None:
        return "n/a"
    return f"[{row.multi_map_ci_low:.3f}, {row.multi_map_ci_high:.3f}]"


def versus_text(row: RowBase) -> str:
    """``best``, ``≈ best (p 0.21)``, ``below (p 0.0001)`` or ``n/a``."""
    if row.vs_best is None:
        return "n/a"
    if row.vs_best == "best":
        return "best"
    p = f" (p {row.vs_best_p:.4f})" if row.vs_best_p is not None else ""
    return ("≈ best" if row.vs_best == "tied" else "below") + p


def training_text(row: RowBase) -> str:
    if row.training_strategy == "zero-shot":
        return "zero-shot"
    parts = [row.training_strategy + (f" α={row.alpha:g}" if row.alpha is not None else "")]
    parts.append(f"batch {row.batch_size}")
    parts.append(row.training_data or "")
    if row.base_model:
        parts.append(f"from {row.base_model}")
    return ", ".join(p for p in parts if p)


def columns(task: str, rank_of: dict[int, int], partial: bool = False) -> list[Column]:
    """The table columns of a task; ``rank_of`` maps ``id(row)`` to its place; ``partial`` adds languages."""
    spec = get_spec(task)
    fields = row_model(task).model_fields
    cols = [
        Column("#", lambda r: str(rank_of[id(r)]), lambda r: rank_of[id(r)], numeric=True),
        Column("model", lambda r: r.name, title="display name; links to the committed results JSON"),
        Column(
            "fingerprint", lambda r: r.model_fingerprint[:12], title=fields["model_fingerprint"].description
        ),
        Column("training", training_text, title="strategy, α, batch size, data, base model"),
        Column("candidates", lambda r: r.candidate_format, title=fields["candidate_format"].description),
        Column("mono", lambda r: _num(r.mono_map, 3), lambda r: r.mono_map, True, title="mono_map"),
        Column("cross", lambda r: _num(r.cross_map, 3), lambda r: r.cross_map, True, title="cross_map"),
        Column("multi", lambda r: _num(r.multi_map, 3), lambda r: r.multi_map, True, title="multi_map"),
        Column(
            "multi 95% CI",
            interval_text,
            lambda r: r.multi_map_ci_low,
            True,
            title="bootstrap interval over question groups; n/a: no per-query file",
        ),
        Column("vs best", versus_text, title=fields["vs_best"].description),
        Column(
            "rank dist ↓",
            lambda r: _num(r.max_rank_distance, 1),
            lambda r: r.max_rank_distance,
            True,
            title="max rank distance (language bias, lower is better)",
        ),
        Column(
            "same-lang top",
            lambda r: _num(r.same_language_top_share, 3),
            lambda r: r.same_language_top_share,
            True,
            title=fields["same_language_top_share"].description,
        ),
    ]
    if partial:
        cols.insert(5, Column("languages", lambda r: r.languages.replace(",", " ")))
    for lang in spec.languages:
        col = language_column(lang)
        cols.append(
            Column(
                f"multi {lang}",
                lambda r, c=col: _num(getattr(r, c), 3),
                lambda r, c=col: getattr(r, c),
                True,
                markdown=False,
                title=f"multilingual mAP of {lang} queries",
            )
        )
    cols += [
        Column(
            "in-domain",
            lambda r: "yes ⚠" if r.in_domain_training else "",
            title=fields["in_domain_training"].description,
        ),
        Column("plugin", lambda r: r.plugin_version),
        Column("date", lambda r: r.date.isoformat()),
        Column("submitter", lambda r: r.submitter),
        Column("notes", lambda r: r.notes or ""),
    ]
    return cols


def split_rows(task: str, rows: list[Row]) -> tuple[list[RowBase], list[RowBase]]:
    """Rows on every language of the task (ranked), and partial-language rows (listed apart)."""
    full = ",".join(get_spec(task).languages)
    main = [r.model for r in rows if r.model.languages == full]
    partial = [r.model for r in rows if r.model.languages != full]
    return main, partial


def task_summary(task: str, n_full: int) -> str:
    spec = get_spec(task)
    text = f"{len(spec.languages)} languages ({' '.join(spec.languages)}); {n_full} row(s) on all of them."
    if spec.in_domain_training:
        formats = ", ".join(spec.in_domain_training)
        text += f" Rows trained on {formats} data are in-domain here (flagged ⚠): same source as the task."
    return text


# --- Markdown -------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}|~])")


def md(text: str) -> str:
    """A Markdown table cell showing ``text`` literally: HTML-escaped, Markdown specials escaped."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(" ".join(text.split()), quote=False))


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
        if name.startswith("multi_map_"):
            continue
        lines.append(f"| `{name}` | {'yes' if f.is_required() else ''} | {f.description or ''} |")
    lines.append(
        "| `multi_map_<lang>` | for the row's languages | multilingual mAP of that language's queries |"
    )
    return "\n".join(lines)


README_HEAD = """\
# Leaderboards

<!-- generated by `hybrid-plugin leaderboard render` from the CSV files beside it: do not edit -->

One CSV per task ({csv_list}). Rows are built from results JSON files by
`hybrid-plugin leaderboard submit`, never typed by hand; each row's results file is committed
under `results/<task>/<first 16 hex of its sha256>.json` and the model links below point to it.
Ranked by multilingual mAP (`multi_map`, exact full-ranking AP, macro over query languages).
`rank dist ↓`: max rank distance in the multilingual pool (language bias, lower is better).
`multi 95% CI`: bootstrap interval of multi mAP over parallel question groups; `vs best`: paired
randomization test over question groups against the best row with the same languages and candidates
(`≈ best`: not distinguishable at α = 0.05, Holm-corrected over the rows tested). Both are rebuilt from
the committed per-query files; `n/a`: the row's results have none (written before per-query files
existed), so no interval or test is claimed for it.
A sortable page with per-language columns: [index.html](index.html).
"""

README_TAIL = """\
## Submitting

```bash
hybrid-plugin evaluate --task xquad-r --model MODEL --out results
hybrid-plugin leaderboard submit results/xquad-r__MODEL__sentence.json --name "display name" --notes "..."
hybrid-plugin leaderboard validate          # every CSV here; exit 2 and one line per problem
hybrid-plugin leaderboard render            # this README, index.html and the plots
```

`submit` refuses a second row with the same key — model fingerprint, task, candidate format and
languages — unless given `--replace`, and rewrites the CSV atomically, best `multi_map` first.
Results computed with `--no-verify` (modified data) are refused.

## Schema

{schema}

Rules checked by `validate` (and by `submit`, which builds the row the same way):

- every cell is UTF-8 text without control, bidi-override or line-break characters and without
  leading or trailing spaces; no cell holds `<` or `>`; no cell starts with `=`, `+`, `-` or `@`
  (spreadsheet formulas) unless it is a number in a numeric column; no cell is longer than
  {cell_max} characters (`name` 120, `submitter` 80, `notes` 500);
- mAPs and shares in [0, 1], `max_rank_distance` ≥ 0, `alpha` in [0, 1], `batch_size` ≥ 1; numbers
  are plain decimals; booleans are `true`/`false`; dates `YYYY-MM-DD`;
- `model_id`, `base_model`: a hub id `org/name` or a folder name; `name` and `submitter` must not
  look like a path or URL;
- `languages`: at least two of the task's, in its order; `multi_map_<lang>` filled exactly for
  them. Rows on fewer languages than the task has are accepted and listed apart, under
  "partial language sets", not ranked with the full rows;
- a zero-shot row has no training columns; a trained row names its base model, batch size and
  data (and α: hybrid any, mono 1, cross 0); `in_domain_training` is true exactly when the
  training data's format is in-domain for the task (MLQA data on MLQA-R);
- one row per key; rows sorted best `multi_map` first (ties: mono, cross, model id);
- each row's results file exists, has the row's sha256, is a consistent results document (macro
  scores follow from its settings; data verified), and gives exactly the row's cells (all but
  `name`, `submitter`, `notes`); no results file is left without a row;
- a results file that records a per-query file has it committed beside it with that sha256, and the
  interval and `vs_best` cells are exactly what those per-query files give (empty without them).

Errors read `FILE: row N, column C: what was expected`, where row N is the line in the file
(the header is row 1).
"""


def render_readme(boards: dict[str, list[Row]], plots: dict[str, list[str]]) -> str:
    specs = ranked_specs()
    parts = [README_HEAD.format(csv_list=", ".join(f"[`{t}.csv`]({t}.csv)" for t in specs))]
    for task, spec in specs.items():
        main, partial = split_rows(task, boards.get(task, []))
        parts.append(f"## {spec.title} (`{task}`)\n")
        parts.append(md(task_summary(task, len(main))) + "\n")
        parts.append((markdown_table(task, main) if main else "_No rows yet._") + "\n")
        if partial:
            parts.append("Partial language sets (not ranked with the rows above):\n")
            parts.append(markdown_table(task, partial, partial=True) + "\n")
        parts.extend(f"![{md(alt)}]({src})\n" for src, alt in plots.get(task, []))
    from hybrid_plugin.leaderboard.schema import CELL_MAX

    parts.append(README_TAIL.format(schema=schema_table(), cell_max=CELL_MAX))
    return "\n".join(parts)


# --- HTML -----------------------------------------------------------------------------------------

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem; color: #1d1d1f; }
h1 { font-size: 1.5rem; } h2 { margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { padding: .25rem .5rem; border-bottom: 1px solid #ddd; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th button { font: inherit; font-weight: 600; background: none; border: 0; padding: 0; cursor: pointer; }
th[aria-sort=ascending] button::after { content: " ▲"; }
th[aria-sort=descending] button::after { content: " ▼"; }
td.notes { max-width: 24rem; overflow-wrap: anywhere; }
code { font-size: 90%; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.plots img { max-width: 100%; }
td:nth-child(2) { min-width: 12rem; }
.wrap { overflow-x: auto; }
"""

SCRIPT = """
(function () {
  "use strict";
  function value(row, col, numeric) {
    var raw = row.cells[col].getAttribute("data-value");
    if (!numeric) { return raw; }
    return raw === "" ? null : Number(raw);
  }
  function sortBy(table, col, th) {
    var numeric = th.getAttribute("data-type") === "number";
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    var heads = table.tHead.rows[0].cells;
    for (var i = 0; i < heads.length; i++) { heads[i].removeAttribute("aria-sort"); }
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = value(a, col, numeric), y = value(b, col, numeric);
      if (x === null || y === null) { return (x === null) - (y === null); }  // empty cells last
      var c = numeric ? x - y : x.localeCompare(y);
      return ascending ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  var tables = document.querySelectorAll("table.board");
  Array.prototype.forEach.call(tables, function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.querySelector("button").addEventListener("click", function () { sortBy(table, col, th); });
    });
  });
})();
"""


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def e(text: object) -> str:
    """Escape for HTML text and (double- or single-quoted) attribute values."""
    return html.escape(str(text), quote=True)


def html_table(task: str, rows: list[RowBase], table_id: str, partial: bool = False) -> str:
    rank_of = {id(r): i for i, r in enumerate(rows, 1)}
    cols = columns(task, rank_of, partial)
    out = [f'<div class="wrap"><table class="board" id="{e(table_id)}"><thead><tr>']
    for c in cols:
        kind = "number" if c.numeric else "text"
        title = f' title="{e(c.title)}"' if c.title else ""
        out.append(
            f'<th scope="col" data-type="{kind}"{title}><button type="button">{e(c.heading)}</button></th>'
        )
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>")
        for c in cols:
            text = c.text(row)
            sort = c.sort(row) if c.sort else text
            value = "" if sort is None else (repr(float(sort)) if c.numeric else str(sort))
            klass = ' class="num"' if c.numeric else (' class="notes"' if c.heading == "notes" else "")
            content = e(text)
            if c.heading == "model":
                content = f'<a href="{e(results_relpath(task, row.results_sha256))}">{content}</a>'
            elif c.heading == "fingerprint":
                content = f'<code title="{e(row.model_fingerprint)}">{content}</code>'
            out.append(f'<td{klass} data-value="{e(value)}">{content}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def render_html(boards: dict[str, list[Row]], plots: dict[str, list[str]]) -> str:
    """The self-contained page: every value escaped, no external resource, CSP by hash."""
    csp = (
        f"default-src 'none'; img-src 'self'; style-src {_csp_hash(STYLE)}; "
        f"script-src {_csp_hash(SCRIPT)}; base-uri 'none'; form-action 'none'"
    )
    body = [
        "<h1>hybrid_plugin leaderboards</h1>",
        "<p>Ranked by multilingual mAP (exact full-ranking AP, macro over query languages); "
        "<em>rank dist</em> is the max rank distance in the multilingual pool (language bias, lower is "
        "better). <em>multi 95% CI</em>: bootstrap interval over parallel question groups; <em>vs best</em>: "
        "paired randomization test against the best row on the same languages and candidates "
        "(≈ best: not distinguishable at α = 0.05, Holm-corrected); n/a: no per-query file, so nothing "
        "is claimed. Click a heading to sort. Model names link to the committed results JSON. "
        "Generated by <code>hybrid-plugin leaderboard render</code>; "
        'schema in <a href="README.md">README.md</a>.</p>',
    ]
    for task, spec in ranked_specs().items():
        main, partial = split_rows(task, boards.get(task, []))
        body.append(f'<section id="{e(task)}"><h2>{e(spec.title)} <small>({e(task)})</small></h2>')
        body.append(f"<p>{e(task_summary(task, len(main)))}</p>")
        body.append(html_table(task, main, f"board-{task}") if main else "<p><em>No rows yet.</em></p>")
        if partial:
            body.append("<h3>Partial language sets</h3><p>Not ranked with the rows above.</p>")
            body.append(html_table(task, partial, f"board-{task}-partial", partial=True))
        images = "".join(f'<img src="{e(src)}" alt="{e(alt)}">' for src, alt in plots.get(task, []))
        body.append(f'<div class="plots">{images}</div>' if images else "")
        body.append("</section>")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{e(csp)}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>hybrid_plugin leaderboards</title>\n"
        f"<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + f"\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


# --- plots ----------------------------------------------------------------------------------------


def _label(row: RowBase) -> str:
    return row.name if len(row.name) <= 40 else row.name[:39] + "…"


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png", metadata={"Software": None}), ".png")
    plt.close(fig)


def _error_bars(ax, rows: list[RowBase], xs: list[float]) -> bool:
    """95% intervals of multi mAP where a row has one (rows without a per-query file get none)."""
    have = [
        (x, r) for x, r in zip(xs, rows) if r.multi_map_ci_low is not None and r.multi_map_ci_high is not None
    ]
    if not have:
        return False
    ax.errorbar(
        [x for x, _ in have],
        [r.multi_map for _, r in have],
        yerr=[
            [r.multi_map - r.multi_map_ci_low for _, r in have],
            [r.multi_map_ci_high - r.multi_map for _, r in have],
        ],
        fmt="none",
        ecolor="#333333",
        elinewidth=1,
        capsize=3,
        zorder=4,
        label="multi: 95% CI (question groups)",
    )
    return True


def plot_map_vs_bias(task: str, rows: list[RowBase], path: Path) -> None:
    """Multi mAP against max rank distance, one labelled point per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.scatter([r.max_rank_distance for r in rows], [r.multi_map for r in rows], color="#4c72b0", zorder=3)
    if _error_bars(ax, rows, [r.max_rank_distance for r in rows]):
        ax.legend(fontsize=7, loc="upper right")
    for r in rows:
        ax.annotate(
            _label(r),
            (r.max_rank_distance, r.multi_map),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=7,
            parse_math=False,
        )
    ax.set_xlabel("max rank distance (language bias; lower is better)")
    ax.set_ylabel("multilingual mAP")
    ax.set_xlim(0, 1.35 * max([r.max_rank_distance for r in rows] + [1.0]))  # room for the labels
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.set_title(f"{get_spec(task).title}: multilingual mAP vs language bias", fontsize=10)
    _save(fig, path)


def plot_map_bars(task: str, rows: list[RowBase], path: Path) -> None:
    """Mono / cross / multi mAP bars per row, best multi first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(rows))
    width = 0.27
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 + 1.3 * len(rows)), 4.0))
    ax.set_xlim(-0.6, len(rows) - 0.4)
    for i, (key, color) in enumerate(
        (("mono_map", "#4c72b0"), ("cross_map", "#55a868"), ("multi_map", "#dd8452"))
    ):
        ax.bar(
            x + (i - 1) * width, [getattr(r, key) for r in rows], width, label=key.split("_")[0], color=color
        )
    _error_bars(ax, rows, list(x + width))
    ax.set_xticks(x, [_label(r) for r in rows], fontsize=7, rotation=15, ha="right", parse_math=False)
    ax.set_ylim(0, 1)
    ax.set_ylabel("mAP")
    ax.legend(fontsize=8, ncols=3, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"{get_spec(task).title}: mono / cross / multi mAP", fontsize=10)
    _save(fig, path)


def planned_plots(boards: dict[str, list[Row]]) -> dict[str, list[tuple[str, str]]]:
    """Per task with full-language rows: (path relative to the folder, alt text) of its two plots."""
    out = {}
    for task, spec in ranked_specs().items():
        if split_rows(task, boards.get(task, []))[0]:
            out[task] = [
                (
                    f"{PLOTS_DIR}/{task}__multi_vs_bias.png",
                    f"{spec.title}: multilingual mAP vs max rank distance",
                ),
                (f"{PLOTS_DIR}/{task}__maps.png", f"{spec.title}: mono, cross and multi mAP per model"),
            ]
    return out


def write_plots(board: Path, boards: dict[str, list[Row]]) -> dict[str, list[tuple[str, str]]]:
    """Draw both plots of every task with full-language rows; remove those of tasks without."""
    plots = planned_plots(boards)
    for task in ranked_specs():
        if task not in plots:
            for kind in ("multi_vs_bias", "maps"):
                (board / PLOTS_DIR / f"{task}__{kind}.png").unlink(missing_ok=True)
            continue
        main = split_rows(task, boards[task])[0]
        (scatter, _), (bars, _) = plots[task]
        plot_map_vs_bias(task, main, board / scatter)
        plot_map_bars(task, main, board / bars)
    return plots


def render(board: Path, check: bool = False) -> list[Path]:
    """Write README.md, index.html and the plots; with ``check``, return the files that are out of date."""
    board = Path(board)
    boards = read_board(board)
    if check:
        plots = planned_plots(boards)
        expected = {
            board / "README.md": render_readme(boards, plots),
            board / "index.html": render_html(boards, plots),
        }
        stale = [
            p for p, text in expected.items() if not p.is_file() or p.read_text(encoding="utf-8") != text
        ]
        stale += [board / src for refs in plots.values() for src, _ in refs if not (board / src).is_file()]
        return stale
    plots = write_plots(board, boards)
    write_text(board / "README.md", render_readme(boards, plots))
    write_text(board / "index.html", render_html(boards, plots))
    return [
        board / "README.md",
        board / "index.html",
        *(board / src for refs in plots.values() for src, _ in refs),
    ]
