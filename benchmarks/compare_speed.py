"""Speed of ``hybrid-plugin compare`` on two full results, and its p-values next to scipy's and ranx's.

Usage (by hand; needs two results JSON files with their per-query files, e.g. the default model and BM25
re-evaluated with ``hybrid-plugin evaluate --task xquad-r [--model bm25]``):

    python benchmarks/compare_speed.py A.json B.json [--rounds 3] [--permutations 10000] [--bootstraps 2000]

Writes benchmarks/results/compare_speed_<task>.json and .md. Times whole ``compare`` calls (reading both
per-query files, every aggregate and language, the tests and the intervals). Then, on the same vectors,
the p-values of compare's randomization test, t-test and Wilcoxon test next to
``scipy.stats.permutation_test`` / ``ttest_rel`` / ``wilcoxon`` and ranx's Fisher randomization and
paired t-test: per query (the plain vectors of per-query AP), and per question group (the groups' mean
differences), for the mAPs whose macro average is a plain mean (every language and setting has the same
number of queries, as in XQuAD-R), and for monolingual mAP per language (one query per group there).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from scipy import stats as sps

from hybrid_plugin.atomic import write_text
from hybrid_plugin.provenance import display_path, portable_command
from hybrid_plugin.stats import compare, render
from hybrid_plugin.stats.load import load_run

OUT = Path(__file__).parent / "results"


def vectors(a, b, key: str, lang: str | None, unit: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-unit values of systems a and b whose mean difference is compare's difference (or None)."""
    keep = ~np.isnan(a.values[key])
    if lang is not None:
        keep &= a.keys["query_lang"] == lang
    settings, per_setting = np.unique(a.keys["setting"][keep], return_counts=True)
    if len(set(per_setting)) != 1:
        return None  # the macro average is not a plain mean here
    if unit == "query":
        return a.values[key][keep], b.values[key][keep]
    groups, inverse = np.unique(a.keys["group"][keep], return_inverse=True)
    sizes = np.bincount(inverse)
    if len(set(sizes)) != 1:
        return None
    mean = lambda v: np.bincount(inverse, weights=v[keep]) / sizes  # noqa: E731
    return mean(a.values[key]), mean(b.values[key])


def reference_pvalues(x: np.ndarray, y: np.ndarray, permutations: int) -> dict[str, float]:
    """scipy's and ranx's p-values of y vs x (paired)."""
    out = {
        "scipy_permutation": float(
            sps.permutation_test(
                (y, x),
                lambda u, v, axis: np.mean(u - v, axis=axis),
                permutation_type="samples",
                vectorized=True,
                n_resamples=permutations,
                batch=200,
                random_state=0,
            ).pvalue
        ),
        "scipy_ttest_rel": float(sps.ttest_rel(y, x).pvalue),
        "scipy_wilcoxon": float(sps.wilcoxon(y, x).pvalue),
    }
    try:
        from ranx.statistical_tests import fisher_randomization_test, paired_student_t_test
    except ImportError:
        return out
    out["ranx_fisher"] = float(fisher_randomization_test(x, y, permutations, 0.05, 42)[0])
    out["ranx_student"] = float(paired_student_t_test(x, y)[0])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path)
    parser.add_argument("system", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--permutations", type=int, default=10_000)
    parser.add_argument("--bootstraps", type=int, default=2_000)
    args = parser.parse_args(argv)

    times = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        cmp = compare(args.baseline, args.system, permutations=args.permutations, bootstraps=args.bootstraps)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    a, b = load_run(args.baseline), load_run(args.system)
    load_s = time.perf_counter() - t0
    table = render(cmp, "markdown")

    rows = []
    tests = {}
    for test in ("t", "wilcoxon"):
        for unit in ("group", "query"):
            tests[test, unit] = compare(args.baseline, args.system, test=test, unit=unit, bootstraps=10)
    tests["randomization", "query"] = compare(
        args.baseline, args.system, unit="query", permutations=args.permutations, bootstraps=10
    )
    tests["randomization", "group"] = cmp
    targets = [(k, None) for k in ("mono_map", "cross_map", "multi_map")]
    targets += [("mono_map", lang) for lang in a.results.languages]
    for key, lang in targets:
        for unit in ("group", "query"):
            vec = vectors(a, b, key, lang, unit)
            if vec is None:
                continue

            def ours(test: str, key=key, lang=lang, unit=unit) -> float:
                m = tests[test, unit].pairs[0].measure(key)
                return (m.macro if lang is None else m.per_language[lang]).test.p

            ref = reference_pvalues(*vec, args.permutations)
            rows.append(
                {
                    "measure": key,
                    "language": lang or "macro",
                    "unit": unit,
                    "n": len(vec[0]),
                    "difference": float(np.mean(vec[1] - vec[0])),
                    "ours_randomization": ours("randomization"),
                    "ours_t": ours("t"),
                    "ours_wilcoxon": ours("wilcoxon"),
                    **ref,
                }
            )

    meta = {
        "command": "python benchmarks/compare_speed.py "
        + portable_command(sys.argv[1:] if argv is None else argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared)",
        "baseline": display_path(args.baseline),
        "system": display_path(args.system),
        "rows": a.rows,
        "groups": cmp.units,
        "permutations": args.permutations,
        "bootstraps": args.bootstraps,
        "compare_s": [round(t, 3) for t in times],
        "compare_median_s": round(statistics.median(times), 3),
        "load_both_s": round(load_s, 3),
    }
    stem = f"compare_speed_{cmp.task}"
    write_text(OUT / f"{stem}.json", json.dumps({**meta, "pvalues": rows}, indent=1) + "\n")

    def p(v: float | None) -> str:
        return "–" if v is None else f"{v:.2e}" if v < 1e-3 else f"{v:.4f}"

    lines = [
        f"# compare speed and p-values: {cmp.task_title}",
        "",
        f"`{meta['command']}` ({meta['date']}, {meta['machine']})",
        "",
        f"- {a.rows:,} per-query rows per system, {cmp.units} question groups, {args.permutations} "
        f"permutations, {args.bootstraps} bootstrap replicates, every aggregate and language",
        f"- whole `compare` call (both files read, all tests and intervals): "
        f"{', '.join(f'{t:.2f} s' for t in times)} (median {meta['compare_median_s']:.2f} s); "
        f"reading both per-query files alone {load_s:.2f} s",
        "",
        "## p-values on the same vectors (two-sided; ours before any correction)",
        "",
        "| measure | lang | unit | n | diff | ours rand. | scipy perm. | ranx Fisher | ours t | scipy t | "
        "ranx t | ours Wilcoxon | scipy Wilcoxon |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['measure']} | {r['language']} | {r['unit']} | {r['n']} | {r['difference']:+.4f} | "
            f"{p(r['ours_randomization'])} | {p(r['scipy_permutation'])} | {p(r.get('ranx_fisher'))} | "
            f"{p(r['ours_t'])} | {p(r['scipy_ttest_rel'])} | {p(r.get('ranx_student'))} | "
            f"{p(r['ours_wilcoxon'])} | {p(r['scipy_wilcoxon'])} |"
        )
    lines += [
        "",
        "Randomization p-values are Monte-Carlo estimates: ours is (1 + hits) / (1 + N) (floor "
        f"{1 / (args.permutations + 1):.1e}), scipy's two-sided one twice the smaller one-sided one (floor "
        f"{2 / (args.permutations + 1):.1e}), ranx's hits / N (floor 0). Ours snaps per-unit differences "
        "to 1e-12 of the largest before Wilcoxon's ranks (float noise such as 1/12 computed two ways is a "
        "tie); scipy ranks the raw differences, hence the last digits where such near-ties exist.",
        "",
        "## The comparison",
        "",
        table,
        "",
    ]
    write_text(OUT / f"{stem}.md", "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
