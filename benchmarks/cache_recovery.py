"""What a corrupt embedding-cache shard costs: a fully cached evaluation vs one with a bad shard.

Usage: python benchmarks/cache_recovery.py --task xquad-r --data-dir ../shared/datasets
Needs the default model's embeddings of the whole task in the user cache (``make evaluate``
fills it); the user cache is only read: its two store folders are copied into a temp cache,
and there one full candidate shard is damaged (truncated, as a killed copy leaves it). Then:

1. a cached evaluation of the copy (reference time, nothing encoded),
2. the same evaluation with the damaged shard: it is quarantined, only its texts are encoded
   again, and every number must equal the reference.

Writes benchmarks/results/cache_recovery_<task>.json and .md (with the command that produced them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from hybrid_plugin.atomic import write_text
from hybrid_plugin.data.files import resolve_files
from hybrid_plugin.data.lareqa import build_pool
from hybrid_plugin.data.spec import get_spec
from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate, unique_texts
from hybrid_plugin.models.ref import resolve_model
from hybrid_plugin.paths import cache_root
from hybrid_plugin.scoring.store import EmbeddingStore, check_folder, text_hash


def _timed(cfg: EvalConfig) -> tuple[dict, float]:
    t = time.perf_counter()
    results = evaluate(cfg)
    return results, time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="xquad-r")
    ap.add_argument("--data-dir", default=os.environ.get("HYBRID_PLUGIN_DATA", "../shared/datasets"))
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()

    spec = get_spec(args.task)
    pool = build_pool(spec, resolve_files(spec, spec.languages, args.data_dir).paths)
    model = resolve_model(None)
    user_cache = cache_root() / "embeddings"
    folders = {}
    for kind, prompt, texts in (
        ("queries", model.query_prompt, pool.query_text),
        ("candidates", model.document_prompt, pool.cand_text),
    ):
        folders[kind] = EmbeddingStore.folder_for(user_cache, model.fingerprint, prompt)
        shards, _ = check_folder(folders[kind]) if folders[kind].is_dir() else ([], None)
        stored = {k.tobytes() for s in shards if s.problem is None for k in s.keys}
        missing = sum(text_hash(t) not in stored for t in unique_texts(texts)[0])
        if missing:
            print(f"{missing} {kind} of {spec.name} are not in {user_cache}: run `make evaluate` first")
            return 1

    with tempfile.TemporaryDirectory(prefix="hp-cache-recovery-") as tmp:
        cache = Path(tmp) / "embeddings"
        for folder in folders.values():  # the user cache is only read
            shutil.copytree(folder, cache / folder.relative_to(user_cache))
        cfg = EvalConfig(
            task=spec.name, data_dir=args.data_dir, cache_dir=str(cache), run_depth=0,
            batch_size=args.batch_size,
        )  # fmt: skip
        reference, t_cached = _timed(cfg)
        assert reference["counts"]["texts_encoded"] == 0
        folder = cache / folders["candidates"].relative_to(user_cache)
        needed = {text_hash(t) for t in unique_texts(pool.cand_text)[0]}
        keys = {s.path.name: {k.tobytes() for k in s.keys} for s in check_folder(folder)[0]}

        def only_here(name: str) -> int:  # texts of this task that no other shard holds
            others = set().union(*(v for k, v in keys.items() if k != name))
            return len((keys[name] & needed) - others)

        sizes = {name: only_here(name) for name in keys}
        victim = folder / max(sizes, key=lambda name: (sizes[name], name))
        shards = list(keys)
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
        healed, t_healed = _timed(cfg)
        identical = healed["scores"] == reference["scores"] and healed["settings"] == reference["settings"]

    record = {
        "task": spec.name,
        "model": model.name,
        "unique_texts": reference["counts"]["unique_texts"],
        "candidate_shards": len(shards),
        "damaged_shard_texts": len(keys[victim.name]),
        "damaged_texts_of_the_task": sizes[victim.name],
        "texts_encoded_again": healed["counts"]["texts_encoded"],
        "seconds_cached": round(t_cached, 1),
        "seconds_with_damaged_shard": round(t_healed, 1),
        "recovery_seconds": round(t_healed - t_cached, 1),
        "encode_seconds": {
            "cached": reference["timings"].get("encode_s"),
            "damaged": healed["timings"].get("encode_s"),
        },
        "results_identical": identical,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch threads {_threads()}",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    out = Path(args.out)
    write_text(out / f"cache_recovery_{spec.name}.json", json.dumps(record, indent=1) + "\n")
    write_text(
        out / f"cache_recovery_{spec.name}.md",
        f"# Corrupt-cache recovery, {spec.name}, {model.name}\n\n"
        f"`{record['command']}` on {record['machine']}, {record['date']}\n\n"
        f"| | seconds |\n|---|---|\n| fully cached evaluation | {record['seconds_cached']} |\n"
        f"| one damaged candidate shard ({sizes[victim.name]} of the {record['unique_texts']} texts) | "
        f"{record['seconds_with_damaged_shard']} |\n"
        f"| cost of the recovery | {record['recovery_seconds']} |\n\n"
        f"Texts encoded again: {record['texts_encoded_again']}; results identical to the cached run: "
        f"{identical}.\n",
    )
    print(json.dumps(record, indent=1))
    return 0 if identical else 1


def _threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    sys.exit(main())
