"""A :class:`~hybrid_plugin.stats.compare.Comparison` as a console table, Markdown, LaTeX or JSON."""

from __future__ import annotations

import json
import textwrap

from hybrid_plugin.escape import latex, markdown, one_line
from hybrid_plugin.evaluation.measures import DIRECTION_LEGEND, direction_arrow
from hybrid_plugin.stats.compare import Cell, Comparison, Interval, MeasureComparison, PairComparison

FORMATS = ("table", "markdown", "json", "latex")
WIDTH = 100  # the compact console table fits a terminal this wide (--wide: every interval, any width)


def decimal_places(key: str) -> int:
    """How many decimals a measure's numbers are shown with (rank distances are hundreds)."""
    return 1 if key == "max_rank_distance" else 3


def _num(value: float | None, places: int, sign: bool = False) -> str:
    if value is None:
        return "n/a"
    text = f"{value:+.{places}f}" if sign else f"{value:.{places}f}"
    return text.replace("-", "−")


def interval_text(iv: Interval, places: int, sign: bool = False) -> str:
    """``0.298 [0.290, 0.306]``; ``n/a`` without a value."""
    if iv.value is None:
        return "n/a"
    if iv.low is None or iv.high is None:
        return _num(iv.value, places, sign)
    return f"{_num(iv.value, places, sign)} [{_num(iv.low, places, sign)}, {_num(iv.high, places, sign)}]"


def p_text(p: float | None) -> str:
    if p is None:
        return "n/a"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.4f}"


def _label(m: MeasureComparison) -> str:
    """The measure's label with its direction (↑, ↓ or none), from its one definition."""
    return f"{m.label} {direction_arrow(m.higher_is_better)}".strip()


def _macro_rows(pair: PairComparison) -> tuple[list[str], list[list[str]]]:
    header = [
        "measure",
        f"{pair.baseline} (baseline)",
        pair.system,
        "difference",
        "p (adj.)",
        "higher/lower/tied",
    ]
    rows = []
    for m in pair.measures:
        c, places = m.macro, decimal_places(m.key)
        rows.append(
            [
                _label(m),
                interval_text(c.baseline, places),
                interval_text(c.system, places),
                interval_text(c.difference, places, sign=True),
                p_text(c.test.p_adjusted) + ("*" if c.test.significant else ""),
                f"{c.test.higher}/{c.test.lower}/{c.test.tied}",
            ]
        )
    return header, rows


def _short(c: Cell | None, key: str) -> str:
    if c is None or c.difference.value is None:
        return "n/a"
    return _num(c.difference.value, decimal_places(key), sign=True) + ("*" if c.test.significant else "")


def _language_rows(cmp: Comparison, pair: PairComparison) -> tuple[list[str], list[list[str]]]:
    header = ["lang", *(_label(m) for m in pair.measures)]
    rows = [
        [lang, *(_short(m.per_language.get(lang), m.key) for m in pair.measures)] for lang in cmp.languages
    ]
    return header, rows


def _aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return [line(header), "-" * len(line(header)), *(line(r) for r in rows)]


def _compact_rows(cmp: Comparison, pair: PairComparison) -> tuple[list[str], list[list[str]]]:
    """The macro table in about 90 columns: both scores, the difference with its interval, the test."""
    level = f"{1 - cmp.alpha:.0%}"
    header = ["measure", "A", "B", f"B − A [{level} CI]", "p (adj.)", "higher/lower/tied"]
    rows = []
    for m in pair.measures:
        c, places = m.macro, decimal_places(m.key)
        rows.append(
            [
                _label(m),
                _num(c.baseline.value, places),
                _num(c.system.value, places),
                interval_text(c.difference, places, sign=True),
                p_text(c.test.p_adjusted) + ("*" if c.test.significant else ""),
                f"{c.test.higher}/{c.test.lower}/{c.test.tied}",
            ]
        )
    return header, rows


def _fitted(header: list[str], rows: list[list[str]], width: int = WIDTH) -> list[str]:
    """An aligned table split into several, each at most ``width`` wide, the first column repeated."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    chunks: list[list[int]] = [[]]
    used = widths[0]
    for i in range(1, len(header)):
        if chunks[-1] and used + 2 + widths[i] > width:
            chunks.append([])
            used = widths[0]
        chunks[-1].append(i)
        used += 2 + widths[i]
    out: list[str] = []
    for k, chunk in enumerate(chunks):
        columns = [0, *chunk]
        out += ([""] if k else []) + _aligned(
            [header[i] for i in columns], [[r[i] for i in columns] for r in rows]
        )
    return out


def _wrapped(line: str, width: int = WIDTH) -> list[str]:
    return textwrap.wrap(line, width, subsequent_indent="  ", break_on_hyphens=False) or [""]


def _compact(cmp: Comparison, title: str) -> str:
    """The default console output: every line at most :data:`WIDTH` columns."""
    out = [
        line for text in [title, *cmp.notes, DIRECTION_LEGEND, *_seed_lines(cmp)] for line in _wrapped(text)
    ]
    for pair in cmp.pairs:
        out += [
            "",
            *_wrapped(
                f"{pair.system} vs {pair.baseline} (B = {pair.system}, A = {pair.baseline}, the baseline)"
            ),
            "",
        ]
        out += _fitted(*_compact_rows(cmp, pair))
        out += ["", "per query language: B − A (* = significant after correction; --wide for intervals)", ""]
        out += _fitted(*_language_rows(cmp, pair))
    return "\n".join(out)


def _markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    """The header holds system names (any text: escaped to show literally); the rows, numbers and
    labels of ours (only a pipe would break them)."""

    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    return [
        "| " + " | ".join(markdown(h) for h in header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
        *("| " + " | ".join(esc(c) for c in r) + " |" for r in rows),
    ]


#: our symbols in LaTeX (replaced in the same pass as the escapes, so never escaped again)
LATEX_SYMBOLS = {
    "−": "$-$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "*": "$^*$",
    "±": r"$\pm$",
    "✓": r"\checkmark{}",
    "✗": r"$\times$",
}


def _latex(header: list[str], rows: list[list[str]]) -> list[str]:
    def esc(text: str) -> str:
        return latex(text, LATEX_SYMBOLS)

    spec = "l" + "r" * (len(header) - 1)
    return [
        rf"\begin{{tabular}}{{{spec}}}",
        r"\toprule",
        " & ".join(esc(h) for h in header) + r" \\",
        r"\midrule",
        *(" & ".join(esc(c) for c in r) + r" \\" for r in rows),
        r"\bottomrule",
        r"\end{tabular}",
    ]


def _seed_lines(cmp: Comparison) -> list[str]:
    out = []
    for s in cmp.systems:
        if not s.seed_scores:
            continue
        parts = []
        for key in s.seed_scores:
            spread = s.spread(key)
            if spread:
                places = decimal_places(key)
                parts.append(f"{key} {_num(spread[0], places)} ± {_num(spread[1], places)}")
        out.append(f"{s.name} ({len(s.files)} seeds, mean ± sd over seeds): " + ", ".join(parts))
    return out


def render(cmp: Comparison, fmt: str = "table", wide: bool = False) -> str:
    """The comparison in one of :data:`FORMATS`; every format states the unit, test and correction.

    ``table`` is compact (at most :data:`WIDTH` columns) unless ``wide``: then it has every system's
    interval too, on lines as long as they need.
    """
    if fmt == "json":
        return json.dumps(cmp.to_json(), indent=1, ensure_ascii=False, allow_nan=False)  # strict JSON
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    title = (
        f"{cmp.task_title} · {len(cmp.languages)} languages · {cmp.candidate_format} candidates · "
        f"baseline {cmp.pairs[0].baseline if cmp.pairs else '-'}"
    )
    if fmt == "table" and not wide:
        return _compact(cmp, title)
    table = {"table": _aligned, "markdown": _markdown, "latex": _latex}[fmt]
    comment = "% " if fmt == "latex" else ""
    notes = [*cmp.notes, DIRECTION_LEGEND, *_seed_lines(cmp)]
    # lines holding names and titles: literal Markdown; a LaTeX comment that no line break can end
    line = {"markdown": markdown, "latex": one_line}.get(fmt, str)
    out = [f"{comment}{line(title)}", *(f"{comment}{line(n)}" for n in notes)]
    for pair in cmp.pairs:
        heading = line(f"{pair.system} vs {pair.baseline}")
        out += ["", f"## {heading}" if fmt == "markdown" else f"{comment}{heading}", ""]
        out += table(*_macro_rows(pair))
        out += ["", f"{comment}per query language: difference (* = significant after correction)", ""]
        out += table(*_language_rows(cmp, pair))
    return "\n".join(out)
