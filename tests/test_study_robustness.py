"""The study's robustness part (issue 27, item 3): which tasks each plan perturbs, one ``perturb`` run per
plain run and task made once, and the report's side-by-side drops equal to each run's comparison."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from study_work import fake_robustness, fake_work
from test_study import _study

from hybrid_plugin.evaluation.measures import MONO_MAP, MULTI_MAP
from hybrid_plugin.stats.compare import Interval
from hybrid_plugin.stats.render import interval_text
from hybrid_plugin.stats.robustness import drop_differences


def test_robustness_tasks_by_plan_and_option() -> None:
    study = _study()
    assert study.parse_args(["--plan", "debias"]).robustness == ("xquad-r", "tydi-goldp")
    assert study.parse_args(["--plan", "main"]).robustness == ()
    assert study.parse_args(["--plan", "debias", "--robustness", "none"]).robustness == ()
    assert study.parse_args(["--plan", "main", "--robustness", "mlqa-r, xquad-r"]).robustness == (
        "mlqa-r",
        "xquad-r",
    )


def test_ensure_robustness_runs_perturb_once_on_the_runs_model(tmp_path: Path, monkeypatch) -> None:
    import hybrid_plugin.stats.robustness as robustness

    study = _study()
    running = sys.modules[study.ensure_evaluated.__module__]
    calls = []

    def fake_run(cfg, perturbations, out, *, seed):
        calls.append((cfg, perturbations, Path(out), seed))
        return "report"

    def fake_write(report, out):
        assert report == "report"
        Path(out).mkdir(parents=True)
        (Path(out) / "robustness.json").write_text("{}", encoding="utf-8")

    monkeypatch.setattr(robustness, "run_robustness", fake_run)
    monkeypatch.setattr(robustness, "write_robustness", fake_write)
    monkeypatch.chdir(tmp_path)
    args = study.parse_args(["--plan", "debias", "--work", "work", "--data-dir", "data"])
    run = study.Run("hybrid", 0.5, 32, 0)
    model = tmp_path / "work" / run.name / "model"
    path = running.ensure_robustness(run, model, "xquad-r", args)
    assert path == Path("work") / run.name / "robustness" / "xquad-r" / "robustness.json"
    ((cfg, perturbations, out, seed),) = calls
    assert perturbations is None and seed == 0 and out == path.parent  # perturb's defaults
    assert cfg.task == "xquad-r" and cfg.data_dir == "data" and cfg.debias is None
    assert cfg.model == str(Path("work") / run.name / "model")  # relative: no machine path in results
    assert running.ensure_robustness(run, model, "xquad-r", args) == path and len(calls) == 1  # reused
    args.report_only = True
    gap = f"^{run.name}: not evaluated on perturbed queries of tydi-goldp$"
    with pytest.raises(study.Missing, match=gap):
        running.ensure_robustness(run, model, "tydi-goldp", args)  # report-only never runs perturb
    assert len(calls) == 1
    # a language subset is kept apart from the full evaluation, as its results are
    args = study.parse_args(["--plan", "debias", "--work", "work", "--eval-languages", "xquad-r=en,de"])
    subset = running.ensure_robustness(run, model, "xquad-r", args)
    assert subset.parent.name == "xquad-r.de-en" and calls[-1][0].languages == "en,de"


def test_report_puts_each_recipes_drops_side_by_side(tmp_path: Path) -> None:
    study = _study()
    work = tmp_path / "work"
    runs = study.plan_runs("debias", [0], 32)
    plain = ("untrained", "hybrid-a0.5-b32-s0")
    # the plain runs but X-Y (the de-biased rows are not perturbed; leaving them out keeps the test fast)
    fake_work(work, runs, skip=tuple(r.name for r in runs if r.debias or r.strategy == "cross" or r.merge))
    paths = {name: fake_robustness(work, name, "xquad-r", drop) for name, drop in zip(plain, (0.3, 0.8))}
    mono = fake_robustness(work, "mono-b32-s0", "xquad-r", 0.5)
    fake_robustness(work, "untrained", "tydi-goldp", 0.2)
    report = tmp_path / "docs" / "study.md"
    argv = ["--plan", "debias", "--seeds", "0", "--report-only", "--work", str(work), "--report", str(report)]
    assert study.main([*argv, "--no-progress"]) == 0
    text = report.read_text(encoding="utf-8")
    section = text.split("## Robustness under perturbed queries")[1].split("\n## ")[0]
    assert "95% paired bootstrap interval (200 resamples)" in section and "Holm-corrected" in section
    xquad = section.split("### XQuAD-R")[1].split("### TyDi GoldP")[0]
    assert "#### mono ↑" in xquad and "#### multi ↑" in xquad and "#### rank dist ↓" in xquad
    for name, label in zip(plain, ("untrained base", "hybrid α=0.5")):
        written = json.loads(paths[name].read_text(encoding="utf-8"))
        macro = next(m for m in written["comparison"]["pairs"][0]["measures"] if m["key"] == "multi_map")
        diff, clean = macro["macro"]["difference"], macro["macro"]["baseline"]["value"]
        multi = xquad.split("#### multi ↑")[1].split("####")[0]
        row = next(line for line in multi.splitlines() if line.startswith(f"| {label} |"))
        assert row.startswith(f"| {label} | {clean:.3f} | {interval_text(Interval(**diff), 3, sign=True)}")
        assert diff["value"] < 0  # the perturbed run lifts the relevant candidates less
        summary = json.loads((report.with_suffix("") / "summary.json").read_text(encoding="utf-8"))
        row_summary = next(r for r in summary if r["name"] == name)["robustness"]["xquad-r"]
        assert row_summary["typo:0.05"]["multi_map"]["difference"] == diff
        copied = report.with_suffix("") / "runs" / name / "robustness-xquad-r.md"
        assert copied.read_text(encoding="utf-8") == paths[name].with_suffix(".md").read_text("utf-8")
    # each recipe's drop against X-X-mono's, paired: the cells are drop_differences' (seed 0 resampling)
    against = xquad.split("#### Drop against X-X-mono's drop")[1]
    assert "| recipe | typo:0.05 mono | typo:0.05 multi |" in against
    for name, label in zip(plain, ("untrained base", "hybrid α=0.5")):
        found = drop_differences(paths[name], mono, measures=(MONO_MAP, MULTI_MAP))
        row = next(line for line in against.splitlines() if line.startswith(f"| {label} |"))
        cells = [interval_text(d.difference, 3, sign=True) + ("*" if d.significant else "") for d in found]
        assert row == f"| {label} | " + " | ".join(cells) + " |"
    assert "| X-X-mono |" not in against  # the reference has no row of its own
    tydi = section.split("### TyDi GoldP")[1]
    assert "| untrained base |" in tydi and "hybrid α=0.5" not in tydi
    # the plain runs without a perturb run are listed as missing; de-biased runs are never perturbed
    lacking = {
        line.split(": ", 1)[1]: line[2:].split(": ", 1)[0].split(", ")
        for line in text.split("## Not run")[1].splitlines()
        if line.startswith("- ")
    }
    assert "hybrid-a0.5-b32-s0" in lacking["not evaluated on perturbed queries of tydi-goldp"]
    assert "hybrid-a0.25-b32-s0" in lacking["not evaluated on perturbed queries of xquad-r"]
    assert "Drop against" not in tydi  # no X-X-mono run on perturbed TyDi queries: no such table
    assert "lsar-train: not evaluated on perturbed" not in text

    # the compute the runs record: each model's training once (merges and de-biased rows reuse it)
    assert "Compute used, as the runs record it: 3 training(s), 1.6 h on cpu; " in text  # 3 × 200 × 9.5 s
    assert "; 8 clean and perturbed-query evaluations, " in text  # 4 robustness reports of 2 runs each

    # no run evaluated on perturbed queries (--robustness none): no section
    section = sys.modules["study.robustness"].robustness_section
    assert section([study.RunRecord(name="untrained")], ("xquad-r",), "assets") == []


def test_a_recipe_without_its_seeds_x_x_mono_is_compared_with_another_seed_and_says_so(
    tmp_path: Path,
) -> None:
    study = _study()
    work = tmp_path / "work"
    runs = study.plan_runs("debias", [0, 1], 32)
    kept = ("untrained", "mono-b32-s0", "hybrid-a0.5-b32-s1")
    fake_work(work, runs, skip=tuple(r.name for r in runs if r.name not in kept))
    paths = {name: fake_robustness(work, name, "xquad-r", drop) for name, drop in zip(kept, (0.3, 0.5, 0.8))}
    report = tmp_path / "docs" / "study.md"
    argv = [
        "--plan",
        "debias",
        "--seeds",
        "0,1",
        "--report-only",
        "--work",
        str(work),
        "--report",
        str(report),
    ]
    assert study.main([*argv, "--no-progress"]) == 0
    against = (
        report.read_text(encoding="utf-8").split("#### Drop against X-X-mono's drop")[1].split("\n## ")[0]
    )
    found = drop_differences(
        paths["hybrid-a0.5-b32-s1"], paths["mono-b32-s0"], measures=(MONO_MAP, MULTI_MAP)
    )
    cells = [interval_text(d.difference, 3, sign=True) + ("*" if d.significant else "") for d in found]
    label = "hybrid α=0.5, seed 1 (against X-X-mono seed 0)"
    assert f"| {label} | " + " | ".join(cells) + " |" in against.splitlines()
    assert any(line.startswith("| untrained base | ") for line in against.splitlines())  # no seed to name
