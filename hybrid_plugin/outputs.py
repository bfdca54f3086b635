"""Where a command may write a folder, and how a folder proves it is ours before ``--force`` replaces it.

Real paths are compared (``..`` and symlinks resolved), so no spelling of a protected place gets
past the check. A folder is "ours" only if it carries a manifest that lists every file in it with
its sha256 and a checksum of the manifest itself: a name, a layout or a line of text can be copied
by hand, a manifest whose checksums match every file cannot come about by chance.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from hybrid_plugin.data.files import DATA_ENV, sha256_file
from hybrid_plugin.errors import UserError
from hybrid_plugin.paths import cache_root

#: the key of a sealed manifest that holds the sha256 of the rest of it
MANIFEST_SHA256 = "manifest_sha256"

Place = tuple[str, Path]


def data_folders(data_dir: str | Path | None, *more: Path) -> list[Path]:
    """The data folders a command reads: ``data_dir``, ``$HYBRID_PLUGIN_DATA`` and ``more``."""
    given = [Path(d) for d in (data_dir, os.environ.get(DATA_ENV)) if d and str(d).strip()]
    return [*given, *more]


def protected_places(data: Iterable[Path]) -> tuple[list[Place], list[Place]]:
    """(places an output may not be or contain, places it may not lie inside), as (name, path)."""
    import hybrid_plugin

    package = Path(hybrid_plugin.__file__).parent
    inside = [
        *(("the data folder", Path(d)) for d in data),
        ("the hybrid-plugin cache", cache_root()),
        ("the hybrid_plugin package", package),
    ]
    whole = [("the current directory", Path.cwd()), *inside]
    if (package.parent / "pyproject.toml").is_file():
        whole.append(("the hybrid_plugin repository", package.parent))
    return whole, inside


def refuse_protected(out: Path, option: str, data: Iterable[Path], what: str = "the export") -> None:
    """UserError if ``out`` (its real path) is, contains or lies inside a protected place."""
    target = Path(out).resolve()
    whole, inside = protected_places(data)
    for relation, hit in (("is", lambda p: target == p), ("contains", lambda p: target in p.parents)):
        for name, place in whole:
            if hit(place.resolve()):
                raise UserError(
                    f"{option} {out} {relation} {name} ({place.resolve()}); choose a new folder for {what}"
                )
    for name, place in inside:
        if place.resolve() in target.parents:
            raise UserError(
                f"{option} {out} lies inside {name} ({place.resolve()}); choose a folder elsewhere"
            )


def _files(folder: Path) -> dict[str, Path] | None:
    """Every file under ``folder`` by relative path; None if anything there is neither a plain
    file nor a plain folder (a symlink, a device): such a tree was not written by us."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            return None
        if path.is_file():
            found[path.relative_to(folder).as_posix()] = path
    return found


def _manifest_sha256(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != MANIFEST_SHA256}
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


def seal(folder: Path, manifest_name: str, fields: dict) -> dict:
    """Write ``fields`` as ``folder/manifest_name`` with every other file's sha256 under ``files``
    and the manifest's own checksum: the proof :func:`sealed` asks for. Call it last."""
    files = _files(folder) or {}
    manifest = {**fields, "files": {rel: sha256_file(p) for rel, p in files.items() if rel != manifest_name}}
    manifest[MANIFEST_SHA256] = _manifest_sha256(manifest)
    (folder / manifest_name).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", "utf-8")
    return manifest


def sealed(folder: Path, manifest_name: str) -> dict | None:
    """The manifest of ``folder`` if it proves the folder ours: its checksum matches, and it lists
    exactly the files there, each with its sha256. None otherwise: a folder a user made or changed
    is never taken for ours."""
    try:
        manifest = json.loads((folder / manifest_name).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(manifest, dict) or manifest.get(MANIFEST_SHA256) != _manifest_sha256(manifest):
        return None
    listed, files = manifest.get("files"), _files(folder)
    if not isinstance(listed, dict) or files is None or set(files) != {*listed, manifest_name}:
        return None
    try:
        if any(sha256_file(files[rel]) != digest for rel, digest in listed.items()):
            return None
    except OSError:
        return None
    return manifest
