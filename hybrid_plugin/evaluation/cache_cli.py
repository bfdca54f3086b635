"""``hybrid-plugin cache info|verify|prune|clear``: look after the embedding cache without guessing paths."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hybrid_plugin.errors import UserError
from hybrid_plugin.paths import cache_root

if TYPE_CHECKING:  # the store (numpy) is imported when a cache command runs, not at CLI start
    from hybrid_plugin.scoring.store import FolderReport


def _root(args: argparse.Namespace) -> Path:
    return Path(args.cache_dir) if args.cache_dir else cache_root() / "embeddings"


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _reports(root: Path) -> list[FolderReport]:
    from hybrid_plugin.scoring.store import report_folder, store_folders

    try:
        return [report_folder(f) for f in store_folders(root)]
    except OSError as err:
        raise UserError(f"cannot read the embedding cache {root}: {err.strerror or err}") from None


def _cmd_info(args: argparse.Namespace) -> int:
    root = _root(args)
    reports = _reports(root)
    print(f"embedding cache {root}" + ("" if reports else ": empty"))
    if reports:
        print(f"{'model':<40} {'prompt':<12} {'shards':>6} {'embeddings':>10} {'size':>9}  problems")
        for r in reports:
            counts = {"bad": len(r.bad), "quarantined": len(r.quarantined), "stale temp": len(r.stale_temp)}
            problems = [f"{n} {what}" for what, n in counts.items() if n]
            print(
                f"{r.model[:40]:<40} {r.prompt[:12]!r:<12} {r.shards:>6} {r.embeddings:>10} "
                f"{_size(r.bytes):>9}  {', '.join(problems) or '-'}"
            )
        total = sum(r.bytes for r in reports)
        print(
            f"total {_size(total)} in {len(reports)} folder(s); `hybrid-plugin cache prune` removes problems"
        )
    others = root.parent
    if not args.cache_dir and others.is_dir():
        for sub in sorted(p for p in others.iterdir() if p.is_dir() and p != root):
            size = sum(f.stat().st_size for f in sub.rglob("*") if f.is_file())
            print(f"also in {others}: {sub.name}/ {_size(size)}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    root = _root(args)
    reports = _reports(root)
    bad = [(path, why) for r in reports for path, why in r.bad]
    for path, why in bad:
        print(f"{path}: {why}", file=sys.stderr)
    shards = sum(r.shards for r in reports)
    if bad:
        print(
            f"{len(bad)} bad shard(s) of {shards} in {root} (an evaluation quarantines them and encodes "
            "their texts again; `hybrid-plugin cache prune` deletes them)",
            file=sys.stderr,
        )
        return 2
    print(f"ok {root}: {shards} shard(s), {sum(r.embeddings for r in reports)} embeddings")
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    root = _root(args)
    removed, freed = 0, 0
    for r in _reports(root):
        for path in [*(p for p, _ in r.bad), *r.quarantined, *r.stale_temp]:
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue  # another process moved or removed it
            removed, freed = removed + 1, freed + size
        quarantine = r.folder / "quarantine"
        if quarantine.is_dir() and not any(quarantine.iterdir()):
            quarantine.rmdir()
    print(
        f"removed {removed} file(s) ({_size(freed)}) from {root}: "
        "bad shards, quarantined shards, stale temp files"
    )
    return 0


def _cmd_clear(args: argparse.Namespace) -> int:
    from hybrid_plugin.scoring.store import clear_store_folder

    root = _root(args)
    if args.model is not None and not args.model.strip():
        raise UserError(
            "--model is empty; name the model whose embeddings to delete (see hybrid-plugin cache info), "
            "or leave --model out to delete every model's"
        )
    reports = _reports(root)
    if args.model is not None:
        reports = [r for r in reports if args.model in (r.model, r.folder.parent.name[: len(args.model)])]
        if not reports:
            raise UserError(f"no embeddings of model {args.model!r} in {root} (see hybrid-plugin cache info)")
    freed, kept = 0, 0
    for r in reports:
        try:
            size, others = clear_store_folder(r.folder)
        except OSError as err:
            why = err.strerror or err
            raise UserError(f"cannot delete from the embedding cache {r.folder}: {why}") from None
        freed, kept = freed + size, kept + others
    note = f"; kept {kept} file(s) that the cache did not write" if kept else ""
    print(f"removed {len(reports)} store folder(s) ({_size(freed)}) from {root}{note}")
    return 0


def add_cache_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``cache info|verify|prune|clear`` to the main CLI's subparsers."""
    p = subparsers.add_parser(
        "cache",
        help="the embedding cache: sizes per model, bad shards, stale temp files; prune or clear it",
        description="Embeddings are cached per model fingerprint and prompt in shards; a bad shard is "
        "quarantined (moved aside) when an evaluation meets it, and its texts are encoded again.",
    )
    actions = p.add_subparsers(dest="action", required=True)
    for name, func, what in (
        ("info", _cmd_info, "sizes per model and prompt, bad and quarantined shards, stale temp files"),
        ("verify", _cmd_verify, "read and check every shard: one line per bad shard, exit 2 on any"),
        ("prune", _cmd_prune, "delete bad and quarantined shards and temp files of dead runs"),
        ("clear", _cmd_clear, "delete the cached embeddings (of every model, or of --model)"),
    ):
        a = actions.add_parser(name, help=what)
        a.add_argument("--cache-dir", default=None, help="embedding cache folder (default: the user cache's)")
        if name == "clear":
            a.add_argument("--model", default=None, help="only this model (its name or fingerprint prefix)")
            # (only folders whose meta.json proves them ours are touched, and in them only our files)
        a.set_defaults(func=func)
