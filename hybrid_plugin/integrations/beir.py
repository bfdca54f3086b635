"""Export a task as BEIR folders that BEIR's ``GenericDataLoader`` loads unchanged.

Layout (one folder per candidate set, query sets as prefixes, so nothing is stored twice per target):

    OUT/manifest.json                 task, languages, candidate format, checksums, setting → (folder, prefix)
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
import shutil
import sys
from pathlib import Path

from tqdm.auto import tqdm

from hybrid_plugin import __version__
from hybrid_plugin.atomic import RETIRED, replace_tree, stale_staging
from hybrid_plugin.data.build import build_pool
from hybrid_plugin.data.files import resolve_files
from hybrid_plugin.data.pool import Pool
from hybrid_plugin.data.settings import POOL, Setting, pool_settings, relevant_in
from hybrid_plugin.data.spec import get_spec, select_languages
from hybrid_plugin.errors import UserError


def _jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_beir(pool: Pool, out: Path) -> dict:
    """Write every setting of ``pool`` into ``out`` (a fresh folder); returns the manifest."""
    slices = pool.lang_slices()
    members = pool_settings(pool)
    targets = [(lang, slices[i]) for i, lang in enumerate(pool.languages)]
    if "multi" in pool.settings:  # a monolingual-only task (tydi-goldp) has no pool folder
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


def is_our_export(folder: Path) -> bool:
    """A folder this command wrote: its manifest names a task and the hybrid_plugin version."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and {"task", "hybrid_plugin", "settings"} <= manifest.keys()


def protected_folders(data_dir: str | Path | None) -> dict[str, Path]:
    """Folders an export must never replace, contain or (data, cache) write into."""
    import os

    from hybrid_plugin.paths import cache_root

    places = {
        "the current directory": Path.cwd(),
        "the home folder": Path.home(),
        "the embedding and data cache": cache_root(),
        "the hybrid_plugin installation": Path(__file__).resolve().parents[2],
    }
    data = data_dir or os.environ.get("HYBRID_PLUGIN_DATA")
    if data:
        places["the data folder"] = Path(data)
    return {what: path.expanduser().resolve() for what, path in places.items()}


def check_export_target(out: Path, data_dir: str | Path | None, force: bool) -> None:
    """Refuse an ``--out`` whose replacement could destroy what the user did not ask to replace."""
    if not str(out).strip():
        raise UserError("--out is empty: name a new folder for the export")
    target = out.expanduser().resolve()
    if target == Path(target.anchor):
        raise UserError(f"--out {out}: the file system root; name a new folder for the export")
    for what, place in protected_folders(data_dir).items():
        if target == place or target in place.parents:
            raise UserError(f"--out {out} is or contains {what} ({place}); name a new folder for the export")
        if what in ("the data folder", "the embedding and data cache") and place in target.parents:
            raise UserError(f"--out {out} lies inside {what} ({place}); write the export elsewhere")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not force:
            raise UserError(f"{out} exists and is not empty; pass --force to replace it")
        if not out.is_dir() or not is_our_export(out):
            raise UserError(
                f"--out {out} holds something other than an export of ours (no hybrid-plugin {MANIFEST}); "
                "refusing to replace it even with --force"
            )


def recover_interrupted(out: Path) -> list[str]:
    """Clean what a killed export left beside ``out``; put back an old export left aside. Returns notes."""
    notes = []
    for stale in stale_staging(out):
        old_tree = stale / "tree"
        if stale.name.startswith(RETIRED) and old_tree.is_dir() and not out.exists():
            os.rename(old_tree, out)
            notes.append(f"restored the previous export {out} from {stale.name} (an export was interrupted)")
        else:
            notes.append(f"removed {stale.name}, left by an interrupted export")
        shutil.rmtree(stale, ignore_errors=True)
    return notes


def export_beir(
    task: str,
    out: str | Path,
    languages: str | list[str] | None = None,
    candidate_format: str | None = None,
    data_dir: str | None = None,
    force: bool = False,
) -> dict:
    """Export ``task`` into ``out``: a new folder, or (``force``) a previous export of ours, replaced in
    one step (a kill at any moment leaves the old export or the new one, never a mix)."""
    out = Path(out)
    for note in recover_interrupted(out):
        print(f"hybrid-plugin: {note}", file=sys.stderr)
    check_export_target(out, data_dir, force)
    spec = get_spec(task)
    langs = select_languages(spec, languages)
    candidate_format = spec.candidate_format(candidate_format)
    files = resolve_files(spec, langs, data_dir)
    task_folder = next(iter(files.paths.values())).parent
    check_export_target(out, task_folder.parent, force)  # the data folder actually used, however found
    pool = build_pool(spec, files.paths, candidate_format)
    with replace_tree(out) as tmp:
        settings = write_beir(pool, tmp)
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
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest
