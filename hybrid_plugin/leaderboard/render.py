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
from hybrid_plugin.data.spec import TaskSpec, get_spec
from hybrid_plugin.escape import markdown as md  # a cell, heading or alt text shown literally
from hybrid_plugin.escape import plain_plot_text
from hybrid_plugin.leaderboard.board import Row, board_lock, read_board, results_relpath
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
    place: str = "main"  # on the page: "main" (always shown), "lang" (per-language, toggled), "detail"
    # on the page, which main columns give way: 0 never (#, model, multi); 1 mono and cross (only on a
    # narrow screen with the per-language columns on); 2 the rest (on a narrow screen, and to make room
    # for the per-language columns)
    priority: int = 2


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


def training_short(row: RowBase) -> str:
    """The training column of the compact page: strategy, α and batch (data and base in the details)."""
    if row.training_strategy == "zero-shot":
        return "zero-shot"
    text = row.training_strategy + (f" α={row.alpha:g}" if row.alpha is not None else "")
    return text + (f", batch {row.batch_size}" if row.batch_size else "")


def columns(task: str, rank_of: dict[int, int], partial: bool = False) -> list[Column]:
    """The table columns of a task; ``rank_of`` maps ``id(row)`` to its place; ``partial`` adds languages."""
    spec = get_spec(task)
    fields = row_model(task).model_fields
    cols = [
        Column("#", lambda r: str(rank_of[id(r)]), lambda r: rank_of[id(r)], numeric=True, priority=0),
        Column(
            "model",
            lambda r: r.name,
            title="display name; links to the committed results JSON",
            priority=0,
        ),
        Column(
            "fingerprint",
            lambda r: r.model_fingerprint[:12],
            title=fields["model_fingerprint"].description,
            place="detail",
        ),
        Column("training", training_text, title="strategy, α, batch size, data, base model", place="detail"),
        Column(
            "training",
            training_short,
            title="strategy, α, batch size (details: data, base model)",
            markdown=False,
        ),  # fmt: skip
        Column(
            "candidates",
            lambda r: r.candidate_format,
            title=fields["candidate_format"].description,
            place="detail",
        ),
        *(
            Column(
                setting,
                lambda r, k=f"{setting}_map": _num(getattr(r, k), 3),
                lambda r, k=f"{setting}_map": getattr(r, k),
                True,
                title=f"{setting}_map",
                priority=0 if setting == "multi" else 1,  # multi stays beside the language columns
            )
            for setting in ("mono", "cross", "multi")
        ),
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
                place="lang",
            )
        )
    cols += [
        Column(
            "in-domain",
            lambda r: "yes ⚠" if r.in_domain_training else "",
            title=fields["in_domain_training"].description,
            place="detail",  # on the page: a badge beside the model's name
        ),
        Column("plugin", lambda r: r.plugin_version, place="detail"),
        Column("date", lambda r: r.date.isoformat(), place="detail"),
        Column("submitter", lambda r: r.submitter, place="detail"),
        Column("notes", lambda r: r.notes or "", place="detail"),
    ]
    # room for a confidence-interval column next to "multi" (another issue): a Column with place "main"
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
        parts.append(f"## {md(spec.title)} (`{task}`)\n")  # a task folder's own title
        parts.append(md(task_summary(task, len(main))) + "\n")
        parts.append((markdown_table(task, main) if main else "_No rows yet._") + "\n")
        if partial:
            parts.append("Partial language sets (not ranked with the rows above):\n")
            parts.append(markdown_table(task, partial, partial=True) + "\n")
        parts.extend(f"![{md(alt)}]({src})\n" for src, alt in plots.get(task, []))
    from hybrid_plugin.leaderboard.schema import CELL_MAX

    parts.append(README_TAIL.format(schema=schema_table(), cell_max=CELL_MAX))
    return "\n".join(parts)


# --- HTML ---------------------------------------------------------------------------------------
#
# One task at a time (a tab per task, the address keeps the tab and the sort), compact rows (the long
# fields sit in a detail row opened by the row's button), a sticky header, per-language columns behind
# a switch (they take the place of the other columns but the three mAPs) and a filter on the text the
# rows show. Below 40rem only the rank, the model and the three mAPs stay. Everything is in the page:
# no request leaves it, and the CSP allows only its own style and script (by hash).

NARROW = "40rem"  # below this width only the columns of priority 0 and 1 show

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem 1.5rem; color: #1d1d1f; }
h1 { font-size: 1.35rem; margin: 0 0 .25rem; } h2 { font-size: 1.1rem; margin: .75rem 0 .25rem; }
p.lede { margin: 0 0 .6rem; color: #444; max-width: 70rem; }
.controls { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; margin: .4rem 0 .6rem; }
.tabs button { font: inherit; padding: .3rem .8rem; border: 1px solid #bbb; background: #f4f4f6;
  cursor: pointer; border-radius: 4px 4px 0 0; }
.tabs button[aria-selected=true] { background: #fff; border-bottom-color: #fff; font-weight: 600; }
input[type=search] { font: inherit; padding: .25rem .5rem; width: 18rem; max-width: 100%;
  box-sizing: border-box; }
label { cursor: pointer; } .count { color: #666; }
.wrap { overflow: auto; max-height: 78vh; border: 1px solid #ddd; }
table { border-collapse: separate; border-spacing: 0; width: 100%; }
th, td { padding: .2rem .45rem; border-bottom: 1px solid #e4e4e4; white-space: nowrap; vertical-align: top; }
thead th { position: sticky; top: 0; z-index: 2; background: #f7f7f9; border-bottom: 1px solid #bbb;
  text-align: left; vertical-align: bottom; white-space: normal; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
th button { font: inherit; font-weight: 600; background: none; border: 0; padding: 0; cursor: pointer;
  text-align: inherit; }
th[aria-sort=ascending] button::after { content: " ▲"; }
th[aria-sort=descending] button::after { content: " ▼"; }
td.model { white-space: normal; min-width: 14rem; overflow-wrap: anywhere; }
.badge { display: inline-block; margin-left: .3rem; padding: 0 .3rem; font-size: 11px; line-height: 1.45;
  white-space: nowrap; color: #7a4100; background: #fff1cc; border: 1px solid #d9a400; border-radius: 3px; }
td.num:first-child { text-align: left; }
.lang { display: none; } body.show-langs .lang { display: table-cell; }
body.show-langs .p2 { display: none; }
tr.detail td { white-space: normal; background: #fafafa; }
tr.detail dl { display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem; margin: .3rem 0; }
tr.detail dt { color: #555; } tr.detail dd { margin: 0; overflow-wrap: anywhere; }
tr.detail dl div.p2 { display: none; }
button.more { font: inherit; font-size: 11px; line-height: 1; padding: .1rem .3rem; cursor: pointer;
  border: 1px solid #bbb; background: #fff; border-radius: 3px; }
/* rank (with the details button) and model stay in view when the language columns scroll sideways */
th:nth-child(1), td:nth-child(1) { position: sticky; left: 0; width: 4rem; min-width: 4rem;
  max-width: 4rem; box-sizing: border-box; z-index: 1; background: #fff; }
th:nth-child(2), td:nth-child(2) { position: sticky; left: 4rem; z-index: 1; background: #fff; }
thead th:nth-child(1), thead th:nth-child(2) { z-index: 3; background: #f7f7f9; }
tr.detail td:nth-child(1) { position: static; width: auto; max-width: none; background: #fafafa; }
tr.detail dl { position: sticky; left: .5rem; max-width: 70rem; }
code { font-size: 90%; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; margin-top: .8rem; }
.plots img { max-width: 100%; }
@media (max-width: NARROW) {
  body { margin: .6rem; }
  .p2 { display: none; } body.show-langs .p1 { display: none; }
  tr.detail dl div.p2 { display: contents; }
  td.model { min-width: 0; }
  th, td { padding: .2rem .3rem; }
  th:nth-child(1), td:nth-child(1) { width: 3.2rem; min-width: 3.2rem; max-width: 3.2rem; }
  th:nth-child(2), td:nth-child(2) { left: 3.2rem; }
  body.show-langs td.model { min-width: 8rem; }
}
""".replace("NARROW", NARROW)

SCRIPT = """
(function () {
  "use strict";
  function dataRows(table) { return Array.prototype.slice.call(table.tBodies[0].querySelectorAll("tr.row")); }
  function detailOf(row) { return document.getElementById(row.getAttribute("data-detail")); }
  function heads(table) { return Array.prototype.slice.call(table.tHead.rows[0].cells); }
  function value(row, col, numeric) {
    var raw = row.cells[col].getAttribute("data-value");
    if (!numeric) { return raw; }
    return raw === "" ? null : Number(raw);
  }
  // ascending: true or false; left out, a click's: ascending unless it already is
  function sortBy(table, th, ascending) {
    var col = heads(table).indexOf(th);
    var numeric = th.getAttribute("data-type") === "number";
    if (ascending === undefined) { ascending = th.getAttribute("aria-sort") !== "ascending"; }
    heads(table).forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = dataRows(table);
    rows.sort(function (a, b) {
      var x = value(a, col, numeric), y = value(b, col, numeric);
      if (x === null || y === null) { return (x === null) - (y === null); }  // empty cells last
      var c = numeric ? x - y : x.localeCompare(y);
      return ascending ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); body.appendChild(detailOf(r)); });
  }
  // the text a row shows: its cells that are displayed (not the hidden columns, not the details)
  function shownText(row) {
    return Array.prototype.map.call(row.cells, function (cell) {
      return getComputedStyle(cell).display === "none" ? "" : cell.textContent;
    }).join(" ");
  }
  function currentSection() { return document.querySelector("section.task:not([hidden])"); }
  function applyFilter() {
    var query = document.getElementById("filter").value.trim().toLowerCase();
    var shown = 0, total = 0;
    var section = currentSection();
    if (!section) { return; }
    section.querySelectorAll("table.board").forEach(function (table) {
      dataRows(table).forEach(function (row) {
        var match = query === "" || shownText(row).toLowerCase().indexOf(query) !== -1;
        row.hidden = !match;
        if (!match) { setOpen(row, false); }
        total += 1; shown += match ? 1 : 0;
      });
    });
    var count = query === "" ? total + " rows" : shown + " of " + total + " rows";
    document.getElementById("count").textContent = count;
  }
  function setOpen(row, open) {
    var button = row.querySelector("button.more");
    button.setAttribute("aria-expanded", open ? "true" : "false");
    button.textContent = open ? "▾" : "▸";
    detailOf(row).hidden = !open;
  }
  function tabs() { return Array.prototype.slice.call(document.querySelectorAll(".tabs button")); }
  function selectTask(task) {
    tabs().forEach(function (tab) {
      var on = tab.getAttribute("data-task") === task;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      document.getElementById(tab.getAttribute("aria-controls")).hidden = !on;
    });
    applyFilter();
  }
  // the address: #TASK&sort=KEY.asc (main table)&partial=KEY.desc (partial-language table)
  function writeHash() {
    var section = currentSection();
    if (!section) { return; }
    var parts = [section.id];
    section.querySelectorAll("table.board").forEach(function (table) {
      var th = table.querySelector("thead th[aria-sort]");
      if (th) {
        var dir = th.getAttribute("aria-sort") === "ascending" ? "asc" : "desc";
        parts.push(table.getAttribute("data-param") + "=" + th.getAttribute("data-key") + "." + dir);
      }
    });
    var hash = "#" + parts.join("&");
    if (location.hash === hash) { return; }
    try { history.replaceState(null, "", hash); } catch (err) { location.hash = hash; }
  }
  function restore() {
    var task = null, sorts = {};
    location.hash.slice(1).split("&").forEach(function (part) {
      var eq = part.indexOf("=");
      if (eq === -1) { task = part; } else { sorts[part.slice(0, eq)] = part.slice(eq + 1); }
    });
    var all = tabs();
    if (!all.length) { return; }
    var tab = all.filter(function (t) { return t.getAttribute("data-task") === task; })[0] || all[0];
    document.getElementById(tab.getAttribute("aria-controls")).querySelectorAll("table.board")
      .forEach(function (table) {
        var wanted = sorts[table.getAttribute("data-param")];
        if (!wanted) { return; }
        var dot = wanted.lastIndexOf(".");
        var key = wanted.slice(0, dot), dir = wanted.slice(dot + 1);
        var th = heads(table).filter(function (h) { return h.getAttribute("data-key") === key; })[0];
        if (th && (dir === "asc" || dir === "desc")) { sortBy(table, th, dir === "asc"); }
      });
    selectTask(tab.getAttribute("data-task"));
  }
  document.querySelectorAll("table.board").forEach(function (table) {
    heads(table).forEach(function (th) {
      var button = th.querySelector("button");
      if (button) { button.addEventListener("click", function () { sortBy(table, th); writeHash(); }); }
    });
    dataRows(table).forEach(function (row) {
      row.querySelector("button.more").addEventListener("click", function () {
        setOpen(row, detailOf(row).hidden);
      });
    });
  });
  tabs().forEach(function (tab) {
    tab.addEventListener("click", function () { selectTask(tab.getAttribute("data-task")); writeHash(); });
  });
  document.getElementById("filter").addEventListener("input", applyFilter);
  document.getElementById("langs").addEventListener("change", function (event) {
    document.body.classList.toggle("show-langs", event.target.checked);
    applyFilter();  // the columns shown changed, so did the text the filter looks at
  });
  window.matchMedia("(max-width: NARROW)").addEventListener("change", applyFilter);
  window.addEventListener("hashchange", restore);
  restore();
})();
""".replace("NARROW", NARROW)

BADGE_TITLE = "in-domain: trained on data from this task's own source; not comparable with zero-shot rows"


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def e(text: object) -> str:
    """Escape for HTML text and (double- or single-quoted) attribute values."""
    return html.escape(str(text), quote=True)


def column_key(c: Column) -> str:
    """A column's name in the page's address (``multi 95% CI`` -> ``multi-95-ci``, ``#`` -> ``rank``)."""
    return re.sub(r"[^a-z0-9]+", "-", c.heading.lower()).strip("-") or "rank"


def _classes(c: Column) -> list[str]:
    """The CSS classes that show or hide a column's cells (see STYLE)."""
    if c.place == "lang":
        return ["lang"]
    return [f"p{c.priority}"] if c.priority > 0 else []


def _cell(task: str, c: Column, row: RowBase, toggle: str = "") -> str:
    """A table cell; ``toggle`` (the details button) goes first in the rank cell; an in-domain row's
    model cell carries a badge after the name (the caveat sits in the row, not in a far column)."""
    text = c.text(row)
    sort = c.sort(row) if c.sort else text
    value = "" if sort is None else (repr(float(sort)) if c.numeric else str(sort))
    classes = ["num"] * c.numeric + _classes(c) + ["model"] * (c.heading == "model")
    klass = f' class="{" ".join(classes)}"' if classes else ""
    content = e(text)
    if c.heading == "model":
        content = f'<a href="{e(results_relpath(task, row.results_sha256))}">{content}</a>'
        if row.in_domain_training:
            content += f' <span class="badge" title="{e(BADGE_TITLE)}">in-domain ⚠</span>'
    elif c.heading == "#":
        content = toggle + content
    return f'<td{klass} data-value="{e(value)}">{content}</td>'


def _detail(task: str, cols: list[Column], row: RowBase) -> str:
    """The row's long fields as a definition list (shown by the row's "more" button); the columns a
    narrow screen hides (``p2``) are listed too, shown there only."""
    items = []
    for c in cols:
        text = c.text(row)
        if c.heading == "fingerprint":
            text_html = f"<code>{e(row.model_fingerprint)}</code>"
        else:
            text_html = e(text) if text else "–"
        css = ' class="notes"' if c.heading == "notes" else ""
        item = f"<dt>{e(c.heading)}</dt><dd{css}>{text_html}</dd>"
        items.append(f'<div class="p2">{item}</div>' if c.place == "main" else item)
    link = e(results_relpath(task, row.results_sha256))
    items.append(f'<dt>results</dt><dd><a href="{link}">{link}</a></dd>')
    return f"<dl>{''.join(items)}</dl>"


def html_table(task: str, rows: list[RowBase], table_id: str, partial: bool = False) -> str:
    rank_of = {id(r): i for i, r in enumerate(rows, 1)}
    all_cols = columns(task, rank_of, partial)
    cols = [c for c in all_cols if c.place in ("main", "lang")]
    details = [c for c in all_cols if c.place == "detail"]
    in_details = {c.heading for c in details}  # "training": its long form is there already
    details = [c for c in cols if c.priority == 2 and c.heading not in in_details] + details
    param = "partial" if partial else "sort"
    out = [f'<div class="wrap"><table class="board" id="{e(table_id)}" data-param="{param}"><thead><tr>']
    for c in cols:
        kind = "number" if c.numeric else "text"
        title = f' title="{e(c.title)}"' if c.title else ""
        classes = " ".join(["num"] * c.numeric + _classes(c))
        klass = f' class="{classes}"' if classes else ""
        out.append(
            f'<th scope="col" data-type="{kind}" data-key="{e(column_key(c))}"{klass}{title}>'
            f'<button type="button">{e(c.heading)}</button></th>'
        )
    out.append("</tr></thead><tbody>")
    span = len(cols)
    for i, row in enumerate(rows):
        detail_id = f"{table_id}-detail-{i}"
        toggle = (
            f'<button type="button" class="more" aria-expanded="false" aria-controls="{e(detail_id)}" '
            f'title="details">▸</button> '
        )
        out.append(f'<tr class="row" data-detail="{e(detail_id)}">')
        out.extend(_cell(task, c, row, toggle) for c in cols)
        out.append("</tr>")
        out.append(
            f'<tr class="detail" id="{e(detail_id)}" hidden>'
            f'<td colspan="{span}">{_detail(task, details, row)}</td></tr>'
        )
    out.append("</tbody></table></div>")
    return "".join(out)


def page_tasks() -> dict[str, TaskSpec]:
    """The page's tabs in order: tasks no training data is in-domain for come first, so the page opens
    on a board where every row is zero-shot with respect to the task's source (XQuAD-R, not MLQA-R)."""
    return dict(sorted(ranked_specs().items(), key=lambda item: bool(item[1].in_domain_training)))


def render_html(boards: dict[str, list[Row]], plots: dict[str, list[str]]) -> str:
    """The self-contained page: every value escaped, no external resource, CSP by hash."""
    csp = (
        f"default-src 'none'; img-src 'self'; style-src {_csp_hash(STYLE)}; "
        f"script-src {_csp_hash(SCRIPT)}; base-uri 'none'; form-action 'none'"
    )
    specs = page_tasks()
    tabs = "".join(
        f'<button type="button" role="tab" id="tab-{e(task)}" data-task="{e(task)}" '
        f'aria-controls="{e(task)}" '
        f'aria-selected="{"true" if i == 0 else "false"}">{e(spec.title)}</button>'
        for i, (task, spec) in enumerate(specs.items())
    )
    body = [
        "<h1>hybrid_plugin leaderboards</h1>",
        '<p class="lede">Ranked by multilingual mAP (exact full-ranking AP, macro over query languages); '
        "<em>rank dist</em> is the max rank distance in the multilingual pool (language bias, lower is "
        "better). <em>multi 95% CI</em>: bootstrap interval over parallel question groups; <em>vs best</em>: "
        "paired randomization test against the best row on the same languages and candidates "
        "(≈ best: not distinguishable at α = 0.05, Holm-corrected); n/a: no per-query file, so nothing "
        'is claimed. <span class="badge">in-domain ⚠</span> marks a row trained on data from the task\'s '
        "own source: not comparable with the zero-shot rows. Click a heading to sort (the address keeps "
        "the tab and the sort), ▸ for a row's details; model names link to the committed results JSON. "
        "Generated by <code>hybrid-plugin leaderboard render</code>; "
        'schema in <a href="README.md">README.md</a>.</p>',
        '<div class="controls">'
        f'<div class="tabs" role="tablist" aria-label="task">{tabs}</div>'
        '<input type="search" id="filter" placeholder="filter rows by the text they show" '
        'aria-label="filter rows by the text they show">'
        '<label><input type="checkbox" id="langs"> per-language multi mAP</label>'
        '<span class="count" id="count" aria-live="polite"></span>'
        "</div>",
    ]
    for i, (task, spec) in enumerate(specs.items()):
        main, partial = split_rows(task, boards.get(task, []))
        hidden = "" if i == 0 else " hidden"
        body.append(
            f'<section class="task" id="{e(task)}" role="tabpanel" aria-labelledby="tab-{e(task)}"{hidden}>'
            f"<h2>{e(spec.title)} <small>({e(task)})</small></h2>"
        )
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
#
# Both plots number each row by its place in the table (#) and list the numbers with the full names in
# a key beside the axes: names never sit on the data, so they cannot overlap. The scatter places each
# number where it overlaps no other number, marker or the axes' edge (a thin leader line where it had
# to move away), and switches to a log axis when one row's rank distance is ten times another's (BM25:
# ~11,000 against a few hundred), so the dense models stay apart.

PLOT_DPI = 110
KEY_NAME_MAX = 80
KINDS = {  # how a row was made -> (legend text, colour)
    "trained": ("trained (hybrid-plugin train)", "#4c72b0"),
    "zero-shot": ("zero-shot dense model", "#dd8452"),
    "lexical": ("lexical (BM25)", "#55a868"),
}
LOG_RATIO = 10.0
IN_DOMAIN_MARK = "◆"  # in the key; the scatter draws these rows as diamonds ("D"), the bars hatched
IN_DOMAIN_LEGEND = "in-domain training (data from the task's own source)"
IN_DOMAIN_HATCH = "////"


def row_kind(row: RowBase) -> str:
    if row.model_id == "bm25":
        return "lexical"
    return "zero-shot" if row.training_strategy == "zero-shot" else "trained"


def _key_name(row: RowBase) -> str:
    return row.name if len(row.name) <= KEY_NAME_MAX else row.name[: KEY_NAME_MAX - 1] + "…"


def _figure(rows: list[RowBase], kinds: bool = True, in_domain_legend: str = IN_DOMAIN_LEGEND):
    """A figure with the plot axes on the left and the numbered key of the rows on the right
    (``kinds``: numbers coloured by how the row was made, with a legend of those colours). A row
    trained in-domain gets a ◆ between its number and its name, explained by ``in_domain_legend``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown_kinds = [k for k in KINDS if kinds and any(row_kind(r) == k for r in rows)]
    any_in_domain = any(r.in_domain_training for r in rows)
    height = max(4.2, 1.4 + 0.24 * (len(rows) + len(shown_kinds) + any_in_domain))
    fig = plt.figure(figsize=(11.0, height), dpi=PLOT_DPI)
    ax = fig.add_axes((0.075, 0.6 / height + 0.05, 0.44, 1 - (0.6 / height + 0.05) - 0.5 / height))
    key = fig.add_axes((0.56, 0.03, 0.43, 0.94))
    key.axis("off")
    step = min(0.075, 0.95 / max(len(rows) + 2, 1))
    y = 0.97
    for n, row in enumerate(rows, 1):
        color = KINDS[row_kind(row)][1] if kinds else "black"
        key.text(0.0, y, str(n), fontsize=8, fontweight="bold", color=color, va="top", parse_math=False)
        if row.in_domain_training:
            key.text(0.031, y, IN_DOMAIN_MARK, fontsize=7.5, va="top")
        key.text(0.055, y, _key_name(row), fontsize=8, va="top", parse_math=False)
        y -= step
    y -= step / 2
    for kind in shown_kinds:
        text, color = KINDS[kind]
        key.text(0.0, y, "●", fontsize=8, color=color, va="top")
        key.text(0.055, y, text, fontsize=7.5, color="0.35", va="top", parse_math=False)
        y -= step * 0.85
    if any_in_domain:
        key.text(0.0, y, IN_DOMAIN_MARK, fontsize=7.5, va="top")
        key.text(0.055, y, in_domain_legend, fontsize=7.5, color="0.35", va="top", parse_math=False)
    return fig, ax


def _save_figure(fig, path: Path) -> None:
    """Save as laid out (no tight bbox: the scatter's label positions were checked in this layout)."""
    import matplotlib.pyplot as plt

    write_with(
        path,
        lambda tmp: fig.savefig(tmp, dpi=PLOT_DPI, format="png", metadata={"Software": None}),
        ".png",
    )
    plt.close(fig)


def place_numbers(
    ax,
    xs: list[float],
    ys: list[float],
    labels: list[str | None],
    colors: list[str],
    avoid: list | None = None,
) -> list:
    """Put each label near its point where it overlaps no other label, no marker and nothing in ``avoid``
    (display boxes) and stays inside the axes; tries growing rings of 8 directions and adds a leader
    line when it had to move away. A ``None`` label is not drawn (its marker is still avoided)."""
    import math

    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    centres = ax.transData.transform(list(zip(xs, ys)))
    half = 4.5 * ax.figure.dpi / 72  # half a marker, in pixels
    taken = [Bbox.from_extents(cx - half, cy - half, cx + half, cy + half) for cx, cy in centres]
    taken += list(avoid or [])
    style = {"ha": "center", "va": "center", "fontsize": 8, "fontweight": "bold", "parse_math": False}
    placed = []
    for x, y, label, color in zip(xs, ys, labels, colors):
        if label is None:
            continue
        chosen = None
        for radius in (8, 12, 17, 23, 30, 38, 48, 60, 75):
            for angle in (45, 135, -45, -135, 0, 180, 90, -90):
                offset = (radius * math.cos(math.radians(angle)), radius * math.sin(math.radians(angle)))
                text = ax.annotate(
                    label, (x, y), xytext=offset, textcoords="offset points", color=color, **style
                )
                box = text.get_window_extent(renderer).padded(1.5)
                fits = inside.contains(box.x0, box.y0) and inside.contains(box.x1, box.y1)
                text.remove()
                if fits and not any(box.overlaps(t) for t in taken):
                    chosen = (offset, box, radius)
                    break
            if chosen:
                break
        if chosen is None:  # nowhere free (hundreds of rows): on the point rather than dropped
            chosen = ((0.0, 0.0), Bbox.null(), 0)
        offset, box, radius = chosen
        arrow = {"arrowstyle": "-", "lw": 0.5, "color": "0.55", "shrinkA": 0, "shrinkB": 3}
        placed.append(
            ax.annotate(
                label,
                (x, y),
                xytext=offset,
                textcoords="offset points",
                color=color,
                arrowprops=arrow if radius > 12 else None,
                **style,
            )  # fmt: skip
        )
        taken.append(box)
    return placed


def crowded(ax, xs: list[float], ys: list[float], within_px: float = 18.0) -> list[int]:
    """The largest group of points chained closer than ``within_px`` on screen (empty below 3 points)."""
    import numpy as np

    pts = ax.transData.transform(list(zip(xs, ys)))
    group_of = list(range(len(pts)))

    def root(i: int) -> int:
        while group_of[i] != i:
            i = group_of[i]
        return i

    for i in range(len(pts)):
        for j in range(i + 1, len(pts)):
            if np.hypot(*(pts[i] - pts[j])) < within_px:
                group_of[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(pts)):
        groups.setdefault(root(i), []).append(i)
    best = max(groups.values(), key=len, default=[])
    return best if len(best) >= 3 else []


def _zoom_inset(ax, xs: list[float], ys: list[float], members: list[int], spans: list[tuple[float, float]]):
    """An inset magnifying ``members`` in a corner of ``ax`` that holds no point; None if none is free.
    ``spans``: each point's vertical extent (its error bar, or the point), all kept inside the inset."""
    fig = ax.figure
    to_axes = ax.transAxes.inverted()
    frac = to_axes.transform(ax.transData.transform(list(zip(xs, ys))))
    # in axes fractions; room is left inside the plot for the inset's own tick labels (left, below)
    corners = (
        (0.46, 0.56, 0.51, 0.41),
        (0.13, 0.56, 0.51, 0.41),
        (0.46, 0.13, 0.51, 0.4),
        (0.13, 0.13, 0.51, 0.4),
    )
    for x0, y0, w, h in corners:
        if any(x0 - 0.02 <= fx <= x0 + w + 0.02 and y0 - 0.02 <= fy <= y0 + h + 0.02 for fx, fy in frac):
            continue
        inset = ax.inset_axes((x0, y0, w, h))
        mx = [xs[i] for i in members]
        low, high = min(spans[i][0] for i in members), max(spans[i][1] for i in members)
        span_x = max(max(mx) - min(mx), 1e-9)
        span_y = max(high - low, 1e-4)
        pad_y = 0.45 if all(spans[i][0] == spans[i][1] for i in members) else 0.12  # bars: room enough
        inset.set_xlim(min(mx) - 0.35 * span_x, max(mx) + 0.35 * span_x)
        inset.set_ylim(low - pad_y * span_y, high + pad_y * span_y)
        inset.tick_params(labelsize=6.5)
        inset.grid(alpha=0.3)
        inset.set_facecolor("#fbfbfb")
        ax.indicate_inset_zoom(inset, edgecolor="0.45", alpha=0.8)
        fig.canvas.draw()  # tick labels sized before the labels are placed
        return inset
    return None


def _with_interval(rows: list[RowBase], xs: list[float]) -> list[tuple[float, RowBase]]:
    return [
        (x, r) for x, r in zip(xs, rows) if r.multi_map_ci_low is not None and r.multi_map_ci_high is not None
    ]


def _error_bars(ax, rows: list[RowBase], xs: list[float], color: str = "#333333", cap: float = 3) -> bool:
    """95% intervals of multi mAP where a row has one (rows without a per-query file get none)."""
    have = _with_interval(rows, xs)
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
        ecolor=color,
        elinewidth=1,
        capsize=cap,
        zorder=4,
        label="multi: 95% CI (question groups)",
    )
    return True


def _error_bar_boxes(ax, rows: list[RowBase], xs: list[float]) -> list:
    """The display boxes of the error bars (caps included): places the numbers must not cover."""
    from matplotlib.transforms import Bbox

    cap = 3 * ax.figure.dpi / 72
    boxes = []
    for x, r in _with_interval(rows, xs):
        (x0, y0), (_, y1) = ax.transData.transform([(x, r.multi_map_ci_low), (x, r.multi_map_ci_high)])
        boxes.append(Bbox.from_extents(x0 - cap, y0, x0 + cap, y1))
    return boxes


def _points(ax, xs: list[float], ys: list[float], colors: list[str], rows: list[RowBase]) -> None:
    """One marker per row: a circle, or a dark-edged diamond for a row trained in-domain."""
    for in_domain, marker, edge, width in ((False, "o", "white", 0.6), (True, "D", "black", 0.9)):
        idx = [i for i, r in enumerate(rows) if r.in_domain_training == in_domain]
        if idx:
            ax.scatter([xs[i] for i in idx], [ys[i] for i in idx], c=[colors[i] for i in idx], s=28,
                       marker=marker, zorder=3, edgecolors=edge, linewidths=width)  # fmt: skip


@plain_plot_text()
def scatter_figure(task: str, rows: list[RowBase]):
    """Multi mAP against max rank distance: one numbered point per row (the number is its place);
    rows trained in-domain are diamonds, and every row with an interval has its error bar.

    Points crowded on screen (trained variants of one model often lie within a few pixels) are
    magnified in an inset placed in a corner without points, and numbered there, error bars included.
    """
    fig, ax = _figure(rows)
    xs = [max(r.max_rank_distance, 1e-3) for r in rows]
    ys = [r.multi_map for r in rows]
    colors = [KINDS[row_kind(r)][1] for r in rows]
    log = len(xs) > 1 and max(xs) / min(xs) >= LOG_RATIO
    _points(ax, xs, ys, colors, rows)
    _error_bars(ax, rows, xs)
    if log:
        import math

        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlim(10 ** (math.log10(min(xs)) - 0.15), 10 ** (math.log10(max(xs)) + 0.15))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        ax.set_xlabel("max rank distance, log scale (language bias; lower is better)")
    else:
        ax.set_xlim(0, 1.12 * max(xs + [1.0]))
        ax.set_xlabel("max rank distance (language bias; lower is better)")
    ax.set_ylim(0, 1)
    ax.set_ylabel("multilingual mAP")
    ax.grid(alpha=0.3, which="both" if log else "major")
    ax.set_title(f"{get_spec(task).title}: multilingual mAP vs language bias", fontsize=10)
    fig.canvas.draw()
    numbers: list[str | None] = [str(n) for n in range(1, len(rows) + 1)]
    members = crowded(ax, xs, ys)
    spans = [
        (r.multi_map_ci_low, r.multi_map_ci_high) if r.multi_map_ci_low is not None else (y, y)
        for r, y in zip(rows, ys)
    ]
    inset = _zoom_inset(ax, xs, ys, members, spans) if members else None
    avoid = []
    if inset is not None:
        sub = [rows[i] for i in members]
        sub_xs, sub_ys, sub_colors = ([v[i] for i in members] for v in (xs, ys, colors))
        _points(inset, sub_xs, sub_ys, sub_colors, sub)
        _error_bars(inset, sub, sub_xs, color="#8a8a8a", cap=2)  # lighter: the numbers stay legible
        place_numbers(inset, sub_xs, sub_ys, [numbers[i] for i in members], sub_colors,
                      avoid=_error_bar_boxes(inset, sub, sub_xs))  # fmt: skip
        avoid.append(inset.get_tightbbox(fig.canvas.get_renderer()).padded(2))
        numbers = [None if i in members else n for i, n in enumerate(numbers)]
    place_numbers(ax, xs, ys, numbers, colors, avoid=avoid)
    return fig


@plain_plot_text()
def plot_map_vs_bias(task: str, rows: list[RowBase], path: Path) -> None:
    """The scatter, written to ``path``."""
    _save_figure(scatter_figure(task, rows), path)


@plain_plot_text()
def bars_figure(task: str, rows: list[RowBase]):
    """Mono / cross / multi mAP bars per row (numbered as in the table and the key), best multi first;
    the bars of a row trained in-domain are hatched."""
    import numpy as np

    fig, ax = _figure(rows, kinds=False, in_domain_legend=f"hatched bars: {IN_DOMAIN_LEGEND}")
    x = np.arange(len(rows))
    width = 0.27
    ax.set_xlim(-0.6, len(rows) - 0.4)
    for i, (key, color) in enumerate(
        (("mono_map", "#4c72b0"), ("cross_map", "#55a868"), ("multi_map", "#dd8452"))
    ):
        bars = ax.bar(
            x + (i - 1) * width, [getattr(r, key) for r in rows], width, label=key.split("_")[0], color=color
        )
        for bar, row in zip(bars, rows):
            if row.in_domain_training:
                bar.set_hatch(IN_DOMAIN_HATCH)
                bar.set_edgecolor("white")  # the hatch's colour; a white outline sets bars apart
                bar.set_linewidth(0.5)
    _error_bars(ax, rows, list(x + width))
    ax.set_xticks(x, [str(n) for n in range(1, len(rows) + 1)], fontsize=8)
    ax.set_xlabel("row (see the key)")
    ax.set_ylim(0, 1.12)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel("mAP")
    ax.legend(fontsize=8, ncols=3, loc="upper right", frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(f"{get_spec(task).title}: mono / cross / multi mAP", fontsize=10)
    return fig


@plain_plot_text()
def plot_map_bars(task: str, rows: list[RowBase], path: Path) -> None:
    """The bars, written to ``path``."""
    _save_figure(bars_figure(task, rows), path)


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
    if check:
        boards = read_board(board)
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
    with board_lock(board):  # not while a submit rewrites a CSV
        boards = read_board(board)
        plots = write_plots(board, boards)
        write_text(board / "README.md", render_readme(boards, plots))
        write_text(board / "index.html", render_html(boards, plots))
    return [
        board / "README.md",
        board / "index.html",
        *(board / src for refs in plots.values() for src, _ in refs),
    ]
