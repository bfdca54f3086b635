"""`export beir` never destroys what the user did not ask to replace, and replaces in one step."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hybrid_plugin import atomic
from hybrid_plugin.cli import main
from hybrid_plugin.integrations import beir


def export(out, *extra: str, languages: str = "de") -> tuple[int, str]:
    code = main(["export", "beir", "--task", "mlqa-r", "--languages", languages, "--out", str(out), *extra])
    return code, ""


def one_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    return err[0]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, datasets: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "precious.txt").write_text("mine")
    monkeypatch.chdir(work)
    return work


@pytest.mark.parametrize("out", [".", "", "..", "/"])
def test_cwd_parent_root_and_empty_are_refused(workdir: Path, capsys, out: str) -> None:
    code, _ = export(out, "--force")
    assert code == 2
    assert "--out" in one_line(capsys)
    assert (workdir / "precious.txt").read_text() == "mine"
    assert sorted(p.name for p in workdir.parent.iterdir()) == ["work"]  # nothing staged beside


def test_data_folder_and_cache_are_refused(workdir: Path, datasets: Path, capsys) -> None:
    before = sorted(p.name for p in (datasets / "mlqa-r").iterdir())
    code, _ = export(datasets, "--force")
    assert code == 2 and "the data folder" in one_line(capsys)
    code, _ = export(datasets / "mlqa-r" / "beir", "--force")
    assert code == 2 and "lies inside the data folder" in one_line(capsys)
    assert sorted(p.name for p in (datasets / "mlqa-r").iterdir()) == before
    cache = Path(os.environ["HYBRID_PLUGIN_CACHE"])
    code, _ = export(cache / "exports", "--force")
    assert code == 2 and "cache" in one_line(capsys)


def test_foreign_folder_is_not_replaced_even_with_force(workdir: Path, capsys) -> None:
    (workdir / "notes").mkdir()
    (workdir / "notes" / "thesis.tex").write_text("years of work")
    code, _ = export(workdir / "notes", "--force")
    assert code == 2 and "other than an export of ours" in one_line(capsys)
    assert (workdir / "notes" / "thesis.tex").read_text() == "years of work"


def test_previous_export_is_replaced_whole(workdir: Path, capsys) -> None:
    assert export(workdir / "exp", languages="de,en")[0] == 0
    assert (workdir / "exp" / "en").is_dir()
    assert export(workdir / "exp", "--force", languages="de")[0] == 0
    manifest = json.loads((workdir / "exp" / "manifest.json").read_text())
    assert manifest["languages"] == ["de"]
    assert not (workdir / "exp" / "en").exists()  # nothing of the old export is mixed in
    assert atomic.stale_staging(workdir / "exp") == []


@pytest.mark.parametrize("exchange", [True, False], ids=["rename-exchange", "two-renames"])
def test_a_failure_mid_export_leaves_the_old_export(workdir: Path, monkeypatch, capsys, exchange) -> None:
    assert export(workdir / "exp", languages="de,en")[0] == 0
    before = (workdir / "exp" / "manifest.json").read_bytes()
    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)

    def half_written(pool, folder):
        (folder / "de").mkdir()
        (folder / "de" / "corpus.jsonl").write_text("{}\n")
        raise KeyboardInterrupt  # killed while writing

    monkeypatch.setattr(beir, "write_beir", half_written)
    with pytest.raises(KeyboardInterrupt):
        beir.export_beir("mlqa-r", workdir / "exp", "de", force=True)
    assert (workdir / "exp" / "manifest.json").read_bytes() == before
    assert (workdir / "exp" / "en").is_dir()
    assert atomic.stale_staging(workdir / "exp") == []


def test_leftovers_of_a_killed_export_are_recovered(workdir: Path, capsys) -> None:
    assert export(workdir / "exp", languages="de")[0] == 0
    capsys.readouterr()
    # a kill after the old tree was set aside (systems without an atomic exchange) and a half new tree
    retired = workdir / f"{atomic.RETIRED}exp.abc123"
    retired.mkdir()
    (workdir / "exp").rename(retired / "tree")
    (workdir / f"{atomic.STAGING}exp.def456").mkdir()
    assert export(workdir / "exp", "--force", languages="de,en")[0] == 0
    notes = capsys.readouterr().err
    assert "restored the previous export" in notes and "removed .staging-exp.def456" in notes
    assert json.loads((workdir / "exp" / "manifest.json").read_text())["languages"] == ["de", "en"]
    assert atomic.stale_staging(workdir / "exp") == []
