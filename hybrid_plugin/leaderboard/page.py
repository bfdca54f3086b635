"""The leaderboard page ``index.html``: sortable, filterable, offline, one tab per task.

One task at a time (a tab per task, the address keeps the tab and the sort), compact rows (the long
fields sit in a detail row opened by the row's button), a sticky header, per-language columns behind
a switch (they take the place of the other columns but the three mAPs) and a filter on the text the
rows show. Below 40rem only the rank, the model and the three mAPs stay. Everything is in the page:
no request leaves it, and the CSP allows only its own style and script (by hash). The style and the
script are ``assets/page.css`` and ``assets/page.js``; every value of a row goes through :func:`e`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from importlib.resources import files

from hybrid_plugin.data.spec import TaskSpec
from hybrid_plugin.leaderboard.board import Row, results_relpath
from hybrid_plugin.leaderboard.columns import Column, columns, split_rows, task_summary
from hybrid_plugin.leaderboard.schema import RowBase
from hybrid_plugin.leaderboard.tasks import ranked_specs

NARROW = "40rem"  # below this width only the columns of priority 0 and 1 show


def _asset(name: str) -> str:
    """A page asset with its ``NARROW`` placeholder filled, after a line break (``<style>\\n...``)."""
    text = (files("hybrid_plugin.leaderboard") / "assets" / name).read_text(encoding="utf-8")
    return "\n" + text.replace("NARROW", NARROW)


STYLE = _asset("page.css")
SCRIPT = _asset("page.js")

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
