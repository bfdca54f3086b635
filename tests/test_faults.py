"""Fault suite (issue 12): each test injects one fault users hit and asserts the recovery or one clear line.

Faults are real where that is cheap (killed processes, concurrent processes, corrupt files) and
injected where the test runs as root and chmod would not stop a write (a patched ``os.replace``
or file ``write`` raising OSError with the errno a full or read-only disk gives).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from hybrid_plugin.cli import main
from hybrid_plugin.errors import UserError

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


def warnings_in(err: str) -> list[str]:
    """The warning lines of a stderr capture (progress bars may surround them)."""
    return [line for line in err.splitlines() if "hybrid-plugin: warning:" in line]


#: "hybrid-plugin: error: ..." (ours) or "hybrid-plugin train: error: ..." (argparse's, one line too)
ERROR_LINE = re.compile(r"hybrid-plugin(?: [a-z-]+)*: error: .*")


def cli_error(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    """Run the CLI; assert exit code 2, no traceback and exactly one error line (last, after any
    progress bar output); return that line."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's own errors (our parser prints them on one line)
        code = exit_.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err, err
    errors = [m for line in err.splitlines() if (m := ERROR_LINE.search(line))]
    assert len(errors) == 1 and err.splitlines()[-1].endswith(errors[0][0]), err
    return errors[0][0]


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


# ---------------------------------------------------------------------------------------------
# 1. A self-healing embedding cache


def fake_vectors(texts: list[str], dim: int = 8) -> np.ndarray:
    """Deterministic per-text embeddings (independent of batching), for store-level tests."""
    rows = [np.frombuffer(hashlib.sha256(t.encode()).digest()[: 4 * dim], dtype=np.uint32) for t in texts]
    return (np.stack(rows) / 2**32).astype(np.float32)


class CountingEncoder:
    """Records every batch it encodes."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, batch: list[str]) -> np.ndarray:
        self.batches.append(list(batch))
        return fake_vectors(batch)

    @property
    def texts(self) -> list[str]:
        return [t for b in self.batches for t in b]


TEXTS = [f"text number {i} " + "x" * (i % 13) for i in range(25)]


def _save_npz(path: Path, **arrays) -> None:
    """Save a shard with a checksum that matches its (damaged) content, as a copy tool that re-saves
    would: each damage must be caught by its own check, not by the checksum."""
    from hybrid_plugin.scoring.store import shard_check

    keys, emb = arrays.get("keys"), arrays.get("emb")
    if keys is not None and emb is not None and emb.ndim == 2 and emb.dtype != object:
        arrays["check"] = shard_check(keys, emb)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _corrupt(shard: Path, how: str) -> None:
    """Damage one shard the way disks, copies and hand edits do."""
    with np.load(shard) as data:
        keys, emb = data["keys"], data["emb"]
    if how == "truncated":
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    elif how == "zero-length":
        shard.write_bytes(b"")
    elif how == "garbage":
        shard.write_bytes(b"not a zip file at all")
    elif how == "wrong-dim":
        _save_npz(shard, keys=keys, emb=np.ones((len(keys), 5), np.float32))
    elif how == "count-mismatch":
        _save_npz(shard, keys=keys, emb=emb[:-1])
    elif how == "nan-rows":
        emb = emb.copy()
        emb[1] = np.nan
        _save_npz(shard, keys=keys, emb=emb)
    elif how == "inf-rows":
        emb = emb.copy()
        emb[0, 0] = np.inf
        _save_npz(shard, keys=keys, emb=emb)
    elif how == "float64":
        _save_npz(shard, keys=keys, emb=emb.astype(np.float64))
    elif how == "one-dimensional":
        _save_npz(shard, keys=keys, emb=emb.ravel())
    elif how == "missing-array":
        _save_npz(shard, keys=keys)
    elif how == "pickled":
        _save_npz(shard, keys=keys, emb=np.array([{"a": 1}] * len(keys), dtype=object))
    else:
        raise AssertionError(how)


CORRUPTIONS = [
    "truncated",
    "zero-length",
    "garbage",
    "wrong-dim",
    "count-mismatch",
    "nan-rows",
    "inf-rows",
    "float64",
    "one-dimensional",
    "missing-array",
    "pickled",
]


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_bad_shard_is_quarantined_and_reencoded(how, tmp_path, capsys):
    """Each kind of bad shard: one warning line, the file moved to quarantine/, only its texts encoded
    again, and every embedding equal to a clean run's."""
    from hybrid_plugin.scoring.store import EmbeddingStore

    store = EmbeddingStore(tmp_path, "c" * 64, "query: ")
    first = CountingEncoder()
    assert store.ensure(TEXTS, first, shard_size=10) == 25
    shards = sorted(store.folder.glob("*.npz"))
    assert len(shards) == 3
    victim = shards[1]
    with np.load(victim) as data:
        victim_keys = {k.tobytes() for k in data["keys"]}
    _corrupt(victim, how)
    capsys.readouterr()

    again = EmbeddingStore(tmp_path, "c" * 64, "query: ")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hybrid-plugin: warning: 1 bad embedding cache shard"), err
    assert victim.name in err[0]
    assert not victim.exists() and (store.folder / "quarantine" / victim.name).is_file()
    second = CountingEncoder()
    assert again.ensure(TEXTS, second, shard_size=10) == len(victim_keys)
    from hybrid_plugin.scoring.store import text_hash

    assert {text_hash(t) for t in second.texts} == victim_keys
    np.testing.assert_array_equal(again.get(TEXTS), fake_vectors(TEXTS))
    capsys.readouterr()
    third = CountingEncoder()  # healed: a third run reads everything, warns nothing
    assert EmbeddingStore(tmp_path, "c" * 64, "query: ").ensure(TEXTS, third) == 0
    assert capsys.readouterr().err == ""


def test_wrong_dimension_of_the_only_shard_is_caught_by_the_model(tmp_path, capsys):
    """A cache from before dimensions were recorded, whose only shard has a wrong dimension: the
    model's first embeddings reveal it; it is quarantined and everything is encoded again."""
    from hybrid_plugin.scoring.store import EmbeddingStore

    store = EmbeddingStore(tmp_path, "d" * 64, "")
    store.ensure(TEXTS[:10], CountingEncoder())
    (shard,) = store.folder.glob("*.npz")
    _corrupt(shard, "wrong-dim")
    (store.folder / "meta.json").write_text("{}")  # old cache: no recorded dimension
    again = EmbeddingStore(tmp_path, "d" * 64, "")
    assert again.dim == 5 and len(again) == 10  # the majority (the only shard) looked fine
    enc = CountingEncoder()
    assert again.ensure(TEXTS, enc, shard_size=100) == 25
    assert sorted(enc.texts) == sorted(TEXTS)
    np.testing.assert_array_equal(again.get(TEXTS), fake_vectors(TEXTS))
    assert "dimension 5, but the model gives 8" in capsys.readouterr().err
    assert (store.folder / "quarantine" / shard.name).is_file()


def test_progress_moves_per_batch_and_shards_stay_whole(tmp_path, monkeypatch):
    """batch_size: the encoder sees batches, the bar advances per batch, a shard is still one file."""
    from hybrid_plugin.scoring import store as store_mod

    updates: list[int] = []

    class Bar:
        def __init__(self, total, **kw):
            self.total = total

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            updates.append(n)

        def refresh(self):
            pass

    monkeypatch.setattr(store_mod, "tqdm", Bar)
    store = store_mod.EmbeddingStore(tmp_path, "e" * 64, "")
    enc = CountingEncoder()
    assert store.ensure(TEXTS, enc, shard_size=10, batch_size=4) == 25
    assert [len(b) for b in enc.batches] == [4, 4, 2, 4, 4, 2, 4, 1]
    assert updates == [4, 4, 2, 4, 4, 2, 4, 1]
    assert len(list(store.folder.glob("*.npz"))) == 3
    # batches are consecutive slices of the longest-first order: the same embeddings as whole shards
    whole = CountingEncoder()
    other = store_mod.EmbeddingStore(tmp_path / "whole", "e" * 64, "")
    other.ensure(TEXTS, whole, shard_size=10)
    assert enc.texts == whole.texts
    np.testing.assert_array_equal(store.get(TEXTS), other.get(TEXTS))


def test_nan_embeddings_from_the_model_are_one_line_and_never_cached(tmp_path):
    from hybrid_plugin.errors import UserError
    from hybrid_plugin.scoring.store import EmbeddingStore

    store = EmbeddingStore(tmp_path, "f" * 64, "")

    def diverged(batch):
        out = fake_vectors(batch)
        out[0] = np.nan
        return out

    with pytest.raises(UserError, match="NaN or infinite embeddings for 1 of"):
        store.ensure(TEXTS, diverged)
    assert not list(tmp_path.rglob("*.npz")) and not list(tmp_path.rglob("*.tmp"))


def _fail_with(code: int, after: int = 0):
    """An ``os.replace`` stand-in that raises OSError(code) (after ``after`` successful calls)."""
    real, calls = os.replace, []

    def replace(src, dst, *a, **kw):
        calls.append(dst)
        if len(calls) > after:
            raise OSError(code, os.strerror(code), str(dst))
        return real(src, dst, *a, **kw)

    return replace


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_unwritable_cache_degrades_to_no_cache(code, tmp_path, monkeypatch, capsys):
    """A read-only, full or forbidden cache: one warning, correct embeddings, no temp file left."""
    from hybrid_plugin.scoring import store as store_mod

    monkeypatch.setattr(store_mod.os, "replace", _fail_with(code))
    monkeypatch.setattr("hybrid_plugin.atomic.os.replace", _fail_with(code))
    store = store_mod.EmbeddingStore(tmp_path, "0" * 64, "")
    assert store.ensure(TEXTS, CountingEncoder(), shard_size=10) == 25
    np.testing.assert_array_equal(store.get(TEXTS), fake_vectors(TEXTS))
    err = warnings_in(capsys.readouterr().err)
    assert len(err) == 1 and "continuing without caching" in err[0] and os.strerror(code) in err[0], err
    assert not store.writable
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "meta.json"]


def test_disk_full_midway_through_a_shard_write(tmp_path, monkeypatch, capsys):
    """ENOSPC while the bytes of the second shard are written: the first shard is kept whole, the
    half-written temp file is removed, the run finishes from memory."""
    from hybrid_plugin.scoring import store as store_mod

    real_savez, calls = np.savez, []

    def savez(fh, **arrays):
        calls.append(1)
        if len(calls) == 2:
            fh.write(b"PK\x03\x04 half a shard")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_savez(fh, **arrays)

    monkeypatch.setattr(store_mod.np, "savez", savez)
    store = store_mod.EmbeddingStore(tmp_path, "1" * 64, "")
    assert store.ensure(TEXTS, CountingEncoder(), shard_size=10) == 25
    np.testing.assert_array_equal(store.get(TEXTS), fake_vectors(TEXTS))
    assert "No space left on device" in capsys.readouterr().err
    monkeypatch.setattr(store_mod.np, "savez", real_savez)
    assert sorted(p.suffix for p in store.folder.iterdir()) == [".json", ".npz"]
    assert len(store_mod.EmbeddingStore(tmp_path, "1" * 64, "")) == 10


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; see the patched tests")
def test_chmod_read_only_cache_degrades(tmp_path, capsys):
    from hybrid_plugin.scoring.store import EmbeddingStore

    EmbeddingStore(tmp_path, "2" * 64, "").ensure(TEXTS[:5], CountingEncoder())
    for p in [tmp_path, *tmp_path.rglob("*")]:
        if p.is_dir():
            p.chmod(0o555)
    try:
        store = EmbeddingStore(tmp_path, "2" * 64, "")
        assert store.ensure(TEXTS, CountingEncoder()) == 20
        assert "continuing without caching" in capsys.readouterr().err
    finally:
        for p in [tmp_path, *tmp_path.rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)


def _evaluate_tiny(tiny_model: Path, cache: Path) -> dict:
    from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate

    cfg = EvalConfig(
        task="xquad-r", model=str(tiny_model), languages="de,en", cache_dir=str(cache), run_depth=0
    )
    return evaluate(cfg).to_json()


@pytest.fixture(scope="module")
def clean_run(
    tiny_model: Path, tmp_path_factory: pytest.TempPathFactory, datasets: Path
) -> tuple[dict, Path]:
    """The tiny model on XQuAD-R de+en with a fresh cache: (results, cache folder)."""
    cache = tmp_path_factory.mktemp("clean-cache")
    with pytest.MonkeyPatch.context() as mp:  # as hermetic as the per-test fixture
        mp.setenv("HYBRID_PLUGIN_CACHE", str(tmp_path_factory.getbasetemp() / "hp-cache"))
        mp.setenv("HYBRID_PLUGIN_DATA", str(datasets))
        return _evaluate_tiny(tiny_model, cache), cache


def test_evaluation_heals_a_corrupt_cache_with_identical_results(clean_run, tiny_model, tmp_path, capsys):
    """A NaN shard and a truncated shard in the cache of a real evaluation: one warning per store,
    only their texts are encoded again, and every number equals the clean run's exactly."""
    import shutil

    clean, clean_cache = clean_run
    cache = tmp_path / "cache"
    shutil.copytree(clean_cache, cache)
    folders = sorted({p.parent for p in cache.rglob("*.npz")})
    assert len(folders) == 2 and sum(len(list(f.glob("*.npz"))) for f in folders) >= 3
    bad = {sorted(folders[0].glob("*.npz"))[0]: "nan-rows", sorted(folders[1].glob("*.npz"))[-1]: "truncated"}
    rows = 0
    for shard, how in bad.items():
        with np.load(shard) as data:
            rows += len(data["keys"])
        _corrupt(shard, how)
    capsys.readouterr()
    healed = _evaluate_tiny(tiny_model, cache)
    assert len(warnings_in(capsys.readouterr().err)) == 2
    assert healed["counts"]["texts_encoded"] == rows
    assert healed["scores"] == clean["scores"]
    assert healed["settings"] == clean["settings"]
    assert sorted(p.name for p in cache.rglob("quarantine/*")) == sorted(p.name for p in bad)


CONCURRENT_EVAL = """
    import json, sys
    from functools import partialmethod
    from hybrid_plugin.scoring import store
    from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate

    model, cache, out = sys.argv[1:4]
    # small shards (a multiple of the batch size 64), so the two runs interleave shard by shard
    store.EmbeddingStore.ensure = partialmethod(store.EmbeddingStore.ensure, shard_size=256)
    cfg = EvalConfig(task="xquad-r", model=model, languages="de,en", cache_dir=cache, run_depth=0)
    results = evaluate(cfg)
    open(out, "w").write(json.dumps({"scores": results.scores.model_dump(), "counts": results.counts}))
"""


def test_two_concurrent_evaluations_share_a_cache(tiny_model, tmp_path):
    """Two processes encode into one empty cache at once: both get exactly the results of a run with
    a private cache, and the shared cache holds only good shards and no temp files."""
    from hybrid_plugin.scoring.store import check_folder, store_folders

    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cache = tmp_path / "shared"

    def start(cache_dir: Path, out: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(CONCURRENT_EVAL), str(tiny_model), str(cache_dir), out],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(proc: subprocess.Popen) -> None:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-2000:]

    procs = [start(cache, str(tmp_path / f"{i}.json")) for i in range(2)]
    for proc in procs:
        finish(proc)
    # the reference: the same process setup (one torch thread: a thread count changes float rounding,
    # which the full-ranking rank correlation sees) with a private cache, after the others
    finish(start(tmp_path / "private", str(tmp_path / "private.json")))
    private = json.loads((tmp_path / "private.json").read_text())
    for i in range(2):
        got = json.loads((tmp_path / f"{i}.json").read_text())
        assert got["scores"] == private["scores"]
    folders = store_folders(cache)
    assert len(folders) == 2
    for folder in folders:
        shards, _ = check_folder(folder)
        assert len(shards) >= 2 and all(s.problem is None for s in shards)
    assert not list(cache.rglob("*.tmp")) and not list(cache.rglob("quarantine"))


def test_cache_commands(tmp_path, capsys):
    """info lists sizes and problems; verify names each bad shard (exit 2); prune removes bad and
    quarantined shards and stale temp files only; clear removes one model's folders or all."""
    from hybrid_plugin.scoring.store import EmbeddingStore

    a = EmbeddingStore(tmp_path, "a" * 64, "query: ", "model-a")
    a.ensure(TEXTS, CountingEncoder(), shard_size=10)
    b = EmbeddingStore(tmp_path, "b" * 64, "", "model-b")
    b.ensure(TEXTS, CountingEncoder(), shard_size=10)
    bad = sorted(a.folder.glob("*.npz"))[0]
    _corrupt(bad, "nan-rows")
    (a.folder / "quarantine").mkdir()
    (a.folder / "quarantine" / "old.npz").write_bytes(b"x")
    stale = a.folder / ".0123abcd.npz.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (1, 1))
    fresh = b.folder / ".4567.npz.tmp"  # a run writing right now: not stale
    fresh.write_bytes(b"in progress")
    cache = ["--cache-dir", str(tmp_path)]

    capsys.readouterr()
    assert main(["cache", "info", *cache]) == 0
    out = capsys.readouterr().out
    line_a = next(line for line in out.splitlines() if line.startswith("model-a"))
    assert "1 bad, 1 quarantined, 1 stale temp" in line_a and " 3 " in line_a
    line_b = next(line for line in out.splitlines() if line.startswith("model-b"))
    assert line_b.split()[3] == "25" and line_b.endswith("-")

    assert main(["cache", "verify", *cache]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"{bad}: NaN or infinite values" and err[1].startswith("1 bad shard(s) of 6")

    assert main(["cache", "prune", *cache]) == 0
    assert not bad.exists() and not stale.exists() and not (a.folder / "quarantine").exists()
    assert fresh.exists() and len(list(a.folder.glob("*.npz"))) == 2
    assert main(["cache", "verify", *cache]) == 0

    err = cli_error(capsys, ["cache", "clear", *cache, "--model", "model-c"])
    assert "no embeddings of model 'model-c'" in err
    assert main(["cache", "clear", *cache, "--model", "model-a"]) == 0
    assert not a.folder.parent.exists() and b.folder.is_dir()
    (tmp_path / "unrelated.txt").write_text("not ours")
    assert main(["cache", "clear", *cache]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unrelated.txt"]


# ---------------------------------------------------------------------------------------------
# 2. Writers that fail cleanly: one line naming the path and the cause, nothing half-written


class FillingFile:
    """A file whose disk fills after ``room`` bytes: writes past that raise ENOSPC."""

    def __init__(self, fh, room: int, name: str) -> None:
        self._fh, self._room, self._name = fh, room, name

    def write(self, data):
        if len(data) > self._room:
            self._fh.write(data[: self._room])
            self._room = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._name)
        self._room -= len(data)
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __iter__(self):
        return iter(self._fh)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()
        return False


def refuse_writes(monkeypatch: pytest.MonkeyPatch, root: Path, code: int, room: int | None = None) -> None:
    """Every write under ``root`` fails with ``code`` the way the system fails it: at open, mkdir
    and rename (read-only, forbidden), or, with ``room``, once a file holds ``room`` bytes (full)."""
    import builtins
    import io

    prefix = str(root.resolve())

    def under(path) -> bool:
        try:
            return os.path.abspath(os.fspath(path)).startswith(prefix)
        except TypeError:
            return False  # a file descriptor

    def fail(path):
        raise OSError(code, os.strerror(code), os.fspath(path))

    real_open, real_os_open = builtins.open, os.open
    real_mkdir, real_replace, real_rename = os.mkdir, os.replace, os.rename

    def file_open(file, mode="r", *args, **kwargs):
        writing = any(c in mode for c in "wax+")
        if writing and under(file):
            if room is None:
                fail(file)
            return FillingFile(real_open(file, mode, *args, **kwargs), room, os.fspath(file))
        return real_open(file, mode, *args, **kwargs)

    def os_open(path, flags, *args, **kwargs):
        if room is None and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and under(path):
            fail(path)
        return real_os_open(path, flags, *args, **kwargs)

    def guard(real):
        def call(src, *args, **kwargs):
            dst = args[0] if args and real is not real_mkdir else src
            if room is None and under(dst):
                fail(dst)
            return real(src, *args, **kwargs)

        return call

    monkeypatch.setattr(builtins, "open", file_open)
    monkeypatch.setattr(io, "open", file_open)
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(os, "mkdir", guard(real_mkdir))
    monkeypatch.setattr(os, "replace", guard(real_replace))
    monkeypatch.setattr(os, "rename", guard(real_rename))
    # Python 3.10's Path methods call functions bound when pathlib was imported, not os/io's attributes
    accessor = getattr(pathlib, "_NormalAccessor", None)
    if accessor is not None:
        monkeypatch.setattr(accessor, "open", staticmethod(file_open))
        monkeypatch.setattr(accessor, "mkdir", staticmethod(guard(real_mkdir)))
        monkeypatch.setattr(accessor, "replace", staticmethod(guard(real_replace)))
        monkeypatch.setattr(accessor, "rename", staticmethod(guard(real_rename)))


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
@pytest.mark.parametrize("flag", ["--out", "--trec-out"])
def test_evaluate_refuses_unwritable_output_before_encoding(flag, code, tmp_path, monkeypatch, capsys):
    """--out / --trec-out in a read-only or forbidden folder: one line before any encoding."""
    import hybrid_plugin.evaluation.evaluator as evaluator

    monkeypatch.setattr(evaluator, "evaluate", lambda cfg: pytest.fail("evaluated before the check"))
    ro = tmp_path / "ro"
    ro.mkdir()
    refuse_writes(monkeypatch, ro, code)
    argv = ["evaluate", "--task", "xquad-r", "--out", str(tmp_path / "ok"), flag, str(ro / "new" / "dir")]
    err = cli_error(capsys, argv)
    assert f"{flag} {ro}/new/dir: cannot write into {ro} ({os.strerror(code)})" in err
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("code, room", [(errno.ENOSPC, 2000), (errno.EROFS, None), (errno.EACCES, None)])
def test_results_writer_fails_cleanly(code, room, clean_run, tiny_model, tmp_path, monkeypatch, capsys):
    """The disk fills (or turns read-only) while the results JSON is written: one line naming the
    results file and the cause, exit 2, and no partial or temp file left."""
    import hybrid_plugin.atomic as atomic
    import hybrid_plugin.evaluation.evaluator as evaluator

    _, cache = clean_run
    tiny = evaluator.run_evaluation(
        evaluator.EvalConfig(task="xquad-r", model=str(tiny_model), languages="de,en", cache_dir=str(cache))
    )
    monkeypatch.setattr(evaluator, "run_evaluation", lambda cfg: tiny)
    monkeypatch.setattr(atomic, "check_writable", lambda folder, what: None)  # fail while writing
    out = tmp_path / "results"
    out.mkdir()
    refuse_writes(monkeypatch, out, code, room)
    err = cli_error(capsys, ["evaluate", "--task", "xquad-r", "--out", str(out)])
    assert err.startswith(f"hybrid-plugin: error: cannot write {out}/xquad-r__")
    assert ".json: " in err or ".queries.parquet" in err  # the per-query file is written first
    assert os.strerror(code) in err
    assert files_under(out) == []


def test_trec_writer_fails_cleanly(tmp_path, monkeypatch, datasets):
    """A full disk while TREC files are written: a WriteError naming the file; only whole files remain."""
    from hybrid_plugin.data.build import build_pool
    from hybrid_plugin.data.files import resolve_files
    from hybrid_plugin.data.settings import Setting
    from hybrid_plugin.data.spec import get_spec
    from hybrid_plugin.errors import WriteError
    from hybrid_plugin.evaluation.runs import SettingRun
    from hybrid_plugin.evaluation.trec import write_trec

    spec = get_spec("mlqa-r")
    pool = build_pool(spec, resolve_files(spec, ("de",), datasets).paths, "sentence")
    queries = np.arange(len(pool.query_ids))
    docs = np.tile(np.arange(len(pool.cand_ids)), (len(queries), 1))
    scores = -np.tile(np.arange(len(pool.cand_ids), dtype=np.float32), (len(queries), 1))
    runs = [SettingRun(Setting("de", "de"), queries, docs, scores)]
    refuse_writes(monkeypatch, tmp_path, errno.ENOSPC, room=10_000)
    with pytest.raises(WriteError, match=r"cannot write .*de-de\.(qrels|run): No space left on device"):
        write_trec(pool, runs, tmp_path / "trec")
    assert [f for f in files_under(tmp_path) if not f.endswith(".qrels")] == []  # the qrels fit; no .tmp


def test_train_refuses_unwritable_output_up_front(tmp_path, monkeypatch, capsys):
    import hybrid_plugin.training.trainer as trainer

    monkeypatch.setattr(trainer, "train", lambda cfg: pytest.fail("trained before the check"))
    ro = tmp_path / "ro"
    ro.mkdir()
    refuse_writes(monkeypatch, ro, errno.EROFS)
    err = cli_error(capsys, ["train", "--train-data", "jsonl:x.jsonl", "--output", str(ro / "model")])
    assert f"--output {ro}: cannot write into {ro} (Read-only file system)" in err


def test_export_fails_cleanly_on_a_full_disk(tmp_path, monkeypatch, capsys, beir_refs):
    """ENOSPC while a replacing export is written: one line, the old export untouched, no staging."""
    out = tmp_path / "export"
    assert main(_export(out, "de")) == 0
    refuse_writes(monkeypatch, tmp_path, errno.ENOSPC, room=50_000)
    err = cli_error(capsys, _export(out, "de,zh", "--force"))
    assert f"cannot write {out}: No space left on device" in err
    monkeypatch.undo()
    assert tree(out) == beir_refs["old"] and sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_unreadable_input_is_one_line(tmp_path, monkeypatch, capsys, datasets):
    """An OSError nobody named (here: a data file that cannot be read) still gives one line."""
    import builtins

    real_open = builtins.open
    target = str(datasets / "mlqa-r" / "de.json")

    def no_read(file, *args, **kwargs):
        if os.fspath(file) == target:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), target)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_read)
    err = cli_error(capsys, _export(tmp_path / "x", "de", "--data-dir", str(datasets)))
    assert err == f"hybrid-plugin: error: {target}: Permission denied"


# ---------------------------------------------------------------------------------------------
# 5. Concurrent leaderboard submits keep every row

SUBMIT = """
    import sys
    from hybrid_plugin.cli import main
    sys.exit(main(["leaderboard", "submit", sys.argv[1], "--dir", sys.argv[2], "--submitter", "test"]))
"""


def test_concurrent_submits_keep_every_row(tmp_path):
    """Four processes submit four different rows to one new board at once: all four rows, each
    with its results copy, and the board validates (each submit rebuilds the board's intervals under
    the lock, so more writers only add serial time)."""
    from hybrid_plugin.leaderboard.board import validate

    sources = sorted((REPO / "leaderboards" / "results" / "xquad-r").glob("*.json"))[:4]
    assert len(sources) == 4
    board = tmp_path / "board"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(SUBMIT), str(src), str(board)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for src in sources
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    checked, problems = validate([board / "xquad-r.csv"])
    assert problems == []
    assert len(checked[0].rows) == 4
    assert sorted(r.model.results_sha256[:16] for r in checked[0].rows) == sorted(p.stem for p in sources)


def test_submit_to_an_unwritable_board_is_one_line(tmp_path, monkeypatch, capsys):
    src = sorted((REPO / "leaderboards" / "results" / "xquad-r").glob("*.json"))[0]
    board = tmp_path / "board"
    board.mkdir()
    refuse_writes(monkeypatch, board, errno.EROFS)
    err = cli_error(capsys, ["leaderboard", "submit", str(src), "--dir", str(board), "--submitter", "t"])
    assert f"--dir {board}: cannot write into {board} (Read-only file system)" in err
    monkeypatch.undo()
    assert files_under(board) == []


def test_submit_on_a_full_disk_leaves_the_board_as_it_was(tmp_path, monkeypatch, capsys):
    """ENOSPC while the CSV is rewritten: one line, the CSV unchanged, no orphan results copy."""
    sources = sorted((REPO / "leaderboards" / "results" / "xquad-r").glob("*.json"))[:2]
    board = tmp_path / "board"
    assert main(["leaderboard", "submit", str(sources[0]), "--dir", str(board), "--submitter", "t"]) == 0
    before = tree(board)
    refuse_writes(monkeypatch, board, errno.ENOSPC, room=3000)
    err = cli_error(
        capsys, ["leaderboard", "submit", str(sources[1]), "--dir", str(board), "--submitter", "t"]
    )
    assert f"cannot write {board}/" in err and "No space left on device" in err
    monkeypatch.undo()
    assert tree(board) == before


# ---------------------------------------------------------------------------------------------
# 4. Input hardening: size limits on files read whole


def test_oversized_results_and_csv_are_refused_without_reading_them(tmp_path, capsys, monkeypatch):
    """A 30 MiB 'results JSON' and a 6 MiB CSV: one line each, and the file is never read whole."""
    big = tmp_path / "huge.json"
    with open(big, "wb") as fh:
        fh.truncate(30 * 2**20)  # sparse: costs no disk
    reads: list[int] = []
    real_read_bytes = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(1) or real_read_bytes(self))
    err = cli_error(capsys, ["leaderboard", "submit", str(big), "--dir", str(tmp_path / "lb")])
    assert f"{big}: 30 MiB, larger than the 20 MiB a results JSON may be" in err
    csv_file = tmp_path / "xquad-r.csv"
    with open(csv_file, "wb") as fh:
        fh.truncate(6 * 2**20)
    capsys.readouterr()
    assert main(["leaderboard", "validate", str(csv_file)]) == 2
    assert "larger than 5 MiB" in capsys.readouterr().err
    assert reads == []


# ---------------------------------------------------------------------------------------------
# 3. Checkpoints you can always resume


def _train_options(train_jsonl: Path, tiny_model: Path, output: Path) -> dict:
    return dict(
        train_data=[f"jsonl:{train_jsonl}"],
        output=str(output),
        base_model=str(tiny_model),
        batch_size=8,
        max_steps=4,
        save_steps=2,
        max_seq_length=32,
        learning_rate=1e-3,
        progress=False,
    )


def _weights(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    (path,) = folder.rglob("model.safetensors")
    return load_file(str(path))


@pytest.fixture(scope="module")
def checkpointed_run(tmp_path_factory, tiny_model: Path, train_jsonl: Path, datasets: Path) -> Path:
    """Four steps with checkpoints at 2 and 4, kept (as if the run died after them): the folder
    holding ``model`` (the finished weights, the reference) and ``model.checkpoints``."""
    pytest.importorskip("accelerate", reason="training needs the train extra")
    from hybrid_plugin.training import trainer as trainer_module

    base = tmp_path_factory.mktemp("checkpointed")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HYBRID_PLUGIN_CACHE", str(tmp_path_factory.getbasetemp() / "hp-cache"))
        mp.setenv("HYBRID_PLUGIN_DATA", str(datasets))
        mp.setattr(trainer_module.shutil, "rmtree", lambda *a, **kw: None)  # keep the checkpoints
        trainer_module.train(**_train_options(train_jsonl, tiny_model, base / "model"))
    names = sorted(p.name for p in (base / "model.checkpoints").glob("checkpoint-*"))
    assert names == ["checkpoint-2", "checkpoint-4"]
    return base


def _kill_during_save(folder: Path, how: str) -> None:
    """What a kill at some moment of saving ``folder`` leaves behind."""
    from hybrid_plugin.training.checkpoints import MARKER

    weights = next(folder.rglob("model.safetensors"))
    if how == "half-written-weights":  # killed while the weights were written: nothing after them
        for p in folder.iterdir():
            if p.is_file() and p.name not in ("config.json",):
                p.unlink()
        weights.write_bytes(b"\0" * 100)
    elif how == "no-trainer-state":  # killed before transformers wrote its state (saved last)
        (folder / "trainer_state.json").unlink()
        (folder / MARKER).unlink()
    elif how == "truncated-optimizer":
        data = (folder / "optimizer.pt").read_bytes()
        (folder / "optimizer.pt").write_bytes(data[: len(data) // 2])
        (folder / MARKER).unlink()
    elif how == "weights-changed-after-marker":  # the marker does not match: a later partial save
        weights.write_bytes(weights.read_bytes()[:-10])
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    "how, why",
    [
        ("half-written-weights", "no trainer_state.json"),
        ("no-trainer-state", "no trainer_state.json"),
        ("truncated-optimizer", "optimizer.pt is truncated"),
        ("weights-changed-after-marker", "model.safetensors has"),
    ],
)
def test_resume_skips_an_incomplete_newest_checkpoint(
    how, why, checkpointed_run, tiny_model, train_jsonl, tmp_path, capsys
):
    """The newest checkpoint was killed mid-save: --resume says so, takes checkpoint-2 and ends
    with the weights of the uninterrupted run."""
    import shutil

    from hybrid_plugin.training.trainer import train

    shutil.copytree(checkpointed_run / "model.checkpoints", tmp_path / "model.checkpoints")
    _kill_during_save(tmp_path / "model.checkpoints" / "checkpoint-4", how)
    capsys.readouterr()
    record = train(**_train_options(train_jsonl, tiny_model, tmp_path / "model"), resume=True)
    out = capsys.readouterr().out
    assert f"skipping incomplete checkpoint checkpoint-4 ({why}" in out
    assert f"resuming from {tmp_path / 'model.checkpoints' / 'checkpoint-2'}" in out
    assert record["steps"] == 4
    resumed, reference = _weights(tmp_path / "model"), _weights(checkpointed_run / "model")
    for key in _weights(tiny_model):  # (the unused pooler is initialised at random on each load)
        np.testing.assert_allclose(resumed[key], reference[key], rtol=0, atol=1e-6, err_msg=key)


def test_checkpoints_are_marked_complete_and_checked(checkpointed_run):
    """Each saved checkpoint carries the marker; a marker-less one (older version) is verified."""
    import shutil

    from hybrid_plugin.training.checkpoints import MARKER, checkpoint_problem

    for name in ("checkpoint-2", "checkpoint-4"):
        folder = checkpointed_run / "model.checkpoints" / name
        assert (folder / MARKER).is_file() and checkpoint_problem(folder) is None
    copy = checkpointed_run / "copy"
    shutil.copytree(checkpointed_run / "model.checkpoints" / "checkpoint-2", copy)
    (copy / MARKER).unlink()
    assert checkpoint_problem(copy) is None  # complete files, no marker: accepted
    shutil.rmtree(copy)


def test_resume_with_no_complete_checkpoint_is_one_line(checkpointed_run, train_jsonl, tiny_model, tmp_path):
    import shutil

    from hybrid_plugin.errors import UserError
    from hybrid_plugin.training.trainer import train

    shutil.copytree(checkpointed_run / "model.checkpoints", tmp_path / "model.checkpoints")
    _kill_during_save(tmp_path / "model.checkpoints" / "checkpoint-4", "no-trainer-state")
    _kill_during_save(tmp_path / "model.checkpoints" / "checkpoint-2", "truncated-optimizer")
    with pytest.raises(UserError) as err:
        train(**_train_options(train_jsonl, tiny_model, tmp_path / "model"), resume=True)
    assert str(err.value) == (
        f"--resume: no complete checkpoint in {tmp_path / 'model.checkpoints'} (checkpoint-4: no "
        "trainer_state.json (killed while saving); checkpoint-2: optimizer.pt is truncated)"
    )
    assert not (tmp_path / "model").exists()


# ---------------------------------------------------------------------------------------------
# 4. Input hardening


def _task_copy(datasets: Path, tmp_path: Path, task: str, langs: tuple[str, ...]) -> Path:
    import shutil

    (tmp_path / task).mkdir(parents=True)
    for lang in langs:
        shutil.copy(datasets / task / f"{lang}.json", tmp_path / task / f"{lang}.json")
    return tmp_path


def _evaluate_args(data: Path, langs: str, *extra: str) -> list[str]:
    return ["evaluate", "--task", "xquad-r", "--languages", langs, "--data-dir", str(data), *extra]


def test_missing_file_is_the_one_named(datasets, tmp_path, capsys):
    """de.json is there, en.json is not: the error names en.json (it used to name de.json)."""
    data = _task_copy(datasets, tmp_path, "xquad-r", ("de",))
    err = cli_error(capsys, _evaluate_args(data, "de,en", "--out", str(tmp_path / "out")))
    assert err == (
        f"hybrid-plugin: error: --data-dir {data}: {data / 'xquad-r'} has no en.json (of de.json, en.json)"
    )


@pytest.mark.parametrize("langs", ["", ",", " , "])
def test_empty_language_selection_is_an_error(langs, capsys, tmp_path):
    err = cli_error(capsys, ["evaluate", "--task", "xquad-r", "--languages", langs, "--out", str(tmp_path)])
    assert "empty language selection" in err and "leave --languages out for all" in err
    err = cli_error(
        capsys, ["export", "beir", "--task", "mlqa-r", "--languages", langs, "--out", str(tmp_path)]
    )
    assert "empty language selection" in err


DEEP = "[" * 100_000 + "]" * 100_000


def test_deeply_nested_json_is_one_line_naming_the_file(datasets, tmp_path, capsys, tiny_model):
    """100,000 levels of nesting in a data file, a results JSON, a training file and a model config:
    one line each naming the file (the json parser's RecursionError used to escape)."""
    import shutil

    data = _task_copy(datasets, tmp_path / "data", "xquad-r", ("de",))
    (data / "xquad-r" / "de.json").write_text(DEEP)
    err = cli_error(capsys, _evaluate_args(data, "de", "--no-verify", "--out", str(tmp_path / "o")))
    assert err.endswith(
        f"{data / 'xquad-r' / 'de.json'}: json nested too deeply (thousands of levels): not a data file"
    )

    results = tmp_path / "results.json"
    results.write_text(DEEP)
    err = cli_error(capsys, ["leaderboard", "submit", str(results), "--dir", str(tmp_path / "lb")])
    assert f"{results}: json nested too deeply" in err

    squad = tmp_path / "train.de.json"
    squad.write_text(DEEP)
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_text('{"id": "1", "lang": "de", "query": "q", "passage": "p"}\n' + DEEP + "\n")
    for source, where in (
        (f"squad:{squad}", f"{squad}: json nested too deeply"),
        (f"jsonl:{jsonl}", f"{jsonl}: line 2: json nested too deeply"),
    ):
        err = cli_error(
            capsys, ["train", "--train-data", source, "--output", str(tmp_path / "m"), "--dry-run"]
        )
        assert where in err

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (model / "config_sentence_transformers.json").write_text(DEEP)
    err = cli_error(
        capsys, _evaluate_args(datasets, "de", "--model", str(model), "--out", str(tmp_path / "o"))
    )
    assert f"{model / 'config_sentence_transformers.json'}: json nested too deeply" in err


def test_json_booleans_are_not_numbers(datasets, tmp_path, capsys):
    """answer_start: true was read as 1; now it is refused in task data and in training data."""
    data = _task_copy(datasets, tmp_path / "data", "xquad-r", ("de",))
    raw = json.loads((data / "xquad-r" / "de.json").read_text(encoding="utf-8"))
    raw["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = True
    (data / "xquad-r" / "de.json").write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    err = cli_error(capsys, _evaluate_args(data, "de", "--no-verify", "--out", str(tmp_path / "o")))
    assert "data[0].paragraphs[0].qas[0].answers[0].answer_start should be a int, got bool" in err

    train = tmp_path / "train.de.json"
    qa = {"id": "x1", "question": "Was?", "answers": [{"answer_start": True, "text": "Satz"}]}
    doc = {"data": [{"paragraphs": [{"context": "Ein Satz. Noch einer.", "qas": [qa]}]}]}
    train.write_text(json.dumps(doc), encoding="utf-8")
    err = cli_error(
        capsys, ["train", "--train-data", f"squad:{train}", "--output", str(tmp_path / "m"), "--dry-run"]
    )
    assert "answers[0].answer_start should be a int, got bool" in err


FLOAT_OPTIONS = ["--alpha", "--epochs", "--learning-rate", "--weight-decay", "--warmup-ratio", "--scale",
                 "--merge-with-base", "--dev-fraction"]  # fmt: skip


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e999"])
@pytest.mark.parametrize("flag", FLOAT_OPTIONS)
def test_float_options_refuse_nan_and_inf(flag, value, capsys, tmp_path):
    argv = ["train", "--train-data", "jsonl:x", "--output", str(tmp_path / "m"), f"{flag}={value}"]
    err = cli_error(capsys, argv)
    expected = f"argument {flag}: expected a finite number, got {value!r} (see --help)"
    assert err == f"hybrid-plugin train: error: {expected}"


def test_python_api_refuses_nan_too(tmp_path):
    from hybrid_plugin.errors import UserError
    from hybrid_plugin.training.trainer import TrainConfig

    cfg = TrainConfig(train_data=["jsonl:x"], output=str(tmp_path / "m"), weight_decay=float("nan"))
    with pytest.raises(UserError, match="--weight-decay must be a finite number, got nan"):
        cfg.validate()


# the training guard: evaluation data recognised by content


def _as_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_reserialised_evaluation_file_is_refused_by_content(datasets, tmp_path, capsys):
    """The sha256 check missed a re-serialised copy; the content check names task and overlap."""
    from hybrid_plugin.training.data import read_sources

    raw = json.loads((datasets / "xquad-r" / "de.json").read_text(encoding="utf-8"))
    copy = tmp_path / "train.de.json"
    copy.write_text(json.dumps(raw, indent=2, ensure_ascii=False), encoding="utf-8")
    err = cli_error(
        capsys, ["train", "--train-data", f"squad:{copy}", "--output", str(tmp_path / "m"), "--dry-run"]
    )
    assert err == (
        f"hybrid-plugin: error: --train-data squad:{copy}: 1190 of its 1190 items are questions of the "
        "evaluation task xquad-r (1190 by question id, 1190 by question text); never train on evaluation data"
    )
    # MLQA-R questions in an MLQA-named file, and as jsonl with new ids and changed whitespace
    mlqa = tmp_path / "mlqa"
    mlqa.mkdir()
    raw = json.loads((datasets / "mlqa-r" / "de.json").read_text(encoding="utf-8"))
    (mlqa / "dev-context-de-question-de.json").write_text(json.dumps(raw, indent=1), encoding="utf-8")
    with pytest.raises(
        UserError,
        match=r"mlqa:.*: 512 of its 512 items are questions of the evaluation task mlqa-r \(512 by",
    ):
        read_sources([f"mlqa:{mlqa}"], progress=False)
    rows = [
        {"id": f"new-{i}", "lang": "de", "query": "  " + qa["question"].upper() + " ", "passage": "p"}
        for i, qa in enumerate(qa for a in raw["data"] for p in a["paragraphs"] for qa in p["qas"])
    ][:40]
    disguised = _as_jsonl(tmp_path / "disguised.jsonl", rows)
    with pytest.raises(
        UserError, match=r"40 of its 40 items .* mlqa-r \(0 by question id, 40 by question text\)"
    ):
        read_sources([f"jsonl:{disguised}"], progress=False)


def test_real_training_data_passes_with_its_chance_overlap_recorded(datasets, capsys):
    """MLQA test shares two short questions with MLQA dev by chance: recorded and warned, not refused."""
    from hybrid_plugin.training.data import read_sources

    items = read_sources([f"mlqa:{datasets / 'train' / 'mlqa-test'}"], progress=False)
    check = items.sources[0]["evaluation_check"]
    assert check == {"overlapping_items": {"mlqa-r": 2, "tydi-goldp": 0, "xquad-r": 0}, "skipped": {}}
    assert len(warnings_in(capsys.readouterr().err)) == 1


def test_content_check_says_when_it_was_skipped(train_jsonl, tmp_path, monkeypatch):
    """No evaluation data anywhere: training goes on and training.json says the check was skipped."""
    from hybrid_plugin.training.data import read_sources

    monkeypatch.setenv("HYBRID_PLUGIN_DATA", str(tmp_path / "nowhere"))
    monkeypatch.setenv("HYBRID_PLUGIN_CACHE", str(tmp_path / "cache"))
    items = read_sources([f"jsonl:{train_jsonl}"], progress=False)
    check = items.sources[0]["evaluation_check"]
    assert check["overlapping_items"] == {}
    assert check["skipped"] == {
        t: "its data was not found (pass --data-dir)" for t in ("mlqa-r", "tydi-goldp", "xquad-r")
    }


def test_killed_writers_temp_files_are_removed_by_the_next_write(tmp_path):
    """A kill leaves .NAME.PID.xxxx.tmp files and folders; the next write of NAME removes those of
    dead processes (never a live writer's), and the store sweeps its folder on its first shard."""
    from hybrid_plugin.atomic import atomic_dir, write_text
    from hybrid_plugin.scoring.store import EmbeddingStore

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(dead.stdout)
    (tmp_path / f".results.json.{dead_pid}.abcd1234.tmp").write_text("half")
    (tmp_path / ".results.json.1.efgh5678.tmp").write_text("pid 1 is alive: not ours to remove")
    (tmp_path / f".model.{dead_pid}.ijkl9012.tmp").mkdir()
    (tmp_path / f".model.{dead_pid}.ijkl9012.tmp" / "weights").write_text("half")
    write_text(tmp_path / "results.json", "{}")
    with atomic_dir(tmp_path / "model") as tmp:
        (tmp / "weights").write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".results.json.1.efgh5678.tmp",
        "model",
        "results.json",
    ]

    store = EmbeddingStore(tmp_path / "cache", "9" * 64, "")
    store.folder.mkdir(parents=True)
    stale = store.folder / f".{'0' * 32}.npz.{dead_pid}.mnop3456.npz.tmp"
    stale.write_bytes(b"half a shard")
    store.ensure(TEXTS[:3], CountingEncoder())
    assert not stale.exists() and len(list(store.folder.glob("*.npz"))) == 1


def test_model_save_on_a_full_disk_is_one_line_and_leaves_no_model(
    tiny_model, train_jsonl, tmp_path, capsys, monkeypatch
):
    """train --output on a disk that fills while the model is saved: one line naming the output,
    no model folder (complete or absent), no temp folder beside it."""
    pytest.importorskip("accelerate", reason="training needs the train extra")
    out = tmp_path / "runs"
    out.mkdir()
    refuse_writes(monkeypatch, out, errno.ENOSPC, room=100)
    argv = ["train", "--train-data", f"jsonl:{train_jsonl}", "--output", str(out / "model"),
            "--base-model", str(tiny_model), "--batch-size", "8", "--max-steps", "1",
            "--max-seq-length", "32", "--no-progress"]  # fmt: skip
    err = cli_error(capsys, argv)
    monkeypatch.undo()
    assert err.startswith(f"hybrid-plugin: error: cannot write {out / 'model'}: No space left on device (")
    # only the (empty) checkpoint folder of the trainer remains: no model, no temp folder
    assert [p.name for p in out.iterdir()] == ["model.checkpoints"]
    assert files_under(out) == []
