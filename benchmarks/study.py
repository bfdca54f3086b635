"""The reproduction study: train the batch strategies from one base model, evaluate, write docs/study.md.

    python benchmarks/study.py --plan main --data-dir ../shared/datasets --work study-runs

Plans (run names say what they are; a run shared by two plans is trained once):

- ``main``  untrained base + mono, cross, hybrid (α = 0.5) and mixed, ``--seeds`` each
- ``alpha`` hybrid with α in 0, 0.25, 0.5, 0.75, 1
- ``batch`` hybrid (α = 0.5) with batch sizes 16, 64, 256 (cached loss for > 64)
- ``merge`` hybrid (α = 0.5) saved as λ·trained + (1 − λ)·base, λ = 0.5
- ``all``   every plan above
- ``smoke`` untrained + mono + hybrid, one seed (for trying the pipeline out)

Every finished piece is kept in ``--work``: a model with its ``training.json`` is never retrained,
an interrupted training resumes from its checkpoints, a task already evaluated is not evaluated
again. So the command can be stopped at any time and run again. The report (``--report``, default
``docs/study.md``) is rewritten from everything found in ``--work`` at the end of each run.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from hybrid_plugin.atomic import write_text, write_with
from hybrid_plugin.errors import UserError
from hybrid_plugin.provenance import library_versions

TRAIN_DATA_DEFAULT = "train/mlqa-test"
#: languages present in the offline training data (questions or passages)
SEEN = ("ar", "de", "es", "hi", "vi", "zh")
FAMILIES = {
    "ar": "Afro-Asiatic",
    "bn": "Indo-Aryan",
    "de": "Germanic",
    "el": "Hellenic",
    "en": "Germanic",
    "es": "Romance",
    "fi": "Uralic",
    "hi": "Indo-Aryan",
    "id": "Austronesian",
    "ko": "Koreanic",
    "ru": "Slavic",
    "sw": "Bantu",
    "te": "Dravidian",
    "th": "Kra-Dai",
    "tr": "Turkic",
    "vi": "Austroasiatic",
    "zh": "Sino-Tibetan",
}


@dataclass(frozen=True)
class Run:
    """One trained (or untrained) model of the study."""

    strategy: str  # "untrained" for the base model itself
    alpha: float | None = None
    batch_size: int = 32
    seed: int = 0
    merge: float | None = None

    @property
    def name(self) -> str:
        if self.strategy == "untrained":
            return "untrained"
        parts = [self.strategy]
        if self.alpha is not None:
            parts.append(f"a{self.alpha:g}")
        parts += [f"b{self.batch_size}", f"s{self.seed}"]
        if self.merge is not None:
            parts.append(f"m{self.merge:g}")
        return "-".join(parts)

    @property
    def label(self) -> str:
        """Short row label for tables."""
        if self.strategy == "untrained":
            return "untrained base"
        text = {"mono": "X-X-mono", "cross": "X-Y", "mixed": "X-X", "hybrid": "hybrid"}[self.strategy]
        if self.strategy == "hybrid":
            text += f" α={self.alpha:g}"
        if self.merge is not None:
            text += f" merged λ={self.merge:g}"
        return text


def plan_runs(plan: str, seeds: list[int], batch_size: int) -> list[Run]:
    """The runs of a named plan, untrained first, without duplicates."""
    main = [Run("untrained")]
    for seed in seeds:
        main += [
            Run("mono", batch_size=batch_size, seed=seed),
            Run("cross", batch_size=batch_size, seed=seed),
            Run("hybrid", 0.5, batch_size, seed),
            Run("mixed", batch_size=batch_size, seed=seed),
        ]
    plans = {
        "main": main,
        "alpha": [Run("untrained")]
        + [Run("hybrid", a, batch_size, seeds[0]) for a in (0, 0.25, 0.5, 0.75, 1)],
        "batch": [Run("untrained")] + [Run("hybrid", 0.5, b, seeds[0]) for b in (16, 64, 256)],
        "merge": [
            Run("untrained"),
            Run("hybrid", 0.5, batch_size, seeds[0]),
            Run("hybrid", 0.5, batch_size, seeds[0], 0.5),
        ],
        "smoke": [Run("untrained"), Run("mono", batch_size=batch_size), Run("hybrid", 0.5, batch_size)],
    }
    if plan == "all":
        runs = [r for name in ("main", "alpha", "batch", "merge") for r in plans[name]]
    elif plan in plans:
        runs = plans[plan]
    else:
        raise UserError(f"--plan {plan!r}: expected one of {', '.join([*plans, 'all'])}")
    return list(dict.fromkeys(runs))


# ----------------------------------------------------------------------------- running


def ensure_trained(run: Run, args: argparse.Namespace) -> Path | None:
    """The run's model folder, trained (or resumed) when not there yet; None for the untrained base."""
    from hybrid_plugin.training.trainer import TrainConfig, train

    if run.strategy == "untrained":
        return None
    out = Path(args.work) / run.name / "model"
    if (out / "training.json").is_file():
        return out
    cfg = TrainConfig(
        train_data=[f"mlqa:{Path(args.data_dir) / TRAIN_DATA_DEFAULT}"]
        if not args.train_data
        else args.train_data,
        output=str(out),
        base_model=args.base_model,
        strategy=run.strategy,
        alpha=run.alpha if run.strategy == "hybrid" else None,
        batch_size=run.batch_size,
        mini_batch_size=args.mini_batch_size if run.batch_size > args.mini_batch_size else None,
        max_steps=args.steps,
        learning_rate=args.learning_rate,
        max_seq_length=args.max_seq_length,
        freeze_embeddings=args.freeze_embeddings,
        merge_with_base=run.merge,
        seed=run.seed,
        save_steps=args.save_steps,
        progress=not args.no_progress,
    )
    cfg.resume = cfg.checkpoint_dir.is_dir() and any(cfg.checkpoint_dir.glob("checkpoint-*"))
    print(f"[study] training {run.name}" + (" (resuming)" if cfg.resume else ""), flush=True)
    train(cfg)
    return out


def ensure_evaluated(run: Run, model: Path | None, task: str, args: argparse.Namespace) -> dict:
    """The run's results on ``task`` (evaluated once, then read from the work folder)."""
    from hybrid_plugin.evaluation.evaluator import EvalConfig, evaluate

    path = Path(args.work) / run.name / "eval" / f"{task}.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    print(f"[study] evaluating {run.name} on {task}", flush=True)
    model_arg = (
        str(model) if model is not None else (None if args.base_model == "default" else args.base_model)
    )
    results = evaluate(
        EvalConfig(
            task=task,
            model=model_arg,
            languages=args.eval_languages.get(task),
            data_dir=args.data_dir,
            alignment=task in ("xquad-r", "mlqa-r"),
        )
    )
    results["study_run"] = asdict(run) | {"name": run.name}
    write_text(path, json.dumps(results, ensure_ascii=False) + "\n")
    return results


# ----------------------------------------------------------------------------- summarising


def _summary(results: dict) -> dict:
    s = results["scores"]
    out = {
        "mono_map": s.get("mono_map"),
        "cross_map": s.get("cross_map"),
        "multi_map": s.get("multi_map"),
        "max_rank_distance": s.get("max_rank_distance"),
        "same_language_top_share": s.get("same_language_top_share"),
        "per_language": results.get("per_language", {}),
    }
    ndcg = results.get("standard_measures", {}).get("by_kind", {}).get("mono", {})
    if ndcg:
        out["mono_ndcg10"] = next((v for k, v in ndcg.items() if k.startswith("nDCG@10")), None)
    per_lang_ndcg = {}
    for key, entry in results.get("settings", {}).items():
        if entry.get("kind") == "mono" and "measures" in entry:
            per_lang_ndcg[key.split("-")[0]] = next(
                (v for k, v in entry["measures"].items() if k.startswith("nDCG@10")), None
            )
    out["ndcg10_per_language"] = per_lang_ndcg
    if "alignment" in results:
        a = results["alignment"]
        out["alignment"] = {
            "parallel_cosine": a.get("parallel_cosine"),
            "non_parallel_cosine": a.get("non_parallel_cosine"),
            "gap": a.get("gap"),
            "language_id_accuracy": a.get("language_id", {}).get("accuracy"),
            "language_id_chance": a.get("language_id", {}).get("chance"),
        }
    return out


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _mean_spread(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def _group(rows: list[dict]) -> dict[str, list[dict]]:
    """Rows by (label, batch size), seeds together."""
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault(row["label"], []).append(row)
    return out


def main_table(rows: list[dict], task: str) -> list[str]:
    lines = [
        "| model | seeds | mono mAP | cross mAP | multi mAP | max rank distance ↓ "
        "| same-language top share |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, group in _group([r for r in rows if task in r["tasks"]]).items():
        vals = [g["tasks"][task] for g in group]
        lines.append(
            f"| {label} | {len(group)} | "
            + " | ".join(
                _mean_spread([v[m] for v in vals])
                for m in (
                    "mono_map",
                    "cross_map",
                    "multi_map",
                    "max_rank_distance",
                    "same_language_top_share",
                )
            )
            + " |"
        )
    return lines


def claims(rows: list[dict], task: str) -> list[str]:
    """The paper's three claims, checked on seed means of the main plan."""
    means: dict[str, dict[str, float]] = {}
    for label, group in _group([r for r in rows if task in r["tasks"] and r["merge"] is None]).items():
        means[label] = {
            m: float(np.mean([g["tasks"][task][m] for g in group]))
            for m in ("mono_map", "multi_map", "max_rank_distance")
        }
    need = ("hybrid α=0.5", "X-X-mono", "X-Y")
    if not all(k in means for k in need):
        return ["(needs the main plan's hybrid, X-X-mono and X-Y runs)"]
    h, mono, cross = (means[k] for k in need)
    out = []
    ok = h["multi_map"] >= max(mono["multi_map"], cross["multi_map"])
    out.append(
        f"- Hybrid ≥ both baselines on multilingual retrieval: **{'yes' if ok else 'no'}** "
        f"(multi mAP hybrid {h['multi_map']:.3f}, X-X-mono {mono['multi_map']:.3f}, "
        f"X-Y {cross['multi_map']:.3f})."
    )
    diff = h["mono_map"] - mono["mono_map"]
    out.append(
        f"- Hybrid keeps monolingual quality close to mono-only (within 0.01 mAP): "
        f"**{'yes' if round(diff, 9) >= -0.01 else 'no'}** (mono mAP hybrid {h['mono_map']:.3f} vs "
        f"{mono['mono_map']:.3f}, difference {diff:+.3f})."
    )
    ok = h["max_rank_distance"] < mono["max_rank_distance"]
    out.append(
        f"- Hybrid cuts language bias vs mono-only: **{'yes' if ok else 'no'}** (max rank distance "
        f"hybrid {h['max_rank_distance']:.1f} vs {mono['max_rank_distance']:.1f})."
    )
    return out


def breakdown_table(rows: list[dict], task: str) -> list[str]:
    """Multi mAP by language family and by seen/unseen training language (seed means)."""
    groups = _group([r for r in rows if task in r["tasks"]])
    if not groups:
        return []
    langs = list(next(iter(groups.values()))[0]["tasks"][task]["per_language"])
    buckets: dict[str, list[str]] = {
        "seen in training": [lang for lang in langs if lang in SEEN],
        "unseen in training": [lang for lang in langs if lang not in SEEN],
    }
    for lang in langs:
        buckets.setdefault(f"{FAMILIES.get(lang, '?')}", []).append(lang)
    header = list(groups)
    lines = ["| languages | " + " | ".join(header) + " |", "|---|" + "---|" * len(header)]
    for bucket, members in buckets.items():
        if not members:
            continue
        cells = []
        for group in groups.values():
            vals = [
                g["tasks"][task]["per_language"][lang]["multi_map"]
                for g in group
                for lang in members
                if g["tasks"][task]["per_language"][lang]["multi_map"] is not None
            ]
            cells.append(_fmt(float(np.mean(vals))) if vals else "–")
        name = f"{bucket} ({'/'.join(members)})"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def alignment_table(rows: list[dict]) -> list[str]:
    lines = [
        "| model | task | parallel cosine | non-parallel cosine | gap ↑ "
        "| language-ID accuracy ↓ (majority class) |",
        "|---|---|---|---|---|---|",
    ]
    for label, group in _group(rows).items():
        for task in ("xquad-r", "mlqa-r"):
            vals = [
                g["tasks"][task]["alignment"]
                for g in group
                if task in g["tasks"] and "alignment" in g["tasks"][task]
            ]
            if not vals:
                continue
            lines.append(
                f"| {label} | {task} | "
                + " | ".join(
                    _mean_spread([v[m] for v in vals])
                    for m in ("parallel_cosine", "non_parallel_cosine", "gap", "language_id_accuracy")
                )
                + f" ({_fmt(vals[0]['language_id_chance'])}) |"
            )
    return lines


def tydi_table(rows: list[dict]) -> list[str]:
    groups = _group([r for r in rows if "tydi-goldp" in r["tasks"]])
    if not groups:
        return []
    langs = list(next(iter(groups.values()))[0]["tasks"]["tydi-goldp"]["per_language"])
    lines = ["| model | " + " | ".join(langs) + " | macro |", "|---|" + "---|" * (len(langs) + 1)]
    for label, group in groups.items():
        cells = []
        for lang in langs:
            m = np.mean([g["tasks"]["tydi-goldp"]["per_language"][lang]["mono_map"] for g in group])
            n = [g["tasks"]["tydi-goldp"]["ndcg10_per_language"].get(lang) for g in group]
            n = [v for v in n if v is not None]
            cells.append(f"{m:.3f} / {np.mean(n):.3f}" if n else f"{m:.3f}")
        macro = np.mean([g["tasks"]["tydi-goldp"]["mono_map"] for g in group])
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {macro:.3f} |")
    return lines


def _save_png(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"), suffix=".png")
    plt.close(fig)


def plot_scatter(rows: list[dict], task: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, group in _group([r for r in rows if task in r["tasks"]]).items():
        xs = [g["tasks"][task]["max_rank_distance"] for g in group]
        ys = [g["tasks"][task]["multi_map"] for g in group]
        ax.scatter(xs, ys, label=label, s=30)
    ax.set_xlabel("max rank distance (lower = less language bias)")
    ax.set_ylabel("multilingual mAP")
    ax.set_title(f"{task}: multilingual mAP vs language bias", fontsize=9)
    ax.legend(fontsize=7)
    _save_png(fig, path)


def plot_alpha(rows: list[dict], task: str, path: Path, batch_size: int) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted(
        (
            (r["alpha"], r["tasks"][task])
            for r in rows
            if r["strategy"] == "hybrid"
            and r["merge"] is None
            and r["batch_size"] == batch_size
            and task in r["tasks"]
        ),
        key=lambda point: point[0],  # several seeds share an alpha; their dicts do not compare
    )
    if len({a for a, _ in points}) < 3:
        return False
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for metric in ("mono_map", "cross_map", "multi_map"):
        ax.plot([a for a, _ in points], [v[metric] for _, v in points], marker="o", label=metric)
    ax.set_xlabel("α (probability of a monolingual batch)")
    ax.set_ylabel("mAP")
    ax.set_title(f"{task}: α sweep", fontsize=9)
    ax.legend(fontsize=8)
    _save_png(fig, path)
    return True


def write_report(rows: list[dict], args: argparse.Namespace, command: str) -> Path:
    from hybrid_plugin.evaluation.report import plot_cross_heatmap

    report = Path(args.report)
    assets = report.with_suffix("")
    assets.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Reproduction study: hybrid batching (offline edition)",
        "",
        "Generated by `"
        + command
        + "` on "
        + datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        + ". Every number below is read from the result files of that command; nothing is typed by hand.",
        "",
        f"- Base model: `{args.base_model}`; training data: offline MLQA test copy (paragraph positives: "
        "its answers carry no spans), languages ar/de/es/hi/vi/zh; "
        f"{args.steps} steps, lr {args.learning_rate}, max sequence length {args.max_seq_length}, "
        f"word embeddings {'frozen' if args.freeze_embeddings else 'trained'}.",
        "- XQuAD-R is zero-shot (no XQuAD data in training). **MLQA-R is in-domain**: MLQA test and "
        "MLQA-R share their Wikipedia source. TyDi GoldP is a held-out monolingual check, never trained on.",
        f"- Evaluation languages: {json.dumps(args.eval_languages) if args.eval_languages else 'all'}.",
        "",
    ]
    for task in ("xquad-r", "mlqa-r"):
        if not any(task in r["tasks"] for r in rows):
            continue
        lines += [f"## {task}" + (" (in-domain)" if task == "mlqa-r" else " (zero-shot)"), ""]
        lines += main_table(rows, task) + [""]
        lines += ["Claims of the paper:", ""] + claims(rows, task) + [""]
        plot_scatter(rows, task, assets / f"{task}-scatter.png")
        lines += [f"![multi mAP vs bias]({assets.name}/{task}-scatter.png)", ""]
        if plot_alpha(rows, task, assets / f"{task}-alpha.png", args.batch_size):
            lines += [f"![alpha sweep]({assets.name}/{task}-alpha.png)", ""]
        lines += ["Multilingual mAP by language group:", ""] + breakdown_table(rows, task) + [""]
        for r in rows:
            if task in r["tasks"] and r["seed"] == min(args.seeds) and r.get("results_path"):
                res = json.loads(Path(r["results_path"][task]).read_text(encoding="utf-8"))
                png = assets / f"{task}-{r['name']}-heatmap.png"
                plot_cross_heatmap(res, png)
        heatmaps = sorted(p.name for p in assets.glob(f"{task}-*-heatmap.png"))
        if heatmaps:
            lines += ["X→Y heatmaps: " + ", ".join(f"[{h}]({assets.name}/{h})" for h in heatmaps), ""]
    align = alignment_table(rows)
    if len(align) > 2:
        lines += ["## Alignment diagnostics", ""] + align + [""]
    tydi = tydi_table(rows)
    if tydi:
        lines += ["## TyDi GoldP (held-out, monolingual): mAP / nDCG@10 per language", ""] + tydi + [""]
    lines += [
        "## Runs",
        "",
        "| run | strategy | α | batch | seed | merged λ | steps | s/step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['strategy']} | {_fmt(r['alpha'], 2)} | {r['batch_size'] or '–'} "
            f"| {r['seed']} | {_fmt(r['merge'], 2)} | {r.get('steps') or '–'} "
            f"| {_fmt(r.get('seconds_per_step'), 2)} |"
        )
    lines += [
        "",
        f"Versions: {json.dumps(library_versions(('torch', 'sentence-transformers', 'transformers')))}",
        "",
    ]
    write_text(report, "\n".join(lines))
    summary = [{k: v for k, v in r.items() if k != "results_path"} for r in rows]
    write_text(assets / "summary.json", json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    return report


def collect(runs: list[Run], args: argparse.Namespace) -> list[dict]:
    rows = []
    for run in runs:
        model = ensure_trained(run, args)
        label = run.label
        if run.strategy != "untrained" and run.batch_size != args.batch_size:
            label += f" (batch {run.batch_size})"
        row = asdict(run) | {"name": run.name, "label": label, "tasks": {}, "results_path": {}}
        if run.strategy == "untrained":
            row["batch_size"] = None
        if model is not None:
            record = json.loads((model / "training.json").read_text(encoding="utf-8"))
            row["steps"] = record["steps"]
            row["seconds_per_step"] = record["seconds_per_step"]
        for task in args.tasks:
            results = ensure_evaluated(run, model, task, args)
            row["tasks"][task] = _summary(results)
            row["results_path"][task] = str(Path(args.work) / run.name / "eval" / f"{task}.json")
        rows.append(row)
    return rows


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--plan", default="main", help="main, alpha, batch, merge, all or smoke")
    p.add_argument("--seeds", default="0,1", help="comma list of seeds for the main plan")
    p.add_argument("--data-dir", default="../shared/datasets")
    p.add_argument("--train-data", action="append", default=None, help="override the training data")
    p.add_argument("--work", default="study-runs", help="models and result files (not committed)")
    p.add_argument("--report", default="docs/study.md")
    p.add_argument("--base-model", default="default")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--mini-batch-size", type=int, default=64, help="cached loss above this batch size")
    p.add_argument("--learning-rate", type=float, default=3e-5)
    p.add_argument("--max-seq-length", type=int, default=128)
    p.add_argument("--freeze-embeddings", action="store_true")
    p.add_argument("--save-steps", type=int, default=50)
    p.add_argument("--tasks", default="xquad-r,mlqa-r,tydi-goldp")
    p.add_argument(
        "--eval-languages",
        default=None,
        help="TASK=LANGS;... e.g. 'xquad-r=de,en,zh;mlqa-r=de,en,zh' (sweeps on a subset)",
    )
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.tasks = [t for t in args.tasks.split(",") if t.strip()]
    langs = {}
    for part in (args.eval_languages or "").split(";"):
        if "=" in part:
            task, value = part.split("=", 1)
            langs[task.strip()] = value.strip()
    args.eval_languages = langs
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from hybrid_plugin.data.spec import get_spec

        for task in args.tasks:
            get_spec(task)
        runs = plan_runs(args.plan, args.seeds, args.batch_size)
        rows = collect(runs, args)
        command = "python benchmarks/study.py " + " ".join(argv if argv is not None else sys.argv[1:])
        report = write_report(rows, args, command)
    except UserError as err:
        print(f"study: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
