"""The one scoring engine: (pool, retriever) → typed results with per-query values.

``hybrid-plugin evaluate``, the Python API and the MTEB tasks all call :func:`evaluate_pool`. It scores
the pool once, finds the exact rank of every relevant candidate in every setting, computes the per-query
table (AP, first relevant rank, standard measures, pool bias values) and aggregates it: per setting,
per query language, macro. Measures that are not native go to ir-measures on runs of ``run_depth``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_plugin.data.pool import Pool
from hybrid_plugin.data.settings import Setting
from hybrid_plugin.data.spec import SETTING_KINDS, SettingKind
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.measures import (
    DEFAULT_MEASURES,
    MAX_RANK_DISTANCE,
    MEASURES,
    TOP_K,
    RankMeasure,
    native_measure,
)
from hybrid_plugin.evaluation.perquery import QueryTable, query_table
from hybrid_plugin.evaluation.results import (
    LanguageScores,
    Results,
    Scores,
    SettingResult,
    StandardMeasures,
)
from hybrid_plugin.evaluation.runs import SettingRun, ir_measures_by_setting, top_k_runs
from hybrid_plugin.scoring.ranking import (
    DenseScoreMatrix,
    PoolRankings,
    RelevantRanks,
    pool_rankings,
    rank_pool,
)
from hybrid_plugin.scoring.retriever import Retrieval, Retriever
from hybrid_plugin.scoring.tiles import EngineOptions

UNRETRIEVED_RULE = (
    "A candidate a retriever does not return (BM25: it shares no term with the query) is "
    "unretrieved. AP counts an unretrieved relevant candidate as precision 0, as trec_eval and "
    "ir-measures do on the run. Rank-based metrics (max rank distance, same-language top share, "
    "mean rank) place unretrieved candidates below every retrieved one, among themselves in "
    "trec_eval's tie order (document id descending). Dense models retrieve every candidate."
)


@dataclass
class TaskContext:
    """What the results say about the task and data (the engine itself only sees the pool)."""

    task: str
    title: str
    in_domain_training: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict)  # spec, data origin, sha256, config, ...
    load_s: float = 0.0

    @classmethod
    def from_files(cls, spec: Any, files: Any, load_s: float, **provenance: Any) -> TaskContext:
        """The context of a task spec and its resolved files (``data.files.ResolvedFiles``), plus extras."""
        return cls(
            task=spec.name,
            title=spec.title,
            in_domain_training=spec.in_domain_training,
            provenance={
                "spec": spec.source and Path(spec.source).name,
                "data_origin": files.origin,
                "data_sha256": files.sha256,
                "origin_commit": spec.origin_commit or None,  # None: a user task folder
                **provenance,
            },
            load_s=load_s,
        )


@dataclass(frozen=True)
class SavedFiles:
    """What :meth:`Evaluation.save` wrote: the results JSON and, by kind, every file beside it."""

    results: Path
    per_query: Path | None = None
    plots: dict[str, Path] = field(default_factory=dict)  # "heatmap" or "mono", "rank_distance"
    artifacts: dict[str, Path] = field(default_factory=dict)  # e.g. a fitted de-biasing map, by name
    trec: list[Path] = field(default_factory=list)  # {setting}.qrels and {setting}.run
    trec_out: Path | None = None

    def summary(self) -> str:
        """The CLI's one line: every file, the TREC folder as ``DIR/(N files)``."""
        paths = [*([self.per_query] if self.per_query else []), self.results, *self.plots.values()]
        paths += self.artifacts.values()
        if self.trec_out is not None:
            paths.append(self.trec_out / f"({len(self.trec)} files)")
        return "wrote " + ", ".join(str(p) for p in paths)


@dataclass
class Evaluation:
    """The engine's output: typed results, the per-query table, and what runs/TREC files are made from."""

    results: Results
    table: QueryTable
    pool: Pool
    scored: Retrieval
    options: EngineOptions = field(default_factory=EngineOptions)
    run_depth: int | None = 100  # the depth of its runs (TREC files); None = full

    def runs(self, depth: int | None) -> list[SettingRun]:
        """Every setting's run cut at ``depth`` (``None``: full), in trec_eval's order."""
        return top_k_runs(self.pool, self.scored.matrix, depth, options=self.options)

    def save(
        self,
        out: str | Path,
        *,
        per_query: bool = True,
        plots: bool = True,
        trec_out: str | Path | None = None,
        name: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> SavedFiles:
        """Write what ``hybrid-plugin evaluate`` writes, the one way every caller writes it.

        Into ``out``: the per-query Parquet file (unless ``per_query=False``; ``compare`` and the
        board's intervals need it), the results JSON naming it with its sha256, the plots, and the
        retriever's artifacts (a fitted de-biasing map the results record). ``trec_out``: a folder
        for TREC qrels and runs cut at :attr:`run_depth`. ``name``: the files' stem (default
        ``task__model__format``); ``extra``: more top-level fields for the results JSON.
        """
        from hybrid_plugin.atomic import write_bytes
        from hybrid_plugin.evaluation.perquery import to_arrow
        from hybrid_plugin.evaluation.report import write_results

        out = Path(out)
        if trec_out is not None and self.run_depth == 0:
            raise UserError("TREC files need runs: evaluate with a run depth (N or full), not 0")
        results = self.results
        if extra:
            results = Results.from_json(results.to_json() | extra)
        table = None
        if per_query:
            meta = {
                "task": results.task,
                "model": results.model["name"],
                "fingerprint": results.model["fingerprint"],
            }
            table = to_arrow(self.table, self.pool, meta)
        paths = write_results(results, out, table, stem=name, plots=plots)
        artifacts = {}
        for file, data in self.scored.artifacts.items():
            write_bytes(out / file, data)
            artifacts[file] = out / file
        trec: list[Path] = []
        if trec_out is not None:
            from hybrid_plugin.evaluation.trec import write_trec

            trec = write_trec(self.pool, self.runs(self.run_depth), Path(trec_out), tag=self.scored.tag)
        return SavedFiles(
            results=paths.pop("results"),
            per_query=paths.pop("per_query", None),
            plots=paths,
            artifacts=artifacts,
            trec=trec,
            trec_out=Path(trec_out) if trec_out is not None else None,
        )


def split_measures(measures: tuple[str, ...]) -> tuple[tuple[RankMeasure, ...], tuple[str, ...]]:
    """(measures the engine computes exactly, measure strings left to ir-measures)."""
    native, other = [], []
    for text in measures:
        parsed = native_measure(text)
        if parsed is None:
            other.append(text)
        elif parsed.name != text:
            raise UserError(f"measure {text!r}: write it as {parsed.name!r}")
        else:
            native.append(parsed)
    return tuple(native), tuple(other)


def _setting_results(pool: Pool, table: QueryTable) -> dict[Setting, SettingResult]:
    sizes = np.bincount(pool.cand_lang, minlength=len(pool.languages))
    index = {lang: i for i, lang in enumerate(pool.languages)}
    out = {}
    for i, setting in enumerate(table.settings):
        rows = table.rows(i)
        out[setting] = SettingResult(
            kind=setting.kind,
            queries=rows.stop - rows.start,
            map=float(table.ap[rows].mean()),
            candidates=len(pool.cand_ids) if setting.is_pool else int(sizes[index[setting.target]]),
            measures={name: float(values[rows].mean()) for name, values in table.measures.items()},
        )
    return out


def _language_scores(
    pool: Pool, table: QueryTable, settings: dict[Setting, SettingResult]
) -> dict[str, LanguageScores]:
    """Per query language, every registered measure aggregated from its per-query values (as
    ``compare`` recomputes them), and the pool's rank-distance count (also set on each pool setting)."""
    columns = table.columns()
    of_kind = {kind: columns["kind"] == kind for kind in SETTING_KINDS}
    setting_lang = [pool.languages.index(s.query_lang) for s in table.settings]
    n_lang = len(pool.languages)
    scores: dict[str, list[float | None]] = {}
    for m in MEASURES:
        values = np.where(of_kind[m.kind], m.values(columns), np.nan)
        scores[m.key] = m.aggregate.per_language(values, table.setting_ptr, setting_lang, n_lang)
    out = {}
    for x, lang in enumerate(pool.languages):
        pool_setting = Setting(lang, None)
        count = 0
        if pool_setting in settings:
            distance = table.rank_distance[table.rows(table.settings.index(pool_setting))]
            count = int((~np.isnan(distance)).sum())
            settings[pool_setting].max_rank_distance = scores[MAX_RANK_DISTANCE.key][x]
        out[lang] = LanguageScores(
            rank_distance_queries=count, **{key: values[x] for key, values in scores.items()}
        )
    return out


def _matrix(pool: Pool, x: np.ndarray, y: np.ndarray, values: np.ndarray) -> dict[str, dict[str, float]]:
    """X×Y mean of ``values`` keyed by (x, y) language indices (nan values left out)."""
    n_lang = len(pool.languages)
    ok = ~np.isnan(values)
    pair = x[ok] * n_lang + y[ok]
    total = np.bincount(pair, weights=values[ok], minlength=n_lang * n_lang)
    count = np.bincount(pair, minlength=n_lang * n_lang)
    return {
        lx: {
            ly: float(total[i * n_lang + j] / count[i * n_lang + j])
            for j, ly in enumerate(pool.languages)
            if count[i * n_lang + j]
        }
        for i, lx in enumerate(pool.languages)
    }


def _bias_matrices(pool: Pool, rankings: PoolRankings) -> dict[str, dict[str, dict[str, float]]]:
    """X×Y rank correlation of parallel queries and X×Y language share of the top k."""
    n_lang = len(pool.languages)
    retrieved = rankings.top_counts.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(retrieved > 0, rankings.top_counts / retrieved, np.nan)
    queries = np.repeat(np.arange(len(pool.query_ids)), n_lang)
    return {
        "rank_correlation": _matrix(
            pool,
            pool.query_lang[rankings.pair_query],
            pool.query_lang[rankings.pair_other],
            rankings.pair_corr,
        ),
        f"top{TOP_K}_language_share": _matrix(
            pool, pool.query_lang[queries], np.tile(np.arange(n_lang), len(pool.query_ids)), share.ravel()
        ),
    }


def _mean_rank(pool: Pool, ranks: RelevantRanks) -> dict[str, dict[str, float]]:
    """X×Y: mean pool rank of the relevant candidate in Y for queries in X (tasks with a pool)."""
    if SettingKind.MULTI not in pool.settings:
        return {}
    n_lang = len(pool.languages)
    pair = pool.query_lang[ranks.query] * n_lang + pool.cand_lang[ranks.cand]
    order = np.argsort(pair, kind="stable")  # each pair's ranks in their original order: same sums as ever
    bounds = np.searchsorted(pair[order], np.arange(n_lang * n_lang + 1))
    ranked = ranks.rank_pool[order]
    out: dict[str, dict[str, float]] = {}
    for x, lx in enumerate(pool.languages):
        out[lx] = {}
        for y, ly in enumerate(pool.languages):
            a, b = bounds[x * n_lang + y], bounds[x * n_lang + y + 1]
            if b > a:
                out[lx][ly] = float(ranked[a:b].mean())
    return out


def _by_kind(settings: dict[Setting, SettingResult]) -> dict[str, dict[str, float]]:
    """Each standard measure per kind with mAP's averaging: per setting → per query language → macro."""
    summary: dict[str, dict[str, float]] = {}
    for kind in SETTING_KINDS:
        per_lang: dict[str, list[dict[str, float]]] = {}
        for setting, result in settings.items():
            if setting.kind == kind and result.measures:
                per_lang.setdefault(setting.query_lang, []).append(result.measures)
        if per_lang:
            names = next(iter(per_lang.values()))[0].keys()
            summary[kind] = {
                m: float(np.mean([np.mean([e[m] for e in entries]) for entries in per_lang.values()]))
                for m in names
            }
    return summary


def _unretrieved(pool: Pool, ranks: RelevantRanks) -> dict:
    """How many (query, relevant candidate) pairs the retriever did not retrieve, per kind of setting."""
    missed = np.zeros(len(ranks.query), dtype=bool) if ranks.retrieved is None else ~ranks.retrieved
    same = pool.cand_lang[ranks.cand] == pool.query_lang[ranks.query]
    counts = {
        kind: {"relevant": int(mask.sum()), "unretrieved": int((missed & mask).sum())}
        for kind, mask in (
            (SettingKind.MONO, same),
            (SettingKind.CROSS, ~same),
            (SettingKind.MULTI, np.ones_like(same)),
        )
    }
    return {"rule": UNRETRIEVED_RULE, "pairs": counts}


def evaluate_pool(
    pool: Pool,
    retriever: Retriever,
    context: TaskContext,
    *,
    measures: tuple[str, ...] = DEFAULT_MEASURES,
    run_depth: int | None = 100,
    alignment: bool = False,
    options: EngineOptions | None = None,
) -> Evaluation:
    """Score ``pool`` with ``retriever`` and evaluate every setting exactly.

    ``measures`` are ir-measures strings: the native ones (:func:`native_measure`) are exact over the
    full ranking; the others are computed by ir-measures on runs cut at ``run_depth`` (``None`` = full).
    ``options`` say how: tile memory budget, executor (local or Ray), device; never what is computed.
    """
    options = options or EngineOptions()
    if not pool.query_ids or not pool.cand_ids:
        raise UserError(
            f"empty selection: no queries or candidates for {pool.task} {','.join(pool.languages)}"
        )
    native, other = split_measures(tuple(measures))
    if other and run_depth == 0:
        raise UserError(f"measures {', '.join(other)} need runs: give a run depth (N or full), not 0")
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    scored = retriever.score(pool)
    if alignment and not isinstance(scored.matrix, DenseScoreMatrix):
        raise UserError("--alignment needs an embedding model; this retriever has no embeddings")
    t_scored = time.perf_counter()

    scorer = scored.matrix
    device = options.torch_device()
    if isinstance(scorer, DenseScoreMatrix) and scorer.device != device:
        scorer = scorer.on(device)
    multi = SettingKind.MULTI in pool.settings
    depth_needed = run_depth if (other and run_depth is not None) else 0
    ranking = rank_pool(pool, scorer, options, top_k=max(TOP_K if multi else 0, depth_needed))
    ranks = ranking.ranks
    assert ranks is not None
    rankings = pool_rankings(pool, scorer, TOP_K, options=options, ranking=ranking) if multi else None
    table = query_table(pool, ranks, native, rankings)
    settings = _setting_results(pool, table)
    per_language = _language_scores(pool, table, settings)
    t_metrics = time.perf_counter()

    if other:
        runs = top_k_runs(pool, scorer, run_depth, options=options, ranking=ranking)
        by_setting = ir_measures_by_setting(pool, runs, list(other))
        for setting, result in settings.items():
            result.measures.update(by_setting[setting.key])
    t_ir = time.perf_counter()

    blocks: dict[str, Any] = {}
    if alignment:
        from hybrid_plugin.evaluation.alignment import alignment as measure_alignment

        blocks["alignment"] = measure_alignment(pool, scorer.all_candidate_embeddings())
    t_align = time.perf_counter()

    macro = Scores(
        **{m.key: m.aggregate.macro([v.get(m.key) for v in per_language.values()]) for m in MEASURES}
    )
    results = Results(
        task=context.task,
        task_title=context.title,
        languages=list(pool.languages),
        candidate_format=pool.candidate_format,
        setting_kinds=list(pool.settings),
        in_domain_training=list(context.in_domain_training),
        scores=macro,
        per_language=per_language,
        standard_measures=StandardMeasures(
            run_depth=run_depth if other else None,
            by_kind=_by_kind(settings),
            native=[m.name for m in native],
        ),
        bias={"mean_rank": _mean_rank(pool, ranks), **(_bias_matrices(pool, rankings) if rankings else {})},
        settings={s.key: r for s, r in settings.items()},
        counts={
            "settings": {k: sum(1 for s in settings if s.kind == k) for k in SETTING_KINDS},
            "queries": len(pool.query_ids),
            "candidates": len(pool.cand_ids),
            **scored.counts,
        },
        model=scored.model,
        provenance={
            **context.provenance,
            "versions": scored.versions,
            "device": scored.device,
            "started": started.isoformat(timespec="seconds"),
            "seed": None,
            "unretrieved": _unretrieved(pool, ranks),
            "engine": {
                **ranking.describe(options),
                **({"rank_correlation": rankings.rank_correlation} if rankings else {}),
            },
        },
        timings={
            "load_s": round(context.load_s, 3),
            **scored.timings,
            "metrics_s": round(t_metrics - t_scored, 3),
            "ir_measures_s": round(t_ir - t_metrics, 3),
            "alignment_s": round(t_align - t_ir, 3),
            "total_s": round(context.load_s + t_align - t0, 3),
        },
        **blocks,
    )
    return Evaluation(results, table, pool, scored, options, run_depth)
