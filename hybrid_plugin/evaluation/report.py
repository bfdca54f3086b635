"""Write one evaluation's files: the per-query Parquet file, the results JSON naming it, and its plots."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from hybrid_plugin.atomic import write_text, write_with
from hybrid_plugin.data.spec import SettingKind
from hybrid_plugin.evaluation.perquery import PER_QUERY_SCHEMA, write_parquet
from hybrid_plugin.evaluation.plots import plot_cross_heatmap, plot_mono, plot_rank_distance
from hybrid_plugin.evaluation.results import PerQueryFile, Results


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")[-80:] or "model"


def result_stem(results: Results) -> str:
    fmt = results.candidate_format.replace("+", "-")
    return f"{results.task}__{slug(results.model['name'])}__{fmt}"


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
