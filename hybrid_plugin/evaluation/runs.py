"""Truncated runs per setting (trec_eval order) and ir-measures' standard measures on them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hybrid_plugin.data.pool import Pool
from hybrid_plugin.data.settings import Setting, pool_settings, relevant_in
from hybrid_plugin.errors import UserError
from hybrid_plugin.scoring.ranking import TiledRanking, rank_pool
from hybrid_plugin.scoring.tiles import EngineOptions, block_scores, key_scores, ordered_keys


@dataclass
class SettingRun:
    """Top-``depth`` candidates of each query of one setting, best first."""

    setting: Setting
    queries: np.ndarray  # query indices
    docs: np.ndarray  # (len(queries), k) candidate indices
    scores: np.ndarray  # (len(queries), k) float32

    @property
    def key(self) -> str:
        return self.setting.key

    def lengths(self) -> np.ndarray:
        """Retrieved candidates per query: a row's -inf scores (not retrieved by BM25) are its tail."""
        return np.isfinite(self.scores).sum(1)


def top_k_runs(
    pool: Pool,
    scorer: Any,
    depth: int | None,
    chunk: int = 512,
    options: EngineOptions | None = None,
    ranking: TiledRanking | None = None,
) -> list[SettingRun]:
    """Runs of every setting cut at ``depth`` (``None`` = full ranking), ordered exactly like trec_eval.

    A cut run comes from each (query, language)'s top ``depth`` merged over the candidate tiles (memory:
    queries × languages × depth); a full run is queries × candidates by nature, made ``chunk`` queries
    at a time.
    """
    if depth is None:
        return _full_runs(pool, scorer, chunk)
    if ranking is None or ranking.top_keys is None or ranking.top_keys.shape[2] < depth:
        ranking = rank_pool(pool, scorer, options or EngineOptions(progress=False), top_k=depth, ranks=False)
    assert ranking.top_keys is not None and ranking.top_cands is not None
    n_lang = len(pool.languages)
    lang_index = {lang: i for i, lang in enumerate(pool.languages)}
    sizes = np.bincount(pool.cand_lang, minlength=n_lang)
    out = []
    for setting, queries in pool_settings(pool).items():
        queries = np.asarray(queries, dtype=np.int64)
        if setting.is_pool:
            k = min(depth, len(pool.cand_ids))
            keys = ranking.top_keys[queries].reshape(len(queries), -1)
            cands = ranking.top_cands[queries].reshape(len(queries), -1)
            order = np.argsort(keys, axis=1)[:, ::-1][:, :k]  # distinct keys (padding sorts last)
            keys, docs = np.take_along_axis(keys, order, 1), np.take_along_axis(cands, order, 1)
        else:
            y = lang_index[setting.target]
            k = min(depth, int(sizes[y]))
            keys, docs = ranking.top_keys[queries, y, :k], ranking.top_cands[queries, y, :k]
        out.append(SettingRun(setting, queries, docs, key_scores(torch.from_numpy(keys)).numpy()))
    return out


def _full_runs(pool: Pool, scorer: Any, chunk: int) -> list[SettingRun]:
    """Every setting's whole ranking (queries × candidates: the size of the output itself)."""
    slices = pool.lang_slices()
    members = pool_settings(pool)
    lang_index = {lang: i for i, lang in enumerate(pool.languages)}
    parts: dict[Setting, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {s: [] for s in members}
    member_mask = {s: np.zeros(len(pool.query_ids), dtype=bool) for s in members}
    for s, qs in members.items():
        member_mask[s][qs] = True
    for start in range(0, len(pool.query_ids), chunk):
        queries = np.arange(start, min(start + chunk, len(pool.query_ids)))
        scores = block_scores(scorer, queries, slice(0, len(pool.cand_ids))).cpu()
        keys = ordered_keys(scores, scorer.tie)
        for setting, mask in member_mask.items():
            rows = np.flatnonzero(mask[queries])
            if not len(rows):
                continue
            sl = slice(0, len(pool.cand_ids)) if setting.is_pool else slices[lang_index[setting.target]]
            block = keys[rows, sl]
            top = block.topk(block.shape[1], dim=1, sorted=True).indices + sl.start
            r = torch.from_numpy(rows).unsqueeze(1)
            parts[setting].append((queries[rows], top.numpy(), scores[r, top].numpy()))
    return [
        SettingRun(
            setting,
            np.concatenate([c[0] for c in chunks]),
            np.concatenate([c[1] for c in chunks]),
            np.concatenate([c[2] for c in chunks]),
        )
        for setting, chunks in parts.items()
    ]


_SPACE = re.compile(r"\s")  # what str.isspace calls white space (str.split splits there)


def _first_spaced(ids: Sequence[str]) -> tuple[str, int] | None:
    """The first id holding white space and how many do, else None (one regex pass over all ids)."""
    if _SPACE.search("\x00".join(ids)) is None:
        return None
    spaced = [i for i in ids if _SPACE.search(i)]
    return spaced[0], len(spaced)


def check_trec_ids(pool: Pool) -> None:
    """Refuse ids that TREC files cannot carry: their fields are separated by white space, so an id with
    a space, tab or newline would shift the fields (trec_eval and ir-measures would misread the run)."""
    for kind, ids in (("query", pool.query_ids), ("candidate", pool.cand_ids)):
        found = _first_spaced(ids)
        if found is not None:
            first, count = found
            more = f" (and {count - 1} more)" if count > 1 else ""
            raise UserError(
                f"--trec-out: {kind} id {first!r} contains white space{more}; TREC qrels and run files "
                "separate fields by white space, so ids must have none"
            )


def run_qid(pool: Pool, setting: str, query: int) -> str:
    """Query id inside a multi-setting run/qrels: the setting, then the query id."""
    return f"{setting}/{pool.query_ids[query]}"


def qrels_and_run(pool: Pool, runs: list[SettingRun]) -> tuple[dict, dict]:
    """ir-measures/pytrec_eval dicts for all settings at once (query ids prefixed by setting)."""
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    ids = np.asarray(pool.cand_ids, dtype=object)
    for sr in runs:
        doc_ids = ids[sr.docs].tolist()
        scores = sr.scores.astype(np.float64).tolist()
        lengths = sr.lengths().tolist()
        for row, q in enumerate(sr.queries):
            qid = run_qid(pool, sr.key, q)
            qrels[qid] = dict.fromkeys(ids[relevant_in(pool, q, sr.setting)].tolist(), 1)
            n = lengths[row]
            run[qid] = dict(zip(doc_ids[row][:n], scores[row][:n]))
    return qrels, run


def ir_measures_by_setting(
    pool: Pool, runs: list[SettingRun], measures: list[str]
) -> dict[str, dict[str, float]]:
    """Mean of each ir-measures measure per setting (queries with nothing relevant retrieved count 0)."""
    import ir_measures

    parsed = [ir_measures.parse_measure(m) for m in measures]
    qrels, run = qrels_and_run(pool, runs)
    sums: dict[str, dict[str, float]] = {sr.key: dict.fromkeys(measures, 0.0) for sr in runs}
    names = {str(m): s for m, s in zip(parsed, measures)}
    for metric in ir_measures.iter_calc(parsed, qrels, run):
        setting = metric.query_id.split("/", 1)[0]
        sums[setting][names[str(metric.measure)]] += metric.value
    counts = {sr.key: len(sr.queries) for sr in runs}
    return {k: {m: v / counts[k] for m, v in vals.items()} for k, vals in sums.items()}
