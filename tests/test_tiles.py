"""The bounded-memory engine: every tile size gives bit-identical ranks and values, tiles respect the
memory budget, and the sampled rank correlation agrees with the exact one within its standard error."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest
import torch
from conftest import MatrixScorer, engine_run, random_tied_pool
from scipy import stats as sps

from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.perquery import query_table
from hybrid_plugin.evaluation.runs import top_k_runs
from hybrid_plugin.scoring.ranking import (
    DenseScoreMatrix,
    average_ranks_np,
    pool_rankings,
    rank_correlations,
    relevant_ranks,
)
from hybrid_plugin.scoring.tiles import (
    BYTES_PER_ELEMENT,
    MIN_GEMM,
    EngineOptions,
    TilePlan,
    padded_matmul,
    parse_memory,
    parse_tile,
)

TILES = [(1, 7), (7, 1), (3, 16), (64, 5), (1000, 1000)]


def tiled(query_block: int, cand_block: int, **kwargs) -> EngineOptions:
    return EngineOptions(tile=TilePlan.fixed(query_block, cand_block), progress=False, **kwargs)


def synthetic_pool(rng: np.random.Generator, cands: tuple[int, ...], groups: int, per_lang: int):
    """Languages l0, l1, ... with the given candidate counts (``conftest.random_tied_pool``)."""
    return random_tied_pool(rng, per_lang, groups, tuple((f"l{i}", n) for i, n in enumerate(cands)))


def dense_scorer(pool, rng, dim: int = 24, coarse: bool = False) -> DenseScoreMatrix:
    if coarse:  # ties everywhere
        q = rng.integers(-1, 2, (len(pool.query_ids), 3)).astype(np.float32)
        c = rng.integers(-1, 2, (len(pool.cand_ids), 3)).astype(np.float32)
        return DenseScoreMatrix.build(pool, q, np.arange(len(q)), c, np.arange(len(c)), normalize=False)
    q = rng.standard_normal((len(pool.query_ids), dim)).astype(np.float32)
    c = rng.standard_normal((len(pool.cand_ids), dim)).astype(np.float32)
    return DenseScoreMatrix.build(pool, q, np.arange(len(q)), c, np.arange(len(c)))


def comparable(results) -> dict:
    """Results without what may differ between tile plans (how the engine ran, and when)."""
    data = results.model_dump()
    data["provenance"].pop("engine")
    data["provenance"].pop("started")
    data.pop("timings")
    return data


def test_padded_products_give_the_whole_products_bits():
    """A float32 product's element depends on the call's shape below 16 rows/columns; padded, a 1 × 7
    block equals the same block of a 1024 × 2000 product bit for bit."""
    gen = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(1024, 384, generator=gen), dim=1)
    c = torch.nn.functional.normalize(torch.randn(2000, 384, generator=gen), dim=1)
    whole = q @ c.T
    for rows, cols in ((1, 7), (7, 1), (2, 2), (15, 15), (16, 16), (100, 999)):
        for i in (0, 511, 1024 - rows):
            for j in (0, 1000, 2000 - cols):
                block = padded_matmul(q[i : i + rows], c[j : j + cols])
                assert torch.equal(block, whole[i : i + rows, j : j + cols]), (rows, cols, i, j)
    assert MIN_GEMM == 16


@pytest.mark.parametrize("coarse", [False, True], ids=["floats", "ties"])
def test_every_tile_size_gives_identical_results(coarse):
    rng = np.random.default_rng(3)
    pool = random_tied_pool(rng, questions=12, groups=16)
    scorer = dense_scorer(pool, rng, coarse=coarse)
    reference = engine_run(pool, scorer, options=tiled(1000, 1000))
    for tile in TILES + [(2, 3)]:
        run = engine_run(pool, scorer, options=tiled(*tile))
        for field in dataclasses.fields(run.table):
            a, b = getattr(run.table, field.name), getattr(reference.table, field.name)
            if isinstance(a, np.ndarray):
                assert np.array_equal(a, b, equal_nan=True), (tile, field.name)
        assert comparable(run.results) == comparable(reference.results), tile
        assert run.results.provenance["engine"]["query_block"] == tile[0]


def test_tiles_keep_unretrieved_candidates_last_as_trec_eval():
    """-inf scores (a sparse retriever's unretrieved candidates), ties and a plain scorer without
    ``scores_at``: ranks and runs equal for every tile plan."""
    rng = np.random.default_rng(5)
    pool = random_tied_pool(rng, questions=10, groups=12)
    matrix = rng.integers(0, 3, (len(pool.query_ids), len(pool.cand_ids))).astype(np.float32)
    matrix[rng.random(matrix.shape) < 0.4] = -np.inf
    scorer = MatrixScorer(pool, matrix)
    ref = relevant_ranks(pool, scorer, options=tiled(1000, 1000))
    assert not ref.retrieved.all()
    ref_runs = top_k_runs(pool, scorer, depth=None)
    for tile in TILES:
        got = relevant_ranks(pool, scorer, options=tiled(*tile))
        for name in ("query", "cand", "rank_lang", "rank_pool", "retrieved"):
            assert np.array_equal(getattr(got, name), getattr(ref, name)), (tile, name)
        for depth in (1, 5, 200):
            for cut, full in zip(top_k_runs(pool, scorer, depth, options=tiled(*tile)), ref_runs):
                k = min(depth, full.docs.shape[1])
                assert np.array_equal(cut.queries, full.queries)
                assert np.array_equal(cut.docs, full.docs[:, :k]), (tile, depth, cut.key)
                assert np.array_equal(cut.scores, full.scores[:, :k])


def test_ranks_are_one_plus_the_candidates_above_by_brute_force():
    rng = np.random.default_rng(11)
    pool = synthetic_pool(rng, (60, 45, 30), groups=30, per_lang=20)
    scorer = dense_scorer(pool, rng, coarse=True)
    ranks = relevant_ranks(pool, scorer, options=tiled(4, 9))
    scores = scorer.scores(np.arange(len(pool.query_ids))).numpy()
    tie = scorer.tie.numpy()
    for q, c, rank_lang, rank_pool in zip(ranks.query, ranks.cand, ranks.rank_lang, ranks.rank_pool):
        above = (scores[q] > scores[q, c]) | ((scores[q] == scores[q, c]) & (tie > tie[c]))
        assert rank_pool == 1 + above.sum()
        assert rank_lang == 1 + (above & (pool.cand_lang == pool.cand_lang[c])).sum()


def test_average_ranks_equal_scipy_rankdata():
    """Spearman's fractional ranks (descending, ties share their mean) on rows with runs of ties that
    touch row ends, constant rows and plain floats, sorted in one or two threads."""
    rng = np.random.default_rng(0)
    for trial in range(150):
        b, n = int(rng.integers(1, 6)), int(rng.integers(1, 40))
        scores = rng.integers(-3, 4, (b, n)).astype(np.float32) * np.float32(rng.choice([1.0, 0.5]))
        if trial % 3 == 0:
            scores = rng.standard_normal((b, n)).astype(np.float32)
        if trial % 7 == 0:
            scores[:] = 1.0
        expected = np.stack([sps.rankdata(-row) for row in scores])
        assert np.array_equal(average_ranks_np(scores, threads=1 + trial % 2), expected)


def test_budget_sizes_the_tiles():
    plan = TilePlan.from_budget(4000, 1_000_000, budget=64 << 20, width=4)
    assert plan.query_block == 1024
    assert plan.query_block * plan.cand_block * BYTES_PER_ELEMENT <= 64 << 20
    assert plan.cand_block >= MIN_GEMM
    small = TilePlan.from_budget(10, 100, budget=1 << 30)
    assert (small.query_block, small.cand_block) == (10, 100)  # nothing to cut
    blocks = plan.cand_ranges([slice(0, 3), slice(3, 3), slice(3, 40)])
    assert all(stop - start <= plan.cand_block for start, stop, _ in blocks)
    assert [lang for *_, lang in TilePlan.fixed(1, 7).cand_ranges([slice(0, 10), slice(10, 12)])] == [0, 0, 1]


@pytest.mark.parametrize(
    "text, expected",
    [("512M", 512 << 20), ("2G", 2 << 30), ("1.5GiB", 3 << 29), (str(64 << 20), 64 << 20), (None, None)],
)
def test_parse_memory(text, expected):
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["lots", "1K", "-2G", "2 GB extra"])
def test_parse_memory_refuses_nonsense(text):
    with pytest.raises(UserError, match="--max-memory"):
        parse_memory(text)


def test_parse_tile():
    assert (parse_tile("1x7").query_block, parse_tile("1x7").cand_block) == (1, 7)
    for bad in ("0x7", "7", "ax7"):
        with pytest.raises(UserError, match="--tile"):
            parse_tile(bad)


def test_sampled_rank_correlation_agrees_with_exact_within_its_error():
    """Above the exact limit, MRC comes from a seeded candidate sample; its stated standard error covers
    the exact value, and the same seed gives the same estimate."""
    rng = np.random.default_rng(2)
    pool = synthetic_pool(rng, (900, 800, 700), groups=40, per_lang=30)
    # parallel queries share a component, so their rankings correlate (rho around 0.5)
    shared = rng.standard_normal((len(pool.group_names), 16))
    q = shared[pool.query_group] + rng.standard_normal((len(pool.query_ids), 16))
    c = rng.standard_normal((len(pool.cand_ids), 16))
    scorer = DenseScoreMatrix.build(
        pool, q.astype(np.float32), np.arange(len(q)), c.astype(np.float32), np.arange(len(c))
    )
    _, _, exact_corr, exact_info = rank_correlations(pool, scorer, EngineOptions(progress=False))
    assert exact_info == {"method": "exact", "candidates": 2400}
    options = EngineOptions(progress=False, rank_corr_exact_max=1000, rank_corr_sample=800)
    pq, _, corr, info = rank_correlations(pool, scorer, options)
    assert info["method"] == "sample" and info["candidates"] == 800 and info["pool_candidates"] == 2400
    assert info["standard_error"] > 0
    assert abs(np.nanmean(corr) - np.nanmean(exact_corr)) < 4 * info["standard_error"]
    assert 0.3 < np.nanmean(exact_corr) < 0.9
    again = rank_correlations(pool, scorer, options)
    assert np.array_equal(again[2], corr) and again[3] == info
    rankings = pool_rankings(pool, scorer, options=options)
    assert rankings.rank_correlation == info


def test_engine_records_how_it_ran():
    rng = np.random.default_rng(3)
    pool = random_tied_pool(rng, questions=12, groups=16)
    results = engine_run(pool, dense_scorer(pool, rng), options=tiled(5, 11)).results
    engine = results.provenance["engine"]
    assert engine["executor"] == "local" and engine["device"] == "cpu"
    assert (engine["query_block"], engine["cand_block"]) == (5, 11)
    query_blocks = -(-len(pool.query_ids) // 5)
    assert engine["tiles"] == query_blocks * sum(-(-n // 11) for n in (40, 30, 25))  # per language
    assert engine["rank_correlation"] == {"method": "exact", "candidates": 95}


def test_memmap_candidates_are_read_by_block(tmp_path):
    """A memory-mapped candidate matrix scores exactly like the same matrix in memory."""
    rng = np.random.default_rng(4)
    pool = random_tied_pool(rng, questions=12, groups=16)
    q = rng.standard_normal((len(pool.query_ids), 24)).astype(np.float32)
    c = rng.standard_normal((len(pool.cand_ids), 24)).astype(np.float32)
    mm = np.lib.format.open_memmap(tmp_path / "cand.npy", mode="w+", dtype=np.float32, shape=c.shape)
    mm[:] = c
    mm.flush()
    on_disk = np.load(tmp_path / "cand.npy", mmap_mode="r")
    rows = np.arange(len(c))
    a = engine_run(pool, DenseScoreMatrix.build(pool, q, np.arange(len(q)), c, rows), options=tiled(3, 16))
    b = engine_run(
        pool, DenseScoreMatrix.build(pool, q, np.arange(len(q)), on_disk, rows), options=tiled(3, 16)
    )
    assert comparable(a.results) == comparable(b.results)
    assert np.array_equal(a.table.ap, b.table.ap)
    table = query_table(
        pool, relevant_ranks(pool, DenseScoreMatrix.build(pool, q, np.arange(len(q)), on_disk, rows))
    )
    assert np.array_equal(table.ap, a.table.ap)


def test_a_memmap_scorer_pickles_as_its_file(tmp_path):
    """A worker receives the file's name and layout, not 15 GB of embeddings, and scores the same."""
    rng = np.random.default_rng(4)
    pool = random_tied_pool(rng, questions=12, groups=16)
    q = rng.standard_normal((len(pool.query_ids), 24)).astype(np.float32)
    c = rng.standard_normal((len(pool.cand_ids), 24)).astype(np.float32)
    np.save(tmp_path / "cand.npy", c)
    scorer = DenseScoreMatrix.build(
        pool, q, np.arange(len(q)), np.load(tmp_path / "cand.npy", mmap_mode="r"), np.arange(len(c))
    )
    blob = pickle.dumps(scorer)
    assert len(blob) < c.nbytes
    copy = pickle.loads(blob)
    assert isinstance(copy.cand_emb, np.memmap)
    queries = np.arange(len(q))
    assert torch.equal(copy.scores(queries), scorer.scores(queries))
    (tmp_path / "cand.npy").unlink()
    with pytest.raises(UserError, match="storage every worker reaches"):
        pickle.loads(blob)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tiles_give_identical_ranks():
    rng = np.random.default_rng(3)
    pool = random_tied_pool(rng, questions=12, groups=16)
    scorer = dense_scorer(pool, rng)
    reference = engine_run(pool, scorer, options=tiled(1000, 1000, device="cuda"))
    assert reference.results.provenance["engine"]["device"] == "cuda"
    for tile in TILES:
        run = engine_run(pool, scorer, options=tiled(*tile, device="cuda"))
        assert np.array_equal(run.table.first_rank, reference.table.first_rank), tile
        assert np.array_equal(run.table.ap, reference.table.ap), tile


@pytest.mark.parametrize("coarse", [False, True], ids=["floats", "ties"])
def test_binary_search_and_comparison_counts_agree(monkeypatch, coarse):
    """Queries with up to 32 relevant candidates are counted by comparison passes, more by a binary
    search among the relevant keys (sparse or dense): both give the same ranks, -inf scores included."""
    from hybrid_plugin.scoring import tiles

    rng = np.random.default_rng(9)
    pool = random_tied_pool(rng, questions=12, groups=16)
    scorer = dense_scorer(pool, rng, coarse=coarse)
    matrix = scorer.scores(np.arange(len(pool.query_ids))).numpy()
    matrix[rng.random(matrix.shape) < 0.3] = -np.inf
    for candidate in (scorer, MatrixScorer(pool, matrix)):
        compared = relevant_ranks(pool, candidate, options=tiled(3, 16))
        monkeypatch.setattr(tiles, "COMPARE_MAX_WIDTH", 0)
        searched = relevant_ranks(pool, candidate, options=tiled(3, 16))
        monkeypatch.undo()
        for name in ("query", "cand", "rank_lang", "rank_pool", "retrieved"):
            assert np.array_equal(getattr(compared, name), getattr(searched, name)), name


def test_scattered_rows_of_a_memory_map_are_read_exactly(tmp_path):
    """A sample of rows (unsorted, repeated, in runs) read from the file equals fancy indexing, also
    from a slice of the map."""
    from hybrid_plugin.scoring.ranking import gather_rows

    data = np.arange(50 * 6, dtype=np.float32).reshape(50, 6)
    np.save(tmp_path / "m.npy", data)
    mapped = np.load(tmp_path / "m.npy", mmap_mode="r")
    rows = np.array([7, 3, 4, 5, 49, 0, 7, 20, 21])
    assert np.array_equal(gather_rows(mapped, rows), data[rows])
    assert np.array_equal(gather_rows(mapped[10:], rows[rows < 40]), data[10:][rows[rows < 40]])
    assert gather_rows(mapped, np.zeros(0, dtype=np.int64)).shape == (0, 6)
