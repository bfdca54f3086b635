"""Export a task as BEIR folders that BEIR's ``GenericDataLoader`` loads unchanged.

Layout (one folder per candidate set, query sets as prefixes, so nothing is stored twice per target):

    OUT/manifest.json                 task, languages, candidate format, checksums, setting → (folder,
                                      prefix), each file's sha256 and its own (what --force asks for)
    OUT/{y}/corpus.jsonl              candidates in language y        ({"_id", "title", "text"})
    OUT/{y}/{x}-queries.jsonl         queries in language x           ({"_id", "text"})
    OUT/{y}/{x}-qrels/test.tsv        X→Y relevance (query-id, corpus-id, score)
    OUT/pool/...                      the same for the multilingual pool (all selected languages)

A monolingual-only task (``tydi-goldp``) has only the X→X query sets and no ``pool`` folder.

Setting X→Y loads with ``GenericDataLoader(OUT / y, prefix=x).load(split="test")``; X→pool with
``OUT / "pool"``. Query ids (``{lang}-q-{id}``) never equal document ids (``{lang}-aNNN-pNN-sNNN``;
passages: ``{lang}-pNNNNN``), so BEIR's dropping of identical ids never removes a hit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path

from tqdm.auto import tqdm

from hybrid_plugin import __version__
from hybrid_plugin.atomic import check_removable, check_writable, pid_alive, swap_in_dir, writing_to
from hybrid_plugin.data.build import load_pool
from hybrid_plugin.data.files import ResolvedFiles
from hybrid_plugin.data.pool import Pool
from hybrid_plugin.data.settings import POOL, Setting, pool_settings, relevant_in
from hybrid_plugin.data.spec import SettingKind, TaskSpec, all_specs
from hybrid_plugin.data.taskdir import TASK_NAME, write_folder
from hybrid_plugin.errors import UserError
from hybrid_plugin.outputs import data_folders, refuse_protected, seal, sealed


def _jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_beir(pool: Pool, out: Path) -> dict:
    """Write every setting of ``pool`` into ``out`` (a fresh folder); returns the manifest."""
    slices = pool.lang_slices()
    members = pool_settings(pool)
    targets = [(lang, slices[i]) for i, lang in enumerate(pool.languages)]
    if SettingKind.MULTI in pool.settings:  # a monolingual-only task (tydi-goldp) has no pool folder
        targets.append((POOL, slice(0, len(pool.cand_ids))))
    settings: dict[str, dict] = {}
    for target, sl in tqdm(targets, desc="writing BEIR folders", unit="folder"):
        folder = out / target
        (folder).mkdir(parents=True)
        texts = pool.cand_text
        _jsonl(
            folder / "corpus.jsonl",
            [{"_id": pool.cand_ids[c], "title": "", "text": texts[c]} for c in range(sl.start, sl.stop)],
        )
        for lang in pool.languages:
            setting = Setting(lang, None if target == POOL else target)
            queries = members.get(setting)
            if queries is None:
                continue
            _jsonl(
                folder / f"{lang}-queries.jsonl",
                [{"_id": pool.query_ids[q], "text": pool.query_text[q]} for q in queries],
            )
            (folder / f"{lang}-qrels").mkdir()
            lines = ["query-id\tcorpus-id\tscore"]
            for q in queries:
                rel = relevant_in(pool, q, setting)
                lines += [f"{pool.query_ids[q]}\t{pool.cand_ids[c]}\t1" for c in rel]
            (folder / f"{lang}-qrels" / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
            settings[setting.key] = {"folder": target, "prefix": lang, "queries": len(queries)}
    return settings


MANIFEST = "manifest.json"
#: the manifest of a task folder export (the name ``export mteb`` gives its own)
TASK_MANIFEST = "hybrid_plugin_export.json"


def _is_export(folder: Path) -> bool:
    """True if ``folder`` holds exactly a previous BEIR export of ours, proven by its manifest: the
    manifest's own checksum and every file's sha256 match, and nothing else is there."""
    manifest = sealed(folder, MANIFEST)
    return manifest is not None and isinstance(manifest.get("settings"), dict)


def _check_out(
    out: Path, files: ResolvedFiles, data_dir: str | Path | None, force: bool, is_previous=_is_export
) -> None:
    """Refuse an ``out`` whose replacement could destroy something that is not a previous export
    (or whose old tree could not be removed once replaced)."""
    task_dirs = sorted({f.parent for f in files.paths.values()})
    refuse_protected(out, "--out", data_folders(data_dir, *task_dirs))
    if not out.exists() and not out.is_symlink():
        return
    if out.is_symlink() or not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder; choose a new folder for the export")
    if not any(out.iterdir()):
        return
    if not is_previous(out):
        what, manifest = "BEIR export", MANIFEST
        if is_previous is not _is_export:
            what, manifest = "task folder export", TASK_MANIFEST
        what += f" of hybrid-plugin (no {manifest} whose checksums match every file there)"
        raise UserError(
            f"--out {out} is not empty and is not a previous {what}; nothing was changed: "
            "choose a new folder or empty it yourself"
        )
    if not force:
        raise UserError(f"--out {out} holds a previous export and is not empty; pass --force to replace it")
    check_removable(out, "--out")


def _staging_names(out: Path) -> tuple[Path, Path]:
    """This process's staging and old-tree folders: hidden siblings of ``out`` (never inside it)."""
    pid = os.getpid()
    return out.parent / f".{out.name}.staging-{pid}", out.parent / f".{out.name}.old-{pid}"


def clean_stale_staging(out: Path) -> list[str]:
    """Remove staging folders that killed exports left beside ``out``; returns one note per action.

    If ``out`` itself is missing (a kill between the two renames where the system cannot swap in
    one step), the previous export kept as ``.OUT.old-PID`` is put back first.
    """
    pattern = re.compile(rf"\.{re.escape(out.name)}\.(staging|old)-(\d+)")
    notes = []
    if not out.parent.is_dir():
        return notes
    stale = []
    for entry in sorted(out.parent.iterdir()):
        m = pattern.fullmatch(entry.name)
        if m is not None and entry.is_dir() and not pid_alive(int(m[2])):
            stale.append((m[1], entry))
    for kind, entry in stale:
        if kind == "old" and not out.exists() and (_is_export(entry) or _is_task_export(entry)):
            os.replace(entry, out)
            notes.append(f"restored the previous export {out} from {entry.name} (an export was killed)")
    for _, entry in stale:
        if entry.exists():
            try:
                shutil.rmtree(entry)
            except OSError as err:  # not ours to fix, and no reason to refuse this export
                notes.append(f"could not remove {entry}, left behind by an export ({err.strerror or err})")
                continue
            notes.append(f"removed {entry}, left behind by a killed export")
    legacy = out.parent / f"{out.name}.new"
    if legacy.is_dir():
        notes.append(f"{legacy} looks like a killed export's staging folder; delete it if it is not yours")
    return notes


def _prepare_out(out: str | Path, files: ResolvedFiles, data_dir, force: bool, is_previous) -> Path:
    """Check ``out`` (see :func:`export_beir`), put back what a killed export left, check again."""
    if str(out).strip() == "":
        raise UserError("--out is empty; name a new folder for the export")
    out = Path(out)
    _check_out(out, files, data_dir, force, is_previous)
    check_writable(out.parent, "--out")
    with writing_to(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        for note in clean_stale_staging(out):
            print(f"hybrid-plugin: {note}", file=sys.stderr)
    _check_out(out, files, data_dir, force, is_previous)  # a restored export is checked like any other
    return out


def _staged_write(out: Path, write) -> dict:
    """``write(staging)`` into a hidden sibling of ``out``, then swap it in (old or new, never a mix)."""
    staging, old = _staging_names(out)
    try:
        with writing_to(out):
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            manifest = write(staging)
            swap_in_dir(staging, out, old)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def export_beir(
    task: str,
    out: str | Path,
    languages: str | list[str] | None = None,
    candidate_format: str | None = None,
    data_dir: str | None = None,
    force: bool = False,
) -> dict:
    """Export ``task`` (a built-in task or a task folder) into ``out``; returns the manifest.

    ``out`` must be new, empty, or (with ``force``) a previous export of ours; it may never be,
    contain or lie inside the data, the cache or the package, nor be or contain the current
    directory. The tree is staged beside ``out`` and swapped in by rename, so a kill at any moment
    leaves the old export or the new one, never a mix.
    """
    if str(out).strip() == "":
        raise UserError("--out is empty; name a new folder for the export")
    loaded = load_pool(task, languages, candidate_format, data_dir)
    out = _prepare_out(out, loaded.files, data_dir, force, _is_export)
    return _staged_write(
        out,
        lambda staging: _write_export(
            loaded.pool,
            loaded.spec,
            loaded.pool.languages,
            loaded.pool.candidate_format,
            loaded.files,
            staging,
        ),
    )


def _is_task_export(folder: Path) -> bool:
    """True if ``folder`` holds exactly a task folder that :func:`export_task` wrote, proven by its
    manifest (a ``task.toml`` that merely says ``[exported_from]`` proves nothing)."""
    manifest = sealed(folder, TASK_MANIFEST)
    return manifest is not None and manifest.get("export") == "task"


def export_task(
    task: str,
    out: str | Path,
    languages: str | list[str] | None = None,
    data_dir: str | None = None,
    name: str | None = None,
    force: bool = False,
    candidate_format: str | None = None,
) -> dict:
    """Write ``task`` (its default candidate format) as a user task folder, readable with ``--task OUT``.

    The folder gives the same pool, so the same numbers, as the built-in task; it is named ``name``
    (default ``TASK-export``). ``out`` is checked and swapped in as in :func:`export_beir` (``force``
    replaces a previous task export). Returns what ``task.toml``'s ``[exported_from]`` records.
    """
    if str(out).strip() == "":
        raise UserError("--out is empty; name a new folder for the export")
    loaded = load_pool(task, languages, candidate_format, data_dir)
    default = loaded.spec.candidate_formats[0]
    if loaded.pool.candidate_format != default:
        raise UserError(
            f"--candidate-format {loaded.pool.candidate_format}: a task folder holds one text per "
            f"candidate; export task writes {loaded.spec.name}'s default format ({default})"
        )
    name = name or f"{loaded.spec.name}-export"
    if TASK_NAME.fullmatch(name) is None or name in all_specs():
        raise UserError(
            f"--name {name!r}: use lower-case letters, digits, '.', '_' or '-' (not a built-in task's name)"
        )
    out = _prepare_out(out, loaded.files, data_dir, force, _is_task_export)
    source = {
        "task": loaded.spec.name,
        "languages": ",".join(loaded.pool.languages),
        "candidate_format": loaded.pool.candidate_format,
        "hybrid_plugin": __version__,
        "sha256": dict(loaded.files.sha256),
    }

    def write(staging: Path) -> dict:
        write_folder(loaded.pool, loaded.spec, name, staging, source)
        seal(staging, TASK_MANIFEST, {"export": "task", "exported_from": source})
        return source

    return _staged_write(out, write)


def _write_export(
    pool: Pool,
    spec: TaskSpec,
    langs: tuple[str, ...],
    candidate_format: str,
    files: ResolvedFiles,
    staging: Path,
) -> dict:
    """Every setting, then the manifest last (a staging folder without one is incomplete)."""
    settings = write_beir(pool, staging)
    manifest = {
        "task": spec.name,
        "languages": list(langs),
        "candidate_format": candidate_format,
        "data_sha256": files.sha256,
        "origin_commit": spec.origin_commit,
        "license": spec.license,
        "hybrid_plugin": __version__,
        "load": "GenericDataLoader(OUT / setting.folder, prefix=setting.prefix).load(split='test')",
        "settings": settings,
    }
    return seal(staging, MANIFEST, manifest)  # last: it lists every file with its sha256
