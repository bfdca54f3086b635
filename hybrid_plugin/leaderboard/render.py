"""Render the leaderboards: ``README.md`` (:mod:`.markdown`), ``index.html`` (:mod:`.page`) and the
plots (:mod:`.plots`), or with ``check`` say which of them are out of date.

Nothing a row says reaches the output unescaped: Markdown cells are HTML-escaped and have Markdown's
special characters backslash-escaped; every HTML text and attribute goes through :func:`html.escape`;
the page loads no external resource and its Content-Security-Policy allows only its own inline
style and script (by hash), so even a markup cell that slipped past validation would not run.
"""

from __future__ import annotations

from pathlib import Path

from hybrid_plugin.atomic import write_text
from hybrid_plugin.leaderboard.board import board_lock, read_board
from hybrid_plugin.leaderboard.markdown import render_readme
from hybrid_plugin.leaderboard.page import render_html
from hybrid_plugin.leaderboard.plots import planned_plots, write_plots


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
