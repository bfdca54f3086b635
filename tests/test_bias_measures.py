"""The pool's language-bias measures (Lang-nDCG@10, 4-way top-1 outcome, top-k language share, mean rank
correlation) by hand on ``test_metrics.hand_pool`` (ties included), and against ir-measures and scipy on a
pool with ties everywhere.

Full pool rankings of the hand pool (score descending, ties by id descending; c0–c2 in xx, c3–c4 in yy):

    xx-g1: c3 .75 | c4, c1, c0 tied at .5 | c2 .25      relevant: c0 (xx), c3 (yy)
    xx-g2: c1 .75 | c4, c3, c2 tied at .5 | c0 .25      relevant: c2 (xx)
    yy-g1: c3, c1 tied at 1.25 | c4 1.0 | c2, c0 tied at .75   relevant: c0 (xx), c3 (yy)
"""

from __future__ import annotations

import ir_measures
import numpy as np
import pytest
from conftest import engine_run, random_tied_pool
from scipy import stats as sps
from test_metrics import hand_pool

from hybrid_plugin.evaluation.measures import TOP1_WRONG_QUERY_LANG
from hybrid_plugin.evaluation.perquery import query_table, to_arrow
from hybrid_plugin.evaluation.ranking import Scorer, pool_rankings, relevant_ranks
from hybrid_plugin.evaluation.runs import qrels_and_run, top_k_runs

R2 = 2**-0.5


def test_top_k_languages_follow_trec_eval_ties():
    """k = 3 cuts xx-g1's tie {c4, c1, c0}: trec_eval's order keeps c4 and c1."""
    pool, scorer = hand_pool()
    expected = {  # (xx, yy) among the first k of xx-g1, xx-g2, yy-g1
        1: [[0, 1], [1, 0], [0, 1]],
        2: [[0, 2], [1, 1], [1, 1]],
        3: [[1, 2], [1, 2], [1, 2]],
        10: [[3, 2], [3, 2], [3, 2]],  # k beyond the pool: every candidate
    }
    for k, counts in expected.items():
        r = pool_rankings(pool, scorer, k=k, chunk=1)
        assert r.top_counts.tolist() == counts
        assert r.top1_lang.tolist() == [1, 0, 1]  # c3 (yy), c1 (xx), c3 (yy)


def test_rank_correlation_by_hand():
    """Mean ranks, ties sharing theirs: xx-g1 (c0..c4) = 3, 3, 5, 1, 3; yy-g1 = 4.5, 1.5, 4.5, 1.5, 3.
    Centred: (0, 0, 2, -2, 0) and (1.5, -1.5, 1.5, -1.5, 0): rho = 6 / sqrt(8 * 9) = 1 / sqrt(2)."""
    pool, scorer = hand_pool()
    r = pool_rankings(pool, scorer)
    assert sorted(zip(r.pair_query.tolist(), r.pair_other.tolist())) == [(0, 2), (2, 0)]  # xx-g2: alone
    assert r.pair_corr == pytest.approx([R2, R2], abs=1e-12)
    s = scorer.scores(np.array([0, 2])).numpy()
    assert sps.spearmanr(s[0], s[1]).statistic == pytest.approx(R2, abs=1e-12)


def test_bias_measures_by_hand():
    pool, scorer = hand_pool()
    res = engine_run(pool, scorer).results
    xx, yy = res.per_language["xx"], res.per_language["yy"]
    # Lang-nDCG@10: gain 2 in the query's language, 1 in the other; ideal (2, 1)
    ndcg = {
        "xx-g1": (1 / np.log2(2) + 2 / np.log2(5)) / (2 + 1 / np.log2(3)),  # c3 (1) at rank 1, c0 (2) at 4
        "xx-g2": (2 / np.log2(5)) / 2,  # c2 (2) at rank 4; ideal 2
        "yy-g1": (2 + 1 / np.log2(6)) / (2 + 1 / np.log2(3)),  # c3 (2) at 1, c0 (1) at 5
    }
    assert xx.lang_ndcg_10 == pytest.approx((ndcg["xx-g1"] + ndcg["xx-g2"]) / 2, abs=1e-12)
    assert yy.lang_ndcg_10 == pytest.approx(ndcg["yy-g1"], abs=1e-12)
    # top-1: xx-g1 c3 (relevant, yy), xx-g2 c1 (not relevant, xx), yy-g1 c3 (relevant, yy)
    four = (
        "top1_correct_query_lang",
        "top1_correct_other_lang",
        "top1_wrong_query_lang",
        "top1_wrong_other_lang",
    )
    assert [getattr(xx, k) for k in four] == [0.0, 0.5, 0.5, 0.0]
    assert [getattr(yy, k) for k in four] == [1.0, 0.0, 0.0, 0.0]
    assert [res.scores.get(k) for k in four] == [0.5, 0.25, 0.25, 0.0]
    # top 10 = the whole pool: 3 of 5 candidates are xx
    assert (xx.top10_query_lang_share, yy.top10_query_lang_share) == pytest.approx((0.6, 0.4))
    assert res.top_language_share == {"xx": {"xx": 0.6, "yy": 0.4}, "yy": {"xx": 0.6, "yy": 0.4}}
    # mean rank correlation: xx-g2 has no parallel query, so xx's value is xx-g1's
    assert (xx.mean_rank_correlation, yy.mean_rank_correlation) == pytest.approx((R2, R2), abs=1e-12)
    assert res.scores.mean_rank_correlation == pytest.approx(R2, abs=1e-12)
    assert res.rank_correlation == {"xx": {"yy": pytest.approx(R2)}, "yy": {"xx": pytest.approx(R2)}}


def test_numbers_that_existed_do_not_move():
    """The bias pass adds values; mAP, rank distance, same-language share and mean rank stay as they were."""
    pool, scorer = hand_pool()
    res = engine_run(pool, scorer).results
    assert res.scores.multi_map == 0.6 and res.scores.max_rank_distance == 3.5
    assert res.scores.same_language_top_share == 0.5
    assert res.mean_rank == {"xx": {"xx": 4.0, "yy": 1.0}, "yy": {"xx": 5.0, "yy": 1.0}}


def test_per_query_file_columns_reproduce_the_aggregates():
    """The per-query file's columns give each bias measure exactly (what compare recomputes)."""
    pool, scorer = hand_pool()
    evaluation = engine_run(pool, scorer)
    table = to_arrow(evaluation.table, evaluation.pool)
    cols = {}
    for name in table.column_names:
        column = table.column(name)
        if hasattr(column.type, "value_type"):
            column = column.cast(column.type.value_type)
        cols[name] = column.to_numpy(zero_copy_only=False)
    pool_rows = cols["kind"] == "multi"
    assert list(cols["top1_lang"][pool_rows]) == ["yy", "xx", "yy"]
    assert all(v is None for v in cols["top1_lang"][~pool_rows])
    values = TOP1_WRONG_QUERY_LANG.values(cols)
    assert values[pool_rows].tolist() == [0.0, 1.0, 0.0]
    assert cols["rank_corr"][pool_rows] == pytest.approx([R2, np.nan, R2], nan_ok=True)


def tied_pool():
    """Three languages, coarse embeddings: ties everywhere (as in test_metrics' parity test)."""
    rng = np.random.default_rng(11)
    pool = random_tied_pool(rng, questions=12, groups=16)
    q = rng.integers(-1, 2, (len(pool.query_ids), 3)).astype(np.float32)
    c = rng.integers(-1, 2, (len(pool.cand_ids), 3)).astype(np.float32)
    return pool, Scorer.build(pool, q, np.arange(len(q)), c, np.arange(len(c)), normalize=False)


def test_against_ir_measures_and_scipy_with_many_ties():
    pool, scorer = tied_pool()
    rankings = pool_rankings(pool, scorer, k=10, chunk=7)
    table = query_table(pool, relevant_ranks(pool, scorer), (), rankings)
    runs = [r for r in top_k_runs(pool, scorer, depth=None) if r.setting.is_pool]
    qrels, run = qrels_and_run(pool, runs)
    lang_of = {cid: cid[:2] for cid in pool.cand_ids}
    graded = {
        qid: {d: 2 if lang_of[d] == qid.split("/")[1][:2] else 1 for d in rel} for qid, rel in qrels.items()
    }
    ref = {m.query_id: m.value for m in ir_measures.iter_calc([ir_measures.nDCG @ 10], graded, run)}
    cols = table.columns()
    pool_rows = np.flatnonzero(cols["kind"] == "multi")
    for row in pool_rows:
        q = table.query[row]
        qid = f"{pool.languages[pool.query_lang[q]]}-pool/{pool.query_ids[q]}"
        assert table.lang_ndcg[row] == pytest.approx(ref[qid], abs=1e-9)
        top = list(run[qid])[:10]  # trec_eval's order of the full run
        assert rankings.top_counts[q].tolist() == [sum(lang_of[d] == x for d in top) for x in pool.languages]
    scores = scorer.scores(np.arange(len(pool.query_ids))).numpy()
    assert len(rankings.pair_query) > 20
    for a, b, rho in zip(rankings.pair_query, rankings.pair_other, rankings.pair_corr):
        assert pool.query_group[a] == pool.query_group[b] and pool.query_lang[a] != pool.query_lang[b]
        assert rho == pytest.approx(sps.spearmanr(scores[a], scores[b]).statistic, abs=1e-12)
