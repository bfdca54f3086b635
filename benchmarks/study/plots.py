"""The report's plots: multi mAP vs bias, the Pareto front and the α sweep (labels drawn literally)."""

from __future__ import annotations

from pathlib import Path

from hybrid_plugin.atomic import write_with
from hybrid_plugin.escape import plain_plot_text

from .records import RunRecord, as_records, by_label
from .tables import sweep_points


@plain_plot_text()  # labels are model and run names: '$' is a dollar sign
def plot_pareto(points: list[dict], task: str, path: Path) -> None:
    """Monolingual vs multilingual mAP of every model: numbered markers with a key (labels never
    overlap), the front as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # the key is as wide as its longest line (7.5 pt monospace: about 0.065 inch a character)
    key_width = max(3.4, 0.065 * (max((len(p["label"]) for p in points), default=0) + 8))
    fig, (ax, key) = plt.subplots(
        1, 2, figsize=(5.1 + key_width, 4.2), gridspec_kw={"width_ratios": [5.1, key_width]}
    )
    front = sorted((p for p in points if not p["dominated_by"]), key=lambda p: p["mono"])
    ax.plot([p["mono"] for p in front], [p["multi"] for p in front], "--", color="0.6", lw=1, zorder=1)
    for i, p in enumerate(points, 1):
        on_front = not p["dominated_by"]
        ax.scatter(p["mono"], p["multi"], s=90, zorder=2, color="tab:blue" if on_front else "tab:gray")
        ax.annotate(str(i), (p["mono"], p["multi"]), ha="center", va="center", fontsize=7, color="white")
    ax.set_xlabel("monolingual mAP (X→X)")
    ax.set_ylabel("multilingual mAP (pool)")
    ax.set_title(f"{task}: mono vs multi trade-off (seed means)", fontsize=9)
    ax.margins(0.12)
    key.axis("off")
    key.text(
        0,
        1,
        "\n".join(
            f"{i:>2}  {p['label']}" + ("" if p["dominated_by"] else "  *") for i, p in enumerate(points, 1)
        )
        + "\n\n* on the Pareto front",
        va="top",
        family="monospace",
        fontsize=7.5,
        transform=key.transAxes,
    )
    _save_png(fig, path)


def _save_png(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"), suffix=".png")
    plt.close(fig)


@plain_plot_text()
def plot_scatter(rows: list[RunRecord], task: str, path: Path) -> None:
    rows = as_records(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 4))
    colors = plt.get_cmap("tab10").colors
    for i, (label, group) in enumerate(by_label([r for r in rows if task in r.tasks]).items()):
        xs = [g.tasks[task].score("max_rank_distance") for g in group]
        ys = [g.tasks[task].score("multi_map") for g in group]
        # past ten models the colours repeat: the marker tells them apart
        ax.scatter(xs, ys, label=label, s=30, color=colors[i % 10], marker="os^Dv"[i // 10 % 5])
    ax.set_xlabel("max rank distance (lower = less language bias)")
    ax.set_ylabel("multilingual mAP")
    ax.set_title(f"{task}: multilingual mAP vs language bias", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)  # off the points
    _save_png(fig, path)


@plain_plot_text()
def plot_alpha(rows: list[RunRecord], task: str, path: Path, batch_size: int) -> bool:
    rows = as_records(rows)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(a, v) for a, seeds in sweep_points(rows, task, "alpha", batch_size).items() for v in seeds]
    if len({a for a, _ in points}) < 3:
        return False
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for metric in ("mono_map", "cross_map", "multi_map"):
        ax.plot([a for a, _ in points], [v.score(metric) for _, v in points], marker="o", label=metric)
    ax.set_xlabel("α (probability of a monolingual batch)")
    ax.set_ylabel("mAP")
    ax.set_title(f"{task}: α sweep", fontsize=9)
    ax.legend(fontsize=8)
    _save_png(fig, path)
    return True
