"""The leaderboard plots: multi mAP against language bias (scatter) and mono / cross / multi mAP (bars).

Both plots number each row by its place in the table (#) and list the numbers with the full names in
a key beside the axes: names never sit on the data, so they cannot overlap. The scatter places each
number where it overlaps no other number, marker or the axes' edge (a thin leader line where it had
to move away), and switches to a log axis when one row's rank distance is ten times another's (BM25:
~11,000 against a few hundred), so the dense models stay apart. Labels are drawn with math text off
(``$`` in a name stays a dollar sign).
"""

from __future__ import annotations

from pathlib import Path

from hybrid_plugin.atomic import write_with
from hybrid_plugin.data.spec import get_spec
from hybrid_plugin.escape import plain_plot_text
from hybrid_plugin.leaderboard.board import Row
from hybrid_plugin.leaderboard.columns import split_rows
from hybrid_plugin.leaderboard.schema import RowBase
from hybrid_plugin.leaderboard.tasks import ranked_specs

PLOTS_DIR = "plots"
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
