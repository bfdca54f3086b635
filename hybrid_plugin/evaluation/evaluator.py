"""The Python API: a task name and a model in, typed results out (load → resolve → engine).

``evaluate(EvalConfig(task="xquad-r"))`` gives :class:`~hybrid_plugin.evaluation.results.Results`;
:func:`run_evaluation` gives the engine's whole :class:`~hybrid_plugin.evaluation.engine.Evaluation`
(per-query table, runs; ``.save(out)`` writes the files). ``hybrid_plugin.evaluate`` wraps it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from hybrid_plugin.data.build import load_pool
from hybrid_plugin.data.pool import Pool
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.engine import Evaluation, TaskContext, evaluate_pool
from hybrid_plugin.evaluation.measures import DEFAULT_MEASURES
from hybrid_plugin.evaluation.results import Results
from hybrid_plugin.paths import cache_root
from hybrid_plugin.provenance import portable_path
from hybrid_plugin.scoring.resolve import resolve_retriever
from hybrid_plugin.scoring.tiles import (
    EngineOptions,
    Executor,
    LocalExecutor,
    check_device,
    parse_memory,
    parse_tile,
)


@dataclass
class EvalConfig:
    """Everything that decides an evaluation's numbers (recorded in the results)."""

    task: str  # a built-in task's name or a task folder's path
    model: str | None = None
    languages: str | list[str] | None = None
    candidate_format: str | None = None  # None: the task's default (sentence, or passage)
    data_dir: str | None = None
    run_depth: int | None = 100  # runs for measures ir-measures computes (not native ones); None = full
    ir_measures: tuple[str, ...] = DEFAULT_MEASURES  # standard measures (ir-measures' names)
    batch_size: int = 64
    cache_dir: str | None = None  # embedding cache (default: user cache)
    use_cache: bool = True
    verify: bool = True  # sha256 and published counts; off only for modified local copies
    alignment: bool = False  # add parallel-vs-non-parallel cosine and a language-ID probe
    debias: str | None = None  # "center", "lsar[:R]", "leace": training-free de-biasing of a dense model
    # what the de-biasing is fitted on: "pool" (transductive), a .jsonl/.npz path, or FitTexts
    debias_fit: Any = None
    # how the engine works (never what it computes): tile memory, fixed tile sides, device
    max_memory: str | None = None  # e.g. "2G"; None: a safe share of the free memory
    tile: str | None = None  # "QxC": fixed tile sides (tests, debugging); overrides max_memory
    device: str | None = None  # engine and encoder device: "cpu", "cuda", "cuda:1"; None: cuda if any
    query_prompt: str | None = None  # replaces the model config's query prompt (None: the config's)
    document_prompt: str | None = None  # replaces the model config's document prompt
    # a seeded query perturbation ("typo:0.05", "translit", "codeswitch:0.3"; see data/perturb.py)
    query_perturbation: str | None = None
    perturbation_seed: int = 0
    switch_language: str = "en"  # codeswitch: whose parallel question is swapped in
    executor: str = "local"  # "ray": tiles as Ray tasks, missing embeddings encoded by Ray Data
    ray_address: str | None = None  # HEAD:6379 of a running cluster; None: a local Ray instance
    extra: dict = field(default_factory=dict)

    def engine_options(self) -> EngineOptions:
        """The engine's :class:`~hybrid_plugin.scoring.tiles.EngineOptions` of this configuration."""
        return EngineOptions(
            max_memory=parse_memory(self.max_memory),
            tile=parse_tile(self.tile) if self.tile else None,
            executor=self._executor(),
            device=check_device(self.device),
        )

    def _executor(self) -> Executor:
        if self.executor == "local":
            if self.ray_address:
                raise UserError("--ray-address needs --executor ray")
            return LocalExecutor()
        if self.executor == "ray":
            from hybrid_plugin.evaluation.executors_ray import RayExecutor, check_reachable, import_ray

            import_ray()  # one line if Ray is not installed, before anything is loaded
            if self.ray_address:
                check_reachable(self.ray_address)
            return RayExecutor(address=self.ray_address)
        raise UserError(f"--executor {self.executor!r}: expected local or ray")

    def embedding_cache(self) -> Path | None:
        if not self.use_cache:
            return None
        return Path(self.cache_dir) if self.cache_dir else cache_root() / "embeddings"


def load_task(cfg: EvalConfig) -> tuple[Pool, TaskContext]:
    """The pool of the configured task and languages, and what the results say about its data."""
    t0 = time.perf_counter()
    loaded = load_pool(cfg.task, cfg.languages, cfg.candidate_format, cfg.data_dir, cfg.verify)
    spec, pool = loaded.spec, loaded.pool
    if not pool.query_ids or not pool.cand_ids:
        raise UserError(
            f"empty selection: no queries or candidates for {spec.name} {','.join(pool.languages)}"
        )
    fit = cfg.debias_fit  # a fit set is recorded by its source (model.debias.fit has the rest)
    config = {k: v for k, v in asdict(replace(cfg, debias_fit=None)).items() if k != "extra"} | cfg.extra
    config["debias_fit"] = fit if fit is None or isinstance(fit, str) else fit.source
    if cfg.query_perturbation is None:  # clean results keep their keys
        for key in ("query_perturbation", "perturbation_seed", "switch_language"):
            del config[key]
    for key in (
        "data_dir",
        "cache_dir",
        "trec_out",
        "model",
        "debias_fit",
    ):  # recorded without the machine's layout
        if isinstance(config.get(key), str) and config[key]:
            config[key] = portable_path(config[key])
    if loaded.notes.get("task_folder"):
        config["task"] = loaded.notes["task_folder"]
    context = TaskContext.from_files(
        spec, loaded.files, time.perf_counter() - t0, data_verified=cfg.verify, config=config, **loaded.notes
    )
    return pool, context


def run_evaluation(cfg: EvalConfig, model: Any = None) -> Evaluation:
    """Evaluate ``model`` (else ``cfg.model``: a folder, hub id, ``"bm25"``, ``"muse"``, ``"module:factory"``,
    an object with ``encode``, an encoder or a retriever)."""
    options = cfg.engine_options()
    pool, context = load_task(cfg)
    if cfg.query_perturbation is not None:
        pool = _perturbed(pool, context, cfg)
    if cfg.extra.get("trec_out"):  # before any encoding: ids the TREC files cannot carry
        from hybrid_plugin.evaluation.runs import check_trec_ids

        check_trec_ids(pool)
    encoding = None
    if options.executor.name == "ray" and cfg.embedding_cache() is not None:
        from hybrid_plugin.evaluation.executors_ray import RayEncoding

        encoding = RayEncoding(options.executor)  # type: ignore[arg-type]
    retriever = resolve_retriever(
        cfg.model if model is None else model,
        batch_size=cfg.batch_size,
        cache_root=cfg.embedding_cache(),
        debias=cfg.debias,
        debias_fit=cfg.debias_fit,
        task=pool.task,
        encoding=encoding,
        device=cfg.device,
        query_prompt=cfg.query_prompt,
        document_prompt=cfg.document_prompt,
    )
    return evaluate_pool(
        pool,
        retriever,
        context,
        measures=tuple(cfg.ir_measures),
        run_depth=cfg.run_depth,
        alignment=cfg.alignment,
        options=options,
    )


def _perturbed(pool: Pool, context: TaskContext, cfg: EvalConfig) -> Pool:
    """The pool with its queries perturbed; the results record what and how many changed."""
    from hybrid_plugin.data.perturb import parse_perturbation, perturb_pool

    perturbation = parse_perturbation(cfg.query_perturbation or "", cfg.switch_language)
    perturbed = perturb_pool(pool, perturbation, cfg.perturbation_seed)
    config = context.provenance["config"]
    config["query_perturbation"] = perturbation.name
    config["perturbed_queries"] = {"changed": perturbed.changed, "unchanged": perturbed.unchanged}
    return perturbed.pool


def evaluate(cfg: EvalConfig, model: Any = None) -> Results:
    """Evaluate a model (or BM25: ``model="bm25"`` / ``BM25Params``) on every setting of a task."""
    return run_evaluation(cfg, model).results
