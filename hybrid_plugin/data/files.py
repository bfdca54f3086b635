"""Find a task's files: --data-dir, $HYBRID_PLUGIN_DATA, the user cache, then the origin (sha256-checked)."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from hybrid_plugin.atomic import atomic_path
from hybrid_plugin.data.spec import TaskSpec
from hybrid_plugin.errors import UserError
from hybrid_plugin.paths import cache_root

DATA_ENV = "HYBRID_PLUGIN_DATA"

Fetcher = Callable[[str, Path], None]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_url(url: str, dest: Path, timeout: float = 60.0) -> None:
    """Download ``url`` into ``dest`` (the caller makes it atomic)."""
    with urllib.request.urlopen(url, timeout=timeout) as resp, open(dest, "wb") as out:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=Path(url).name, leave=False) as bar:
            for block in iter(lambda: resp.read(1 << 16), b""):
                out.write(block)
                bar.update(len(block))


@dataclass(frozen=True)
class ResolvedFiles:
    """Paths of a task's language files, where they were found, and their verified checksums."""

    paths: dict[str, Path]  # language -> file
    origin: str  # "data-dir", "env", "cache" or "download"
    sha256: dict[str, str]


def candidate_dirs(spec: TaskSpec, data_dir: str | Path | None) -> list[tuple[str, Path]]:
    """Where to look, in order. A data dir may hold the task folder (``xquad-r/``) or be that folder."""
    places: list[tuple[str, Path]] = []
    if data_dir:
        places.append(("data-dir", Path(data_dir)))
    elif os.environ.get(DATA_ENV):
        places.append(("env", Path(os.environ[DATA_ENV])))
    places.append(("cache", cache_root() / "datasets"))
    dirs: list[tuple[str, Path]] = []
    for origin, base in places:
        dirs.append((origin, base / spec.folder))
        if origin != "cache":
            dirs.append((origin, base))
    return dirs


def _checksums(spec: TaskSpec, paths: dict[str, Path], verify: bool) -> dict[str, str]:
    """sha256 of each file (recorded in results); with ``verify``, it must equal the spec's."""
    sums = {}
    for lang, path in paths.items():
        actual = sha256_file(path)
        expected = spec.files[path.name]
        if verify and actual != expected:
            raise UserError(
                f"{path}: sha256 {actual[:16]}… does not match the spec's {expected[:16]}… "
                f"(expected the file from {spec.url_for(path.name)}; --no-verify accepts a modified copy)"
            )
        sums[lang] = actual
    return sums


def _partial_folder(dirs: list[tuple[str, Path]], files: list[str]) -> Path | None:
    """The first place that holds some (not all) of ``files``: where the user meant the data to be."""
    for _, folder in dirs:
        if any((folder / f).is_file() for f in files):
            return folder
    return None


def _missing_note(folder: Path, files: list[str]) -> str:
    """Names every file of ``files`` that ``folder`` lacks (not merely the first one asked for)."""
    missing = [f for f in files if not (folder / f).is_file()]
    return f"{folder} has no {', '.join(missing)} (of {', '.join(files)})"


def resolve_files(
    spec: TaskSpec,
    languages: tuple[str, ...],
    data_dir: str | Path | None = None,
    download: bool = True,
    fetch: Fetcher = fetch_url,
    verify: bool = True,
) -> ResolvedFiles:
    """Locate (or download into the cache) one json file per language, sha256-verified unless told not to."""
    files = [spec.file_for(lang) for lang in languages]
    explicit = bool(data_dir)
    dirs = candidate_dirs(spec, data_dir)
    for origin, folder in dirs:
        if all((folder / f).is_file() for f in files):
            paths = {lang: folder / f for lang, f in zip(languages, files)}
            return ResolvedFiles(paths, origin, _checksums(spec, paths, verify))
    partial = _partial_folder(dirs, files)
    if explicit:
        missing_dir = Path(data_dir)
        if not missing_dir.exists():
            raise UserError(f"--data-dir {missing_dir} does not exist")
        if partial is None:
            raise UserError(
                f"--data-dir {missing_dir}: no {spec.folder}/{files[0]} (or {files[0]}) found; "
                f"expected files {', '.join(files)}"
            )
        raise UserError(f"--data-dir {missing_dir}: {_missing_note(partial, files)}")
    cache_dir = cache_root() / "datasets" / spec.folder
    looked = ", ".join(str(d) for _, d in dirs)
    if partial is not None:
        looked += f"; {_missing_note(partial, files)}"
    if not download:
        raise UserError(f"{spec.name} data not found (looked in {looked}); pass --data-dir or set {DATA_ENV}")
    paths: dict[str, Path] = {}
    for lang, f in zip(languages, files):
        target = cache_dir / f
        if not target.is_file():
            url = spec.url_for(f)
            try:
                with atomic_path(target) as tmp:
                    fetch(url, tmp)
                    actual = sha256_file(tmp)
                    if actual != spec.files[f]:
                        raise UserError(f"{url}: downloaded sha256 {actual[:16]}… does not match the spec")
            except (urllib.error.URLError, OSError, TimeoutError) as err:
                raise UserError(
                    f"{spec.name} data not found (looked in {looked}) and download of {url} failed "
                    f"({getattr(err, 'reason', err)}); pass --data-dir DIR or set {DATA_ENV}=DIR "
                    f"to a folder holding {spec.folder}/"
                ) from None
        paths[lang] = target
    return ResolvedFiles(paths, "download", _checksums(spec, paths, verify=True))
