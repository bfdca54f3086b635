"""A :class:`~hybrid_plugin.stats.compare.Comparison` as a console table, Markdown, LaTeX or JSON."""

from __future__ import annotations

import json

from hybrid_plugin.stats.compare import Cell, Comparison, Interval, MeasureComparison, PairComparison

FORMATS = ("table", "markdown", "json", "latex")


def _places(key: str) -> int:
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


def _arrow(m: MeasureComparison) -> str:
    return {True: " ↑", False: " ↓", None: ""}[m.higher_is_better]


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
        c, places = m.macro, _places(m.key)
        rows.append(
            [
                m.label + _arrow(m),
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
    return _num(c.difference.value, _places(key), sign=True) + ("*" if c.test.significant else "")


def _language_rows(cmp: Comparison, pair: PairComparison) -> tuple[list[str], list[list[str]]]:
    header = ["lang", *(m.label for m in pair.measures)]
    rows = [
        [lang, *(_short(m.per_language.get(lang), m.key) for m in pair.measures)] for lang in cmp.languages
    ]
    return header, rows


def _aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    return [line(header), "-" * len(line(header)), *(line(r) for r in rows)]


def _markdown(header: list[str], rows: list[list[str]]) -> list[str]:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    return [
        "| " + " | ".join(esc(h) for h in header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
        *("| " + " | ".join(esc(c) for c in r) + " |" for r in rows),
    ]


def _latex(header: list[str], rows: list[list[str]]) -> list[str]:
    def esc(text: str) -> str:
        for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
            text = text.replace(a, b)
        for a, b in (
            ("−", "$-$"),
            ("↑", r"$\uparrow$"),
            ("↓", r"$\downarrow$"),
            ("*", "$^*$"),
            ("±", r"$\pm$"),
            ("✓", r"\checkmark{}"),
            ("✗", r"$\times$"),
        ):
            text = text.replace(a, b)
        return text

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
                places = _places(key)
                parts.append(f"{key} {_num(spread[0], places)} ± {_num(spread[1], places)}")
        out.append(f"{s.name} ({len(s.files)} seeds, mean ± sd over seeds): " + ", ".join(parts))
    return out


def render(cmp: Comparison, fmt: str = "table") -> str:
    """The comparison in one of :data:`FORMATS`; every format states the unit, test and correction."""
    if fmt == "json":
        return json.dumps(cmp.to_json(), indent=1, ensure_ascii=False, allow_nan=False)  # strict JSON
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}")
    title = (
        f"{cmp.task_title} · {len(cmp.languages)} languages · {cmp.candidate_format} candidates · "
        f"baseline {cmp.pairs[0].baseline if cmp.pairs else '-'}"
    )
    table = {"table": _aligned, "markdown": _markdown, "latex": _latex}[fmt]
    comment = "% " if fmt == "latex" else ""
    out = [f"{comment}{title}", *(f"{comment}{note}" for note in [*cmp.notes, *_seed_lines(cmp)])]
    for pair in cmp.pairs:
        heading = f"{pair.system} vs {pair.baseline}"
        out += ["", f"## {heading}" if fmt == "markdown" else f"{comment}{heading}", ""]
        out += table(*_macro_rows(pair))
        out += ["", f"{comment}per query language: difference (* = significant after correction)", ""]
        out += table(*_language_rows(cmp, pair))
    return "\n".join(out)
