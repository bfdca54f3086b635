"""Fault suite (issue 12): each test injects one fault users hit and asserts the recovery or one clear line.

Faults are real where that is cheap (killed processes, concurrent processes, corrupt files) and
injected where the test runs as root and chmod would not stop a write (a patched ``os.replace``
or file ``write`` raising OSError with the errno a full or read-only disk gives).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hybrid_plugin.cli import main

REPO = Path(__file__).resolve().parents[1]


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path → sha256 of its bytes)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def run_python(code: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that imports this checkout (environment inherited)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=REPO,
    )


def cli_error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    """Run the CLI; assert exit code 2 and exactly one stderr line (no traceback); return that line."""
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("hybrid-plugin: error: "), err
    assert "Traceback" not in err
    return err


# ---------------------------------------------------------------------------------------------
# 0. BEIR export never destroys what the user did not ask to replace


def _export(out: Path | str, langs: str = "de", *extra: str) -> list[str]:
    return ["export", "beir", "--task", "mlqa-r", "--languages", langs, "--out", str(out), *extra]


@pytest.fixture(scope="module")
def beir_refs(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> dict[str, dict[str, str]]:
    """Reference trees of an old (de) and a new (de,zh) export, written into fresh folders."""
    from hybrid_plugin.integrations.beir import export_beir

    base = tmp_path_factory.mktemp("beir-refs")
    export_beir("mlqa-r", base / "old", "de", data_dir=str(datasets))
    export_beir("mlqa-r", base / "new", "de,zh", data_dir=str(datasets))
    return {"old": tree(base / "old"), "new": tree(base / "new")}


@pytest.mark.parametrize(
    "out, why",
    [
        (".", "is the current directory"),
        ("", "--out is empty"),
        ("..", "contains the current directory"),
        ("DATA", "is the data folder"),
        ("DATA/mlqa-r", "is the data folder"),
        ("DATA/mlqa-r/beir", "lies inside the data folder"),
        ("CACHE", "is the hybrid-plugin cache"),
        ("CACHE/beir", "lies inside the hybrid-plugin cache"),
        ("REPO", "is the hybrid_plugin repository"),
        ("REPO/hybrid_plugin/beir", "lies inside the hybrid_plugin package"),
    ],
)
def test_export_refuses_protected_places(out, why, capsys, tmp_path, monkeypatch, datasets):
    """--out ., '', .., the data dir, the cache, the repository: refused before anything is touched."""
    cwd = tmp_path / "work"
    cwd.mkdir()
    (cwd / "mine.txt").write_text("keep me")
    monkeypatch.chdir(cwd)
    cache = Path(os.environ["HYBRID_PLUGIN_CACHE"])
    cache.mkdir(parents=True, exist_ok=True)
    out = out.replace("DATA", str(datasets)).replace("CACHE", str(cache)).replace("REPO", str(REPO))
    before = tree(cwd)
    err = cli_error(capsys, _export(out, "de", "--data-dir", str(datasets), "--force"))
    assert why in err
    assert tree(cwd) == before
    assert not (REPO / "hybrid_plugin" / "beir").exists() and not (cache / "beir").exists()


def test_export_refuses_folder_that_is_not_an_export(capsys, tmp_path, beir_refs):
    """--force replaces a previous export only; a user's folder (or an export with a stray file) stays."""
    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    err = cli_error(capsys, _export(user, "de", "--force"))
    assert "is not a previous BEIR export" in err
    assert tree(user) == {"notes.txt": hashlib.sha256(b"mine").hexdigest()}

    export = tmp_path / "export"
    assert main(_export(export, "de")) == 0
    (export / "de" / "my-notes.txt").write_text("mine")
    err = cli_error(capsys, _export(export, "de,zh", "--force"))
    assert "is not a previous BEIR export" in err and (export / "de" / "my-notes.txt").is_file()
    (export / "de" / "my-notes.txt").unlink()
    assert tree(export) == beir_refs["old"]

    err = cli_error(capsys, _export(export, "de,zh"))
    assert "pass --force" in err
    assert main(_export(export, "de,zh", "--force")) == 0
    assert tree(export) == beir_refs["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "user"]  # no staging left


KILLED_EXPORT = """
    import os, sys
    from hybrid_plugin import atomic
    from hybrid_plugin.integrations import beir

    point, out = sys.argv[1], sys.argv[2]
    if point == "writing":  # killed while the new tree is half written
        calls, real = [], beir._jsonl
        def _jsonl(path, rows):
            calls.append(path)
            if len(calls) == 3:
                os._exit(9)
            real(path, rows)
        beir._jsonl = _jsonl
    elif point == "before-swap":  # new tree complete, not yet swapped in
        beir.swap_in_dir = lambda *a: os._exit(9)
    elif point == "after-exchange":  # swapped in one step; the old tree not yet removed
        real = atomic._rename_exchange
        def exchange(a, b):
            assert real(a, b), "this filesystem cannot exchange"
            os._exit(9)
        atomic._rename_exchange = exchange
    elif point == "between-renames":  # a system without exchange: old moved aside, new not yet in
        atomic._rename_exchange = lambda a, b: False
        calls, real = [], os.replace
        def replace(a, b):
            calls.append(b)
            if len(calls) == 2:
                os._exit(9)
            real(a, b)
        atomic.os.replace = replace
    beir.export_beir("mlqa-r", out, "de,zh", force=True)
"""


@pytest.mark.parametrize(
    "point, left",
    [("writing", "old"), ("before-swap", "old"), ("after-exchange", "new"), ("between-renames", "old")],
)
def test_export_killed_at_any_moment_leaves_old_or_new(point, left, tmp_path, beir_refs):
    """kill -9 while replacing an export: the folder holds the complete old or new export; the next
    run cleans the staging folders (or puts the old export back) and replaces it normally."""
    from hybrid_plugin.integrations.beir import export_beir

    out = tmp_path / "export"
    export_beir("mlqa-r", out, "de")
    proc = run_python(KILLED_EXPORT, point, str(out))
    assert proc.returncode == 9, proc.stderr
    siblings = sorted(p.name for p in tmp_path.iterdir())
    assert len(siblings) == 2 and siblings[0].startswith(".export."), siblings  # one staging folder
    if point == "between-renames":
        assert not out.exists()  # the only window: old kept beside as .export.old-PID
    else:
        assert tree(out) == beir_refs[left]
    export_beir("mlqa-r", out, "de,zh", force=True)
    assert tree(out) == beir_refs["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_export_restores_old_export_after_kill_between_renames(tmp_path, beir_refs, capsys):
    """Where the system cannot swap in one step, the old export is put back by the next run."""
    out = tmp_path / "export"
    assert main(_export(out, "de")) == 0
    assert run_python(KILLED_EXPORT, "between-renames", str(out)).returncode == 9
    code = main(_export(out, "de,zh"))  # no --force: restored, then refused
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("hybrid-plugin: error: ") and "pass --force" in err[-1]
    assert any("restored the previous export" in line for line in err[:-1])
    assert tree(out) == beir_refs["old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
