"""XQuADR and MLQAR as MTEB retrieval tasks (imports mteb; loaded when mteb's task registry is).

One task per LAReQA spec, one subset per setting, named in MTEB's style with ISO 639-3 codes:
``deu-deu`` (mono X→X), ``deu-eng`` (cross X→Y, queries with an answer in Y), ``deu-pool``
(multi X→pool: queries in X against the candidates of *all* the task's languages, so a subset's
score never depends on which other subsets were selected).

Evaluation encodes every unique text of the selected subsets once per model (through the model's
own MTEB ``encode``, in the same shards as ``hybrid-plugin evaluate``, through the persistent
:class:`~hybrid_plugin.evaluation.store.EmbeddingStore`), ranks all settings at once with the
evaluator's exact code, and hands each subset's top-k run to MTEB's own retrieval scoring. The main
score ``map`` is exact full-rank AP, identical to the evaluator's per-setting ``map``.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.types import PromptType

from hybrid_plugin.data.pool import Pool
from hybrid_plugin.data.spec import TaskSpec, get_spec
from hybrid_plugin.evaluation.evaluator import Encoded, unique_texts
from hybrid_plugin.paths import cache_root

logger = logging.getLogger("mteb.hybrid_plugin")  # under mteb's logger, so `mteb run -v` applies

POOL = "pool"
SPLIT = "test"
STATS_DIR = Path(__file__).resolve().parent / "mteb_stats"

# ISO 639-1 (the specs' codes) -> ISO 639-3 + ISO 15924 script, as MTEB writes languages
LANGUAGE_SCRIPTS = {
    "ar": "ara-Arab",
    "de": "deu-Latn",
    "el": "ell-Grek",
    "en": "eng-Latn",
    "es": "spa-Latn",
    "hi": "hin-Deva",
    "ru": "rus-Cyrl",
    "th": "tha-Thai",
    "tr": "tur-Latn",
    "vi": "vie-Latn",
    "zh": "zho-Hans",
}


@dataclass(frozen=True)
class MTEBTaskInfo:
    """What MTEB's metadata needs beyond the task spec (dates, provenance categories)."""

    spec: str
    name: str
    date: tuple[str, str]
    sample_creation: str
    adapted_from: tuple[str, ...]


TASKS = (
    # dates and source tasks as mteb records them for XQuADRetrieval / MLQARetrieval
    MTEBTaskInfo("xquad-r", "XQuADR", ("2019-05-21", "2019-11-21"), "human-translated", ("XQuADRetrieval",)),
    MTEBTaskInfo("mlqa-r", "MLQAR", ("2019-01-01", "2020-12-31"), "found", ("MLQARetrieval",)),
)


def iso3(lang: str) -> str:
    """``de`` -> ``deu``."""
    return language_script(lang).split("-")[0]


def language_script(lang: str) -> str:
    if lang not in LANGUAGE_SCRIPTS:
        raise ValueError(f"no ISO 639-3/script code known for language {lang!r}; add it to LANGUAGE_SCRIPTS")
    return LANGUAGE_SCRIPTS[lang]


def subset_name(x: str, y: str | None) -> str:
    """Subset of setting X→Y (``y=None``: X→pool), e.g. ``deu-eng``, ``deu-pool``."""
    return f"{iso3(x)}-{POOL if y is None else iso3(y)}"


def subset_setting(spec: TaskSpec, subset: str) -> tuple[str, str | None]:
    """Inverse of :func:`subset_name`: ``deu-pool`` -> (``de``, None)."""
    by_iso3 = {iso3(lang): lang for lang in spec.languages}
    x, _, y = subset.partition("-")
    if x not in by_iso3 or (y != POOL and y not in by_iso3):
        raise KeyError(subset)
    return by_iso3[x], None if y == POOL else by_iso3[y]


def evaluator_key(x: str, y: str | None) -> str:
    """The evaluator's key of the same setting (``de-en``, ``de-pool``)."""
    return f"{x}-{POOL if y is None else y}"


def eval_langs(spec: TaskSpec) -> dict[str, list[str]]:
    """Subset -> languages in it: X→Y has X and Y; X→pool has X first, then every other language."""
    out: dict[str, list[str]] = {}
    for x in spec.languages:
        for y in spec.languages:
            out[subset_name(x, y)] = (
                [language_script(x)] if x == y else [language_script(x), language_script(y)]
            )
        out[subset_name(x, None)] = [language_script(x)] + [
            language_script(y) for y in spec.languages if y != x
        ]
    return out


def mteb_license(license: str) -> str:
    """``CC BY-SA 4.0`` -> ``cc-by-sa-4.0`` (MTEB's spelling)."""
    return license.strip().lower().replace(" ", "-")


class LAReQATaskMetadata(TaskMetadata):
    """TaskMetadata whose descriptive statistics ship with hybrid_plugin (mteb looks in its own folder)."""

    @property
    def descriptive_stat_path(self) -> Path:
        return STATS_DIR / f"{self.name}.json"


def build_metadata(info: MTEBTaskInfo) -> LAReQATaskMetadata:
    """MTEB metadata from the task spec (languages, license, citation, reference) plus ``info``."""
    spec = get_spec(info.spec)
    n = len(spec.languages)
    description = (
        f"{spec.description} Sentence-level answer retrieval from LAReQA (Roy et al. 2020), "
        f"one subset per setting: '{{x}}-{{x}}' monolingual, '{{x}}-{{y}}' cross-lingual (queries with an "
        f"answer in y), '{{x}}-pool' multilingual (queries in x against the candidates of all {n} "
        f"languages; every parallel answer is relevant). Main score: exact full-rank MAP. Pools also "
        f"report language-bias values (max_rank_distance, same_language_top_share, mean_rank_<lang>)."
    )
    return LAReQATaskMetadata(
        name=info.name,
        description=description,
        reference=spec.reference,
        dataset={
            "path": f"{spec.reference}/tree/{spec.origin_commit}/{spec.folder}",
            "revision": spec.origin_commit,
        },
        type="Retrieval",
        category="t2t",
        modalities=["text"],
        eval_splits=[SPLIT],
        eval_langs=eval_langs(spec),
        main_score="map",
        date=info.date,
        domains=["Encyclopaedic", "Written"],
        task_subtypes=["Question answering"],
        license=mteb_license(spec.license),
        annotations_creators="human-annotated",
        dialect=[],
        sample_creation=info.sample_creation,
        bibtex_citation=spec.citation,
        adapted_from=list(info.adapted_from),
        prompt={"query": "Given a question, retrieve the sentence that answers it, in any language"},
    )


# ---------------------------------------------------------------------------------------------
# Encoding once, through the model's MTEB interface


@dataclass(frozen=True)
class EncoderIdentity:
    """How a model's embeddings are keyed in the embedding store, and how they are compared."""

    fingerprint: str | None  # None: the model cannot be identified, so nothing is cached on disk
    name: str
    prompt_keys: dict[PromptType, str]
    normalize: bool


_FINGERPRINTS: dict[str, str] = {}


def folder_fingerprint(path: str) -> str:
    """The evaluator's content fingerprint of a model folder (computed once per process)."""
    if path not in _FINGERPRINTS:
        from hybrid_plugin.models.ref import fingerprint_folder

        _FINGERPRINTS[path] = fingerprint_folder(Path(path))
    return _FINGERPRINTS[path]


def _similarity(model: Any) -> str:
    meta = getattr(model, "mteb_model_meta", None)
    name = getattr(meta, "similarity_fn_name", None)
    if name is None:
        name = getattr(getattr(model, "model", None), "similarity_fn_name", None) or "cosine"
    return str(getattr(name, "value", name))


def encoder_identity(model: Any, metadata: TaskMetadata, encode_kwargs: Mapping[str, Any]) -> EncoderIdentity:
    """Store keys: the model folder's fingerprint (shared with ``hybrid-plugin evaluate``) or name@revision.

    Prompt keys are the literal prompt strings when the model is a plain MTEB SentenceTransformer
    wrapper whose prompt mteb resolves (so the evaluator's cache is shared), else a key naming the
    task and role: other wrappers may build task-specific instructions.
    """
    from mteb.models import SentenceTransformerEncoderWrapper
    from mteb.models.abs_encoder import get_prompt_name

    similarity = _similarity(model)
    if similarity not in ("cosine", "dot"):
        raise ValueError(
            f"{metadata.name} ranks by cosine or dot product; this model's similarity is {similarity!r}"
        )
    meta = getattr(model, "mteb_model_meta", None)
    name = str(getattr(meta, "name", None) or type(model).__name__)
    path = (getattr(meta, "loader_kwargs", None) or {}).get("model_path")
    extra = {k: encode_kwargs[k] for k in ("precision",) if encode_kwargs.get(k) is not None}
    experiment = getattr(meta, "experiment_kwargs", None) or {}
    fingerprint = None
    if path:
        fingerprint = folder_fingerprint(path)
    elif meta is not None and meta.name and meta.revision and "no_model_name" not in meta.name:
        fingerprint = hashlib.sha256(f"mteb:{meta.name}@{meta.revision}".encode()).hexdigest()
    if fingerprint and (extra or experiment):
        fingerprint = hashlib.sha256(
            f"{fingerprint}|{sorted(extra.items())}|{sorted(experiment.items())}".encode()
        )
        fingerprint = fingerprint.hexdigest()

    keys: dict[PromptType, str] = {}
    for role in (PromptType.query, PromptType.document):
        prompt = None
        if type(model) is SentenceTransformerEncoderWrapper and model.model_prompts:
            prompt_name = get_prompt_name(model.model_prompts, metadata, role)
            prompt = model.model_prompts.get(prompt_name) if prompt_name else None
        keys[role] = prompt if prompt is not None else f"<mteb {metadata.name} {role.value}>"
    if keys[PromptType.query] == keys[PromptType.document]:  # never let the two roles share a store
        keys = {role: f"{key}<{role.value}>" for role, key in keys.items()}
    return EncoderIdentity(fingerprint, name, keys, normalize=similarity == "cosine")


def encode_with_mteb_model(
    model: Any,
    texts: list[str],
    role: PromptType,
    metadata: TaskMetadata,
    hf_split: str,
    hf_subset: str,
    encode_kwargs: Mapping[str, Any],
) -> np.ndarray:
    """Embeddings of ``texts`` (exactly as given: no stripping) through ``model.encode``, float32."""
    import torch
    from datasets import Dataset
    from torch.utils.data import DataLoader

    columns = {"text": texts, ("query" if role == PromptType.query else "body"): texts}
    batch_size = int(encode_kwargs.get("batch_size") or 32)
    loader = DataLoader(Dataset.from_dict(columns), batch_size=batch_size)
    emb = model.encode(
        loader,
        task_metadata=metadata,
        hf_split=hf_split,
        hf_subset=hf_subset,
        prompt_type=role,
        **{**encode_kwargs, "show_progress_bar": False},
    )
    if isinstance(emb, torch.Tensor):
        emb = emb.detach().float().cpu().numpy()
    emb = np.asarray(emb, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(texts):
        raise ValueError(
            f"{metadata.name}: the model returned embeddings of shape {emb.shape} for {len(texts)} texts"
        )
    return emb


def encode_pool_once(
    pool: Pool,
    model: Any,
    metadata: TaskMetadata,
    hf_split: str,
    hf_subset: str,
    encode_kwargs: Mapping[str, Any],
    use_cache: bool = True,
) -> tuple[Encoded, EncoderIdentity]:
    """Encode each unique query and candidate text once (shards as in ``hybrid-plugin evaluate``)."""
    from hybrid_plugin.evaluation.store import EmbeddingStore

    started = time.perf_counter()
    identity = encoder_identity(model, metadata, encode_kwargs)
    persistent = use_cache and identity.fingerprint is not None
    scratch = None if persistent else tempfile.TemporaryDirectory(prefix="hybrid-plugin-mteb-")
    root = cache_root() / "embeddings" if persistent else Path(scratch.name)
    fingerprint = identity.fingerprint or "unidentified-model"
    try:
        encoded, out = 0, []
        for role, texts in ((PromptType.query, pool.query_text), (PromptType.document, pool.cand_text)):
            unique, rows = unique_texts(texts)
            store = EmbeddingStore(root, fingerprint, identity.prompt_keys[role], identity.name)

            def encode(batch: list[str], role: PromptType = role) -> np.ndarray:
                return encode_with_mteb_model(
                    model, batch, role, metadata, hf_split, hf_subset, encode_kwargs
                )

            kind = "queries" if role == PromptType.query else "candidates"
            encoded += store.ensure(unique, encode, desc=f"{metadata.name}: encoding {kind} once")
            out.append((store.get(unique), rows, len(unique)))
    finally:
        if scratch is not None:
            scratch.cleanup()
    (q_emb, q_rows, n_q), (c_emb, c_rows, n_c) = out
    seconds = time.perf_counter() - started
    return Encoded(q_emb, q_rows, c_emb, c_rows, n_q + n_c, encoded, seconds), identity


# ---------------------------------------------------------------------------------------------
# Exact scoring of every setting at once, and its runs handed to MTEB per subset


@dataclass
class ScoredPool:
    """What a task computes once per model and split: exact per-setting values and top-k runs."""

    pool: Pool
    exact: dict  # hybrid_plugin.evaluation.compute.aggregate() output
    runs: dict[str, Any]  # evaluator setting key -> SettingRun
    encoded: Any  # hybrid_plugin.evaluation.evaluator.Encoded
    model: Any = field(repr=False)  # held so that id(model) stays unique while cached


@dataclass
class SettingRunSearch:
    """MTEB ``SearchProtocol`` answering from one setting's precomputed run (trec_eval order)."""

    pool: Pool
    run: Any  # SettingRun
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
    saves encoding and ranking them. Falls back to the whole pool where the evaluator's run builder
    cannot handle a language without queries.
    """
    from dataclasses import replace

    from hybrid_plugin.evaluation.runs import setting_queries

    keep = np.isin(pool.query_lang, [i for i, lang in enumerate(pool.languages) if lang in languages])
    if keep.all():
        return pool
    rows = np.flatnonzero(keep)
    subset = replace(
        pool,
        query_ids=[pool.query_ids[q] for q in rows],
        query_lang=pool.query_lang[rows],
        query_text=[pool.query_text[q] for q in rows],
        query_group=pool.query_group[rows],
    )
    if any(len(qs) == 0 for qs in setting_queries(subset).values()):
        return pool
    return subset


class LAReQARetrieval(AbsTaskRetrieval):
    """A LAReQA task (XQuAD-R, MLQA-R) for MTEB: data from the plugin's pool builder, exact scoring.

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
        self._scored: dict[tuple, ScoredPool] = {}
        self._active: tuple[ScoredPool, str] | None = None
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

    def languages_needed(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(query languages, files to load) of the selected subsets: a pool needs every file."""
        spec = self.spec
        queries: set[str] = set()
        files: set[str] = set()
        for subset in self.hf_subsets:
            x, y = subset_setting(spec, subset)
            queries.add(x)
            files |= {x} | (set(spec.languages) if y is None else {y})
        return tuple(x for x in spec.languages if x in queries), tuple(
            x for x in spec.languages if x in files
        )

    # --- data ----------------------------------------------------------------------------------

    def load_data(self, num_proc: int | None = None, *, timer: Any = None, **kwargs: Any) -> None:
        """Build the pool of the needed languages with the plugin's own loader (no HF hub)."""
        if self.data_loaded:
            return
        from mteb.timing import TimingStack

        from hybrid_plugin.data.build import build_pool
        from hybrid_plugin.data.files import resolve_files

        if list(self.eval_splits) != [SPLIT]:
            raise ValueError(f"{self.metadata.name} has one split, {SPLIT!r}; got {list(self.eval_splits)}")
        timer = timer or TimingStack()
        spec = self.spec
        with timer("Data loading", log_message=f"Loading {self.metadata.name} from the LAReQA files..."):
            query_langs, file_langs = self.languages_needed()
            files = resolve_files(spec, file_langs, self.data_dir)
            self._pool = keep_queries_of(build_pool(spec, files.paths), query_langs)
            self.dataset = self._subsets(self._pool)
        self.data_loaded = True

    def _subsets(self, pool: Pool) -> dict[str, dict[str, dict]]:
        """MTEB's retrieval data per selected subset; corpora and query sets are shared, not copied."""
        from datasets import Dataset

        from hybrid_plugin.evaluation.runs import setting_queries

        spec = self.spec
        index = {lang: i for i, lang in enumerate(pool.languages)}
        slices = pool.lang_slices()
        members = setting_queries(pool)
        cand_text = pool.cand_text
        corpora: dict[str | None, Any] = {}
        query_sets: dict[str, Any] = {}
        out: dict[str, dict[str, dict]] = {}
        for subset in self.hf_subsets:
            x, y = subset_setting(spec, subset)
            sl = slice(0, len(pool.cand_ids)) if y is None else slices[index[y]]
            if y not in corpora:
                corpora[y] = Dataset.from_dict({"id": pool.cand_ids[sl], "text": cand_text[sl]})
            if x not in query_sets:
                qs = np.flatnonzero(pool.query_lang == index[x])
                query_sets[x] = Dataset.from_dict(
                    {"id": [pool.query_ids[q] for q in qs], "text": [pool.query_text[q] for q in qs]}
                )
            qrels: dict[str, dict[str, int]] = {}
            for q in members.get((index[x], -1 if y is None else index[y]), []):
                rel = pool.relevant(q)
                if y is not None:
                    rel = rel[pool.cand_lang[rel] == index[y]]
                qrels[pool.query_ids[q]] = {pool.cand_ids[c]: 1 for c in rel}
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
        self._pool, self._scored, self._active, self._progress = None, {}, None, None
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
        """Encode once and rank every setting exactly, once per (model, split)."""
        from hybrid_plugin.evaluation.compute import aggregate, query_scores
        from hybrid_plugin.evaluation.ranking import Scorer, relevant_ranks
        from hybrid_plugin.evaluation.runs import top_k_runs

        key = (id(model), hf_split, tuple(sorted((k, repr(v)) for k, v in encode_kwargs.items())))
        if key in self._scored:
            return self._scored[key]
        if self._pool is None:
            self.load_data(timer=timer)
        pool = self._pool
        name = self.metadata.name
        with timer("Encoding (once, all subsets)", split=hf_split, subset=hf_subset):
            enc, identity = encode_pool_once(
                pool, model, self.metadata, hf_split, hf_subset, encode_kwargs, self.use_embedding_cache
            )
        logger.info(
            "%s: %d unique texts, %d encoded, %d from the embedding cache (%.1f s)",
            name,
            enc.unique_texts,
            enc.texts_encoded,
            enc.unique_texts - enc.texts_encoded,
            enc.seconds,
        )
        logger.info(
            "%s: ranking every setting exactly (%d queries x %d candidates)...",
            name,
            len(pool.query_ids),
            len(pool.cand_ids),
        )
        with timer("Exact ranking (all settings)", split=hf_split, subset=hf_subset):
            scorer = Scorer.build(
                pool, enc.query_emb, enc.query_row, enc.cand_emb, enc.cand_row, normalize=identity.normalize
            )
            ranks = relevant_ranks(pool, scorer)
            exact = aggregate(pool, query_scores(pool, ranks), ranks)
            runs = {r.key: r for r in top_k_runs(pool, scorer, max(self.k_values))}
        scored = ScoredPool(pool, exact, runs, enc, model)
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
        key = evaluator_key(*subset_setting(self.spec, hf_subset))
        self._active = (scored, key)
        try:
            return super()._evaluate_subset(
                SettingRunSearch(scored.pool, scored.runs[key], model),
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
        """Exact full-rank ``map``, the setting's counts, and for pools the language-bias values."""
        if self._active is None:
            return {}
        scored, key = self._active
        setting = scored.exact["settings"][key]
        out: dict[str, float] = {
            "map": setting["map"],
            "n_queries": setting["queries"],
            "n_candidates": setting["candidates"],
            "n_relevant": sum(len(v) for v in qrels.values()),
        }
        if setting["kind"] == "multi":
            x = key.split("-")[0]
            lang = scored.exact["per_language"][x]
            for measure in ("max_rank_distance", "same_language_top_share"):
                if lang.get(measure) is not None:
                    out[measure] = lang[measure]
            out["rank_distance_queries"] = lang["rank_distance_queries"]
            for y, rank in scored.exact["bias"]["mean_rank"][x].items():
                out[f"mean_rank_{iso3(y)}"] = rank
        return out


def _task_class(info: MTEBTaskInfo) -> type[LAReQARetrieval]:
    doc = f"{info.name}: the {get_spec(info.spec).title} LAReQA task as an MTEB retrieval task."
    return type(
        info.name,
        (LAReQARetrieval,),
        {"__doc__": doc, "__module__": __name__, "spec_name": info.spec, "metadata": build_metadata(info)},
    )


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
