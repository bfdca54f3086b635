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
import shutil
from pathlib import Path

from tqdm.auto import tqdm

from hybrid_plugin import __version__
from hybrid_plugin.atomic import atomic_dir
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


def export_beir(
    task: str,
    out: str | Path,
    languages: str | list[str] | None = None,
    candidate_format: str | None = None,
    data_dir: str | None = None,
    force: bool = False,
) -> dict:
    """Export ``task`` into ``out``; refuses a non-empty ``out`` unless ``force``. Written atomically."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise UserError(f"{out} exists and is not empty; pass --force to replace it")
    spec = get_spec(task)
    langs = select_languages(spec, languages)
    candidate_format = spec.candidate_format(candidate_format)
    files = resolve_files(spec, langs, data_dir)
    pool = build_pool(spec, files.paths, candidate_format)
    with atomic_dir(out.parent / f"{out.name}.new") as tmp:
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
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    staged = out.parent / f"{out.name}.new"
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    staged.rename(out)
    return manifest
