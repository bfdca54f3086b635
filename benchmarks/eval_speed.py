"""Evaluation speed on the default model: cold run (empty embedding cache) vs cached re-run.

Usage: python benchmarks/eval_speed.py --task xquad-r --data-dir ../shared/datasets
Writes benchmarks/results/eval_speed_<task>.json and .md (with the command that produced them).

``--metrics-only`` times just the exact metrics of all settings from the user embedding cache
(fill it first, e.g. with ``make evaluate``), for a measurement on a quiet machine; it writes
benchmarks/results/eval_speed_metrics_<task>.json.
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

from hybrid_plugin.atomic import write_text
from hybrid_plugin.data.files import resolve_files
from hybrid_plugin.data.build import build_pool
from hybrid_plugin.data.spec import get_spec, select_languages
from hybrid_plugin.evaluation.compute import aggregate, query_scores
from hybrid_plugin.evaluation.evaluator import EvalConfig, encode_pool, evaluate
from hybrid_plugin.evaluation.ranking import Scorer, relevant_ranks
from hybrid_plugin.models.ref import resolve_model
from hybrid_plugin.paths import cache_root


def metrics_only(cfg: EvalConfig, store: Path, repeats: int = 3) -> list[float]:
    """Seconds to compute every setting's exact metrics from cached embeddings (encodes nothing new)."""
    spec = get_spec(cfg.task)
    langs = select_languages(spec, cfg.languages)
    pool = build_pool(spec, resolve_files(spec, langs, cfg.data_dir).paths)
    model = resolve_model(cfg.model)
    enc = encode_pool(pool, model, cfg.batch_size, store)
    if enc.texts_encoded:
        print(f"note: {enc.texts_encoded} texts were not cached and had to be encoded first")
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        scorer = Scorer.build(pool, enc.query_emb, enc.query_row, enc.cand_emb, enc.cand_row)
        ranks = relevant_ranks(pool, scorer)
        aggregate(pool, query_scores(pool, ranks), ranks)
        times.append(time.perf_counter() - t)
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", default="xquad-r")
    ap.add_argument("--data-dir", default=os.environ.get("HYBRID_PLUGIN_DATA", "../shared/datasets"))
    ap.add_argument("--languages", default=None)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--metrics-only", action="store_true", help="time metrics from the user cache only")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.metrics_only:
        cfg = EvalConfig(task=args.task, data_dir=args.data_dir, languages=args.languages)
        times = metrics_only(cfg, cache_root() / "embeddings", args.repeats)
        record = {
            "command": "python " + " ".join(sys.argv),
            "task": args.task,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "load_average_at_start": os.getloadavg(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "all_settings_metrics_s": [round(x, 3) for x in times],
        }
        write_text(
            Path(args.out) / f"eval_speed_metrics_{args.task}.json", json.dumps(record, indent=1) + "\n"
        )
        print(json.dumps(record, indent=1))
        return
    with tempfile.TemporaryDirectory(prefix="hp-bench-") as tmp:
        store = Path(tmp)
        cfg = EvalConfig(task=args.task, data_dir=args.data_dir, languages=args.languages, cache_dir=tmp)
        t = time.perf_counter()
        cold = evaluate(cfg)
        cold_wall = time.perf_counter() - t
        t = time.perf_counter()
        warm = evaluate(cfg)
        warm_wall = time.perf_counter() - t
        metric_times = metrics_only(cfg, store)
    assert warm["scores"] == cold["scores"], "cached evaluation changed the scores"
    record = {
        "command": "python " + " ".join(sys.argv),
        "task": args.task,
        "languages": cold["languages"],
        "model": cold["model"],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "load_average_at_end": os.getloadavg(),
        "versions": cold["provenance"]["versions"],
        "date": cold["provenance"]["started"],
        "unique_texts": cold["counts"]["unique_texts"],
        "texts_encoded_cold": cold["counts"]["texts_encoded"],
        "texts_encoded_cached": warm["counts"]["texts_encoded"],
        "cold": {"wall_s": round(cold_wall, 2), **cold["timings"]},
        "cached": {"wall_s": round(warm_wall, 2), **warm["timings"]},
        "cached_over_cold": round(warm_wall / cold_wall, 4),
        "all_settings_metrics_s": [round(x, 3) for x in metric_times],
        "settings": cold["counts"]["settings"],
        "scores": cold["scores"],
    }
    out = Path(args.out)
    write_text(out / f"eval_speed_{args.task}.json", json.dumps(record, indent=1) + "\n")
    md = [
        f"# Evaluation speed — {args.task}, default model",
        "",
        f"Command: `{record['command']}` ({record['date']}, {record['machine']['cpus']} CPUs, no GPU)",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| unique texts | {record['unique_texts']} |",
        f"| texts encoded, cold run | {record['texts_encoded_cold']} |",
        f"| texts encoded, cached run | {record['texts_encoded_cached']} |",
        f"| cold run: encode s | {record['cold']['encode_s']} |",
        f"| cold run: total wall s | {record['cold']['wall_s']} |",
        f"| all settings' exact metrics from embeddings, s (3 runs) | {record['all_settings_metrics_s']} |",
        f"| ir-measures standard measures (depth 100), s | {record['cold']['ir_measures_s']} |",
        f"| cached re-run: total wall s | {record['cached']['wall_s']} |",
        f"| cached / cold | {record['cached_over_cold']:.1%} |",
        "",
        "Scores: " + ", ".join(f"{k} {v:.4f}" for k, v in record["scores"].items() if v is not None),
    ]
    write_text(out / f"eval_speed_{args.task}.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
