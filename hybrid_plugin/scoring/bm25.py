"""BM25 as a retriever: per-language Lucene indexes, every query searched in every candidate language.

For each candidate language L, an index holds the pool's candidate texts of L (document id = the
pool's candidate id) and every query of the pool, whatever its language, is analysed with L's
analyzer and searched there to the full depth (all of L's texts). A query's score for a candidate
is that BM25 score, or -inf when the candidate shares no term with the query (not retrieved).
The multilingual pool ranking merges these raw per-language scores as they are (no
normalisation across languages): exactly what a run that concatenates the per-language results
would rank. Mono, cross and pool metrics then all come from this one score matrix through the
evaluator's exact ranking path, like a dense model's.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from tqdm.auto import tqdm

from hybrid_plugin.data.pool import Pool, unique_texts
from hybrid_plugin.progress import heartbeat
from hybrid_plugin.provenance import library_versions, portable_path
from hybrid_plugin.scoring import lucene
from hybrid_plugin.scoring.ranking import id_tie_rank
from hybrid_plugin.scoring.retriever import Retrieval

if TYPE_CHECKING:  # torch is imported where a BM25 scorer is built: resolving a dense model needs none
    import torch

MODEL_NAME = "bm25"
POOL_MERGE = "raw per-language BM25 scores merged unchanged (no normalisation across languages)"
QUERY = "Anserini bag-of-words query (SimpleSearcher.batch_search), depth = all texts of the language"


@dataclass(frozen=True)
class BM25Params:
    """BM25 parameters (Anserini's defaults) and the search threads (no effect on scores)."""

    k1: float = 0.9
    b: float = 0.4
    threads: int = field(default_factory=lambda: min(2, os.cpu_count() or 1), compare=False)


@dataclass
class BM25ScoreMatrix:
    """A :class:`~hybrid_plugin.scoring.retriever.ScoreMatrix` over sparse BM25 hits (``-inf``: not hit)."""

    tie: torch.Tensor  # candidate -> id tie rank (int64)
    query_row: np.ndarray  # query -> row of the unique query texts
    ptr: np.ndarray  # CSR over unique query rows: hits of row r are cand/score[ptr[r]:ptr[r + 1]]
    cand: np.ndarray  # candidate index of each hit
    score: np.ndarray  # float32 BM25 score of each hit
    n_candidates: int

    @classmethod
    def from_hits(
        cls, pool: Pool, query_row: np.ndarray, n_rows: int, rows: np.ndarray, cands: np.ndarray, scores
    ) -> BM25ScoreMatrix:
        import torch

        order = np.lexsort((cands, rows))
        ptr = np.zeros(n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=n_rows), out=ptr[1:])
        return cls(
            tie=torch.from_numpy(id_tie_rank(pool.cand_ids)),
            query_row=np.asarray(query_row, dtype=np.int64),
            ptr=ptr,
            cand=cands[order],
            score=np.asarray(scores, dtype=np.float32)[order],
            n_candidates=len(pool.cand_ids),
        )

    @property
    def retrieved(self) -> int:
        """Number of (unique query text, candidate) pairs with a BM25 score."""
        return len(self.score)

    def scores_at(self, queries: np.ndarray, cands: slice | np.ndarray) -> torch.Tensor:
        """float32 (len(queries), candidates) for a candidate range or index array (the engine's tiles):
        the BM25 score where retrieved, -inf elsewhere."""
        import torch

        rows = self.query_row[queries]
        start, stop = self.ptr[rows], self.ptr[rows + 1]
        lengths = stop - start
        offsets = np.repeat(start - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
        hit = np.arange(int(lengths.sum())) + offsets
        row = np.repeat(np.arange(len(rows)), lengths)
        cand = self.cand[hit]
        if isinstance(cands, slice):
            first, last = cands.start or 0, self.n_candidates if cands.stop is None else cands.stop
            keep = (cand >= first) & (cand < last)
            column, width = cand[keep] - first, last - first
        else:
            order = np.argsort(cands, kind="stable")
            position = np.searchsorted(cands, cand, sorter=order)
            position = np.minimum(position, len(cands) - 1)
            keep = cands[order[position]] == cand if len(cands) else np.zeros(len(cand), dtype=bool)
            column, width = order[position[keep]], len(cands)
        out = np.full((len(rows), width), -np.inf, dtype=np.float32)
        out[row[keep], column] = self.score[hit][keep]
        return torch.from_numpy(out)

    def scores(self, queries: np.ndarray) -> torch.Tensor:
        """float32 (len(queries), n_candidates): the BM25 score where retrieved, -inf elsewhere."""
        return self.scores_at(queries, slice(0, self.n_candidates))


@dataclass
class BM25Search:
    """What one BM25 search of the pool gives: its score matrix and the per-language index/search stats."""

    matrix: BM25ScoreMatrix
    per_language: dict[str, dict]  # candidate language -> texts, indexed, empty, hits, index_s, search_s
    unique_queries: int
    unique_candidates: int
    index_s: float
    search_s: float


def score_pool(pool: Pool, params: BM25Params) -> BM25Search:
    """Index each language's candidates and search every unique query text in every index."""
    lucene.require()  # fail early, with the install command, when the stack is missing
    q_texts, q_rows = unique_texts(pool.query_text)
    cand_text = pool.cand_text
    rows, cands, scores = [], [], []
    stats: dict[str, dict] = {}
    # one bar over every (language index, query) search; indexing a language takes a fraction of a second
    bar = tqdm(total=len(pool.languages) * len(q_texts), desc="BM25 search", unit="query")
    with bar, heartbeat(bar), tempfile.TemporaryDirectory(prefix="hybrid-plugin-bm25-") as tmp:
        for y, sl in enumerate(pool.lang_slices()):
            lang = pool.languages[y]
            bar.set_postfix_str(f"indexing {lang}")
            t0 = time.perf_counter()
            index = lucene.LanguageIndex(lang, pool.cand_ids[sl], cand_text[sl], Path(tmp) / lang)
            t1 = time.perf_counter()
            bar.set_postfix_str(f"searching {lang}")
            hits = index.search(q_texts, params.k1, params.b, params.threads, on_batch=bar.update)
            t2 = time.perf_counter()
            index.close()
            rows.append(hits.query)
            cands.append(hits.doc + sl.start)
            scores.append(hits.score)
            stats[lang] = {
                "texts": sl.stop - sl.start,
                "indexed": index.indexed,
                "empty": index.empty,
                "hits": len(hits.score),
                "index_s": round(t1 - t0, 3),
                "search_s": round(t2 - t1, 3),
            }
    matrix = BM25ScoreMatrix.from_hits(
        pool, q_rows, len(q_texts), np.concatenate(rows), np.concatenate(cands), np.concatenate(scores)
    )
    return BM25Search(
        matrix=matrix,
        per_language=stats,
        unique_queries=len(q_texts),
        unique_candidates=len(set(cand_text)),
        index_s=round(sum(s["index_s"] for s in stats.values()), 3),
        search_s=round(sum(s["search_s"] for s in stats.values()), 3),
    )


def jar_label(jar: Path | None) -> str:
    """Where the Anserini jar came from, without the machine's layout: ``pyserini/resources/jars/<jar>``
    for the jar inside the installed pyserini package, else a portable path."""
    if jar is None:
        return ""
    package = lucene.jar_dir()
    if package is not None and jar.parent == package:
        return f"pyserini/resources/jars/{jar.name}"
    return portable_path(jar)


def model_provenance(params: BM25Params, languages: tuple[str, ...]) -> dict:
    """The results' ``model`` entry: name ``bm25`` and a fingerprint of everything that fixes the scores.

    The fingerprint covers k1, b, the query construction, pyserini's version, Anserini's jar, the
    Lucene version and the analyzer of every supported language (not only the selected ones, so
    one BM25 configuration has one fingerprint whatever the language selection).
    """
    versions = lucene.library_versions()
    definition = {
        "method": MODEL_NAME,
        "k1": params.k1,
        "b": params.b,
        "query": QUERY,
        "pool_merge": POOL_MERGE,
        "pyserini": versions["pyserini"],
        "anserini_jar": versions["anserini_jar"],
        "lucene": versions["lucene"],
        "analyzers": {lang: lucene.describe_analyzer(lang) for lang in lucene.SUPPORTED},
    }
    digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()
    return {
        "name": MODEL_NAME,
        "path": jar_label(lucene.anserini_jar()),
        "fingerprint": digest,
        "query_prompt": "",
        "document_prompt": "",
        "similarity": "bm25",
        "bm25": {
            "k1": params.k1,
            "b": params.b,
            "query": QUERY,
            "pool_merge": POOL_MERGE,
            "analyzers": {lang: definition["analyzers"][lang] for lang in languages},
            "versions": versions,
        },
    }


LIBRARIES = ("numpy", "ir-measures")


@dataclass(frozen=True)
class BM25Retriever:
    """The Lucene BM25 baseline as a retriever (``--model bm25``)."""

    params: BM25Params = field(default_factory=BM25Params)

    def score(self, pool: Pool) -> Retrieval:
        scored = score_pool(pool, self.params)
        model = model_provenance(self.params, pool.languages)
        java = model["bm25"]["versions"]["java"]
        return Retrieval(
            matrix=scored.matrix,
            model=model,
            device=f"cpu (Java {java}, {self.params.threads} search threads)",
            versions=library_versions(LIBRARIES) | model["bm25"]["versions"],
            counts={
                "unique_texts": scored.unique_queries + scored.unique_candidates,
                "texts_encoded": 0,
                "retrieved": scored.matrix.retrieved,
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
