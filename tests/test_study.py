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
