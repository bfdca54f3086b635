"""BM25 baseline speed per language: Lucene indexing and searching through pyserini/Anserini.

Usage: python benchmarks/bm25_speed.py --task xquad-r --data-dir ../shared/datasets [--rounds 2]
Writes benchmarks/results/bm25_speed_<task>.json and .md (with the command that produced them).

For each candidate language L (spec order), one round times:
- index: Anserini IndexCollection over L's candidate sentences (JSON collection written first);
- search mono: L's own questions searched in L's index to the full depth;
- search all: every question of the task (all languages), which is what ``evaluate --model bm25``
  runs per language (mono + cross + pool come from these hits).
Round 1 includes the JVM's start and JIT warm-up; later rounds run warm in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from hybrid_plugin.atomic import write_text
from hybrid_plugin.data.build import build_pool
from hybrid_plugin.data.files import resolve_files
from hybrid_plugin.data.pool import unique_texts
from hybrid_plugin.data.spec import get_spec, select_languages
from hybrid_plugin.provenance import portable_command
from hybrid_plugin.scoring import lucene
from hybrid_plugin.scoring.bm25 import BM25Params


def one_round(pool, params: BM25Params, tmp: Path) -> dict[str, dict]:
    texts, rows = unique_texts(pool.query_text)
    out = {}
    for y, sl in enumerate(pool.lang_slices()):
        lang = pool.languages[y]
        own = [texts[r] for r in np.unique(rows[pool.query_lang == y])]
        t0 = time.perf_counter()
        index = lucene.LanguageIndex(
            lang, pool.cand_ids[sl], pool.cand_text[sl], tmp / f"{lang}-{time.time_ns()}"
        )
        t1 = time.perf_counter()
        mono = index.search(own, params.k1, params.b, params.threads)
        t2 = time.perf_counter()
        every = index.search(texts, params.k1, params.b, params.threads)
        t3 = time.perf_counter()
        index.close()
        out[lang] = {
            "candidates": sl.stop - sl.start,
            "questions": len(own),
            "all_questions": len(texts),
            "index_s": round(t1 - t0, 3),
            "search_mono_s": round(t2 - t1, 3),
            "index_plus_search_mono_s": round(t2 - t0, 3),
            "search_all_s": round(t3 - t2, 3),
            "hits_mono": len(mono.score),
            "hits_all": len(every.score),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="xquad-r")
    ap.add_argument("--data-dir", default=os.environ.get("HYBRID_PLUGIN_DATA", "../shared/datasets"))
    ap.add_argument("--languages", default=None)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    spec = get_spec(args.task)
    pool = build_pool(spec, resolve_files(spec, select_languages(spec, args.languages), args.data_dir).paths)
    params = BM25Params()
    load_start = os.getloadavg()
    t = time.perf_counter()
    lucene.require()
    jvm_s = time.perf_counter() - t
    rounds = []
    with tempfile.TemporaryDirectory(prefix="hp-bm25-bench-") as tmp:
        for _ in range(args.rounds):
            rounds.append(one_round(pool, params, Path(tmp)))
    record = {
        "command": "python " + portable_command(sys.argv),
        "task": args.task,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "load_average_at_start": load_start,
        "load_average_at_end": os.getloadavg(),
        "versions": lucene.library_versions(),
        "k1": params.k1,
        "b": params.b,
        "search_threads": params.threads,
        "jvm_start_s": round(jvm_s, 3),
        "rounds": rounds,
    }
    out = Path(args.out)
    write_text(out / f"bm25_speed_{args.task}.json", json.dumps(record, indent=1) + "\n")
    last = rounds[-1]
    md = [
        f"# BM25 speed — {args.task}, per candidate language "
        f"(round {len(rounds)} of {len(rounds)}, warm JVM)",
        "",
        f"Command: `{record['command']}` ({record['date']}, {record['machine']['cpus']} CPUs, "
        f"{params.threads} search threads, load average {load_start[0]:.1f} at start, "
        f"{record['load_average_at_end'][0]:.1f} at end). Versions: "
        + ", ".join(f"{k} {v}" for k, v in record["versions"].items()),
        "",
        "| lang | candidates | index s | search own questions s | index + search s | "
        "search all questions s | hits (own) | hits (all) | round 1 index + search s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for lang, r in last.items():
        md.append(
            f"| {lang} | {r['candidates']} | {r['index_s']:.2f} | {r['search_mono_s']:.2f} | "
            f"{r['index_plus_search_mono_s']:.2f} | {r['search_all_s']:.2f} | {r['hits_mono']} | "
            f"{r['hits_all']} | {rounds[0][lang]['index_plus_search_mono_s']:.2f} |"
        )
    total = {k: sum(r[k] for r in last.values()) for k in ("index_s", "search_mono_s", "search_all_s")}
    md += [
        f"| all | {len(pool.cand_ids)} | {total['index_s']:.2f} | {total['search_mono_s']:.2f} | "
        f"{total['index_s'] + total['search_mono_s']:.2f} | {total['search_all_s']:.2f} | | | |",
        "",
        "Own questions: the language's distinct questions (`questions` in the JSON), searched to the full "
        f"depth (every candidate of the language). All questions: the {len(set(pool.query_text))} distinct "
        "questions of every language, as `evaluate --model bm25` searches each language's index. "
        f"JVM start: {record['jvm_start_s']:.2f} s.",
    ]
    write_text(out / f"bm25_speed_{args.task}.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
