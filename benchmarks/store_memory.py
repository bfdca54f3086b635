"""Memory and time of the embedding store at scale (issue 24, item 2): encode, open, read back.

Usage: python benchmarks/store_memory.py --texts 1000000 [--code CHECKOUT] [--tag TAG]
       [--root ../scale_data/store-bench]
Writes benchmarks/results/store_memory_<tag>.json and .md (with the command).

Three steps, each in a fresh process running the ``hybrid_plugin`` of ``--code`` (default: this
checkout), with the cost-free hash encoder (384-d) on ``--texts`` distinct synthetic texts:

1. ``encode``: ``EmbeddingStore.ensure`` into an empty store (shards of 2,048 as usual);
2. ``read``: a fresh store object, then the matrix of all texts: ``matrix(texts)`` (a memmap
   assembled under ``matrices/``) where the store has it, else ``get(texts)`` (in memory);
3. ``reread``: the same once more (an assembled matrix is reused; ``get`` reads again).

Each records wall seconds and peak RSS (``ru_maxrss``: the interpreter and the text list included;
the RSS after making the texts is given as ``rss_texts_gb``).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from benchmarks.scale_common import run_child, write_record

HERE = Path(__file__).resolve().parents[1]
CHILD = """
import json, resource, sys, time
import numpy as np
from benchmarks.hash_encoder import hash_embed
from hybrid_plugin.scoring.store import EmbeddingStore
step, root, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
texts = [f"synthetic text {i} " + "abcdefghij" * (i % 7 + 3) for i in range(n)]
rss_texts = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
store = EmbeddingStore(root, "5" * 64, "passage: ", "hash")
out = {}
if step == "encode":
    out["encoded"] = store.ensure(texts, hash_embed)
else:
    out["open_s"] = round(time.perf_counter() - t, 3)
    m = store.matrix(texts) if hasattr(store, "matrix") else store.get(texts)
    out["kind"] = type(m).__name__
    out["checksum"] = float(np.asarray(m[::997], dtype=np.float64).sum())
wall = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"step": step, "wall_s": round(wall, 3), "peak_rss_gb": round(peak / 1e6, 3),
                  "rss_texts_gb": round(rss_texts / 1e6, 3), **out}))
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=1_000_000)
    parser.add_argument("--code", type=Path, default=HERE)
    parser.add_argument("--tag", default="branch")
    parser.add_argument(
        "--root", type=Path, default=Path(__file__).resolve().parents[2] / "scale_data" / "store-bench"
    )
    args = parser.parse_args(argv)
    root = args.root / args.tag
    shutil.rmtree(root, ignore_errors=True)
    rows = [
        run_child(args.code, CHILD, step, str(root), str(args.texts)) for step in ("encode", "read", "reread")
    ]
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    shutil.rmtree(root, ignore_errors=True)
    write_record(
        f"store_memory_{args.tag}",
        "benchmarks/store_memory.py",
        argv,
        args.code,
        {"texts": args.texts, "store_bytes_on_disk": size, "rows": rows},
        f"Embedding store at {args.texts:,} texts (384-d): {args.tag}",
        ["step", "wall s", "peak RSS GB", "RSS with the texts GB", "returned"],
        [[r["step"], r["wall_s"], r["peak_rss_gb"], r["rss_texts_gb"], r.get("kind", "")] for r in rows],
        note=f"{size / 1e9:.2f} GB on disk at the end (shards, and the assembled matrix where there is one).",
    )


if __name__ == "__main__":
    main()
