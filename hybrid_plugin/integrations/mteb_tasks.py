"""XQuADR and MLQAR as MTEB retrieval tasks (imports mteb; loaded when the tasks are registered or used).

One task per LAReQA spec, one subset per setting (names and metadata:
:mod:`~hybrid_plugin.integrations.mteb_metadata`). A task keeps no encode or scoring code of its own:
once per (model, split) it hands the pool of the selected subsets to the one engine
(:func:`~hybrid_plugin.evaluation.engine.evaluate_pool`) with a dense retriever over the model's MTEB
``encode`` (:class:`~hybrid_plugin.integrations.mteb_encoder.MTEBEncoder`, through the embedding store
shared with ``hybrid-plugin evaluate``), then gives each subset's top-k run to MTEB's own retrieval
scoring and adds the engine's typed per-setting values as task-specific scores. So ``map`` is exactly
the evaluator's per-setting ``map``, and every standard measure the engine computes appears under its
ir-measures name (``nDCG@10``, ``R@100``, ``RR``, ...: exact over the full ranking, next to MTEB's
``ndcg_at_10``, ... from the top-k run).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from mteb.abstasks.retrieval import AbsTaskRetrieval

from hybrid_plugin.data.pool import Pool
from hybrid_plugin.data.settings import Setting, pool_settings, relevant_in
from hybrid_plugin.data.spec import TaskSpec, get_spec
from hybrid_plugin.integrations.mteb_metadata import (  # noqa: F401 - re-exported
    LANGUAGE_SCRIPTS,
    SPLIT,
    STATS_DIR,
    TASKS,
    LAReQATaskMetadata,
    MTEBTaskInfo,
    build_metadata,
    eval_langs,
    iso1,
    iso3,
    language_script,
    mteb_license,
    subset_name,
    subset_of,
    subset_setting,
)

if TYPE_CHECKING:  # the engine imports torch: only when a task is evaluated, never when it is registered
    from hybrid_plugin.evaluation.engine import Evaluation, TaskContext
    from hybrid_plugin.evaluation.runs import SettingRun

_ENCODER_NAMES = (
    "EncoderIdentity",
    "MTEBEncoder",
    "encode_with_mteb_model",
    "encoder_identity",
    "folder_fingerprint",
)


def __getattr__(name: str) -> Any:
    """The MTEB encoder's names, re-exported lazily (it imports the dense retriever)."""
    if name in _ENCODER_NAMES:
        from hybrid_plugin.integrations import mteb_encoder

        return getattr(mteb_encoder, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


logger = logging.getLogger("mteb.hybrid_plugin")  # under mteb's logger, so `mteb run -v` applies


@dataclass
class ScoredPool:
    """What a task computes once per model and split: the engine's evaluation and each setting's top-k run."""

    evaluation: Evaluation
    runs: dict[Setting, SettingRun]
    model: Any = field(repr=False)  # held so that id(model) stays unique while cached

    @property
    def pool(self) -> Pool:
        return self.evaluation.pool


@dataclass
class SettingRunSearch:
    """MTEB ``SearchProtocol`` answering from one setting's precomputed run (trec_eval order)."""

    pool: Pool
    run: SettingRun
    model: Any = field(repr=False)

    @property
    def mteb_model_meta(self) -> Any:
        return self.model.mteb_model_meta

    def index(self, corpus: Any, **kwargs: Any) -> None:
        """Nothing to index: the candidates were encoded once for all subsets."""

    def search(self, queries: Any, *, top_k: int, **kwargs: Any) -> dict[str, dict[str, float]]:
        wanted = set(queries["id"])
        qids, cids = self.pool.query_ids, np.asarray(self.pool.cand_ids, dtype=object)
        docs = cids[self.run.docs[:, :top_k]].tolist()
        scores = self.run.scores[:, :top_k].astype(np.float64).tolist()
        return {
            qids[q]: dict(zip(d, s)) for q, d, s in zip(self.run.queries, docs, scores) if qids[q] in wanted
        }


def keep_queries_of(pool: Pool, languages: tuple[str, ...]) -> Pool:
    """The pool with only the queries in ``languages`` (all candidates and relevance stay).

    A pool subset needs every language's candidates but only its own queries; dropping the others
    saves encoding and ranking them. Every value of a kept query is unchanged (its candidates, ranks
    and tie order are the same), except the mean rank correlation, which compares a query's ranking
    with its parallel queries' in the other languages: where those were dropped it is absent. A
    language without queries simply has no setting.
    """
    keep = np.isin(pool.query_lang, [i for i, lang in enumerate(pool.languages) if lang in languages])
    if keep.all():
        return pool
    rows = np.flatnonzero(keep)
    return replace(
        pool,
        query_ids=[pool.query_ids[q] for q in rows],
        query_lang=pool.query_lang[rows],
        query_text=[pool.query_text[q] for q in rows],
        query_group=pool.query_group[rows],
    )


class LAReQARetrieval(AbsTaskRetrieval):
    """A LAReQA task (XQuAD-R, MLQA-R) for MTEB: data from the plugin's pool builder, scores from its engine.

    Instance attributes a caller may set before evaluating: ``data_dir`` (else ``$HYBRID_PLUGIN_DATA``,
    the cache, or a download) and ``use_embedding_cache`` (the persistent embedding store).
    """

    spec_name: str
    k_values: Sequence[int] = (1, 3, 5, 10, 20, 100)  # MTEB's standard measures, on runs cut at 100
    _support_cross_encoder = False  # candidates are encoded once, so bi-encoders (and their wrappers) only
    _support_search = False
    data_dir: str | None = None
    use_embedding_cache: bool = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pool: Pool | None = None
        self._context: TaskContext | None = None
        self._scored: dict[tuple, ScoredPool] = {}
        self._active: tuple[ScoredPool, Setting] | None = None
        self._progress: Any = None

    @property
    def spec(self) -> TaskSpec:
        return get_spec(self.spec_name)

    # --- selection -----------------------------------------------------------------------------

    def filter_languages(
        self,
        languages: Sequence[str] | None,
        script: Sequence[str] | None = None,
        hf_subsets: Sequence[str] | None = None,
        exclusive_language_filter: bool = False,
    ) -> LAReQARetrieval:
        """MTEB's language/subset filter, with one clear line for an unknown subset name."""
        if hf_subsets is not None:
            unknown = [s for s in hf_subsets if s not in self.metadata.eval_langs]
            if unknown:
                codes = ", ".join(iso3(lang) for lang in self.spec.languages)
                raise ValueError(
                    f"unknown subset(s) {', '.join(map(repr, unknown))} for {self.metadata.name}; "
                    f"subsets are '{{x}}-{{y}}' and '{{x}}-pool' with x, y in {codes}"
                )
        return super().filter_languages(languages, script, hf_subsets, exclusive_language_filter)

    def selected_settings(self) -> dict[str, Setting]:
        """Selected subset -> its setting."""
        return {subset: subset_setting(self.spec, subset) for subset in self.hf_subsets}

    def languages_needed(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(query languages, files to load) of the selected subsets: a pool needs every file."""
        spec = self.spec
        queries: set[str] = set()
        files: set[str] = set()
        for setting in self.selected_settings().values():
            queries.add(setting.query_lang)
            files |= {setting.query_lang} | (set(spec.languages) if setting.is_pool else {setting.target})
        return tuple(x for x in spec.languages if x in queries), tuple(
            x for x in spec.languages if x in files
        )

    # --- data ----------------------------------------------------------------------------------

    def load_data(self, num_proc: int | None = None, *, timer: Any = None, **kwargs: Any) -> None:
        """Build the pool of the needed languages with the plugin's own loader (no HF hub)."""
        if self.data_loaded:
            return
        import time

        from mteb.timing import TimingStack

        from hybrid_plugin.evaluation.engine import TaskContext

        if list(self.eval_splits) != [SPLIT]:
            raise ValueError(f"{self.metadata.name} has one split, {SPLIT!r}; got {list(self.eval_splits)}")
        timer = timer or TimingStack()
        spec = self.spec
        with timer("Data loading", log_message=f"Loading {self.metadata.name} from the LAReQA files..."):
            started = time.perf_counter()
            query_langs, file_langs = self.languages_needed()
            pool, files, notes = self._read_pool(file_langs)
            self._pool = keep_queries_of(pool, query_langs)
            self._context = TaskContext.from_files(
                spec,
                files,
                time.perf_counter() - started,
                mteb_task=self.metadata.name,
                mteb_subsets=list(self.hf_subsets),
                **notes,
            )
            self.dataset = self._subsets(self._pool)
        self.data_loaded = True

    def _read_pool(self, languages: tuple[str, ...]) -> tuple[Pool, Any, dict]:
        """The pool of the files of ``languages``, the resolved files, and notes for the results."""
        from hybrid_plugin.data.build import build_pool
        from hybrid_plugin.data.files import resolve_files

        files = resolve_files(self.spec, languages, self.data_dir)
        return build_pool(self.spec, files.paths), files, {}

    def _subsets(self, pool: Pool) -> dict[str, dict[str, dict]]:
        """MTEB's retrieval data per selected subset; corpora and query sets are shared, not copied."""
        from datasets import Dataset

        index = {lang: i for i, lang in enumerate(pool.languages)}
        slices = pool.lang_slices()
        members = pool_settings(pool)
        cand_text = pool.cand_text
        corpora: dict[str | None, Any] = {}
        query_sets: dict[str, Any] = {}
        out: dict[str, dict[str, dict]] = {}
        for subset, setting in self.selected_settings().items():
            x, y = setting.query_lang, setting.target
            if y not in corpora:
                sl = slice(0, len(pool.cand_ids)) if y is None else slices[index[y]]
                corpora[y] = Dataset.from_dict({"id": pool.cand_ids[sl], "text": cand_text[sl]})
            if x not in query_sets:
                qs = np.flatnonzero(pool.query_lang == index[x])
                query_sets[x] = Dataset.from_dict(
                    {"id": [pool.query_ids[q] for q in qs], "text": [pool.query_text[q] for q in qs]}
                )
            qrels = {
                pool.query_ids[q]: dict.fromkeys((pool.cand_ids[c] for c in relevant_in(pool, q, setting)), 1)
                for q in members.get(setting, ())
            }
            data = {
                "corpus": corpora[y],
                "queries": query_sets[x],
                "relevant_docs": qrels,
                "top_ranked": None,
            }
            out[subset] = {SPLIT: data}
        return out

    def unload_data(self) -> None:
        if self._progress is not None:
            self._progress.close()
        self._pool, self._context, self._scored, self._active, self._progress = None, None, {}, None, None
        super().unload_data()

    # --- evaluation ----------------------------------------------------------------------------

    def scored_pool(
        self,
        model: Any,
        *,
        encode_kwargs: Mapping[str, Any],
        hf_split: str,
        hf_subset: str,
        timer: Any,
    ) -> ScoredPool:
        """The engine's evaluation of every setting (unique texts encoded once), once per (model, split)."""
        from hybrid_plugin.evaluation.engine import evaluate_pool
        from hybrid_plugin.evaluation.measures import DEFAULT_MEASURES
        from hybrid_plugin.integrations.mteb_encoder import MTEBEncoder
        from hybrid_plugin.paths import cache_root
        from hybrid_plugin.scoring.dense import LIBRARIES, DenseRetriever

        key = (id(model), hf_split, tuple(sorted((k, repr(v)) for k, v in encode_kwargs.items())))
        if key in self._scored:
            return self._scored[key]
        if self._pool is None or self._context is None:
            self.load_data(timer=timer)
        pool, name = self._pool, self.metadata.name
        encoder = MTEBEncoder(model, self.metadata, hf_split, hf_subset, encode_kwargs)
        retriever = DenseRetriever(
            encoder,
            batch_size=encoder.batch_size,
            cache_root=cache_root() / "embeddings" if self.use_embedding_cache else None,
            versions=(*LIBRARIES, "mteb"),
        )
        logger.info(
            "%s: encoding unique texts once, ranking every setting exactly (%d queries x %d candidates)",
            name,
            len(pool.query_ids),
            len(pool.cand_ids),
        )
        with timer("Encoding and exact scoring (once, all subsets)", split=hf_split, subset=hf_subset):
            # the engine's default standard measures are all exact (no runs); run depth as in `evaluate`
            evaluation = evaluate_pool(
                pool, retriever, self._context, measures=DEFAULT_MEASURES, run_depth=max(self.k_values)
            )
            runs = {run.setting: run for run in evaluation.runs(max(self.k_values))}
        counts, timings = evaluation.results.counts, evaluation.results.timings
        logger.info(
            "%s: %d unique texts, %d encoded, %d from the embedding cache (%.1f s)",
            name,
            counts["unique_texts"],
            counts["texts_encoded"],
            counts["unique_texts"] - counts["texts_encoded"],
            timings["encode_s"],
        )
        scored = ScoredPool(evaluation, runs, model)
        self._scored = {key: scored}  # one model at a time: drop older ones
        return scored

    def _evaluate_subset(
        self,
        model: Any,
        data_split: Any,
        *,
        encode_kwargs: Any,
        hf_split: str,
        hf_subset: str,
        prediction_folder: Path | None = None,
        num_proc: int | None = None,
        timer: Any,
        **kwargs: Any,
    ) -> dict[str, Any]:
        scored = self.scored_pool(
            model, encode_kwargs=encode_kwargs, hf_split=hf_split, hf_subset=hf_subset, timer=timer
        )
        setting = subset_setting(self.spec, hf_subset)
        self._active = (scored, setting)
        try:
            return super()._evaluate_subset(
                SettingRunSearch(scored.pool, scored.runs[setting], model),
                data_split,
                encode_kwargs=encode_kwargs,
                hf_split=hf_split,
                hf_subset=hf_subset,
                prediction_folder=prediction_folder,
                num_proc=num_proc,
                timer=timer,
                **kwargs,
            )
        finally:
            self._active = None
            self._step(hf_subset)

    def _step(self, hf_subset: str) -> None:
        """One subset done: a progress bar over the selected subsets (MTEB logs them only at INFO)."""
        if self._progress is None:
            from tqdm.auto import tqdm

            self._progress = tqdm(
                total=len(self.hf_subsets), desc=f"{self.metadata.name} subsets", unit="subset"
            )
        self._progress.set_postfix_str(hf_subset, refresh=False)
        self._progress.update(1)
        if self._progress.n >= self._progress.total:
            self._progress.close()
            self._progress = None

    def task_specific_scores(
        self,
        scores: dict[str, dict[str, float]],
        qrels: Mapping[str, Mapping[str, int]],
        results: dict[str, dict[str, float]],
        hf_split: str,
        hf_subset: str,
    ) -> dict[str, float]:
        """The engine's values of this subset's setting, read from its typed results.

        Exact full-rank ``map``, the setting's counts, every standard measure the engine computed (under
        its ir-measures name, e.g. ``nDCG@10``), and for pools the language-bias values of the query
        language: every registered pool measure of :data:`~hybrid_plugin.evaluation.measures.MEASURES`
        but ``multi_map`` (that is ``map``): ``max_rank_distance``, ``same_language_top_share``,
        ``lang_ndcg_10``, the 4-way ``top1_*`` shares, ``top10_query_lang_share``,
        ``mean_rank_correlation``; then ``rank_distance_queries``, and per candidate language
        ``mean_rank_<iso3>``, ``rank_correlation_<iso3>`` and ``top10_share_<iso3>``.
        """
        if self._active is None:
            return {}
        from hybrid_plugin.evaluation.measures import MEASURES, MULTI_MAP

        scored, setting = self._active
        typed = scored.evaluation.results
        entry = typed.setting(setting)
        if entry is None:  # no query of this subset has a relevant candidate in its target language
            return {}
        out: dict[str, float] = {
            "map": entry.map,
            "n_queries": entry.queries,
            "n_candidates": entry.candidates,
            "n_relevant": sum(len(v) for v in qrels.values()),
            **entry.measures,
        }
        if setting.is_pool:
            x = setting.query_lang
            lang = typed.per_language[x]
            for measure in MEASURES.of_kind(setting.kind):
                value = lang.get(measure.key)
                if value is not None and measure.key != MULTI_MAP.key:
                    out[measure.key] = value
            out["rank_distance_queries"] = lang.rank_distance_queries
            for prefix, matrix in (
                ("mean_rank", typed.mean_rank),
                ("rank_correlation", typed.rank_correlation),
                ("top10_share", typed.top_language_share),
            ):
                for y, value in matrix.get(x, {}).items():
                    out[f"{prefix}_{iso3(y)}"] = value
        return out


def _task_class(info: MTEBTaskInfo) -> type[LAReQARetrieval]:
    doc = f"{info.name}: the {get_spec(info.spec).title} LAReQA task as an MTEB retrieval task."
    return type(
        info.name,
        (LAReQARetrieval,),
        {"__doc__": doc, "__module__": __name__, "spec_name": info.spec, "metadata": build_metadata(info)},
    )


class FolderRetrieval(LAReQARetrieval):
    """A task folder (``--task PATH``) as an MTEB retrieval task: the same pool, engine and subsets."""

    folder: str
    folder_spec: TaskSpec

    @property
    def spec(self) -> TaskSpec:
        return self.folder_spec

    def _read_pool(self, languages: tuple[str, ...]) -> tuple[Pool, Any, dict]:
        from hybrid_plugin.data.taskdir import load_folder
        from hybrid_plugin.provenance import portable_path

        loaded = load_folder(self.folder, list(languages))
        return loaded.pool, loaded.files, {"task_folder": portable_path(self.folder), **loaded.notes()}


def folder_task(folder: str | Path) -> FolderRetrieval:
    """An MTEB task object of a task folder, for ``mteb.evaluate(model, tasks=[folder_task(path)])``.

    The folder is read and checked now (one :class:`~hybrid_plugin.errors.UserError` line for a bad
    one); its subsets are its settings that have queries (``deu-eng``, ``deu-pool``; X→X only for a
    monolingual-only folder), scored by the same engine as ``hybrid-plugin evaluate --task PATH``.
    """
    from hybrid_plugin.data.taskdir import load_folder
    from hybrid_plugin.integrations.mteb_metadata import folder_metadata

    folder = str(Path(folder).resolve())
    loaded = load_folder(folder)
    attributes = {
        "__doc__": f"{loaded.spec.name}: the task folder {loaded.spec.title} as an MTEB retrieval task.",
        "__module__": __name__,
        "spec_name": loaded.spec.name,
        "folder": folder,
        "folder_spec": loaded.spec,
        "metadata": folder_metadata(loaded.spec, loaded.files.sha256, list(pool_settings(loaded.pool))),
    }
    return type(loaded.spec.name, (FolderRetrieval,), attributes)()


TASK_CLASSES: dict[str, type[LAReQARetrieval]] = {info.name: _task_class(info) for info in TASKS}
XQuADR = TASK_CLASSES["XQuADR"]
MLQAR = TASK_CLASSES["MLQAR"]


def compatibility_problems() -> list[str]:
    """What the tasks rely on in mteb's retrieval base class and this mteb lacks (checked on registering)."""
    import inspect

    expected = {
        "_evaluate_subset": (
            "data_split",
            "encode_kwargs",
            "hf_split",
            "hf_subset",
            "prediction_folder",
            "timer",
        ),
        "task_specific_scores": ("scores", "qrels", "results", "hf_split", "hf_subset"),
        "filter_languages": ("languages", "script", "hf_subsets", "exclusive_language_filter"),
    }
    problems = []
    for method, names in expected.items():
        params = inspect.signature(getattr(AbsTaskRetrieval, method)).parameters
        problems += [f"AbsTaskRetrieval.{method} takes no {n!r}" for n in names if n not in params]
    return problems


def write_descriptive_stats(name: str, data_dir: str | None = None) -> Path:
    """Compute MTEB's descriptive statistics of a task (needs its data) into the shipped stats folder."""
    task = TASK_CLASSES[name]()
    task.data_dir = data_dir
    STATS_DIR.mkdir(parents=True, exist_ok=True)
    task.calculate_descriptive_statistics(overwrite_results=True)
    return task.metadata.descriptive_stat_path
