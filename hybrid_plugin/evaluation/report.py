"""Present results: a compact console table, the results JSON, an X→Y heatmap and a bias bar chart."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

from hybrid_plugin.atomic import write_text, write_with
from hybrid_plugin.data.settings import Setting
from hybrid_plugin.data.spec import SETTING_KINDS, SettingKind
from hybrid_plugin.escape import plain_plot_text
from hybrid_plugin.evaluation.measures import MEASURES
from hybrid_plugin.evaluation.perquery import PER_QUERY_SCHEMA, write_parquet
from hybrid_plugin.evaluation.results import PerQueryFile, Results, Scores

MONO_MEASURE = "nDCG@10"  # the standard measure shown per language for monolingual-only tasks


def _fmt(value: float | None, key: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if key == "max_rank_distance" else f"{value:.3f}"


def scores_line(scores: Scores) -> str:
    """Macro scores on one line, leaving out those a task does not have (``None``)."""
    values = [(m, scores.get(m.key)) for m in MEASURES.classic()]
    return "  ".join(
        f"{m.label} {v:.1f}" if m.key == "max_rank_distance" else f"{m.label} {v:.4f}"
        for m, v in values
        if v is not None
    )


def _mono_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    """Monolingual-only task: per language its queries, candidates, mAP and nDCG@10 (if measured)."""
    header = ["lang", "queries", "candidates", "mAP"]
    by_kind = results.standard_measures.by_kind
    with_measure = MONO_MEASURE in by_kind.get(SettingKind.MONO, {})
    if with_measure:
        header.append(MONO_MEASURE)
    rows = []
    for lang, vals in results.per_language.items():
        entry = results.setting(Setting(lang, lang))
        row = [lang, str(entry.queries if entry else 0), str(entry.candidates if entry else 0)]
        row.append(_fmt(vals.mono_map, ""))
        if with_measure:
            row.append(_fmt(entry.measures.get(MONO_MEASURE) if entry else None, ""))
        rows.append(row)
    c = results.counts
    macro = ["macro", str(c["queries"]), str(c["candidates"]), _fmt(results.scores.mono_map, "")]
    if with_measure:
        macro.append(_fmt(by_kind[SettingKind.MONO][MONO_MEASURE], ""))
    return header, [*rows, macro]


def console_table(results: Results) -> str:
    """Per query language and macro: the mAP of each setting kind the task has, and (with a multilingual
    pool) max rank distance and same-language share; monolingual-only tasks show mAP and nDCG@10."""
    kinds = results.kinds
    counts = results.counts["settings"]
    if kinds == (SettingKind.MONO,):
        header, rows = _mono_rows(results)
        settings = f"{counts[SettingKind.MONO]} monolingual settings (no cross-lingual or multilingual ones)"
    else:
        columns = [(m.label, m.key) for m in MEASURES.classic() if m.kind in kinds]
        header = ["lang", *(name for name, _ in columns)]
        rows = [
            [lang, *(_fmt(getattr(vals, key), key) for _, key in columns)]
            for lang, vals in results.per_language.items()
        ]
        rows.append(["macro", *(_fmt(results.scores.get(key), key) for _, key in columns)])
        settings = "/".join(str(counts[k]) for k in SETTING_KINDS) + " settings"
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    sep = "-" * len(line(header))
    title = (
        f"{results.task_title} · {results.model['name']} · {results.candidate_format} candidates · {settings}"
    )
    body = [title, line(header), sep, *(line(r) for r in rows[:-1]), sep, line(rows[-1])]
    bias = [
        (m.label, results.scores.get(m.key))
        for m in MEASURES.later()
        if results.scores.get(m.key) is not None
    ]
    if bias:
        body.append("language bias in the pool (macro): " + "  ".join(f"{k} {v:.3f}" for k, v in bias))
    standard = results.standard_measures
    if standard.by_kind:
        body.append(f"standard measures (macro; {_measures_source(standard)}):")
        for kind, values in standard.by_kind.items():
            body.append(f"  {kind:<5} " + "  ".join(f"{m} {v:.3f}" for m, v in values.items()))
    align = results.alignment
    if align and align.get("parallel_cosine") is not None:
        lid = align["language_id"]
        body.append(
            f"alignment: cosine parallel {align['parallel_cosine']:.3f} vs non-parallel "
            f"{align['non_parallel_cosine']:.3f} (gap {align['gap']:.3f}); language-ID probe accuracy "
            f"{lid['accuracy']:.3f} (majority class {lid['chance']:.3f})"
        )
    t = results.timings
    tail = f"metrics {t['metrics_s']:.2f}s · ir-measures {t['ir_measures_s']:.1f}s"
    if "index_s" in t:  # BM25
        missed = results.provenance["unretrieved"]["pairs"][SettingKind.MULTI]
        body.append(
            f"BM25 index {t['index_s']:.1f}s · search {t['search_s']:.1f}s · {tail} · "
            f"relevant pairs unretrieved in the pool {missed['unretrieved']} of {missed['relevant']} "
            "(AP counts them 0)"
        )
    else:
        body.append(
            f"texts encoded {results.counts['texts_encoded']} of {results.counts['unique_texts']} "
            f"unique · encode {t['encode_s']:.1f}s · {tail}"
        )
    return "\n".join(body)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[-80:] or "model"


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


def result_stem(results: Results) -> str:
    fmt = results.candidate_format.replace("+", "-")
    return f"{results.task}__{slug(results.model['name'])}__{fmt}"


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


def _measures_source(standard: Any) -> str:
    native = set(standard.native)
    others = [m for values in standard.by_kind.values() for m in values if m not in native]
    if not others:
        return "exact, full ranking"
    exact = ", ".join(standard.native) or "none"
    via_runs = ", ".join(dict.fromkeys(others))
    return f"exact: {exact}; ir-measures on runs of depth {standard.run_depth or 'full'}: {via_runs}"


def write_per_query(results: Results, per_query: Any, results_path: Path) -> Results:
    """Write the per-query table (pyarrow) beside ``results_path`` as ``<stem>.queries.parquet``; the
    results, recording its name and sha256, to be written next (the file comes first)."""
    path = Path(results_path).with_name(Path(results_path).stem + ".queries.parquet")
    write_with(path, lambda tmp: write_parquet(per_query, tmp), suffix=".parquet")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    record = PerQueryFile(
        file=path.name, sha256=digest, schema_version=PER_QUERY_SCHEMA, rows=per_query.num_rows
    )
    return results.model_copy(update={"per_query": record})


def write_results(
    results: Results, out_dir: Path, per_query: Any = None, *, stem: str | None = None, plots: bool = True
) -> dict[str, Path]:
    """Write the per-query file (if given), the results JSON and its plots into ``out_dir``.

    ``per_query`` is the engine's per-query table as pyarrow (``perquery.to_arrow``); it is written
    first so the JSON can name it with its sha256. Plots: the X→Y heatmap (tasks with cross-lingual
    settings) or per-language mono bars (tasks without), and the rank-distance chart (with a pool).
    ``stem`` names the files (default :func:`result_stem`).
    """
    out_dir = Path(out_dir)
    stem = stem or result_stem(results)
    kinds = results.kinds
    paths: dict[str, Path] = {}
    if per_query is not None:
        paths["per_query"] = out_dir / f"{stem}.queries.parquet"
        results = write_per_query(results, per_query, out_dir / f"{stem}.json")
    paths["results"] = out_dir / f"{stem}.json"
    try:
        write_text(paths["results"], results.dumps())
    except BaseException:  # no per-query file without the results that name it
        if "per_query" in paths:
            paths["per_query"].unlink(missing_ok=True)
        raise
    if not plots:
        return paths
    if SettingKind.CROSS in kinds:
        paths["heatmap"] = out_dir / f"{stem}__cross_map.png"
        plot_cross_heatmap(results, paths["heatmap"])
    else:
        paths["mono"] = out_dir / f"{stem}__mono.png"
        plot_mono(results, paths["mono"])
    if SettingKind.MULTI in kinds:
        paths["rank_distance"] = out_dir / f"{stem}__rank_distance.png"
        plot_rank_distance(results, paths["rank_distance"])
    return paths
