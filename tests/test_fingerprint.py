"""A model folder's fingerprint is its content; the memo that skips re-hashing never hides a change."""

from __future__ import annotations

import os

import pytest

from hybrid_plugin.models import ref


def test_memo_is_used_and_invalidated(tmp_path, monkeypatch):
    model = tmp_path / "m"
    model.mkdir()
    (model / "weights.safetensors").write_bytes(b"a" * 100)
    (model / "README.md").write_text("card: not fingerprinted")
    first = ref.fingerprint_folder(model)
    assert first == ref._hash_files(model, [model / "weights.safetensors"])

    calls = []
    real = ref._hash_files
    monkeypatch.setattr(ref, "_hash_files", lambda *a: calls.append(1) or real(*a))
    assert ref.fingerprint_folder(model) == first and calls == []  # remembered
    (model / "README.md").write_text("another card")
    assert ref.fingerprint_folder(model) == first and calls == []  # cards do not count

    (model / "weights.safetensors").write_bytes(b"b" * 100)  # same size, new content
    stat = (model / "weights.safetensors").stat()
    os.utime(model / "weights.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    changed = ref.fingerprint_folder(model)
    assert calls == [1] and changed != first
    assert changed == real(model, [model / "weights.safetensors"])


def test_corrupt_memo_is_ignored(tmp_path):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    first = ref.fingerprint_folder(model)
    for memo in (ref.cache_root() / "fingerprints").glob("*.json"):
        memo.write_text('{"files": "nonsense", "sha256": "x"}')
    assert ref.fingerprint_folder(model) == first


@pytest.mark.parametrize("hidden", [".git/HEAD", ".cache/x"])
def test_hidden_files_do_not_count(tmp_path, hidden):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text("{}")
    before = ref.fingerprint_folder(model)
    (model / hidden).parent.mkdir(parents=True)
    (model / hidden).write_text("x")
    assert ref.fingerprint_folder(model) == before
