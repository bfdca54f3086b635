"""The plots of one evaluation (X→Y heatmap, per-language mono bars, rank-distance chart) on
matplotlib's Agg canvas, never pyplot."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from hybrid_plugin.atomic import write_with
from hybrid_plugin.data.settings import Setting
from hybrid_plugin.data.spec import SettingKind
from hybrid_plugin.escape import plain_plot_text
from hybrid_plugin.evaluation.console import MONO_MEASURE
from hybrid_plugin.evaluation.results import Results


def model_label(model: Mapping[str, Any]) -> str:
    """A model as a plot title names it: hub id or the last two folders of its path, and a short fingerprint.

    Never the machine's absolute path: titles end up in committed PNGs.
    """
    name = str(model.get("name") or "model").replace("\\", "/")
    if name.startswith(("/", "~", ".")) or name.count("/") > 1:
        parts = [p for p in PurePath(name).parts if p not in ("/", "~", ".", "..")]
        name = "/".join(parts[-2:]) or "model"
    fingerprint = str(model.get("fingerprint") or "")[:12]
    return f"{name} · {fingerprint}" if fingerprint else name


PLOT_DPI = 120


def preload_plotting() -> threading.Thread:
    """Import matplotlib's Agg canvas on a background thread (about 0.3 s) while the engine computes,
    so the plots after it cost only their drawing. Python's import lock makes a later import wait for
    this one rather than repeat it."""

    def load() -> None:
        try:
            import matplotlib.backends.backend_agg  # noqa: F401
            import matplotlib.figure  # noqa: F401
        except Exception:  # the plot itself will report it
            pass

    # not a daemon: a command that fails early must not let the interpreter finalise while this thread
    # is inside matplotlib's C extensions (that aborted with "terminate called without an active
    # exception", exit -6, after the one-line error); exit waits for the import (< 1 s) instead
    thread = threading.Thread(target=load, name="preload-matplotlib", daemon=False)
    thread.start()
    return thread


def _figure(figsize: tuple[float, float]) -> tuple[Any, Any]:
    """A figure with one axes on matplotlib's Agg canvas.

    No pyplot: importing it costs more, and ``matplotlib.use`` would switch the backend of a caller's
    own session; a figure no pyplot knows needs no closing either.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _save_png(fig: Any, path: Path) -> None:
    """Lay the figure out once (tight) and write it.

    After ``tight_layout`` the figure keeps a placeholder layout engine, for which ``savefig`` draws
    the whole figure once more before drawing it for real; the layout is final, so the engine goes.
    """
    fig.tight_layout()
    fig.set_layout_engine(None)
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=PLOT_DPI, format="png"), suffix=".png")


@plain_plot_text()  # a '$' in a task title or model name is a dollar sign
def plot_cross_heatmap(results: Results, path: Path) -> None:
    """Heatmap of X→Y mAP (rows: query language, columns: candidate language, diagonal = mono)."""
    import numpy as np

    langs = results.languages
    grid = np.full((len(langs), len(langs)), np.nan)
    for i, x in enumerate(langs):
        for j, y in enumerate(langs):
            entry = results.setting(Setting(x, y))
            if entry:
                grid[i, j] = entry.map
    size = 1.2 + 0.55 * len(langs)
    fig, ax = _figure((size + 1.2, size))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(langs)), langs)
    ax.set_yticks(range(len(langs)), langs)
    ax.set_xlabel("candidate language Y")
    ax.set_ylabel("query language X")
    for i in range(len(langs)):
        for j in range(len(langs)):
            if not np.isnan(grid[i, j]):
                color = "black" if grid[i, j] > 0.6 else "white"
                label = ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7, color=color)
                label.set_in_layout(False)  # inside its cell: the layout need not measure it
    ax.set_title(f"{results.task_title} X→Y mAP\n{model_label(results.model)}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    _save_png(fig, path)


@plain_plot_text()
def plot_rank_distance(results: Results, path: Path) -> None:
    """Bar chart of mean max rank distance per query language (multilingual pool), macro as a line."""
    langs = [lang for lang, v in results.per_language.items() if v.max_rank_distance is not None]
    values = [results.per_language[lang].max_rank_distance for lang in langs]
    fig, ax = _figure((1.5 + 0.5 * max(len(langs), 2), 3.4))
    ax.bar(langs, values, color="#4c72b0")
    macro = results.scores.max_rank_distance
    if macro is not None:
        ax.axhline(macro, color="#dd8452", linestyle="--", label=f"macro {macro:.1f}")
        ax.legend(fontsize=8)
    ax.set_ylabel("max rank distance (lower = less biased)")
    ax.set_xlabel("query language")
    ax.set_title(f"{results.task_title} language bias\n{model_label(results.model)}", fontsize=9)
    _save_png(fig, path)


@plain_plot_text()
def plot_mono(results: Results, path: Path) -> None:
    """Monolingual-only tasks: per query language, X→X mAP and nDCG@10 side by side (macro as lines)."""
    import numpy as np

    langs = list(results.per_language)
    series = [("mAP", [results.per_language[x].mono_map for x in langs], results.scores.mono_map)]
    by_kind = results.standard_measures.by_kind
    if MONO_MEASURE in by_kind.get(SettingKind.MONO, {}):
        values = [results.setting(Setting(x, x)).measures[MONO_MEASURE] for x in langs]
        series.append((MONO_MEASURE, values, by_kind[SettingKind.MONO][MONO_MEASURE]))
    width = 0.8 / len(series)
    fig, ax = _figure((3.2 + 0.6 * max(len(langs), 2), 3.4))
    for i, ((label, values, macro), color) in enumerate(zip(series, ("#4c72b0", "#55a868"))):
        offset = (i - (len(series) - 1) / 2) * width
        ax.bar(np.arange(len(langs)) + offset, values, width, color=color, label=label)
        ax.axhline(macro, color=color, linestyle="--", linewidth=1, label=f"macro {label} {macro:.3f}")
    ax.set_xticks(range(len(langs)), langs)
    ax.set_ylim(0, 1)
    ax.set_xlabel("language (queries and candidates)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: never over a bar
    ax.set_title(f"{results.task_title} monolingual X→X\n{model_label(results.model)}", fontsize=9)
    _save_png(fig, path)
