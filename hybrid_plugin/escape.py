"""User text (model names, task titles, notes) shown literally in Markdown, LaTeX and matplotlib plots.

Names come from results files, plug-ins and task folders, so any character can be in them: unescaped,
``<script>`` or ``![](http://tracker)`` becomes markup in a README, ``%`` or a line break ends a LaTeX
table cell or comment early, and ``$\\frac{`` makes matplotlib parse math text and raise while drawing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}|~$])")

LATEX_SPECIAL: Mapping[str, str] = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}


def one_line(text: str) -> str:
    """Runs of whitespace (line breaks included) as one space: a name cannot start a new line of markup."""
    return " ".join(text.split())


def markdown(text: str) -> str:
    """``text`` as Markdown that shows it literally (a table cell, a heading, alt text): on one line,
    HTML-escaped (no tag, entity or autolink), Markdown's specials backslash-escaped (no link, image,
    emphasis or table pipe)."""
    return _MD_SPECIAL.sub(r"\\\1", html.escape(one_line(text), quote=False))


def latex(text: str, symbols: Mapping[str, str] | None = None) -> str:
    """``text`` as LaTeX text-mode source that typesets it literally, on one line; ``symbols`` adds
    replacements (e.g. ``↑`` → ``$\\uparrow$``) made in the same single pass, so that no replacement
    is escaped again."""
    table = {**LATEX_SPECIAL, **(symbols or {})}
    pattern = re.compile("|".join(re.escape(k) for k in sorted(table, key=len, reverse=True)))
    return pattern.sub(lambda m: table[m[0]], one_line(text))


@contextmanager
def plain_plot_text() -> Iterator[None]:
    """Matplotlib draws every text created inside as written: no math text (``$...$``), no TeX.

    Usable as a decorator on a function that builds and saves a figure (tick labels are created
    while drawing, so saving belongs inside too). The backend is left alone.
    """
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        yield
