"""What columns a board has: heading, cell text, sort value and where each shows (README, page, details).

The Markdown table (:mod:`.markdown`) and the page (:mod:`.page`) both draw from :func:`columns`, so a
column is defined once; titles come from the row schema's field descriptions where it has one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hybrid_plugin.data.spec import SettingKind, get_spec
from hybrid_plugin.evaluation.measures import MEASURES, Measure
from hybrid_plugin.leaderboard.board import Row
from hybrid_plugin.leaderboard.schema import RowBase, language_column, language_description, row_model


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


PAGE_DECIMALS = 3  # the page shows at most this many decimals (the CSV keeps the measure's own)


def _measure_column(m: Measure) -> Column:
    """A board measure's column: label and arrow, its cell to at most :data:`PAGE_DECIMALS` places, its
    board description as the title; multi mAP stays beside the language columns, mono and cross next."""
    places = min(m.board.decimals, PAGE_DECIMALS) if m.board else PAGE_DECIMALS
    heading = f"{m.label} {m.arrow}" if m.higher_is_better is False else m.label
    return Column(
        heading,
        lambda r, k=m.key, n=places: _num(getattr(r, k), n),
        lambda r, k=m.key: getattr(r, k),
        True,
        title=m.board.description if m.board else m.description,
        priority={SettingKind.MULTI: 0, SettingKind.MONO: 1, SettingKind.CROSS: 1}[m.kind]
        if m.column == "ap"
        else 2,
    )


def _measure_columns() -> list[Column]:
    """The registry's board measures in order; the multi mAP interval and the comparison with the best
    row follow multi mAP."""
    out: list[Column] = []
    for m in MEASURES.board():
        out.append(_measure_column(m))
        if m.key == "multi_map":
            out.append(
                Column(
                    "multi 95% CI",
                    interval_text,
                    lambda r: r.multi_map_ci_low,
                    True,
                    title="bootstrap interval over question groups; n/a: no per-query file",
                )
            )
            out.append(
                Column("vs best", versus_text, title=RowBase.model_fields["vs_best"].description or "")
            )
    return out


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
        *_measure_columns(),
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
                title=language_description(lang),
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
