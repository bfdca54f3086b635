"""Difference in differences of two ``perturb`` runs: against a reference that does not drop it is
``compare``'s perturbed − clean cell (same draws), it is antisymmetric, zero against itself, equal to the
results files' scores, and refused in one line when the perturbation seeds differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from study_work import fake_robustness

from hybrid_plugin.errors import UserError
from hybrid_plugin.stats.robustness import DROP_MEASURES, drop_differences

RESAMPLING = {"bootstraps": 200, "permutations": 200, "seed": 0}  # as fake_robustness's comparison


def _macro(path: Path, name: str, key: str) -> float:
    report = json.loads(path.read_text(encoding="utf-8"))
    results = json.loads((path.parent / report["results"][name]).read_text(encoding="utf-8"))
    return results["scores"][key]


def test_against_a_reference_without_drop_it_is_compares_cell(tmp_path: Path) -> None:
    system = fake_robustness(tmp_path, "hybrid", "xquad-r", drop=0.8)
    steady = fake_robustness(tmp_path, "steady", "xquad-r", drop=0.0)  # perturbed run = clean run
    written = json.loads(system.read_text(encoding="utf-8"))["comparison"]["pairs"][0]["measures"]
    found = drop_differences(system, steady, **RESAMPLING)
    assert [(d.perturbation, d.measure) for d in found] == [("typo:0.05", m.key) for m in DROP_MEASURES]
    for d in found:
        macro = next(m["macro"] for m in written if m["key"] == d.measure)
        assert (d.difference.value, d.difference.low, d.difference.high) == pytest.approx(
            tuple(macro["difference"].values()), abs=1e-12
        )
        assert d.p == macro["test"]["p"] and d.significant == macro["test"]["significant"]


def test_antisymmetric_zero_against_itself_and_equal_to_the_scores(tmp_path: Path) -> None:
    a = fake_robustness(tmp_path, "hybrid", "xquad-r", drop=0.8)
    b = fake_robustness(tmp_path, "mono", "xquad-r", drop=0.3)
    ab, ba = drop_differences(a, b, **RESAMPLING), drop_differences(b, a, **RESAMPLING)
    for x, y in zip(ab, ba):
        assert x.difference.value == pytest.approx(-y.difference.value, abs=1e-12)
        assert x.difference.low == pytest.approx(-y.difference.high, abs=1e-12)
        assert x.p == y.p
        key = x.measure
        by_hand = (_macro(a, "typo:0.05", key) - _macro(a, "clean", key)) - (
            _macro(b, "typo:0.05", key) - _macro(b, "clean", key)
        )
        assert x.difference.value == pytest.approx(by_hand, abs=1e-12)
    multi = next(d for d in ab if d.measure == "multi_map")
    assert multi.difference.value < 0  # a lifted by 0.8 less when perturbed, b by 0.3: a loses more
    assert multi.difference.low <= multi.difference.value <= multi.difference.high
    for d in drop_differences(a, a, **RESAMPLING):
        assert d.difference.value == 0 and d.p == 1.0 and not d.significant


def test_refuses_reports_of_different_perturbation_seeds(tmp_path: Path) -> None:
    a = fake_robustness(tmp_path, "hybrid", "xquad-r")
    b = fake_robustness(tmp_path, "mono", "xquad-r")
    report = json.loads(b.read_text(encoding="utf-8"))
    b.write_text(json.dumps(report | {"seed": 1}), encoding="utf-8")
    with pytest.raises(UserError, match="perturbation seeds 0 and 1 differ") as err:
        drop_differences(a, b)
    assert "\n" not in str(err.value)
