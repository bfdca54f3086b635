"""Fault suite (issue 25): data loss and filesystem faults on the cache, the exports and the records.

Each test injects one fault and asserts one clear line (exit 2, no traceback), that nothing outside
what the command owns was touched, and, where a number could go wrong, the right number. The tests
run as root here, where chmod stops nothing: a read-only folder is simulated by refusing, with
EACCES, every change inside the folders it held (followed by inode, so a rename does not lift it).
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from test_faults import TEXTS, CountingEncoder, _task_copy, cli_error, fake_vectors, tree

from hybrid_plugin.cli import main

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# 1-2. cache clear: an empty --model is refused; only folders proven ours are touched


def _two_models(root: Path):
    from hybrid_plugin.scoring.store import EmbeddingStore

    a = EmbeddingStore(root, "a" * 64, "query: ", "model-a")
    a.ensure(TEXTS, CountingEncoder(), shard_size=10)
    b = EmbeddingStore(root, "b" * 64, "", "model-b")
    b.ensure(TEXTS, CountingEncoder(), shard_size=10)
    return a, b


@pytest.mark.parametrize("model", ["", " ", "\t"])
def test_cache_clear_refuses_an_empty_model(model, tmp_path, capsys):
    """``--model ''`` meant one model and named none: refused, not taken as "every model"."""
    _two_models(tmp_path)
    before = tree(tmp_path)
    err = cli_error(capsys, ["cache", "clear", "--cache-dir", str(tmp_path), "--model", model])
    assert "--model is empty" in err
    assert tree(tmp_path) == before and len(before) == 2 * (3 + 1)  # 3 shards and meta.json each


def _user_folders(root: Path) -> None:
    """A user's folders that merely look like store folders: hex names, even ``.npz`` files and a
    ``meta.json`` that names another fingerprint, but nothing that proves them written by a store."""
    plain = root / ("0123456789abcdef" * 2) / "abcdef012345"
    plain.mkdir(parents=True)
    (plain / "notes.txt").write_text("my notes")
    (plain / "scan.npz").write_bytes(b"my data")
    lookalike = root / ("f" * 32) / ("e" * 12)
    lookalike.mkdir(parents=True)
    (lookalike / "meta.json").write_text(json.dumps({"fingerprint": "0" * 64, "prompt": "", "dim": 8}))
    (lookalike / "results.npz").write_bytes(b"mine too")


def test_cache_commands_touch_only_folders_proven_ours(tmp_path, capsys):
    """clear, prune, info and verify on a --cache-dir that also holds a user's hex-named folders:
    the user's folders (and a user's file inside a store folder) survive; the stores are gone."""
    a, b = _two_models(tmp_path)
    _user_folders(tmp_path)
    (a.folder / "README.txt").write_text("a note I left in the cache")
    note = f"{a.folder.relative_to(tmp_path)}/README.txt"
    theirs = {k: v for k, v in tree(tmp_path).items() if not k.startswith(("a" * 32, "b" * 32)) or k == note}
    cache = ["--cache-dir", str(tmp_path)]
    assert main(["cache", "info", *cache]) == 0
    assert "total" in capsys.readouterr().out
    assert main(["cache", "verify", *cache]) == 0
    assert main(["cache", "prune", *cache]) == 0
    assert main(["cache", "clear", *cache]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert out.startswith("removed 2 store folder(s)")
    assert out.endswith("kept 1 file(s) that the cache did not write")
    assert tree(tmp_path) == theirs and len(theirs) == 5
    assert not b.folder.parent.exists()
    assert sorted(p.name for p in a.folder.iterdir()) == ["README.txt"]


# ---------------------------------------------------------------------------------------------
# 4. A shard whose rows were reordered: a valid file with wrong content


@pytest.mark.parametrize("how", ["rows-reordered", "keys-reordered", "reordered-without-checksum"])
def test_reordered_shard_is_caught_and_encoded_again(how, tmp_path, capsys):
    """Every row must belong to its text: a shard whose rows no longer match its keys is one
    warning, quarantined, its texts encoded again, and every embedding is the right one."""
    from hybrid_plugin.scoring.store import EmbeddingStore

    store = EmbeddingStore(tmp_path, "c" * 64, "query: ")
    store.ensure(TEXTS, CountingEncoder(), shard_size=10)
    victim = sorted(store.folder.glob("*.npz"))[0]
    with np.load(victim) as data:
        arrays = {name: data[name] for name in data.files}
    assert set(arrays) == {"keys", "emb", "check"}
    flip = np.arange(len(arrays["keys"]))[::-1]
    if how == "rows-reordered":
        arrays["emb"] = arrays["emb"][flip]
    elif how == "keys-reordered":
        arrays["keys"] = arrays["keys"][flip]
    else:
        arrays = {"keys": arrays["keys"], "emb": arrays["emb"][flip]}
    with open(victim, "wb") as fh:
        np.savez(fh, **arrays)
    capsys.readouterr()

    again = EmbeddingStore(tmp_path, "c" * 64, "query: ")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hybrid-plugin: warning: 1 bad embedding cache shard"), err
    assert victim.name in err[0] and "checksum" in err[0]
    assert (store.folder / "quarantine" / victim.name).is_file()
    enc = CountingEncoder()
    assert again.ensure(TEXTS, enc, shard_size=10) == len(flip)
    np.testing.assert_array_equal(again.get(TEXTS), fake_vectors(TEXTS))  # the right embedding per text


# ---------------------------------------------------------------------------------------------
# 5. Outputs inside the data folder, however spelled


def _out_commands(data: Path, out: str, train_jsonl: Path, tiny_model: Path) -> dict[str, list[str]]:
    languages = ["--languages", "de", "--data-dir", str(data)]
    return {
        "export beir": ["export", "beir", "--task", "mlqa-r", *languages, "--out", out],
        "export task": ["export", "task", "--task", "mlqa-r", *languages, "--out", out],
        "export mteb": ["export", "mteb", "--task", "mlqa-r", *languages, "--out", out],
        "train": ["train", "--train-data", f"jsonl:{train_jsonl}", "--base-model", str(tiny_model),
                  "--output", out, "--data-dir", str(data), "--max-steps", "1"],
    }  # fmt: skip


@pytest.mark.parametrize("command", ["export beir", "export task", "export mteb", "train"])
@pytest.mark.parametrize("spelling", ["inside", "dotdot", "symlink", "symlinked-data"])
def test_outputs_inside_the_data_folder_are_refused(
    command, spelling, datasets, tmp_path, capsys, monkeypatch, train_jsonl, tiny_model
):
    """The docs forbid writing into the data folder: refused in one line, real paths compared."""
    data = _task_copy(datasets, tmp_path / "data", "mlqa-r", ("de",))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(data / "mlqa-r")
    (tmp_path / "data-link").symlink_to(data)
    out = {
        "inside": data / "exports" / "x",
        "dotdot": tmp_path / "elsewhere" / ".." / "data" / "mlqa-r" / "x",
        "symlink": tmp_path / "link" / "x",
        "symlinked-data": data / "x",
    }[spelling]
    if spelling == "symlinked-data":  # the data folder given through a link, the output by its real path
        data = tmp_path / "data-link"
    monkeypatch.delenv("HYBRID_PLUGIN_DATA")
    before = tree(tmp_path / "data")
    err = cli_error(capsys, _out_commands(data, str(out), train_jsonl, tiny_model)[command])
    assert "lies inside the data folder" in err
    assert tree(tmp_path / "data") == before


# ---------------------------------------------------------------------------------------------
# 3, 6. --force replaces only what proves to be ours, and only if it can


def _export_argv(kind: str, out: Path, langs: str, *extra: str) -> list[str]:
    return ["export", kind, "--task", "mlqa-r", "--languages", langs, "--out", str(out), *extra]


@pytest.fixture(scope="module")
def export_refs(tmp_path_factory: pytest.TempPathFactory, datasets: Path) -> dict[str, dict[str, str]]:
    """Reference trees of an old (de) and a new (de,zh) export of each kind."""
    base = tmp_path_factory.mktemp("export-refs")
    refs = {}
    for kind in ("beir", "task"):
        for name, langs in (("old", "de"), ("new", "de,zh")):
            assert main(_export_argv(kind, base / f"{kind}-{name}", langs)) == 0
            refs[f"{kind}-{name}"] = tree(base / f"{kind}-{name}")
    return refs


def _hand_made(kind: str, folder: Path) -> None:
    """A user's folder with an export's layout and the text that used to be taken as proof."""
    if kind == "task":
        folder.mkdir()
        (folder / "task.toml").write_text(
            'name = "mine"\nlanguages = ["de"]\n\n[exported_from]\ntask = "me"\n'
        )
        (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "my document", "language": "de"}\n')
        (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "my query", "language": "de"}\n')
        (folder / "qrels").mkdir()
        (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    else:
        (folder / "de" / "de-qrels").mkdir(parents=True)
        (folder / "de" / "corpus.jsonl").write_text('{"_id": "d1", "title": "", "text": "mine"}\n')
        (folder / "de" / "de-qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n")
        manifest = {"task": "mine", "hybrid_plugin": "0", "settings": {"de-de": {"folder": "de"}}}
        (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("kind", ["beir", "task"])
def test_force_replaces_only_a_folder_proven_ours(kind, tmp_path, capsys, export_refs):
    """A hand-made folder with an export's layout and marker text, or an export a user edited, is
    not replaced by --force; an untouched export of ours is."""
    manifest = "manifest.json" if kind == "beir" else "hybrid_plugin_export.json"
    user = tmp_path / "user"
    _hand_made(kind, user)
    before = tree(user)
    err = cli_error(capsys, _export_argv(kind, user, "de,zh", "--force"))
    assert "is not a previous" in err and f"no {manifest} whose checksums match" in err
    assert tree(user) == before

    out = tmp_path / "export"
    assert main(_export_argv(kind, out, "de")) == 0
    assert tree(out) == export_refs[f"{kind}-old"]
    edited = next(p for p in sorted(out.rglob("*.jsonl")))
    original = edited.read_bytes()
    edited.write_bytes(original + b'{"_id": "mine"}\n')  # the user's edit: theirs now
    err = cli_error(capsys, _export_argv(kind, out, "de,zh", "--force"))
    assert "is not a previous" in err and edited.read_bytes().endswith(b'{"_id": "mine"}\n')
    edited.write_bytes(original)
    assert main(_export_argv(kind, out, "de,zh", "--force")) == 0
    assert tree(out) == export_refs[f"{kind}-new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "user"]  # no staging, no old tree


def _folder_of(path: str | os.PathLike, dir_fd: int | None = None) -> tuple[int, int] | None:
    """(device, inode) of the folder that holds ``path`` (relative to ``dir_fd`` if given, as
    ``shutil.rmtree`` names entries)."""
    try:
        st = os.stat(os.path.dirname(os.fspath(path)) or ".", dir_fd=dir_fd)
    except (OSError, TypeError):
        return None
    return st.st_dev, st.st_ino


@contextmanager
def read_only(monkeypatch: pytest.MonkeyPatch, root: Path) -> Iterator[None]:
    """Make every folder under ``root`` (and ``root``) refuse changes the way ``chmod -R a-w`` does
    for a user who is not root: creating, removing or renaming an entry in it fails with EACCES."""
    locked = {(s.st_dev, s.st_ino) for p in [root, *root.rglob("*")] if p.is_dir() and (s := p.stat())}

    def check(path, dir_fd=None) -> None:
        if _folder_of(path, dir_fd) in locked:
            raise OSError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))

    real = {
        name: getattr(os, name)
        for name in ("open", "unlink", "remove", "rmdir", "mkdir", "rename", "replace")
    }
    real_open = builtins.open
    real_io_open = io.open

    def os_open(path, flags, *args, dir_fd=None, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            check(path, dir_fd)
        return real["open"](path, flags, *args, dir_fd=dir_fd, **kwargs)

    def removing(name):
        def call(path, *args, dir_fd=None, **kwargs):
            check(path, dir_fd)
            return real[name](path, *args, dir_fd=dir_fd, **kwargs)

        return call

    def moving(name):
        def call(src, dst, *args, **kwargs):
            check(src, kwargs.get("src_dir_fd"))
            check(dst, kwargs.get("dst_dir_fd"))
            return real[name](src, dst, *args, **kwargs)

        return call

    def file_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and not isinstance(file, int):
            check(file)
        return real_open(file, mode, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(os, "open", os_open)
        for name in ("unlink", "remove", "rmdir", "mkdir"):
            m.setattr(os, name, removing(name))
        for name in ("rename", "replace"):
            m.setattr(os, name, moving(name))
        m.setattr(builtins, "open", file_open)
        m.setattr(io, "open", file_open)
        accessor = getattr(pathlib, "_NormalAccessor", None)  # Python 3.10: Path methods call os via it
        if accessor is not None:
            for name in ("unlink", "rmdir", "mkdir"):
                m.setattr(accessor, name, staticmethod(getattr(os, name)))
            for name in ("rename", "replace"):
                m.setattr(accessor, name, staticmethod(getattr(os, name)))
            if hasattr(accessor, "open"):
                m.setattr(
                    accessor, "open", staticmethod(file_open if accessor.open is real_io_open else os_open)
                )
        yield


def test_read_only_simulation_refuses_what_chmod_would(tmp_path, monkeypatch):
    """The simulation itself: writes in the locked tree fail, elsewhere they pass, and a renamed
    locked folder stays locked."""
    (tmp_path / "locked" / "sub").mkdir(parents=True)
    (tmp_path / "locked" / "sub" / "f").write_text("x")
    with read_only(monkeypatch, tmp_path / "locked"):
        for attempt in (
            lambda: (tmp_path / "locked" / "sub" / "f").unlink(),
            lambda: (tmp_path / "locked" / "new").write_text("x"),
            lambda: shutil.rmtree(tmp_path / "locked"),
            lambda: tempfile.mkstemp(dir=tmp_path / "locked" / "sub"),
        ):
            with pytest.raises(PermissionError):
                attempt()
        os.rename(tmp_path / "locked", tmp_path / "moved")  # its parent is not locked
        with pytest.raises(PermissionError):
            shutil.rmtree(tmp_path / "moved")
        (tmp_path / "free").write_text("x")
    assert (tmp_path / "moved" / "sub" / "f").read_text() == "x"


@pytest.mark.parametrize("kind", ["beir", "task"])
def test_force_over_a_read_only_export_changes_nothing_and_later_runs_work(
    kind, tmp_path, capsys, monkeypatch, export_refs
):
    """--force over a previous export that cannot be deleted: refused before anything is written
    (the old export in place, no staging or ``.old-PID`` folder beside it); once writable, works."""
    out = tmp_path / "export"
    assert main(_export_argv(kind, out, "de")) == 0
    with read_only(monkeypatch, out):
        for _ in range(2):  # and again: nothing was left behind that changes the answer
            err = cli_error(capsys, _export_argv(kind, out, "de,zh", "--force"))
            assert "cannot replace it" in err and "nothing was changed" in err
            assert tree(out) == export_refs[f"{kind}-old"]
            assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]
    assert main(_export_argv(kind, out, "de,zh", "--force")) == 0
    assert tree(out) == export_refs[f"{kind}-new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root deletes in read-only folders; see the simulated test")
def test_force_over_a_chmod_read_only_export(tmp_path, capsys, export_refs):
    out = tmp_path / "export"
    assert main(_export_argv("beir", out, "de")) == 0
    folders = [out, *(p for p in out.rglob("*") if p.is_dir())]
    for folder in folders:
        folder.chmod(0o555)
    try:
        err = cli_error(capsys, _export_argv("beir", out, "de,zh", "--force"))
        assert "cannot replace it" in err and tree(out) == export_refs["beir-old"]
    finally:
        for folder in folders:
            folder.chmod(0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_undeletable_debris_of_an_old_export_does_not_block_later_exports(
    tmp_path, capsys, monkeypatch, export_refs
):
    """A ``.NAME.old-PID`` that an earlier version left and that cannot be deleted: one note, and
    the export goes on (it used to fail every time until removed by hand)."""
    out = tmp_path / "export"
    assert main(_export_argv("beir", out, "de")) == 0
    debris = tmp_path / ".export.old-999999999"
    shutil.copytree(out, debris)
    with read_only(monkeypatch, debris):
        capsys.readouterr()
        assert main(_export_argv("beir", out, "de,zh", "--force")) == 0
    err = capsys.readouterr().err
    assert f"could not remove {debris}" in err and "Traceback" not in err
    assert tree(out) == export_refs["beir-new"]


# ---------------------------------------------------------------------------------------------
# 7. Weights rewritten in place with their mtime put back


def test_weights_rewritten_in_place_with_mtime_restored_are_hashed_again(tmp_path):
    """Same size, mtime and inode as when the fingerprint was remembered: the ctime (which no program
    can set back) still tells, so stale embeddings are never reused under the old fingerprint."""
    from hybrid_plugin.models import ref

    model = tmp_path / "m"
    model.mkdir()
    weights = model / "model.safetensors"
    weights.write_bytes(b"a" * 4096)
    first = ref.fingerprint_folder(model)
    was = weights.stat()
    with open(weights, "r+b") as fh:  # in place: same inode, same size
        fh.write(b"b" * 4096)
    os.utime(weights, ns=(was.st_atime_ns, was.st_mtime_ns))
    while weights.stat().st_ctime_ns == was.st_ctime_ns:  # the clock has not ticked since (ms)
        os.utime(weights, ns=(was.st_atime_ns, was.st_mtime_ns))
    now = weights.stat()
    assert (now.st_size, now.st_mtime_ns, now.st_ino) == (was.st_size, was.st_mtime_ns, was.st_ino)
    again = ref.fingerprint_folder(model)
    assert again != first
    assert again == ref._hash_files(model, [weights])


# ---------------------------------------------------------------------------------------------
# 8. Recorded paths that do not depend on where the checkout lies

RECORD_FROM_A_CLONE = """
    import json, sys
    from hybrid_plugin.training.card import portable_record

    merged = {"weight": 0.5, "merged_from": sys.argv[2]}
    record = {"config": {"output": sys.argv[1]}, "merge_with_base": merged}
    print(json.dumps(portable_record(record)["merge_with_base"]))
"""


def test_recorded_paths_do_not_depend_on_where_the_checkout_lies(tmp_path):
    """``make test`` in a fresh clone two folders below the temp folder: a model in pytest's temp
    folder is recorded by its absolute path, not as ``../../pytest-of-…`` (which points nowhere from
    any other folder). Run as a fresh process from such a clone, with that temp folder."""
    temp = tmp_path / "tmp"
    clone = temp / "a" / "b" / "repo"
    clone.mkdir(parents=True)
    trained = temp / "pytest-of-me" / "pytest-0" / "test0" / "work" / "run" / "model"
    merged = trained.parent.parent / "run-m0.5" / "model"
    merged.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=str(REPO), TMPDIR=str(temp))

    def recorded(merged_from: Path) -> str:
        code = textwrap.dedent(RECORD_FROM_A_CLONE)
        argv = [sys.executable, "-c", code, str(merged), str(merged_from)]
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=clone, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)["merged_from"]

    assert recorded(trained) == str(trained)
    # a folder truly beside the clone is still recorded relative to it
    assert recorded(clone.parent / "study") == "../study"
