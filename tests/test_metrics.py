"""Exact AP, rank distance and bias views on a hand-made pool whose rankings are worked out by hand.

Pool (languages xx, yy). Scores are exact (embedding products of dyadic numbers, no normalising):

    candidate        id                  emb          xx-g1 [1,0]  xx-g2 [0,1]  yy-g1 [1,1]
    c0 (xx, ans g1)  xx-a000-p00-s000    (.5, .25)       .5           .25          .75
    c1 (xx)          xx-a000-p00-s001    (.5, .75)       .5           .75          1.25
    c2 (xx, ans g2)  xx-a000-p00-s002    (.25, .5)       .25          .5           .75
    c3 (yy, ans g1)  yy-a000-p00-s000    (.75, .5)       .75          .5           1.25
    c4 (yy)          yy-a000-p00-s001    (.5, .5)        .5           .5           1.0

Group g2 has no yy question, so xx-g2 has no relevant candidate in yy (MLQA-R-like partial
parallelism). Ties are broken as trec_eval does: equal scores, larger document id first.
"""

from __future__ import annotations

import ir_measures
import numpy as np
import pytest
from conftest import engine_run, random_tied_pool

from hybrid_plugin.data.pool import LanguageFile, pool_from_files
from hybrid_plugin.evaluation.perquery import query_table
from hybrid_plugin.evaluation.runs import ir_measures_by_setting, qrels_and_run, top_k_runs
from hybrid_plugin.scoring.ranking import DenseScoreMatrix, id_tie_rank, ordered_keys, relevant_ranks
from hybrid_plugin.scoring.tiles import EngineOptions, TilePlan


def hand_pool():
    xx = LanguageFile(
        "xx",
        cand_ids=[f"xx-a000-p00-s00{i}" for i in range(3)],
        sentences=["c0", "c1", "c2"],
        contexts=["p"] * 3,
        question_ids=["g1", "g2"],
        questions=["xx g1", "xx g2"],
        answer_cand=[0, 2],
    )
    yy = LanguageFile(
        "yy",
        cand_ids=[f"yy-a000-p00-s00{i}" for i in range(2)],
        sentences=["c3", "c4"],
        contexts=["p"] * 2,
        question_ids=["g1"],
        questions=["yy g1"],
        answer_cand=[0],
    )
    pool = pool_from_files("hand", ("xx", "yy"), [xx, yy], "sentence")
    q = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.float32)
    c = np.array([[0.5, 0.25], [0.5, 0.75], [0.25, 0.5], [0.75, 0.5], [0.5, 0.5]], dtype=np.float32)
    scorer = DenseScoreMatrix.build(pool, q, np.arange(3), c, np.arange(5), normalize=False)
    return pool, scorer


def tiled(query_block: int, cand_block: int) -> EngineOptions:
    return EngineOptions(tile=TilePlan.fixed(query_block, cand_block), progress=False)


TILES = [(2, 1000), (1, 1), (1, 7), (2, 3)]


@pytest.fixture(params=TILES, ids=lambda t: f"tile{t[0]}x{t[1]}")
def hand(request):
    pool, scorer = hand_pool()
    ranks = relevant_ranks(pool, scorer, options=tiled(*request.param))  # blocks < pool: merging
    return pool, scorer, ranks, engine_run(pool, scorer).results


def test_ranks_by_hand(hand):
    pool, _, ranks, _ = hand
    got = {
        (pool.query_ids[q], pool.cand_ids[c]): (int(rl), int(rp))
        for q, c, rl, rp in zip(ranks.query, ranks.cand, ranks.rank_lang, ranks.rank_pool)
    }
    assert got == {
        # xx-g1 pool order: c3 .75 | c4, c1, c0 tied at .5 (ids descending) | c2
        ("xx-q-g1", "xx-a000-p00-s000"): (2, 4),
        ("xx-q-g1", "yy-a000-p00-s000"): (1, 1),
        # xx-g2 pool order: c1 .75 | c4, c3, c2 tied at .5 | c0
        ("xx-q-g2", "xx-a000-p00-s002"): (2, 4),
        # yy-g1 pool order: c3, c1 tied at 1.25 | c4 | c2, c0 tied at .75
        ("yy-q-g1", "xx-a000-p00-s000"): (3, 5),
        ("yy-q-g1", "yy-a000-p00-s000"): (1, 1),
    }


def test_settings_by_hand(hand):
    _, _, _, res = hand
    s = {k: v.model_dump() for k, v in res.settings.items()}
    assert {k: (v["kind"], v["queries"]) for k, v in s.items()} == {
        "xx-xx": ("mono", 2),
        "xx-yy": ("cross", 1),  # xx-g2 has nothing relevant in yy
        "xx-pool": ("multi", 2),
        "yy-xx": ("cross", 1),
        "yy-yy": ("mono", 1),
        "yy-pool": ("multi", 1),
    }
    assert s["xx-xx"]["map"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert s["xx-yy"]["map"] == pytest.approx(1.0)
    assert s["xx-pool"]["map"] == pytest.approx(((1 / 1 + 2 / 4) / 2 + 1 / 4) / 2)  # (.75 + .25) / 2
    assert s["yy-xx"]["map"] == pytest.approx(1 / 3)
    assert s["yy-yy"]["map"] == pytest.approx(1.0)
    assert s["yy-pool"]["map"] == pytest.approx((1 / 1 + 2 / 5) / 2)


def test_aggregates_by_hand(hand):
    _, _, _, res = hand
    xx, yy = res.per_language["xx"].model_dump(), res.per_language["yy"].model_dump()
    assert (xx["mono_map"], xx["cross_map"], xx["multi_map"]) == pytest.approx((0.5, 1.0, 0.5))
    assert (yy["mono_map"], yy["cross_map"], yy["multi_map"]) == pytest.approx((1.0, 1 / 3, 0.7))
    # rank distance: xx-g1 4 - 1 = 3 (xx-g2 has one relevant: excluded); yy-g1 5 - 1 = 4
    assert (xx["max_rank_distance"], yy["max_rank_distance"]) == (3.0, 4.0)
    assert xx["rank_distance_queries"] == 1
    # best-ranked relevant: xx-g1 -> c3 (yy), yy-g1 -> c3 (yy)
    assert (xx["same_language_top_share"], yy["same_language_top_share"]) == (0.0, 1.0)
    classic = {"mono_map", "cross_map", "multi_map", "max_rank_distance", "same_language_top_share"}
    assert {k: v for k, v in res.scores.model_dump().items() if k in classic} == pytest.approx(
        {
            "mono_map": 0.75,
            "cross_map": (1 + 1 / 3) / 2,
            "multi_map": 0.6,
            "max_rank_distance": 3.5,
            "same_language_top_share": 0.5,
        }
    )
    assert res.mean_rank == {"xx": {"xx": 4.0, "yy": 1.0}, "yy": {"xx": 5.0, "yy": 1.0}}


def test_tie_order_is_trec_eval_order(hand):
    """Our AP on the hand pool equals ir-measures' (pytrec_eval) AP on the full runs, per query."""
    pool, scorer, ranks, res = hand
    runs = top_k_runs(pool, scorer, depth=None)
    qrels, run = qrels_and_run(pool, runs)
    ours = ir_measures_by_setting(pool, runs, ["AP"])
    for setting, entry in res.iter_settings():
        assert ours[setting.key]["AP"] == pytest.approx(entry.map, abs=1e-12)
    # and the run we hand over really is in trec_eval order: xx-g1's pool run
    assert list(run["xx-pool/xx-q-g1"]) == [
        "yy-a000-p00-s000",
        "yy-a000-p00-s001",
        "xx-a000-p00-s001",
        "xx-a000-p00-s000",
        "xx-a000-p00-s002",
    ]
    assert qrels["xx-yy/xx-q-g1"] == {"yy-a000-p00-s000": 1}


def test_ordered_keys_follow_float_order_and_ids():
    scores = np.array([[-1.0, -0.0, 0.0, 1e-30, -1e-30, 2.0, 2.0, np.float32(0.1)]], dtype=np.float32)
    ids = ["a", "b", "c", "d", "e", "f", "g", "h"]
    import torch

    keys = ordered_keys(torch.from_numpy(scores), torch.from_numpy(id_tie_rank(ids)))[0].numpy()
    ranking = [ids[i] for i in np.argsort(-keys, kind="stable")]
    # by score desc, equal scores (-0.0 == 0.0, 2.0 == 2.0) by id descending
    assert ranking == ["g", "f", "h", "d", "c", "b", "e", "a"]


def test_id_tie_rank_is_bytewise():
    ids = ["b", "B", "a", "ä", "a0"]
    order = np.argsort(id_tie_rank(ids))
    assert [ids[i] for i in order] == sorted(ids, key=lambda s: s.encode())


@pytest.mark.parametrize("tile", TILES, ids=lambda t: f"tile{t[0]}x{t[1]}")
def test_parity_with_many_random_ties(tile):
    """Coarse embeddings force ties everywhere; AP must still equal pytrec_eval's on full runs."""
    rng = np.random.default_rng(7)
    pool = random_tied_pool(rng, questions=12, groups=16)
    q = rng.integers(-1, 2, (len(pool.query_ids), 3)).astype(np.float32)
    c = rng.integers(-1, 2, (len(pool.cand_ids), 3)).astype(np.float32)
    scorer = DenseScoreMatrix.build(pool, q, np.arange(len(q)), c, np.arange(len(c)), normalize=False)
    table = query_table(pool, relevant_ranks(pool, scorer, options=tiled(*tile)))
    runs = top_k_runs(pool, scorer, depth=None, chunk=7)
    qrels, run = qrels_and_run(pool, runs)
    ref = {m.query_id: m.value for m in ir_measures.iter_calc([ir_measures.AP], qrels, run)}
    ours = {}
    for i, setting in enumerate(table.settings):
        rows = table.rows(i)
        for q, ap in zip(table.query[rows], table.ap[rows]):
            ours[f"{setting.key}/{pool.query_ids[q]}"] = ap
    assert set(ours) == set(ref)
    assert max(abs(ours[k] - ref[k]) for k in ref) < 1e-9
