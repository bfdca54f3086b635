"""The study runner end to end on a tiny model: plan → train → evaluate → report, and resume."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from hybrid_plugin.evaluation.results import Results

pytest.importorskip("accelerate", reason="training needs the train extra")
STUDY = Path(__file__).resolve().parents[1] / "benchmarks" / "study"


def _study():
    spec = importlib.util.spec_from_file_location(
        "study", STUDY / "__init__.py", submodule_search_locations=[str(STUDY)]
    )
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["study"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_plans_name_their_runs_share_them_and_say_their_tasks() -> None:
    study = _study()
    main = study.plan_runs("main", [0, 1], 32)
    assert [r.name for r in main][:5] == [
        "untrained", "mono-b32-s0", "cross-b32-s0", "hybrid-a0.5-b32-s0", "mixed-b32-s0",
    ]  # fmt: skip
    assert len(main) == 9 and set(main.values()) == {("xquad-r", "mlqa-r")}
    alpha = {r.name: tasks for r, tasks in study.plan_runs("alpha", [0], 32).items()}
    assert list(alpha) == [
        "untrained",
        "cross-b32-s0",
        "hybrid-a0.25-b32-s0",
        "hybrid-a0.5-b32-s0",
        "hybrid-a0.75-b32-s0",
        "mono-b32-s0",
    ]  # fmt: skip  (α = 0 and α = 1 are the X-Y and X-X-mono runs)
    assert study.Run("cross").alpha_value == 0.0 and study.Run("mono").alpha_value == 1.0
    everything = {r.name: tasks for r, tasks in study.plan_runs("all", [0], 32).items()}
    assert everything["hybrid-a0.5-b32-s0"] == ("xquad-r", "mlqa-r", "tydi-goldp")  # trained once
    assert everything["hybrid-a0.5-b32-s0-m0.5"] == ("xquad-r", "tydi-goldp")
    assert everything["hybrid-a0.5-b256-s0"] == ("xquad-r",)
    assert everything["untrained"] == ("xquad-r", "mlqa-r", "tydi-goldp")
    batch = study.plan_runs("batch", [0, 1], 32, batch_sizes=(16, 64))
    assert [r.name for r in batch] == [
        "untrained",
        "hybrid-a0.5-b32-s0",
        "hybrid-a0.5-b16-s0",
        "hybrid-a0.5-b64-s0",
        "hybrid-a0.5-b32-s1",
        "hybrid-a0.5-b16-s1",
        "hybrid-a0.5-b64-s1",
    ]  # fmt: skip  (every size for every seed, so a size's seed spread is measured too)
    with pytest.raises(Exception, match="--plan 'nope'"):
        study.plan_runs("nope", [0], 32)


def test_seeds_plan_goes_seed_by_seed_and_pairs_set_the_steps() -> None:
    study = _study()
    seeds = study.plan_runs("seeds", [0, 1], 32)
    assert [r.name for r in seeds] == [
        "untrained",
        "hybrid-a0.5-b32-s0", "mono-b32-s0", "cross-b32-s0",
        "hybrid-a0.5-b32-s1", "mono-b32-s1", "cross-b32-s1",
    ]  # fmt: skip
    assert set(seeds.values()) == {("xquad-r",)}
    merged = study.plan_runs("merge", [0], 32, merge=(0.25, 0.75))
    assert [r.name for r in merged] == [
        "untrained",
        "untrained-centered",
        "hybrid-a0.5-b32-s0",
        "hybrid-a0.5-b32-s0-m0.25",
        "hybrid-a0.5-b32-s0-m0.75",
    ]  # fmt: skip  (the training-free references: centering, and merges made from hybrid's weights)
    centered = study.Run("untrained", debias="center")
    assert (
        centered.label == "untrained base + centering (pool-fitted: transductive)"
        and study.Run("untrained").name == "untrained"
    )
    args = study.parse_args(["--plan", "batch", "--pairs", "6400", "--merge", "0.25,0.5"])
    assert args.merge == (0.25, 0.5)
    steps = {b: study.steps_for(study.Run("hybrid", 0.5, b), args) for b in (16, 32, 64, 256)}
    assert steps == {16: 400, 32: 200, 64: 100, 256: 25}
    with pytest.raises(Exception, match="--pairs 6400: not a multiple of batch size 48"):
        study.steps_for(study.Run("hybrid", 0.5, 48), args)
    assert study.steps_for(study.Run("mono"), study.parse_args(["--steps", "7"])) == 7
    order = ["mono-b32-s1", "hybrid-a0.5-b32-s0"]
    assert [r.name for r in study.only_runs(seeds, order)] == order
    with pytest.raises(
        Exception, match=r"--only mixed-b32-s0: not in this plan \(its runs: untrained, hybrid"
    ):
        study.only_runs(seeds, ["mixed-b32-s0"])


def test_smoke_plan_trains_evaluates_reports_and_resumes(
    tmp_path: Path, tiny_model: Path, train_jsonl: Path, datasets: Path
) -> None:
    study = _study()
    argv = [
        "--plan", "smoke", "--seeds", "0", "--data-dir", str(datasets),
        "--train-data", f"jsonl:{train_jsonl}", "--base-model", str(tiny_model),
        "--work", str(tmp_path / "work"), "--report", str(tmp_path / "docs" / "study.md"),
        "--steps", "2", "--batch-size", "8", "--max-seq-length", "32", "--save-steps", "0",
        "--tasks", "xquad-r", "--eval-languages", "xquad-r=de,zh", "--no-progress",
    ]  # fmt: skip
    assert study.main(argv) == 0
    work = tmp_path / "work"
    assert sorted(p.name for p in work.iterdir()) == ["hybrid-a0.5-b8-s0", "mono-b8-s0", "untrained"]
    record = json.loads((work / "mono-b8-s0" / "model" / "training.json").read_text(encoding="utf-8"))
    assert record["steps"] == 2 and record["config"]["strategy"] == "mono"
    results_file = work / "hybrid-a0.5-b8-s0" / "eval" / "xquad-r.de-zh.json"
    results = json.loads(results_file.read_text(encoding="utf-8"))
    assert results["languages"] == ["de", "zh"] and "alignment" in results
    report = (tmp_path / "docs" / "study.md").read_text(encoding="utf-8")
    for row in ("| untrained base | 1 |", "| X-X-mono | 1 |", "| hybrid α=0.5 | 1 |"):
        assert row in report
    assert "Claims of the paper" in report and "(needs the main plan's" in report
    summary = json.loads((tmp_path / "docs" / "study" / "summary.json").read_text(encoding="utf-8"))
    hybrid = next(r for r in summary if r["name"] == "hybrid-a0.5-b8-s0")
    assert hybrid["tasks"]["xquad-r"]["multi_map"] == results["scores"]["multi_map"]  # read, not typed
    assert (tmp_path / "docs" / "study" / "xquad-r-scatter.png").stat().st_size > 1000
    copied = tmp_path / "docs" / "study" / "runs" / "hybrid-a0.5-b8-s0"
    assert (copied / "xquad-r.de-zh.json").read_bytes() == results_file.read_bytes()
    assert results["per_query"]["file"] == "xquad-r.de-zh.queries.parquet"  # testable claims later
    assert (copied / "xquad-r.de-zh.queries.parquet").read_bytes() == (
        results_file.with_name("xquad-r.de-zh.queries.parquet").read_bytes()
    )
    record = json.loads((copied / "training.json").read_text(encoding="utf-8"))
    assert record["config"]["strategy"] == "hybrid"

    stamps = {p: p.stat().st_mtime_ns for p in work.rglob("*.json")}
    assert study.main(argv) == 0  # a second run trains and evaluates nothing again
    assert {p: p.stat().st_mtime_ns for p in work.rglob("*.json")} == stamps

    # merge: made from the trained hybrid's weights (training.json untouched), not trained again
    merge_argv = [*argv[:1], "merge", *argv[2:]]
    assert study.main(merge_argv) == 0
    merged = json.loads((work / "hybrid-a0.5-b8-s0-m0.5" / "model" / "training.json").read_text("utf-8"))
    assert merged["merge_with_base"]["merged_from"] == str(work / "hybrid-a0.5-b8-s0" / "model")
    assert {p: p.stat().st_mtime_ns for p in work.rglob("*.json") if p in stamps} == stamps
    report = (tmp_path / "docs" / "study.md").read_text(encoding="utf-8")
    assert "| hybrid α=0.5 merged λ=0.5 | 1 |" in report

    # report only: nothing trained, the missing runs listed
    assert study.main([*argv[:1], "batch", *argv[2:], "--report-only", "--batch-sizes", "16"]) == 0
    assert not (work / "hybrid-a0.5-b16-s0").exists()
    report = (tmp_path / "docs" / "study.md").read_text(encoding="utf-8")
    assert "## Not run" in report and "- hybrid-a0.5-b16-s0: not trained" in report


def _row(label: str, seed: int, mono: float, multi: float, distance: float, alpha=None) -> dict:
    scores = {"mono_map": mono, "cross_map": 0.5, "multi_map": multi, "max_rank_distance": distance}
    strategy = "hybrid" if label.startswith("hybrid") else "mono"
    return {"label": label, "seed": seed, "merge": None, "strategy": strategy, "alpha": alpha,
            "batch_size": 32, "tasks": {"xquad-r": scores}}  # fmt: skip


def test_claims_are_checked_on_seed_means(tmp_path: Path) -> None:
    study = _study()
    rows = [
        _row("hybrid α=0.5", 0, 0.78, 0.50, 300.0, 0.5), _row("hybrid α=0.5", 1, 0.76, 0.54, 340.0, 0.5),
        _row("X-X-mono", 0, 0.78, 0.52, 400.0), _row("X-X-mono", 1, 0.78, 0.50, 380.0),
        _row("X-Y", 0, 0.70, 0.53, 350.0), _row("X-Y", 1, 0.70, 0.53, 350.0),
    ]  # fmt: skip
    lines = study.claims(rows, "xquad-r")
    # hybrid means: mono 0.77, multi 0.52, distance 320; mono-only: 0.78, 0.51, 390; X-Y multi 0.53
    assert lines[0].startswith("- Hybrid ≥ both baselines on multilingual retrieval: **no**")
    assert "multi mAP hybrid 0.520, X-X-mono 0.510, X-Y 0.530" in lines[0]
    assert "**yes** (mono mAP hybrid 0.770 vs 0.780, difference -0.010)" in lines[1]
    assert "**yes** (max rank distance hybrid 320.0 vs 390.0)" in lines[2]
    assert "point estimates: no per-query files for X-X-mono, X-X-mono, X-Y, X-Y, hybrid" in lines[3]
    assert len(lines) == 4  # every model has seeds 0 and 1: nothing left out

    # X-Y has seed 0 only: hybrid vs X-Y compares seed 0, hybrid vs X-X-mono both seeds, and a line says so
    matched = study.claims(rows[:-1], "xquad-r")
    assert matched[1:3] == lines[1:3]  # mono closeness and bias: hybrid vs X-X-mono on seeds 0 and 1
    # multi: hybrid 0.520 vs X-X-mono 0.510 (seeds 0, 1) but hybrid 0.500 vs X-Y 0.530 (seed 0): no
    assert "**no** (multi mAP hybrid 0.520 vs X-X-mono 0.510; hybrid 0.500 vs X-Y 0.530)" in matched[0]
    assert matched[-1] == (
        "- Seeds matched per comparison: hybrid vs X-X-mono on seeds 0, 1; hybrid vs X-Y on seed 0 "
        "(the seeds both models have; the others count in the seed spread)."
    )
    # hybrid ahead of X-Y on seed 0 only: then the verdict turns on that seed alone
    first = rows[0]  # hybrid seed 0
    ahead = [dict(first, tasks={"xquad-r": dict(first["tasks"]["xquad-r"], multi_map=0.6)}), *rows[1:-1]]
    assert (
        "**yes** (multi mAP hybrid 0.570 vs X-X-mono 0.510; hybrid 0.600 vs X-Y 0.530)"
        in study.claims(ahead, "xquad-r")[0]
    )
    alpha_rows = [_row("hybrid", s, 0.7, 0.5, 1.0, a) for a in (0, 0.5, 1) for s in (0, 1)]
    assert study.plot_alpha(alpha_rows, "xquad-r", tmp_path / "alpha.png", 32)  # seeds share an alpha
    assert (tmp_path / "alpha.png").stat().st_size > 1000


def test_claims_are_tested_on_per_query_files(tmp_path: Path) -> None:
    """With per-query files each claim states the difference, its interval and p (compare's numbers)."""
    from test_stats import scores, synthetic_pool, write_run

    from hybrid_plugin.stats import compare, compare_runs

    study = _study()
    pool = synthetic_pool(groups=12)
    paths = {
        label: write_run(pool, scores(pool, seed, signal), tmp_path / str(seed), f"m{seed}")
        for label, seed, signal in (("hybrid α=0.5", 1, 4.0), ("X-X-mono", 2, 1.0), ("X-Y", 3, 3.9))
    }
    rows = [
        {
            "label": label,
            "name": f"run-{i}",
            "merge": None,
            "tasks": {"synth": {}},
            "results_path": {"synth": str(p)},
        }
        for i, (label, p) in enumerate(paths.items())
    ]
    lines = study.claims(rows, "synth")
    ref = compare(paths["X-X-mono"], paths["hybrid α=0.5"], permutations=10_000, bootstraps=2_000, seed=0)
    multi = ref.pairs[0].measure("multi_map").macro
    d = multi.difference
    assert (
        f"hybrid − X-X-mono {d.value:+.3f} [{d.low:+.3f}, {d.high:+.3f}], p = {multi.test.p:.4f}" in lines[0]
    )
    assert "hybrid − X-Y" in lines[0] and lines[0].count("p = ") == 2
    assert "mono mAP hybrid − X-X-mono" in lines[1] and "max rank distance hybrid − X-X-mono" in lines[2]
    for line in lines[:3]:
        verdict = line.split("**")[1]
        assert verdict in ("yes", "no") or verdict.startswith(("not distinguishable", "not established"))
    assert "12 parallel question groups" in lines[3]

    # X-Y without its per-query file (evaluated before they existed): the hybrid vs X-X-mono claims are
    # still tested, hybrid vs X-Y is stated on the point estimates and says so
    bare = tmp_path / "bare" / paths["X-Y"].name
    bare.parent.mkdir()
    bare.write_bytes(paths["X-Y"].read_bytes())
    for r in rows:
        r["tasks"]["synth"] = study.summarise(Results.load(r["results_path"]["synth"]))
    rows[2]["results_path"]["synth"] = str(bare)
    partial = study.claims(rows, "synth")
    assert partial[1:3] == lines[1:3]  # mono closeness and bias: hybrid vs X-X-mono, tested as before
    h, x = (rows[i]["tasks"]["synth"]["multi_map"] for i in (0, 2))
    assert f"hybrid − X-X-mono {d.value:+.3f} [{d.low:+.3f}, {d.high:+.3f}]" in partial[0]
    assert f"hybrid {h:.3f} vs X-Y {x:.3f}, a point estimate: run-2 has no per-query file" in partial[0]
    assert partial[0].count("p = ") == 1

    # seed 1 of hybrid and X-X-mono, X-Y seed 0 only: each comparison uses the seeds both models have
    extra = {
        label: write_run(pool, scores(pool, seed, signal), tmp_path / str(seed), f"m{seed}")
        for label, seed, signal in (("hybrid α=0.5", 4, 3.5), ("X-X-mono", 5, 1.5))
    }
    rows[2]["results_path"]["synth"] = str(paths["X-Y"])
    seeded = [dict(r, seed=0) for r in rows] + [
        {"label": label, "name": f"run-{label}-1", "merge": None, "seed": 1,
         "tasks": {"synth": study.summarise(Results.load(p))}, "results_path": {"synth": str(p)}}
        for label, p in extra.items()
    ]  # fmt: skip
    two = study.claims(seeded, "synth")
    systems = [(k[0], [paths[k], extra[k]]) for k in ("X-X-mono", "hybrid α=0.5")]
    both = compare_runs(systems, permutations=10_000, bootstraps=2_000, seed=0).pairs[0]
    for key, line in (("multi_map", two[0]), ("mono_map", two[1])):
        d = both.measure(key).macro.difference
        assert f"hybrid − X-X-mono {d.value:+.3f} [{d.low:+.3f}, {d.high:+.3f}]" in line
    # the interval pools the two seeds per query; each seed's own difference is stated beside it
    summary = {(r["label"], r["seed"]): r["tasks"]["synth"] for r in seeded}
    for key, line, places in (
        ("multi_map", two[0], 3),
        ("mono_map", two[1], 3),
        ("max_rank_distance", two[2], 1),
    ):
        diffs = [summary["hybrid α=0.5", s][key] - summary["X-X-mono", s][key] for s in (0, 1)]
        assert f"; by seed: seed 0 {diffs[0]:+.{places}f}, seed 1 {diffs[1]:+.{places}f}" in line
    assert "by seed" not in lines[0] + lines[1] + lines[2]  # one seed: nothing to show
    assert "hybrid − X-Y" in two[0] and lines[0].split("hybrid − X-Y")[1] == two[0].split("hybrid − X-Y")[1]
    assert two[-1].startswith(
        "- Seeds matched per comparison: hybrid vs X-X-mono on seeds 0, 1; hybrid vs X-Y on seed 0"
    )

    # X-Y seed 1 too: hybrid vs X-Y pools both seeds and states its own per-seed differences
    cross1 = write_run(pool, scores(pool, 6, 2.5), tmp_path / "6", "m6")
    full = seeded + [
        {"label": "X-Y", "name": "run-X-Y-1", "merge": None, "seed": 1,
         "tasks": {"synth": study.summarise(Results.load(cross1))}, "results_path": {"synth": str(cross1)}}
    ]  # fmt: skip
    three = study.claims(full, "synth")
    vs_cross = compare_runs(
        [("X-Y", [paths["X-Y"], cross1]), ("hybrid α=0.5", [paths["hybrid α=0.5"], extra["hybrid α=0.5"]])],
        permutations=10_000,
        bootstraps=2_000,
        seed=0,
    ).pairs[0]
    d = vs_cross.measure("multi_map").macro.difference
    summary[("X-Y", 1)] = full[-1]["tasks"]["synth"]
    diffs = [summary["hybrid α=0.5", s]["multi_map"] - summary["X-Y", s]["multi_map"] for s in (0, 1)]
    after = three[0].split("hybrid − X-Y ")[1]
    assert after.startswith(f"{d.value:+.3f} [{d.low:+.3f}, {d.high:+.3f}]")
    assert f"; by seed: seed 0 {diffs[0]:+.3f}, seed 1 {diffs[1]:+.3f})." in after
    assert three[1:3] == two[1:3]  # the claims against X-X-mono are unchanged
    vs_mono_part = lambda line: line.split("(multi mAP ")[1].split("; hybrid − X-Y")[0]  # noqa: E731
    assert vs_mono_part(three[0]) == vs_mono_part(two[0])
    assert not any(line.startswith("- Seeds matched") for line in three)  # every model has seeds 0 and 1


def test_trained_rows_go_to_the_leaderboard_with_provenance(tmp_path: Path, tiny_results: dict) -> None:
    import argparse

    from hybrid_plugin.leaderboard.board import validate

    study = _study()
    row = {"strategy": "hybrid", "label": "hybrid α=0.5", "seed": 0, "steps": 2, "name": "hybrid-a0.5-b8-s0",
           "results_path": {"xquad-r": str(tiny_results["sentence"])}}  # fmt: skip
    untrained = {"strategy": "untrained", "results_path": {"xquad-r": str(tiny_results["sentence"])}}
    board = tmp_path / "board"
    args = argparse.Namespace(leaderboard=str(board), eval_languages={})
    done = study.submit_to_leaderboard([untrained, row], args)
    assert len(done) == 1 and "e5-small + hybrid α=0.5, seed 0, 2 steps" in done[0]
    checked, problems = validate([board / "xquad-r.csv"])
    assert problems == [] and len(checked[0].rows) == 1
    assert checked[0].rows[0].model.notes == "benchmarks/study.py run hybrid-a0.5-b8-s0; docs/study.md"
    assert checked[0].rows[0].model.submitter == "hybrid_plugin maintainers"  # not git's user name
    assert (board / "README.md").is_file() and (board / "index.html").is_file()
    assert study.submit_to_leaderboard([row], args)  # replaces its own row
    assert len(validate([board / "xquad-r.csv"])[0][0].rows) == 1
    # the run made again gives another row key (here another candidate format; retrained: another
    # fingerprint): its earlier row goes by name
    again = row | {"results_path": {"xquad-r": str(tiny_results["sentence+context"])}}
    assert study.submit_to_leaderboard([again], args)
    (left,) = validate([board / "xquad-r.csv"])[0][0].rows
    assert left.model.candidate_format == "sentence+context"
    args.eval_languages = {"xquad-r": "de,en"}  # sweeps on a language subset give no rows
    assert study.submit_to_leaderboard([row], args) == []


def test_pareto_front_by_hand(tmp_path: Path) -> None:
    """A model is dominated when another is at least as good on mono and multi mAP and better on one."""
    study = _study()
    rows = [
        _row("A", 0, 0.80, 0.30, 1.0), _row("B", 0, 0.79, 0.54, 1.0), _row("C", 0, 0.77, 0.52, 1.0),
        _row("D", 0, 0.75, 0.55, 1.0), _row("E", 0, 0.75, 0.54, 1.0),
        _row("C", 1, 0.77, 0.50, 1.0),  # a second seed of C: its mean is (0.77, 0.51)
    ]  # fmt: skip
    points = {p["label"]: p for p in study.pareto(rows, "xquad-r")}
    assert points["C"]["multi"] == pytest.approx(0.51)
    assert {k: p["dominated_by"] for k, p in points.items()} == {
        "A": [], "B": [], "C": ["B"], "D": [], "E": ["B", "D"],
    }  # fmt: skip
    table, sentence = study.pareto_lines(list(points.values()))
    assert (
        "| 3 | C | 0.770 | 0.510 | B |" in table and "| 1 | A | 0.800 | 0.300 | **on the front** |" in table
    )
    assert sentence.startswith("No single recipe dominates; the front runs from D (0.750 / 0.550), B (")
    one = [_row("A", 0, 0.8, 0.6, 1.0), _row("B", 0, 0.7, 0.5, 1.0)]
    assert study.pareto_lines(study.pareto(one, "xquad-r"))[1].startswith("A dominates every other model")
    study.plot_pareto(list(points.values()), "xquad-r", tmp_path / "pareto.png")
    assert (tmp_path / "pareto.png").stat().st_size > 1000


def test_seed_spread_and_batch_sizes_on_per_query_files(tmp_path: Path) -> None:
    """Seed sd against the bootstrap SE of each seed's score; adjacent batch sizes tested with compare."""
    from test_stats import scores, synthetic_pool, write_run

    from hybrid_plugin.evaluation.measures import MEASURES
    from hybrid_plugin.stats import compare
    from hybrid_plugin.stats.compare import score_interval

    study = _study()
    pool = synthetic_pool(groups=12)
    runs = [(32, 0, 3.0), (32, 1, 2.0), (64, 0, 4.0)]  # batch, seed, signal
    rows = []
    for batch, seed, signal in runs:
        path = write_run(pool, scores(pool, 10 * batch + seed, signal), tmp_path / f"{batch}-{seed}", "m")
        label = "hybrid α=0.5" + ("" if batch == 32 else f" (batch {batch})")
        rows.append({
            "label": label, "name": f"hybrid-a0.5-b{batch}-s{seed}", "strategy": "hybrid", "alpha": 0.5,
            "batch_size": batch, "seed": seed, "merge": None, "steps": 6400 // batch,
            "tasks": {"synth": study.summarise(Results.load(path))}, "results_path": {"synth": str(path)},
        })  # fmt: skip
    lines, sentence = study.spread_table(rows, "synth")
    multi = [r["tasks"]["synth"]["multi_map"] for r in rows[:2]]
    measure = MEASURES["multi_map"]
    se = np.mean(
        [np.diff(score_interval(r["results_path"]["synth"], measure))[0] / 3.919928 for r in rows[:2]]
    )
    assert f"| hybrid α=0.5 | 2 | {np.std(multi, ddof=1):.4f} | {se:.4f} |" in lines[2]
    assert len(lines) == 3  # the one-seed batch-64 model has no spread row
    assert f"{np.std(multi, ddof=1) / se:.2f}× the query-sampling SE for hybrid α=0.5" in sentence

    lines, answer = study.batch_section(rows, "synth", 32)
    assert lines[0].startswith("Training pairs seen: batch 32: 200 steps = 6400 pairs, batch 64: 100 steps")
    groups = {  # the test sets batch 64's seed 0 against batch 32's seed 0, the seed both have
        "b32": [rows[0]["results_path"]["synth"]],
        "b64": [rows[2]["results_path"]["synth"]],
    }
    ref = compare(groups=groups, baseline="b32", permutations=10_000, bootstraps=2_000, seed=0)
    ref = ref.pairs[0].measure("multi_map").macro
    d = ref.difference
    stated = (
        f"- batch 64 − batch 32: multi mAP {d.value:+.3f} [{d.low:+.3f}, {d.high:+.3f}], p = {ref.test.p:.4f}"
    )
    assert any(line.startswith(stated) for line in lines)
    assert "- Each test uses the seeds both sizes have; the tables above average all seeds." in lines
    assert answer.startswith(
        f"At equal training pairs, multilingual mAP goes {np.mean(multi):.3f} (batch 32) → "
    )
    # the answer gives the tested difference, and says when it is smaller than a size's seed sd
    said = f"64 vs 32: {'higher' if d.value > 0 else 'lower'} by {abs(d.value):.3f}"
    said += "" if ref.test.p < 0.05 else ", not significant"
    sd = np.std(multi, ddof=1)
    said += f", smaller than batch 32's seed sd {sd:.3f}" if abs(d.value) < sd else ""
    assert f"paired test on multi mAP: {said}. Limits" in answer


def test_training_gets_the_data_dir_for_its_overlap_check(tmp_path: Path, monkeypatch) -> None:
    """The trainer checks its items against the evaluation tasks' questions found under ``data_dir``:
    the study hands it ``--data-dir`` (without it the check was skipped unless the environment said)."""
    import hybrid_plugin.training.trainer as trainer

    study = _study()
    seen = []
    monkeypatch.setattr(trainer, "train", seen.append)
    args = study.parse_args(
        ["--work", str(tmp_path), "--data-dir", "data", "--steps", "7", "--freeze-embeddings"]
    )
    out = study.ensure_trained(study.Run("hybrid", 0.5, 32, 1), args)
    (cfg,) = seen
    assert out == tmp_path / "hybrid-a0.5-b32-s1" / "model" and cfg.output == str(out)
    assert cfg.data_dir == "data" and cfg.train_data == [f"mlqa:{Path('data') / 'train' / 'mlqa-test'}"]
    assert (cfg.strategy, cfg.alpha, cfg.seed, cfg.max_steps, cfg.freeze_embeddings) == (
        "hybrid",
        0.5,
        1,
        7,
        True,
    )
