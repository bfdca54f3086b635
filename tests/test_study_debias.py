"""The study's debias plan on fake work folders: runs and labels, the recipes × de-biasing table with
paired intervals, the goal's verdict (met / not met / not established) and the alignment table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest
from study_work import fake_eval, fake_work
from test_study import _study

from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.measures import MEASURES
from hybrid_plugin.stats import compare_runs


def test_debias_plan_names_labels_and_tasks() -> None:
    study = _study()
    runs = study.plan_runs("debias", [0, 1], 32)
    names = [r.name for r in runs]
    assert names[:8] == [
        "untrained",
        "untrained-center-train",
        "untrained-lsar-train",
        "untrained-leace-train",
        "hybrid-a0.5-b32-s0",
        "hybrid-a0.5-b32-s0-center-train",
        "hybrid-a0.5-b32-s0-lsar-train",
        "hybrid-a0.5-b32-s0-leace-train",
    ]  # fmt: skip  (the training-free rows first, then recipe by recipe)
    assert (
        len(runs) == 4 + 2 * 5 * 4
    )  # untrained + (hybrid 0.5, its λ=0.75 merge, 0.25, X-X-mono, X-Y) × 2 seeds
    assert "hybrid-a0.5-b32-s1-m0.75-leace-train" in names and "cross-b32-s1-lsar-train" in names
    assert set(runs.values()) == {("xquad-r", "mlqa-r", "tydi-goldp")}
    leace = next(r for r in runs if r.name == "hybrid-a0.25-b32-s0-leace-train")
    assert leace.label == "hybrid α=0.25 + LEACE (fitted on training texts)" and leace.fit == "train"
    assert leace.plain.name == "hybrid-a0.25-b32-s0" and leace.recipe == "hybrid α=0.25"
    # pool-fitted: transductive, and says so; centering on the pool keeps its old name and identity
    centered = study.Run("untrained", debias="center", debias_fit="pool")
    assert centered == study.Run("untrained", debias="center") and centered.name == "untrained-centered"
    assert centered.label == "untrained base + centering (pool-fitted: transductive)"
    assert study.Run("mono", debias="lsar").name == "mono-b32-s0-lsar-pool"
    assert "debias_fit" not in centered.record() and leace.record()["debias_fit"] == "train"
    with pytest.raises(ValueError, match="debias_fit 'train': expected"):
        study.Run("mono", debias_fit="train")
    assert not any(r.debias for r in study.plan_runs("all", [0], 32) if r.name != "untrained-centered")


def _record(
    study, label, seed, mono, multi, strategy="hybrid", debias="leace", fit="train", name=None, **tasks
):
    xquad = {"mono_map": mono, "multi_map": multi, "cross_map": 0.6, "max_rank_distance": 100.0}
    row = {"label": label, "seed": seed, "strategy": strategy, "debias": debias, "debias_fit": fit,
           "name": name or f"{label}-{seed}", "tasks": {"xquad-r": xquad}, "results_path": {}}  # fmt: skip
    for task, path in tasks.items():
        row["tasks"][task.replace("_", "-")] = {"mono_map": 0.5}
        row["results_path"][task.replace("_", "-")] = str(path)
    return study.RunRecord.from_row(row)


def test_goal_verdict_met_not_met_and_not_established(tmp_path: Path) -> None:
    study = _study()
    goal = study.goal
    args = argparse.Namespace(plan="debias", seeds=[0, 1], batch_size=32)
    tydi = {  # TyDi GoldP: the untrained base and each seed of a recipe as good (signal 50) or worse (0.3)
        name: fake_eval(tmp_path, name, "tydi-goldp", signal)
        for name, signal in (
            ("untrained", 50.0),
            ("good0", 50.0),
            ("good1", 50.0),
            ("bad0", 0.3),
            ("bad1", 0.3),
        )
    }
    base = _record(
        study,
        "untrained base",
        0,
        0.80,
        0.30,
        "untrained",
        None,
        None,
        "untrained",
        tydi_goldp=tydi["untrained"],
    )
    label = "hybrid α=0.5 + LEACE (fitted on training texts)"
    both = [_record(study, label, s, 0.80, 0.60, tydi_goldp=tydi[f"good{s}"]) for s in (0, 1)]
    lines = goal([base, *both], args)
    assert (
        "**met**: hybrid α=0.5 + LEACE (fitted on training texts) (seed 0: mono 0.800, multi 0.600; "
        in lines[0]
    )
    assert "TyDi GoldP not worse: mono mAP − untrained" in lines[0]
    assert lines[2].startswith(
        "Rows of the debias plan not in the work folder on XQuAD-R: untrained-center-train"
    )

    one_seed = goal([base, both[0]], args)[0]
    assert (
        "**not established**: hybrid α=0.5 + LEACE (fitted on training texts) reaches it on one seed only"
        in one_seed
    )
    short = _record(study, label, 1, 0.80, 0.58, tydi_goldp=tydi["good1"])  # seed 1 misses multi ≥ 0.593
    assert (
        "**not met** by any of the 2 out-of-sample rows; the highest multi mAP is hybrid α=0.5 + LEACE"
        in (goal([base, both[0], short], args)[0])
    )
    worse = [_record(study, label, s, 0.80, 0.60, tydi_goldp=tydi[f"bad{s}"]) for s in (0, 1)]
    assert "**not met**" in goal([base, *worse], args)[0]
    no_tydi = [_record(study, label, s, 0.80, 0.60) for s in (0, 1)]
    assert (
        "but TyDi GoldP is not evaluated for this row or the untrained base"
        in goal([base, *no_tydi], args)[0]
    )
    # a pool-fitted row reaching the thresholds does not count (transductive); an untrained row needs one seed
    pool = _record(
        study, "untrained base + LEACE (pool-fitted: transductive)", 0, 0.9, 0.7, "untrained", fit=None
    )
    assert "**not met**" in goal([base, pool], args)[0]
    free = _record(study, "untrained base + LSAR (fitted on training texts)", 0, 0.80, 0.60, "untrained",
                   "lsar", tydi_goldp=tydi["good0"])  # fmt: skip
    assert (
        "**met**: untrained base + LSAR (fitted on training texts) (seed 0: " in goal([base, free], args)[0]
    )
    empty = goal([], args)  # nothing evaluated yet: every row of the plan listed as missing
    assert "**not established**: the work folder holds no out-of-sample row on XQuAD-R yet." in empty[0]
    assert empty[2].startswith("Rows of the debias plan not in the work folder on XQuAD-R: untrained, ")


def test_goal_not_met_gives_each_seeds_interval(tmp_path: Path) -> None:
    from hybrid_plugin.evaluation.measures import MONO_MAP, MULTI_MAP
    from hybrid_plugin.evaluation.results import Results
    from hybrid_plugin.stats import score_interval

    study = _study()
    args = argparse.Namespace(plan="debias", seeds=[0, 1], batch_size=32)
    label = "hybrid α=0.5 merged λ=0.75 + LSAR (fitted on training texts)"

    def verdict(signals: tuple[float, float]) -> tuple[str, list[str], dict[str, float]]:
        rows, expected, highest = [], [], {"mono_map": 0.0, "multi_map": 0.0}
        for seed, signal in enumerate(signals):
            path = fake_eval(tmp_path, f"merge{seed}-{signal}", "xquad-r", signal)
            row = _record(study, label, seed, 0, 0, "hybrid", "lsar")
            row.tasks["xquad-r"] = study.TaskResult(study.summarise(Results.load(path)), str(path))
            rows.append(row)
            cells = []
            for measure, name in ((MONO_MAP, "mono"), (MULTI_MAP, "multi")):
                low, high = score_interval(path, measure, bootstraps=2_000, seed=0)
                value = row.tasks["xquad-r"].get(measure.key)
                assert low < value < high
                highest[measure.key] = max(highest[measure.key], high)
                cells.append(f"{name} {value:.3f} [{low:.3f}, {high:.3f}]")
            expected.append(f"seed {seed}: " + ", ".join(cells))
        return study.goal(rows, args)[0], expected, highest

    line, expected, highest = verdict((1.0, 3.0))  # macro mono 0.338 / 0.540, multi 0.191 / 0.435
    assert "**not met** by any of the 1 out-of-sample rows" in line
    assert "; ".join(expected) + " (95% bootstrap intervals over question groups, 2,000 resamples)" in line
    assert highest["mono_map"] < 0.798 and highest["multi_map"] < 0.593
    assert line.endswith("; above every seed's interval: mono target 0.798, multi target 0.593).")
    line, _, highest = verdict((1.0, 10.0))  # seed 1's multi mAP (0.833) is above its target
    assert highest["multi_map"] > 0.593 and "multi target" not in line
    assert ("above every seed's interval: mono target 0.798)." in line) == (highest["mono_map"] < 0.798)


def test_not_run_says_a_shared_gap_once_naming_every_run() -> None:
    study = _study()
    refusal = "not applicable to xquad-r: --debias center: no fitted mean for el"
    missing = [
        study.Missing("untrained-center-train", refusal),
        study.Missing("hybrid-a0.5-b32-s0-center-train", refusal),
        study.Missing("cross-b32-s0", "not trained"),
        study.Missing("untrained-center-train", "not applicable to tydi-goldp: no mean for bn"),
        study.Missing("cross-b32-s1", "not trained"),
        study.Missing("cross-b32-s1", "not trained"),  # met again through a de-biased run
    ]
    assert str(missing[0]) == f"untrained-center-train: {refusal}"
    assert study.not_run_lines(missing) == [
        f"- untrained-center-train, hybrid-a0.5-b32-s0-center-train: {refusal}",
        "- cross-b32-s0, cross-b32-s1: not trained",
        "- untrained-center-train: not applicable to tydi-goldp: no mean for bn",
    ]


def test_debias_report_on_a_partial_work_folder(tmp_path: Path) -> None:
    study = _study()
    work = tmp_path / "work"
    runs = study.plan_runs("debias", [0, 1], 32)
    fake_work(
        work,
        runs,
        skip=tuple(r.name for r in runs if r.seed == 1 or r.alpha == 0.25 or r.strategy in ("mono", "cross")),
    )
    training = work / "hybrid-a0.5-b32-s1" / "model" / "training.json"
    assert not training.exists()
    # centering fitted on training texts refused on TyDi (no mean for its languages): kept as not applicable
    (work / "untrained-center-train" / "eval" / "tydi-goldp.json").unlink()
    refused = work / "untrained-center-train" / "eval" / "tydi-goldp.refused.json"
    refused.write_text(json.dumps({"refused": "--debias center: no fitted mean for bn"}), encoding="utf-8")
    report = tmp_path / "docs" / "study.md"
    argv = [
        "--plan",
        "debias",
        "--report-only",
        "--work",
        str(work),
        "--report",
        str(report),
        "--no-progress",
    ]
    assert study.main(argv) == 0
    text = report.read_text(encoding="utf-8")
    assert "## De-biasing × recipes" in text and "### XQuAD-R" in text and "### TyDi GoldP" in text
    assert (
        "- untrained-center-train: not applicable to tydi-goldp: --debias center: no fitted mean for bn"
        in text
    )
    # one line per gap, naming each run once (its de-biased runs lack the same model and are not repeated)
    not_trained = next(line for line in text.splitlines() if line.endswith(": not trained"))
    untrained_runs = not_trained[2 : -len(": not trained")].split(", ")
    assert "hybrid-a0.5-b32-s1" in untrained_runs and "hybrid-a0.25-b32-s0" in untrained_runs
    assert len(untrained_runs) == len(set(untrained_runs)) and text.count(": not trained") == 1
    missing = text.split("Rows of the debias plan not in the work folder on XQuAD-R: ")[1].split(".\n")[0]
    assert missing.startswith("hybrid-a0.25-b32-s0, hybrid-a0.25-b32-s0-center-train")
    assert "hybrid-a0.5-b32-s1-m0.75-leace-train" in missing and "untrained" not in missing.split(", ")

    # a de-biased row: its scores with Δ [interval] against the same recipe plain, as compare gives it
    row = next(
        line for line in text.splitlines() if line.startswith("| hybrid α=0.5 merged λ=0.75 | LEACE |")
    )
    assert "| fitted on training texts | 1 |" in row
    paths = [
        str(work / name / "eval" / "xquad-r.json")
        for name in ("hybrid-a0.5-b32-s0-m0.75", "hybrid-a0.5-b32-s0-m0.75-leace-train")
    ]
    measures = tuple(
        m for m in MEASURES if m.key in ("mono_map", "cross_map", "multi_map", "max_rank_distance")
    )
    ref = compare_runs(
        [("plain", paths[:1]), ("leace", paths[1:])],
        permutations=10_000,
        bootstraps=2_000,
        seed=0,
        measures=measures,
    )
    d = ref.pairs[0].measure("multi_map").macro.difference
    assert f"(Δ {d.value:+.3f} [{d.low:+.3f}, {d.high:+.3f}])" in row.split(" | ")[6]
    plain = next(
        line for line in text.splitlines() if line.startswith("| hybrid α=0.5 merged λ=0.75 | none | – | 1 |")
    )
    assert "Δ" not in plain
    tydi_rows = text.split("### TyDi GoldP")[1].split("**Goal.**")[0]
    assert "| untrained base | centering |" not in tydi_rows  # refused there: no row
    assert "| untrained base | LSAR | fitted on training texts | 1 |" in tydi_rows

    # the alignment probes on the three pools side by side; TyDi has the language-ID probe only
    shift = text.split("## Alignment under domain shift")[1].split("\n## ")[0]
    assert "| model | XQuAD-R gap ↑ | MLQA-R gap ↑ | XQuAD-R language-ID ↓ (majority) |" in shift
    summary = json.loads((work / "untrained-leace-train" / "eval" / "tydi-goldp.json").read_text("utf-8"))
    accuracy = summary["alignment"]["language_id"]["accuracy"]
    line = next(
        x for x in shift.splitlines() if x.startswith("| untrained base + LEACE (fitted on training texts) |")
    )
    assert line.endswith(f"| {accuracy:.3f} (0.340) |")
    assert "**not met**" in text or "**not established**" in text


def test_evaluating_a_debiased_run_fits_on_the_training_texts_with_alignment(tmp_path, monkeypatch) -> None:
    """The evaluate step hands the evaluator the training corpus's fit texts and asks for the alignment
    probes; a refusal is kept beside the results and named once."""
    import hybrid_plugin.evaluation.evaluator as evaluator
    import hybrid_plugin.training.fit_texts as fit_texts

    study = _study()
    seen = []
    monkeypatch.setattr(sys.modules[study.ensure_evaluated.__module__], "_FIT_TEXTS", {})
    monkeypatch.setattr(fit_texts, "fit_texts_from_sources", lambda s, data_dir=None: ("texts of", s))

    def refuse(cfg):
        seen.append(cfg)
        raise UserError("--debias center: no fitted mean for en")

    monkeypatch.setattr(evaluator, "run_evaluation", refuse)
    args = study.parse_args(["--plan", "debias", "--work", str(tmp_path), "--data-dir", "data"])
    run = study.Run("untrained", debias="center", debias_fit="train")
    with pytest.raises(
        study.Missing, match="untrained-center-train: not applicable to xquad-r: --debias center"
    ):
        study.ensure_evaluated(run, None, "xquad-r", args)
    (cfg,) = seen
    assert cfg.debias == "center" and cfg.alignment is True
    assert cfg.debias_fit == ("texts of", f"mlqa:{Path('data') / 'train' / 'mlqa-test'}")
    with pytest.raises(study.Missing, match="not applicable"):  # not tried again
        study.ensure_evaluated(run, None, "xquad-r", args)
    assert len(seen) == 1
    plain = study.Run("untrained")
    with pytest.raises(UserError):  # a plain run's refusal is an error, not a gap
        study.ensure_evaluated(plain, None, "xquad-r", args)
