"""``compare``: paired tests and bootstrap intervals, checked against scipy, ranx, brute force and by hand.

Synthetic pools go through the one engine (scores from a matrix, no model) and are written as
``hybrid-plugin evaluate`` writes them (results JSON + per-query Parquet), so every test reads real files.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import FixedRetriever, MatrixScorer
from scipy import stats as sps

from hybrid_plugin.cli import main
from hybrid_plugin.data.pool import LanguageFile, pool_from_files
from hybrid_plugin.evaluation.engine import TaskContext, evaluate_pool
from hybrid_plugin.evaluation.perquery import to_arrow
from hybrid_plugin.evaluation.report import write_results
from hybrid_plugin.stats import compare, render
from hybrid_plugin.stats.load import NotComparable, load_run
from hybrid_plugin.stats.paired import Cells, adjust, bootstrap_scores, sign_flip_pvalues, unit_pvalue


def synthetic_pool(
    languages=("xx", "yy", "zz"), groups=8, cands=24, missing=(), task="synth", fmt="sentence"
):
    """Question g's answer is candidate g of each language; ``missing`` (group, language) pairs are left
    out, so some groups are only partly parallel (as in MLQA-R)."""
    files = []
    for lang in languages:
        qids = [f"g{g:02d}" for g in range(groups) if (g, lang) not in missing]
        files.append(
            LanguageFile(
                lang,
                cand_ids=[f"{lang}-a000-p00-s{i:03d}" for i in range(cands)],
                sentences=[f"{lang} {i}" for i in range(cands)],
                contexts=["p"] * cands,
                question_ids=qids,
                questions=[f"{lang} {q}" for q in qids],
                answer_cand=[int(q[1:]) for q in qids],
            )
        )
    return pool_from_files(task, tuple(languages), files, fmt)


def scores(pool, seed: int, signal: float) -> np.ndarray:
    """Random scores, relevant candidates lifted by ``signal`` (continuous: no ties)."""
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(len(pool.query_ids), len(pool.cand_ids)))
    rows, cands = pool.relevant_pairs()
    matrix[rows, cands] += signal * rng.random(len(rows))
    return matrix


def write_run(pool, matrix, folder: Path, name: str) -> Path:
    """Evaluate with fixed scores through the engine and write results + per-query file."""
    evaluation = evaluate_pool(
        pool, FixedRetriever(MatrixScorer(pool, matrix), name), TaskContext(pool.task, "Synth")
    )
    return write_results(evaluation.results, folder, to_arrow(evaluation.table, evaluation.pool))["results"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three systems on a 3-language pool of 8 partly parallel groups, plus the pool."""
    pool = synthetic_pool(missing={(1, "yy"), (4, "zz"), (6, "xx")})
    out = tmp_path_factory.mktemp("runs")
    paths = {
        name: write_run(pool, scores(pool, seed, signal), out / name, name)
        for name, seed, signal in (("a", 1, 2.0), ("b", 2, 4.0), ("c", 3, 2.5))
    }
    return pool, paths


# --- the core against independent implementations, on plain per-query vectors --------------------------


def vectors(n=40, seed=7, shift=0.05):
    rng = np.random.default_rng(seed)
    a = rng.random(n)
    b = np.clip(a + rng.normal(shift, 0.15, n), 0, 1)
    return a, b


def plain_cells(a, b) -> Cells:
    n = len(a)
    return Cells.build([a, b], np.arange(n), n, np.zeros(n, dtype=np.int64), np.zeros(1, dtype=np.int64), 1)


def test_sign_flip_agrees_with_scipy_permutation_test():
    a, b = vectors()
    d = plain_cells(a, b).contributions(0, 1)
    assert d.sum(0) == pytest.approx([np.mean(b - a)] * 2)
    ours, used, exact = sign_flip_pvalues(d, 20_000, np.random.default_rng(0))
    assert used == 20_000 and not exact
    ref = sps.permutation_test(
        (b, a),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=20_000,
        random_state=1,
    ).pvalue
    assert 0.005 < ref < 0.3  # a p-value where Monte-Carlo error matters
    assert abs(ours[0] - ref) < 5 * np.sqrt(2 * ref * (1 - ref) / 20_000) + 1e-3


def test_exact_sign_flip_equals_scipy_exact():
    a, b = vectors(n=10, seed=3, shift=0.08)
    ours, used, exact = sign_flip_pvalues(
        plain_cells(a, b).contributions(0, 1), 5000, np.random.default_rng(0)
    )
    assert exact and used == 1024
    ref = sps.permutation_test(
        (b, a), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples", vectorized=True
    ).pvalue  # 2**10 < its default n_resamples: scipy enumerates too
    assert ours[0] == pytest.approx(ref, abs=1e-12)


def test_t_and_wilcoxon_equal_scipy():
    a, b = vectors()
    d = plain_cells(a, b).contributions(0, 1)[:, 0]
    assert unit_pvalue(d, "t") == pytest.approx(sps.ttest_rel(b, a).pvalue, rel=1e-12)
    assert unit_pvalue(d, "wilcoxon") == pytest.approx(sps.wilcoxon(b, a).pvalue, rel=1e-12)
    assert unit_pvalue(np.zeros(5), "t") == 1.0  # identical systems


def test_wilcoxon_ties_survive_scaling():
    """1/12 computed two ways differs in the last bit; as a tie its rank must not depend on the scale."""
    d = np.array([0.5 - 5 / 12, 0.25 - 1 / 6, -0.1, 0.2, 0.3, -0.05, 0.15, 0.4, -0.35, 0.45, 0.12])
    assert d[0] != d[1]
    p = unit_pvalue(d, "wilcoxon")
    assert p == unit_pvalue(d * (1 / 1190), "wilcoxon")
    assert p == pytest.approx(sps.wilcoxon(np.r_[1 / 12, 1 / 12, d[2:]]).pvalue, rel=1e-12)


def test_ranx_tests_agree_on_vectors():
    ranx_tests = pytest.importorskip("ranx.statistical_tests")
    a, b = vectors()
    ours, *_ = sign_flip_pvalues(plain_cells(a, b).contributions(0, 1), 20_000, np.random.default_rng(0))
    ref, _ = ranx_tests.fisher_randomization_test(a, b, 20_000, 0.05, 42)
    assert abs(ours[0] - ref) < 5 * np.sqrt(2 * ref * (1 - ref) / 20_000) + 1e-3
    d = plain_cells(a, b).contributions(0, 1)[:, 0]
    assert unit_pvalue(d, "t") == pytest.approx(ranx_tests.paired_student_t_test(a, b)[0], rel=1e-12)


def test_bootstrap_interval_agrees_with_scipy():
    a, b = vectors(n=60)
    cells = plain_cells(a, b)
    rng = np.random.default_rng(0)
    from hybrid_plugin.stats.paired import draw_counts, percentile_interval

    reps = bootstrap_scores([cells], draw_counts(60, 4000, rng))[0]
    low, high = percentile_interval(reps[1] - reps[0], 0.95)
    ref = sps.bootstrap(
        (b, a),
        lambda x, y: np.mean(x - y),
        paired=True,
        method="percentile",
        n_resamples=4000,
        random_state=2,
    ).confidence_interval
    width = ref.high - ref.low
    assert low[0] == pytest.approx(ref.low, abs=0.1 * width)
    assert high[0] == pytest.approx(ref.high, abs=0.1 * width)


def test_holm_and_bonferroni():
    assert adjust([0.01, 0.04, 0.03], "holm") == pytest.approx([0.03, 0.06, 0.06])
    assert adjust([0.01, 0.04, 0.03], "bonferroni") == pytest.approx([0.03, 0.12, 0.09])
    assert adjust([0.2, 0.5], "none") == [0.2, 0.5]


# --- grouped by hand --------------------------------------------------------------------------------


def hand_cells(unit: np.ndarray, n_units: int) -> Cells:
    """Two languages (one pool setting each), three groups; differences B − A per row:
    xx: g1 +0.3, g2 +0.1, g3 −0.1; yy: g1 +0.3, g2 +0.1, g3 +0.2 (macro difference 0.15)."""
    a = np.full(6, 0.5)
    b = a + np.array([0.3, 0.1, -0.1, 0.3, 0.1, 0.2])
    cell = np.array([0, 0, 0, 1, 1, 1])
    return Cells.build([a, b], unit, n_units, cell, np.array([0, 1]), 2)


def test_grouped_sign_flip_by_hand():
    """Groups: contributions 0.1, 1/30, 1/60 (each the mean of its two rows / 3 over 2 languages); only
    the two all-equal sign vectors reach |0.15| of 8: p = 0.25. Per language, xx: ±0.1 ± 1/30 ± 1/30
    reaches 0.1 in 6 of 8 (p 0.75), yy: ±0.1 ± 1/30 ± 1/15 reaches 0.2 in 2 of 8 (p 0.25); Holm: 0.5, 0.75.
    Per query (6 units): |T*| ≥ 0.15 when nothing, or one of the three ±1/60 rows, is flipped: 8 of 64."""
    grouped = hand_cells(np.array([0, 1, 2, 0, 1, 2]), 3)
    d = grouped.contributions(0, 1)
    assert d[:, 2] == pytest.approx([0.1, 1 / 30, 1 / 60])
    p, used, exact = sign_flip_pvalues(d, 10_000, np.random.default_rng(0))
    assert exact and used == 8
    assert p.tolist() == pytest.approx([0.75, 0.25, 0.25])
    assert adjust(p[:2].tolist(), "holm") == pytest.approx([0.75, 0.5])
    per_query = hand_cells(np.arange(6), 6)
    p, used, _ = sign_flip_pvalues(per_query.contributions(0, 1), 10_000, np.random.default_rng(0))
    assert used == 64 and p[2] == pytest.approx(8 / 64)


def macro(df: pd.DataFrame, column: str, kind: str) -> float:
    """The paper's average by brute force: mean per setting → per query language → over languages."""
    rows = df[(df.kind == kind) & df[column].notna()]
    return rows.groupby(["query_lang", "setting"])[column].mean().groupby("query_lang").mean().mean()


def test_grouped_compare_equals_brute_force(runs):
    """Exact grouped p-values of compare() against flipping whole groups in the per-query tables."""
    pool, paths = runs
    cmp = compare(paths["a"], paths["b"], permutations=1000, bootstraps=200)
    assert cmp.units == 8 and cmp.exact and cmp.permutations == 256
    tables = {k: pd.read_parquet(p.with_name(p.stem + ".queries.parquet")) for k, p in paths.items()}
    a, b = (tables[k].sort_values(["setting", "query_id"]).reset_index(drop=True) for k in "ab")
    groups = sorted(a.group.unique())
    for key, column, kind in (("multi_map", "ap", "multi"), ("cross_map", "ap", "cross")):
        observed = macro(b, column, kind) - macro(a, column, kind)
        hits = 0
        for signs in itertools.product((1, -1), repeat=len(groups)):
            flip = a.group.isin([g for g, s in zip(groups, signs) if s < 0])
            x, y = a.copy(), b.copy()
            x.loc[flip, column], y.loc[flip, column] = b.loc[flip, column], a.loc[flip, column]
            hits += abs(macro(y, column, kind) - macro(x, column, kind)) >= abs(observed) - 1e-12
        got = cmp.pairs[0].measure(key).macro
        assert got.difference.value == pytest.approx(observed, abs=1e-12)
        assert got.test.p == pytest.approx(hits / 2 ** len(groups))


def test_bootstrap_replicate_equals_resampled_table(runs):
    """A bootstrap replicate = the macro average of a table in which each group appears as often as drawn."""
    pool, paths = runs
    run = load_run(paths["a"])
    df = pd.DataFrame({**run.keys, "ap": run.values["cross_map"]})
    groups, unit = np.unique(run.keys["group"], return_inverse=True)
    settings, cell = np.unique(run.keys["setting"], return_inverse=True)
    langs = {x: i for i, x in enumerate(run.results.languages)}
    cell_lang = np.zeros(len(settings), dtype=np.int64)
    cell_lang[cell] = [langs[x] for x in run.keys["query_lang"]]
    cells = Cells.build([run.values["cross_map"]], unit, len(groups), cell, cell_lang, len(langs))
    counts = np.array([[2, 0, 1, 1, 3, 0, 1, 0], [1, 1, 1, 1, 1, 1, 1, 1]], dtype=np.float64)
    reps = bootstrap_scores([cells], counts)[0][0]
    for row, drawn in zip(reps, counts):
        resampled = pd.concat([df[df.group == g] for g, k in zip(groups, drawn) for _ in range(int(k))])
        assert row[-1] == pytest.approx(macro(resampled, "ap", "cross"), abs=1e-12)
        per_lang = resampled[resampled.kind == "cross"].groupby(["query_lang", "setting"]).ap.mean()
        assert row[langs["yy"]] == pytest.approx(per_lang["yy"].mean(), abs=1e-12)
    assert reps[1, -1] == pytest.approx(run.results.scores.cross_map, abs=1e-12)  # each group once


# --- end to end -------------------------------------------------------------------------------------


def test_compare_reports_scores_intervals_and_counts(runs):
    pool, paths = runs
    cmp = compare(paths["a"], paths["b"], paths["c"], permutations=2000, bootstraps=500, seed=1)
    a_json = json.loads(paths["a"].read_text())
    b_json = json.loads(paths["b"].read_text())
    assert [p.system for p in cmp.pairs] == ["b", "c"] and cmp.pairs[0].baseline == "a"
    multi = cmp.pairs[0].measure("multi_map")
    assert multi.macro.baseline.value == pytest.approx(a_json["scores"]["multi_map"], abs=1e-12)
    assert multi.macro.system.value == pytest.approx(b_json["scores"]["multi_map"], abs=1e-12)
    for iv in (multi.macro.baseline, multi.macro.system, multi.macro.difference):
        assert iv.low <= iv.value <= iv.high
    assert multi.macro.difference.value > 0 and multi.macro.test.higher > multi.macro.test.lower
    # every group has pool rows: higher + lower + tied = 8 groups
    t = multi.macro.test
    assert t.higher + t.lower + t.tied == 8
    assert set(multi.per_language) == {"xx", "yy", "zz"}
    rank = cmp.pairs[0].measure("max_rank_distance")
    assert rank.higher_is_better is False
    for key in ("lang_ndcg_10", "top1_wrong_query_lang", "top10_query_lang_share", "mean_rank_correlation"):
        assert cmp.pairs[0].measure(key).macro.system.value == pytest.approx(b_json["scores"][key], abs=1e-12)
    assert cmp.pairs[0].measure("same_language_top_share").higher_is_better is None
    text = render(cmp, "table")
    assert "unit: parallel question group (8 groups)" in text and "b vs a" in text and "c vs a" in text
    assert "Holm-corrected" in text
    for fmt in ("markdown", "latex"):
        assert "multi ↑" in render(cmp, fmt) or r"multi $\uparrow$" in render(cmp, fmt)
    assert json.loads(render(cmp, "json"))["pairs"][1]["system"] == "c"


def copy_run(results: Path, folder: Path) -> Path:
    """The results JSON and its per-query file, copied into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in results.parent.glob(results.stem + "*"):
        (folder / f.name).write_bytes(f.read_bytes())
    return folder / results.name


def test_identical_systems_are_tied(runs, tmp_path):
    _, paths = runs
    cmp = compare(paths["a"], copy_run(paths["a"], tmp_path / "copy"), permutations=500, bootstraps=100)
    m = cmp.pairs[0].measure("multi_map").macro
    assert m.difference.value == 0 and m.test.p == 1.0 and m.test.tied == 8 and m.test.higher == 0
    assert m.difference.low == 0 and m.difference.high == 0


def test_rows_undefined_for_one_system_are_left_out(runs, tmp_path):
    """A query that retrieves nothing (all scores -inf, as BM25 reports it) has no top-1 and no rank
    correlation: those rows are left out of the pairs, and the output says so."""
    pool, paths = runs
    matrix = scores(pool, 2, 4.0)
    matrix[0] = -np.inf
    empty = write_run(pool, matrix, tmp_path / "empty", "e")
    cmp = compare(paths["a"], empty, permutations=500, bootstraps=100)
    note = next(n for n in cmp.notes if "rows left out" in n)
    assert "top1_wrong_query_lang (1)" in note and "mean_rank_correlation (1)" in note
    assert cmp.pairs[0].measure("top1_wrong_query_lang").macro.test.p is not None


def test_per_query_unit_and_t_test(runs):
    _, paths = runs
    cmp = compare(paths["a"], paths["b"], unit="query", test="t", bootstraps=100)
    assert cmp.unit == "query" and cmp.units == 21  # 24 questions, three missing
    assert "overstates the evidence" in cmp.notes[0]
    w = compare(paths["a"], paths["b"], test="wilcoxon", bootstraps=100)
    assert "Wilcoxon" in w.notes[1]


def test_seed_groups(runs, tmp_path):
    """A system of seeds: per-query means over seeds; a group of one file twice equals that file."""
    _, paths = runs
    twice = compare(
        groups={"A": [paths["a"], paths["a"]], "B": [paths["b"]]}, permutations=500, bootstraps=100
    )
    once = compare(paths["a"], paths["b"], permutations=500, bootstraps=100)
    assert twice.pairs[0].baseline == "A"
    assert twice.pairs[0].measure("multi_map").macro.test.p == once.pairs[0].measure("multi_map").macro.test.p
    mixed = compare(
        groups={"AC": [paths["a"], paths["c"]], "B": [paths["b"]]}, permutations=500, bootstraps=100
    )
    a_score = json.loads(paths["a"].read_text())["scores"]["multi_map"]
    c_score = json.loads(paths["c"].read_text())["scores"]["multi_map"]
    assert mixed.pairs[0].measure("multi_map").macro.baseline.value == pytest.approx((a_score + c_score) / 2)
    mean, sd = mixed.systems[0].spread("multi_map")
    assert mean == pytest.approx((a_score + c_score) / 2) and sd == pytest.approx(
        abs(a_score - c_score) / 2**0.5
    )
    assert any("training-seed variance is not part of the test" in n for n in mixed.notes)


def test_ranx_compare_on_the_same_runs(tmp_path):
    """One language, no score ties: ranx's AP equals ours, and its Fisher/t p-values and win/tie/loss equal
    compare()'s per-query ones on multi mAP (the plain mean over queries there)."""
    ranx = pytest.importorskip("ranx")
    pool = synthetic_pool(languages=("xx",), groups=30, cands=60)
    paths = {}
    matrices = {}
    for name, seed, signal in (("a", 11, 1.5), ("b", 12, 2.5)):
        matrices[name] = scores(pool, seed, signal).astype(np.float32).astype(np.float64)
        paths[name] = write_run(pool, matrices[name], tmp_path / name, name)
    qrels = ranx.Qrels(
        {q: {pool.cand_ids[c]: 1 for c in pool.relevant(i)} for i, q in enumerate(pool.query_ids)}
    )
    ranx_runs = [
        ranx.Run(
            {q: dict(zip(pool.cand_ids, map(float, matrices[n][i]))) for i, q in enumerate(pool.query_ids)},
            name=n,
        )
        for n in ("a", "b")
    ]
    for test, stat_test in (("randomization", "fisher"), ("t", "student")):
        report = ranx.compare(qrels, ranx_runs, metrics=["map"], stat_test=stat_test, n_permutations=20_000)
        ref = report.to_dict()
        cmp = compare(paths["a"], paths["b"], unit="query", test=test, permutations=20_000, bootstraps=100)
        m = cmp.pairs[0].measure("multi_map").macro
        assert m.baseline.value == pytest.approx(ref["a"]["scores"]["map"], abs=1e-9)
        assert m.system.value == pytest.approx(ref["b"]["scores"]["map"], abs=1e-9)
        p_ref = ref["a"]["comparisons"]["b"]["map"]
        if test == "t":
            assert m.test.p == pytest.approx(p_ref, rel=1e-9)
        else:
            assert abs(m.test.p - p_ref) < 5 * np.sqrt(2 * p_ref * (1 - p_ref) / 20_000) + 1e-3
        wtl = ref["b"]["win_tie_loss"]["a"]["map"]
        assert (m.test.higher, m.test.tied, m.test.lower) == (wtl["W"], wtl["T"], wtl["L"])


# --- refusals ---------------------------------------------------------------------------------------


def refuse(capsys, *argv) -> str:
    assert main(["compare", *map(str, argv)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def test_refusals(runs, tmp_path, capsys):
    pool, paths = runs
    other = tmp_path / "other"
    for label, kwargs, expected in (
        ("task", {"task": "other"}, "task synth vs other"),
        ("langs", {"languages": ("xx", "yy")}, "languages xx,yy,zz vs xx,yy"),
        ("fmt", {"fmt": "sentence+context"}, "candidate format sentence vs sentence+context"),
        ("queries", {"missing": {(1, "yy"), (4, "zz")}}, "different query sets"),
    ):
        changed = synthetic_pool(**{"missing": {(1, "yy"), (4, "zz"), (6, "xx")}, **kwargs})
        path = write_run(changed, scores(changed, 5, 2.0), other / label, "z")
        assert expected in refuse(capsys, paths["a"], path)
    # a per-query file changed after evaluation, or gone
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in paths["b"].parent.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    results = copy / paths["b"].name
    parquet = results.with_name(results.stem + ".queries.parquet")
    parquet.write_bytes(parquet.read_bytes() + b"\0")
    assert "does not have the sha256" in refuse(capsys, paths["a"], results)
    parquet.unlink()
    assert "is missing beside it" in refuse(capsys, paths["a"], results)
    # format-1 results have no per-query file
    doc = json.loads(results.read_text())
    doc.pop("per_query")
    doc["format"] = 1
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    assert "no per-query file recorded" in refuse(capsys, paths["a"], old)
    assert "at least two" in refuse(capsys, paths["a"])
    # a file compared with itself (also through another spelling of its path, or as a seed of a group)
    again = paths["a"].parent / ".." / paths["a"].parent.name / paths["a"].name
    assert "given twice (the same file as" in refuse(capsys, paths["a"], again)
    assert "given twice" in refuse(capsys, paths["a"], "--group", f"X={paths['b']},{paths['a']}")
    assert "--baseline nope" in refuse(capsys, paths["a"], paths["b"], "--baseline", "nope")


def test_a_per_query_file_that_does_not_reproduce_the_scores_is_refused(runs, tmp_path):
    _, paths = runs
    doc = json.loads(paths["a"].read_text())
    doc["scores"]["multi_map"] += 0.01
    forged = tmp_path / paths["a"].name
    forged.write_text(json.dumps(doc))
    parquet = paths["a"].with_name(paths["a"].stem + ".queries.parquet")
    forged.with_name(parquet.name).write_bytes(parquet.read_bytes())
    with pytest.raises(NotComparable, match="gives scores.multi_map"):
        compare(forged, paths["b"])


def test_cli_compare_prints_the_table(runs, capsys):
    _, paths = runs
    argv = [
        "compare",
        paths["a"],
        paths["b"],
        "--permutations",
        "300",
        "--bootstraps",
        "100",
        "--format",
        "markdown",
    ]
    assert main(list(map(str, argv))) == 0
    out = capsys.readouterr().out
    assert "## b vs a" in out and "| measure |" in out and "unit: parallel question group" in out


def test_cli_compare_fits_100_columns_and_wide_has_every_interval(runs, capsys):
    """The default console table fits a 100-column terminal (it was 156 to 282 wide); ``--wide`` is
    the former table with each system's interval. Directions come from the measures' definitions."""
    _, paths = runs
    argv = ["compare", paths["a"], paths["b"], paths["c"], "--permutations", "300", "--bootstraps", "100"]
    assert main(list(map(str, argv))) == 0
    compact = capsys.readouterr().out
    assert max(map(len, compact.splitlines())) <= 100
    assert "b vs a (B = b, A = a, the baseline)" in compact and "B − A [95% CI]" in compact
    assert "rank dist ↓" in compact and "top1 ✓ other " in compact and "top1 ✓ other ↑" not in compact
    assert "↑ higher is better, ↓ lower is better, no arrow: neither direction is better" in compact
    cmp = compare(paths["a"], paths["b"], paths["c"], permutations=300, bootstraps=100)
    multi = cmp.pairs[0].measure("multi_map").macro
    row = next(line for line in compact.splitlines() if line.startswith("multi ↑"))
    assert row.split()[2:4] == [f"{multi.baseline.value:.3f}", f"{multi.system.value:.3f}"]
    assert main([*map(str, argv), "--wide"]) == 0
    wide = capsys.readouterr().out
    assert max(map(len, wide.splitlines())) > 100
    assert render(cmp, "table", wide=True) in wide
    base = multi.baseline
    assert f"{base.value:.3f} [{base.low:.3f}, {base.high:.3f}]" in wide
