"""Exact standard measures from relevant ranks: by hand, and equal to ir-measures on full runs.

No data and no model: hand pools and random pools with heavy ties and unretrieved candidates.
"""

from __future__ import annotations

import ir_measures
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import MatrixScorer, engine_run, random_tied_pool
from test_metrics import hand_pool

from hybrid_plugin.data.settings import Setting
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.engine import split_measures
from hybrid_plugin.evaluation.measures import native_measure
from hybrid_plugin.evaluation.perquery import to_arrow, write_parquet
from hybrid_plugin.evaluation.runs import qrels_and_run, top_k_runs

MEASURES = (
    "AP",
    "AP@1",
    "AP@3",
    "RR",
    "RR@1",
    "RR@2",
    "nDCG",
    "nDCG@1",
    "nDCG@3",
    "nDCG@10",
    "P@1",
    "P@2",
    "P@5",
    "R@1",
    "R@3",
    "Success@1",
    "Success@3",
)


def test_hand_pool_measures():
    """xx-pool, query xx-g1: relevant at pool ranks 1 (c3) and 4 (c0) of 5; query xx-g2: rank 4 only."""
    pool, scorer = hand_pool()
    ev = engine_run(pool, scorer, measures=("nDCG@3", "P@2", "R@3", "RR", "AP@3", "Success@3"))
    table = ev.table
    rows = table.rows(table.settings.index(Setting("xx", None)))
    by_query = {pool.query_ids[q]: i for i, q in enumerate(table.query[rows])}
    g1, g2 = by_query["xx-q-g1"], by_query["xx-q-g2"]
    col = {name: values[rows] for name, values in table.measures.items()}
    ideal2 = 1 + 1 / np.log2(3)
    assert col["nDCG@3"][g1] == pytest.approx(1 / ideal2)  # only rank 1 within 3
    assert col["nDCG@3"][g2] == 0.0
    assert col["P@2"][g1] == 0.5 and col["P@2"][g2] == 0.0
    assert col["R@3"][g1] == 0.5 and col["R@3"][g2] == 0.0
    assert col["RR"][g1] == 1.0 and col["RR"][g2] == 0.25
    assert col["AP@3"][g1] == pytest.approx(1 / 2)  # precision 1 at rank 1, divided by 2 relevant
    assert table.ap[rows][g1] == pytest.approx((1 + 2 / 4) / 2)
    assert col["Success@3"][g1] == 1.0 and col["Success@3"][g2] == 0.0
    assert list(table.first_rank[rows][[g1, g2]]) == [1.0, 4.0]
    assert list(table.n_relevant[rows][[g1, g2]]) == [2, 1]
    assert table.rank_distance[rows][g1] == 3.0 and np.isnan(table.rank_distance[rows][g2])
    # a setting's measure is the mean of its queries'
    assert ev.results.setting(Setting("xx", None)).measures["RR"] == pytest.approx((1 + 0.25) / 2)


def random_pool(seed: int, unretrieved: float):
    """Three languages, partly parallel questions, coarse integer scores (ties everywhere), some -inf."""
    rng = np.random.default_rng(seed)
    pool = random_tied_pool(rng, questions=14, groups=18)
    matrix = rng.integers(0, 4, (len(pool.query_ids), len(pool.cand_ids))).astype(np.float32)
    matrix[rng.random(matrix.shape) < unretrieved] = -np.inf
    return pool, MatrixScorer(pool, matrix)


@pytest.mark.parametrize("seed,unretrieved", [(1, 0.0), (2, 0.0), (3, 0.3), (4, 0.7)])
def test_equal_to_ir_measures_on_full_runs(seed, unretrieved):
    """Every native measure, per query, equals ir-measures (pytrec_eval) on the full runs to 1e-9."""
    pool, scorer = random_pool(seed, unretrieved)
    table = engine_run(pool, scorer, measures=MEASURES).table
    qrels, run = qrels_and_run(pool, top_k_runs(pool, scorer, depth=None))
    parsed = [ir_measures.parse_measure(m) for m in MEASURES]
    ref: dict[tuple[str, str], float] = {}
    for metric in ir_measures.iter_calc(parsed, qrels, run):
        ref[(metric.query_id, str(metric.measure))] = metric.value
    checked = 0
    for i, setting in enumerate(table.settings):
        rows = table.rows(i)
        for r, q in enumerate(table.query[rows]):
            qid = f"{setting.key}/{pool.query_ids[q]}"
            for name, values in table.measures.items():
                # pytrec_eval leaves out queries that retrieved nothing at all: they score 0
                expected = ref.get((qid, name), 0.0)
                if name.startswith("RR@"):
                    # trec_eval has no RR@k: ir-measures asks its msmarco provider, which orders tied
                    # scores its own way; trec_eval's RR cut at k is the reference
                    rr = ref.get((qid, "RR"), 0.0)
                    expected = rr if rr and 1 / rr <= int(name[3:]) + 1e-9 else 0.0
                assert values[rows][r] == pytest.approx(expected, abs=1e-9), (qid, name)
                checked += 1
            assert table.ap[rows][r] == pytest.approx(ref.get((qid, "AP"), 0.0), abs=1e-9)
    assert checked > 1000


def test_native_or_not():
    assert str(native_measure("nDCG@10")) == "nDCG@10"
    assert native_measure("RR").cutoff is None
    assert native_measure("P") is None  # set precision depends on the run's length: ir-measures
    assert native_measure("nDCG(dcg='exp-log2')@10") is None
    assert native_measure("Judged@10") is None
    assert split_measures(("AP@20", "P(rel=2)@5")) == ((native_measure("AP@20"),), ("P(rel=2)@5",))


def test_non_native_measures_go_through_ir_measures_runs():
    pool, scorer = random_pool(5, 0.2)
    ev = engine_run(pool, scorer, measures=("nDCG@3", "Judged@3"), run_depth=None)
    assert ev.results.standard_measures.native == ["nDCG@3"]
    assert ev.results.standard_measures.run_depth is None
    assert all("Judged@3" in r.measures for r in ev.results.settings.values())
    with pytest.raises(UserError, match="need runs"):
        engine_run(pool, scorer, measures=("Judged@3",), run_depth=0)


def test_per_query_file_reads_without_the_package(tmp_path):
    """The Parquet file alone gives back every setting's mAP and measure (what a paired test needs)."""
    pool, scorer = random_pool(6, 0.2)
    ev = engine_run(pool, scorer)
    path = tmp_path / "q.parquet"
    write_parquet(to_arrow(ev.table, ev.pool, {"task": "rand"}), path)
    frame = pq.read_table(path)
    assert frame.schema.metadata[b"hybrid_plugin.per_query_schema"] == b"2"
    data = frame.to_pydict()
    assert len(data["setting"]) == len(ev.table)
    for setting, result in ev.results.iter_settings():
        mine = [i for i, s in enumerate(data["setting"]) if s == setting.key]
        assert len(mine) == result.queries
        assert np.mean([data["ap"][i] for i in mine]) == pytest.approx(result.map, abs=1e-12)
        assert np.mean([data["nDCG@10"][i] for i in mine]) == pytest.approx(
            result.measures["nDCG@10"], abs=1e-12
        )
        pool_rows = [data["rank_distance"][i] for i in mine]
        if setting.is_pool:
            assert {data["target"][i] for i in mine} == {None}
        else:
            assert pool_rows == [None] * len(mine)
    # queries of one parallel group share their group id across languages
    groups = {}
    for qid, group in zip(data["query_id"], data["group"]):
        groups.setdefault(group, set()).add(qid.split("-")[0])
    assert max(len(v) for v in groups.values()) > 1
