"""The study runner end to end on a tiny model: plan → train → evaluate → report, and resume."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("accelerate", reason="training needs the train extra")
STUDY = Path(__file__).resolve().parents[1] / "benchmarks" / "study.py"


def _study():
    spec = importlib.util.spec_from_file_location("study", STUDY)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["study"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_plans_name_their_runs_and_share_them() -> None:
    study = _study()
    main = study.plan_runs("main", [0, 1], 32)
    assert [r.name for r in main][:5] == [
        "untrained", "mono-b32-s0", "cross-b32-s0", "hybrid-a0.5-b32-s0", "mixed-b32-s0",
    ]  # fmt: skip
    assert len(main) == 9
    everything = study.plan_runs("all", [0], 32)
    assert len({r.name for r in everything}) == len(everything)  # hybrid α=0.5 seed 0 trained once
    assert {r.name for r in study.plan_runs("alpha", [0], 32)} >= {"hybrid-a0-b32-s0", "hybrid-a1-b32-s0"}
    with pytest.raises(Exception, match="--plan 'nope'"):
        study.plan_runs("nope", [0], 32)


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
    results = json.loads((work / "hybrid-a0.5-b8-s0" / "eval" / "xquad-r.json").read_text(encoding="utf-8"))
    assert results["languages"] == ["de", "zh"] and "alignment" in results
    report = (tmp_path / "docs" / "study.md").read_text(encoding="utf-8")
    for row in ("| untrained base | 1 |", "| X-X-mono | 1 |", "| hybrid α=0.5 | 1 |"):
        assert row in report
    assert "Claims of the paper" in report and "(needs the main plan's" in report
    summary = json.loads((tmp_path / "docs" / "study" / "summary.json").read_text(encoding="utf-8"))
    hybrid = next(r for r in summary if r["name"] == "hybrid-a0.5-b8-s0")
    assert hybrid["tasks"]["xquad-r"]["multi_map"] == results["scores"]["multi_map"]  # read, not typed
    assert (tmp_path / "docs" / "study" / "xquad-r-scatter.png").stat().st_size > 1000

    stamps = {p: p.stat().st_mtime_ns for p in work.rglob("*.json")}
    assert study.main(argv) == 0  # a second run trains and evaluates nothing again
    assert {p: p.stat().st_mtime_ns for p in work.rglob("*.json")} == stamps


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
        _row("X-Y", 0, 0.70, 0.53, 350.0),
    ]  # fmt: skip
    lines = study.claims(rows, "xquad-r")
    # hybrid means: mono 0.77, multi 0.52, distance 320; mono-only: 0.78, 0.51, 390; X-Y multi 0.53
    assert lines[0].startswith("- Hybrid ≥ both baselines on multilingual retrieval: **no**")
    assert "multi mAP hybrid 0.520, X-X-mono 0.510, X-Y 0.530" in lines[0]
    assert "**yes** (mono mAP hybrid 0.770 vs 0.780, difference -0.010)" in lines[1]
    assert "**yes** (max rank distance hybrid 320.0 vs 390.0)" in lines[2]
    alpha_rows = [_row("hybrid", s, 0.7, 0.5, 1.0, a) for a in (0, 0.5, 1) for s in (0, 1)]
    assert study.plot_alpha(alpha_rows, "xquad-r", tmp_path / "alpha.png", 32)  # seeds share an alpha
    assert (tmp_path / "alpha.png").stat().st_size > 1000
