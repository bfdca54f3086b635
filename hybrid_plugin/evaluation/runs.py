"""Truncated runs per setting (trec_eval order) and ir-measures' standard measures on them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hybrid_plugin.data.pool import Pool
from hybrid_plugin.data.settings import Setting, pool_settings, relevant_in
from hybrid_plugin.evaluation.ranking import Scorer, ordered_keys


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


def top_k_runs(pool: Pool, scorer: Scorer, depth: int | None, chunk: int = 512) -> list[SettingRun]:
    """Runs of every setting cut at ``depth`` (``None`` = full ranking), ordered exactly like trec_eval."""
    slices = pool.lang_slices()
    members = pool_settings(pool)
    lang_index = {lang: i for i, lang in enumerate(pool.languages)}
    parts: dict[Setting, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {s: [] for s in members}
    member_mask = {s: np.zeros(len(pool.query_ids), dtype=bool) for s in members}
    for s, qs in members.items():
        member_mask[s][qs] = True
    for start in range(0, len(pool.query_ids), chunk):
        queries = np.arange(start, min(start + chunk, len(pool.query_ids)))
        scores = scorer.scores(queries)
        keys = ordered_keys(scores, scorer.tie)
        for setting, mask in member_mask.items():
            rows = np.flatnonzero(mask[queries])
            if not len(rows):
                continue
            sl = slice(0, len(pool.cand_ids)) if setting.is_pool else slices[lang_index[setting.target]]
            block = keys[rows, sl]
            k = block.shape[1] if depth is None else min(depth, block.shape[1])
            top = block.topk(k, dim=1, sorted=True).indices + sl.start
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
