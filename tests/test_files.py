"""Data resolution order, checksums, downloads (from local file:// URLs) and the offline message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hybrid_plugin.data.files import DATA_ENV, fetch_url, resolve_files
from hybrid_plugin.data.spec import get_spec
from hybrid_plugin.errors import UserError

SPEC = get_spec("xquad-r")
LANGS = ("de", "en")


def copy_task(src: Path, dst: Path, langs=LANGS) -> Path:
    (dst / "xquad-r").mkdir(parents=True)
    for lang in langs:
        shutil.copy(src / "xquad-r" / f"{lang}.json", dst / "xquad-r" / f"{lang}.json")
    return dst


def test_data_dir_first_then_env_then_cache(datasets, tmp_path, monkeypatch, hermetic_cache):
    env_dir = copy_task(datasets, tmp_path / "env")
    monkeypatch.setenv(DATA_ENV, str(env_dir))
    assert resolve_files(SPEC, LANGS, datasets).origin == "data-dir"
    assert resolve_files(SPEC, LANGS).origin == "env"
    monkeypatch.delenv(DATA_ENV)
    shutil.rmtree(hermetic_cache / "datasets", ignore_errors=True)
    copy_task(datasets, hermetic_cache / "datasets")
    got = resolve_files(SPEC, LANGS, download=False)
    assert got.origin == "cache" and got.paths["de"].parent == hermetic_cache / "datasets" / "xquad-r"
    shutil.rmtree(hermetic_cache / "datasets")


def test_data_dir_may_be_the_task_folder_itself(datasets):
    got = resolve_files(SPEC, LANGS, datasets / "xquad-r")
    assert got.paths["en"] == datasets / "xquad-r" / "en.json"


def test_download_with_checksum_into_cache(datasets, monkeypatch, hermetic_cache):
    """The real fetch code, pointed at file:// URLs standing in for GitHub."""
    monkeypatch.delenv(DATA_ENV, raising=False)
    shutil.rmtree(hermetic_cache / "datasets", ignore_errors=True)
    origin = (datasets / "xquad-r").as_uri()
    seen = []

    def local_fetch(url: str, dest: Path) -> None:
        seen.append(url)
        fetch_url(url.replace(SPEC.url_for(""), origin + "/"), dest)

    got = resolve_files(SPEC, LANGS, fetch=local_fetch)
    assert got.origin == "download"
    assert seen == [SPEC.url_for("de.json"), SPEC.url_for("en.json")]
    assert SPEC.origin_commit in seen[0]
    assert (hermetic_cache / "datasets" / "xquad-r" / "de.json").is_file()
    # second time: found in the cache, nothing fetched
    assert resolve_files(SPEC, LANGS, fetch=local_fetch).origin == "cache"
    assert len(seen) == 2
    shutil.rmtree(hermetic_cache / "datasets")


def test_bad_download_leaves_nothing(monkeypatch, hermetic_cache, tmp_path):
    monkeypatch.delenv(DATA_ENV, raising=False)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")

    def wrong_file(url: str, dest: Path) -> None:
        fetch_url(bad.as_uri(), dest)

    with pytest.raises(UserError, match="downloaded sha256 .* does not match"):
        resolve_files(SPEC, ("de",), fetch=wrong_file)
    folder = hermetic_cache / "datasets" / "xquad-r"
    assert not folder.exists() or not any(folder.iterdir())


def test_offline_message_names_places_and_fix(monkeypatch, hermetic_cache):
    monkeypatch.delenv(DATA_ENV, raising=False)

    def offline(url: str, dest: Path) -> None:
        fetch_url("http://127.0.0.1:9/unreachable.json", dest, timeout=2)

    with pytest.raises(UserError) as err:
        resolve_files(SPEC, ("de",), fetch=offline)
    msg = str(err.value)
    assert "looked in" in msg and "--data-dir" in msg and DATA_ENV in msg and "\n" not in msg


def test_checksum_mismatch(datasets, tmp_path):
    copy_task(datasets, tmp_path, ("de",))
    with open(tmp_path / "xquad-r" / "de.json", "a") as fh:
        fh.write(" ")
    with pytest.raises(UserError, match=r"de\.json: sha256 .* does not match"):
        resolve_files(SPEC, ("de",), tmp_path)


def test_missing_data_dir(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        resolve_files(SPEC, ("de",), tmp_path / "nope")
    with pytest.raises(UserError, match="no xquad-r/de.json"):
        resolve_files(SPEC, ("de",), tmp_path)
