"""Present results: a compact console table, the results JSON, an X→Y heatmap and a bias bar chart."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hybrid_plugin.atomic import write_text, write_with
from hybrid_plugin.evaluation.measures import AGGREGATES

COLUMNS = tuple((m.label, m.key) for m in AGGREGATES)


def _fmt(value: float | None, key: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if key == "max_rank_distance" else f"{value:.3f}"


def console_table(results: dict) -> str:
    """Per query language and macro: mono / cross / multi mAP, max rank distance, same-language share."""
    header = ["lang", *(name for name, _ in COLUMNS)]
    rows = [
        [lang, *(_fmt(vals[key], key) for _, key in COLUMNS)]
        for lang, vals in results["per_language"].items()
    ]
    rows.append(["macro", *(_fmt(results["scores"][key], key) for _, key in COLUMNS)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    sep = "-" * len(line(header))
    title = (
        f"{results['task_title']} · {results['model']['name']} · {results['candidate_format']} candidates · "
        f"{results['counts']['settings']['mono']}/{results['counts']['settings']['cross']}/"
        f"{results['counts']['settings']['multi']} settings"
    )
    body = [title, line(header), sep, *(line(r) for r in rows[:-1]), sep, line(rows[-1])]
    by_kind = results.get("standard_measures", {}).get("by_kind") or {}
    if by_kind:
        depth = results["standard_measures"]["run_depth"]
        body.append(f"ir-measures on runs of depth {depth} (macro):")
        for kind, values in by_kind.items():
            body.append(f"  {kind:<5} " + "  ".join(f"{m} {v:.3f}" for m, v in values.items()))
    align = results.get("alignment")
    if align and align.get("parallel_cosine") is not None:
        lid = align["language_id"]
        body.append(
            f"alignment: cosine parallel {align['parallel_cosine']:.3f} vs non-parallel "
            f"{align['non_parallel_cosine']:.3f} (gap {align['gap']:.3f}); language-ID probe accuracy "
            f"{lid['accuracy']:.3f} (majority class {lid['chance']:.3f})"
        )
    t = results["timings"]
    tail = f"metrics {t['metrics_s']:.2f}s · ir-measures {t['ir_measures_s']:.1f}s"
    if "index_s" in t:  # BM25
        missed = results["provenance"]["unretrieved"]["pairs"]["multi"]
        body.append(
            f"BM25 index {t['index_s']:.1f}s · search {t['search_s']:.1f}s · {tail} · "
            f"relevant pairs unretrieved in the pool {missed['unretrieved']} of {missed['relevant']} "
            "(AP counts them 0)"
        )
    else:
        body.append(
            f"texts encoded {results['counts']['texts_encoded']} of {results['counts']['unique_texts']} "
            f"unique · encode {t['encode_s']:.1f}s · {tail}"
        )
    return "\n".join(body)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[-80:] or "model"


def result_stem(results: dict) -> str:
    fmt = results["candidate_format"].replace("+", "-")
    return f"{results['task']}__{slug(results['model']['name'])}__{fmt}"


def plot_cross_heatmap(results: dict, path: Path) -> None:
    """Heatmap of X→Y mAP (rows: query language, columns: candidate language, diagonal = mono)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    langs = results["languages"]
    grid = np.full((len(langs), len(langs)), np.nan)
    for i, x in enumerate(langs):
        for j, y in enumerate(langs):
            entry = results["settings"].get(f"{x}-{y}")
            if entry:
                grid[i, j] = entry["map"]
    size = 1.2 + 0.55 * len(langs)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(langs)), langs)
    ax.set_yticks(range(len(langs)), langs)
    ax.set_xlabel("candidate language Y")
    ax.set_ylabel("query language X")
    for i in range(len(langs)):
        for j in range(len(langs)):
            if not np.isnan(grid[i, j]):
                color = "black" if grid[i, j] > 0.6 else "white"
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=7, color=color)
    ax.set_title(f"{results['task_title']} X→Y mAP\n{results['model']['name']}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"), suffix=".png")
    plt.close(fig)


def plot_rank_distance(results: dict, path: Path) -> None:
    """Bar chart of mean max rank distance per query language (multilingual pool), macro as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = [lang for lang, v in results["per_language"].items() if v["max_rank_distance"] is not None]
    values = [results["per_language"][lang]["max_rank_distance"] for lang in langs]
    fig, ax = plt.subplots(figsize=(1.5 + 0.5 * max(len(langs), 2), 3.4))
    ax.bar(langs, values, color="#4c72b0")
    macro = results["scores"]["max_rank_distance"]
    if macro is not None:
        ax.axhline(macro, color="#dd8452", linestyle="--", label=f"macro {macro:.1f}")
        ax.legend(fontsize=8)
    ax.set_ylabel("max rank distance (lower = less biased)")
    ax.set_xlabel("query language")
    ax.set_title(f"{results['task_title']} language bias\n{results['model']['name']}", fontsize=9)
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"), suffix=".png")
    plt.close(fig)


def write_results(results: dict, out_dir: Path) -> dict[str, Path]:
    """Write the results JSON and both plots into ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    stem = result_stem(results)
    paths = {
        "results": out_dir / f"{stem}.json",
        "heatmap": out_dir / f"{stem}__cross_map.png",
        "rank_distance": out_dir / f"{stem}__rank_distance.png",
    }
    write_text(paths["results"], json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    plot_cross_heatmap(results, paths["heatmap"])
    plot_rank_distance(results, paths["rank_distance"])
    return paths
