"""The reproduction study: train the batch strategies from one base model, evaluate, write docs/study.md.

    python benchmarks/study.py --plan main --data-dir ../shared/datasets --work study-runs

Plans (run names say what they are; a run shared by two plans is trained once):

- ``main``  untrained base + mono, cross, hybrid (α = 0.5) and mixed, ``--seeds`` each;
  evaluated on XQuAD-R and MLQA-R
- ``alpha`` α in ``--alphas`` (default 0, 0.25, 0.5, 0.75, 1) on XQuAD-R; α = 0 *is* the X-Y run and
  α = 1 the X-X-mono run (the sampler draws identical batches), so those are shared with ``main``
- ``batch`` hybrid (α = 0.5) with ``--batch-sizes`` (default 16, 64, 256; cached loss above
  ``--mini-batch-size``) on XQuAD-R, next to the ``--batch-size`` run, each for every one of ``--seeds``
- ``merge`` the training-free references: untrained, untrained with language-mean centering
  (``--debias center``), hybrid and hybrid saved as λ·trained + (1 − λ)·base for each λ in
  ``--merge`` (made from the trained run's weights, not trained again) on XQuAD-R and TyDi GoldP
  (held-out, monolingual)
- ``seeds`` X-X-mono, X-Y and hybrid (α = 0.5) for each of ``--seeds``, seed by seed, on XQuAD-R (the
  seed-spread runs of the second edition, without ``main``'s X-X and MLQA-R)
- ``all``   every plan above
- ``smoke`` untrained + mono + hybrid, one seed (for trying the pipeline out)

``--pairs N`` trains every run on N training pairs (steps = N / batch size, so the batch plan
compares sizes at equal compute); otherwise every run takes ``--steps``. ``--tasks`` replaces each
plan's tasks; ``--eval-languages`` evaluates a language subset (kept apart from full evaluations in
the work folder). ``--report-only`` trains and evaluates nothing: it writes
the report from what ``--work`` holds and lists the plan's runs that are missing.

Every finished piece is kept in ``--work``: a model with its ``training.json`` is never retrained,
an interrupted training resumes from its checkpoints, a task already evaluated is not evaluated
again. So the command can be stopped at any time and run again. The report (``--report``, default
``docs/study.md``) is rewritten at the end of each run. ``--leaderboard DIR`` also submits every
trained model's full-language XQuAD-R and MLQA-R results as leaderboard rows (replacing its earlier
rows) and re-renders the board.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hybrid_plugin.atomic import write_bytes, write_text, write_with
from hybrid_plugin.errors import UserError
from hybrid_plugin.escape import plain_plot_text
from hybrid_plugin.evaluation.results import Results
from hybrid_plugin.progress import heartbeat
from hybrid_plugin.provenance import library_versions, portable_command, portable_path

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


#: the paper's XLM-R rows (arXiv 2408.10536, Table 1; full training, batch 100): mono / cross /
#: multi mAP and max rank distance, quoted for reference next to our numbers
PAPER_XLMR = {
    "xquad-r": {
        "X-X-mono": (0.792, 0.674, 0.547, 410.2),
        "X-Y": (0.755, 0.700, 0.593, 295.4),
        "hybrid α=0.5": (0.798, 0.705, 0.593, 286.6),
    },
    "mlqa-r": {"hybrid α=0.5": (0.648, 0.623, 0.512, 227.1)},
}


def paper_reference(task: str) -> list[str]:
    rows = PAPER_XLMR.get(task, {})
    if not rows:
        return []
    text = "; ".join(
        f"{label} {mono:.3f} / {cross:.3f} / {multi:.3f} ({distance:.1f})"
        for label, (mono, cross, multi, distance) in rows.items()
    )
    return [f"For reference, the paper's XLM-R rows (mono / cross / multi mAP, rank distance): {text}.", ""]


@dataclass(frozen=True)
class Run:
    """One trained (or untrained) model of the study."""

    strategy: str  # "untrained" for the base model itself
    alpha: float | None = None
    batch_size: int = 32
    seed: int = 0
    merge: float | None = None
    debias: str | None = None  # "center": language-mean centering at evaluation (training-free)

    @property
    def name(self) -> str:
        if self.strategy == "untrained":
            return "untrained" + (f"-{self.debias}ed" if self.debias else "")
        parts = [self.strategy]
        if self.alpha is not None:
            parts.append(f"a{self.alpha:g}")
        parts += [f"b{self.batch_size}", f"s{self.seed}"]
        if self.merge is not None:
            parts.append(f"m{self.merge:g}")
        if self.debias:
            parts.append(f"{self.debias}ed")
        return "-".join(parts)

    @property
    def alpha_value(self) -> float | None:
        """The probability of a monolingual batch: X-Y is α = 0 and X-X-mono α = 1 by definition."""
        return {"hybrid": self.alpha, "mono": 1.0, "cross": 0.0}.get(self.strategy)

    @property
    def label(self) -> str:
        """Short row label for tables."""
        centered = " + centering" if self.debias == "center" else ""
        if self.strategy == "untrained":
            return "untrained base" + centered
        text = {"mono": "X-X-mono", "cross": "X-Y", "mixed": "X-X", "hybrid": "hybrid"}[self.strategy]
        if self.strategy == "hybrid":
            text += f" α={self.alpha:g}"
        if self.merge is not None:
            text += f" merged λ={self.merge:g}"
        return text + centered


MAIN_TASKS = ("xquad-r", "mlqa-r")
SWEEP_TASKS = ("xquad-r",)
MERGE_TASKS = ("xquad-r", "tydi-goldp")
PLANS = ("main", "alpha", "batch", "merge", "seeds", "all", "smoke")


def plan_runs(
    plan: str,
    seeds: list[int],
    batch_size: int,
    alphas: tuple[float, ...] = (0, 0.25, 0.5, 0.75, 1),
    batch_sizes: tuple[int, ...] = (16, 64, 256),
    merge: tuple[float, ...] = (0.5,),
) -> dict[Run, tuple[str, ...]]:
    """The runs of a named plan with the tasks each is evaluated on, untrained first."""
    untrained = Run("untrained")

    def alpha_run(a: float) -> Run:
        if a == 0:
            return Run("cross", batch_size=batch_size, seed=seeds[0])
        if a == 1:
            return Run("mono", batch_size=batch_size, seed=seeds[0])
        return Run("hybrid", a, batch_size, seeds[0])

    main = [untrained]
    for seed in seeds:
        main += [
            Run("mono", batch_size=batch_size, seed=seed),
            Run("cross", batch_size=batch_size, seed=seed),
            Run("hybrid", 0.5, batch_size, seed),
            Run("mixed", batch_size=batch_size, seed=seed),
        ]
    hybrid = Run("hybrid", 0.5, batch_size, seeds[0])
    plans: dict[str, list[tuple[list[Run], tuple[str, ...]]]] = {
        "main": [(main, MAIN_TASKS)],
        "alpha": [([untrained, *(alpha_run(a) for a in alphas)], SWEEP_TASKS)],
        "batch": [
            (
                [
                    untrained,
                    *(Run("hybrid", 0.5, b, seed) for seed in seeds for b in (batch_size, *batch_sizes)),
                ],
                SWEEP_TASKS,
            )
        ],
        "merge": [
            (
                [
                    untrained,
                    Run("untrained", debias="center"),
                    hybrid,
                    *(Run("hybrid", 0.5, batch_size, seeds[0], m) for m in merge),
                ],
                MERGE_TASKS,
            )
        ],
        "seeds": [
            (
                [
                    untrained,
                    *(
                        run
                        for seed in seeds
                        for run in (
                            Run("hybrid", 0.5, batch_size, seed),
                            Run("mono", batch_size=batch_size, seed=seed),
                            Run("cross", batch_size=batch_size, seed=seed),
                        )
                    ),
                ],
                SWEEP_TASKS,
            )
        ],
        "smoke": [
            ([untrained, Run("mono", batch_size=batch_size), Run("hybrid", 0.5, batch_size)], SWEEP_TASKS)
        ],
    }
    if plan == "all":
        parts = [part for name in ("main", "alpha", "batch", "merge") for part in plans[name]]
    elif plan in plans:
        parts = plans[plan]
    else:
        raise UserError(f"--plan {plan!r}: expected one of {', '.join(PLANS)}")
    runs: dict[Run, tuple[str, ...]] = {}
    for members, tasks in parts:
        for run in members:
            runs[run] = tuple(dict.fromkeys([*runs.get(run, ()), *tasks]))
    return dict(sorted(runs.items(), key=lambda item: item[0].strategy != "untrained"))


# ----------------------------------------------------------------------------- running


def ensure_trained(run: Run, args: argparse.Namespace) -> Path | None:
    """The run's model folder, trained (or resumed) when not there yet; None for the untrained base.

    A merged run is made from its unmerged run's weights. With ``--report-only`` nothing is trained:
    a missing model raises :class:`Missing`.
    """
    from hybrid_plugin.training.trainer import TrainConfig, merge_saved, train

    if run.strategy == "untrained":
        return None
    out = Path(args.work) / run.name / "model"
    if (out / "training.json").is_file():
        return out
    if args.report_only:
        raise Missing(f"{run.name}: not trained")
    if run.merge is not None:
        trained = ensure_trained(replace(run, merge=None), args)
        tqdm.write(f"[study] merging {run.name}")
        merge_saved(trained, run.merge, out, base_model=args.base_model)
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
        max_steps=steps_for(run, args),
        learning_rate=args.learning_rate,
        max_seq_length=args.max_seq_length,
        freeze_embeddings=args.freeze_embeddings,
        seed=run.seed,
        save_steps=args.save_steps,
        progress=not args.no_progress,
    )
    cfg.resume = cfg.checkpoint_dir.is_dir() and any(cfg.checkpoint_dir.glob("checkpoint-*"))
    tqdm.write(f"[study] training {run.name}" + (" (resuming)" if cfg.resume else ""))
    train(cfg)
    return out


def only_runs(runs: dict[Run, tuple[str, ...]], names: list[str]) -> dict[Run, tuple[str, ...]]:
    """The named runs of a plan, in the order given."""
    by_name = {run.name: run for run in runs}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise UserError(f"--only {','.join(unknown)}: not in this plan (its runs: {', '.join(by_name)})")
    return {by_name[name]: runs[by_name[name]] for name in names}


def steps_for(run: Run, args: argparse.Namespace) -> int:
    """``--steps``, or with ``--pairs`` the steps that show the run that many training pairs."""
    if not args.pairs:
        return args.steps
    if args.pairs % run.batch_size:
        raise UserError(f"--pairs {args.pairs}: not a multiple of batch size {run.batch_size} ({run.name})")
    return args.pairs // run.batch_size


class Missing(Exception):
    """A piece of the plan that ``--report-only`` does not make."""


def eval_path(run: Run, task: str, languages: str | None, work: str) -> Path:
    """Full evaluations are ``eval/TASK.json``; a language subset ``eval/TASK.de-en.json``."""
    name = task if not languages else f"{task}.{'-'.join(sorted(languages.split(',')))}"
    return Path(work) / run.name / "eval" / f"{name}.json"


def ensure_evaluated(run: Run, model: Path | None, task: str, args: argparse.Namespace) -> Results:
    """The run's results on ``task`` (evaluated once, then read from the work folder)."""
    from hybrid_plugin.evaluation.evaluator import EvalConfig, run_evaluation
    from hybrid_plugin.evaluation.perquery import to_arrow
    from hybrid_plugin.evaluation.report import write_per_query

    languages = args.eval_languages.get(task)
    path = eval_path(run, task, languages, args.work)
    if path.is_file():
        return Results.load(path)
    if args.report_only:
        raise Missing(f"{run.name}: not evaluated on {path.stem}")
    tqdm.write(f"[study] evaluating {run.name} on {path.stem}")
    model_arg = (  # recorded in the results: relative to the working directory, never the machine's path
        portable_path(model)
        if model is not None
        else (None if args.base_model == "default" else args.base_model)
    )
    evaluation = run_evaluation(
        EvalConfig(
            task=task,
            model=model_arg,
            languages=languages,
            data_dir=args.data_dir,
            alignment=task in ("xquad-r", "mlqa-r"),
            debias=run.debias,
        )
    )
    # the per-query file beside it (eval/TASK.queries.parquet) makes the claims testable
    results = write_per_query(evaluation.results, to_arrow(evaluation.table, evaluation.pool), path)
    results = Results.from_json(results.to_json() | {"study_run": asdict(run) | {"name": run.name}})
    write_text(path, results.dumps())
    return results


# ----------------------------------------------------------------------------- summarising


def _dump(scores) -> dict:
    """Scores as a dict, leaving out bias measures the results do not have (evaluated before them)."""
    from hybrid_plugin.evaluation.measures import MEASURES

    later = {m.key for m in MEASURES.later()}
    return {k: v for k, v in scores.model_dump().items() if v is not None or k not in later}


def _summary(results: Results) -> dict:
    out = {
        **_dump(results.scores),
        "per_language": {lang: _dump(v) for lang, v in results.per_language.items()},
    }
    ndcg = results.standard_measures.by_kind.get("mono", {})
    if ndcg:
        out["mono_ndcg10"] = next((v for k, v in ndcg.items() if k.startswith("nDCG@10")), None)
    per_lang_ndcg = {}
    for setting, entry in results.iter_settings("mono"):
        if entry.measures:
            per_lang_ndcg[setting.query_lang] = next(
                (v for k, v in entry.measures.items() if k.startswith("nDCG@10")), None
            )
    out["ndcg10_per_language"] = per_lang_ndcg
    if results.alignment:
        a = results.alignment
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


def _mean_spread(values: list[float], digits: int = 3) -> str:
    """One value, or mean ± sample standard deviation over seeds."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def _cell(values: list[float], metric: str) -> str:
    return _mean_spread(values, 1 if metric == "max_rank_distance" else 3)


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
                _cell([v[m] for v in vals], m)
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


CLAIM_ALPHA = 0.05
MONO_MARGIN = 0.01  # "close to mono-only": within 0.01 mAP


def _has_per_query(path: str | Path) -> bool:
    from hybrid_plugin.evaluation.results import per_query_path

    results = Results.load(path)
    return results.per_query is not None and per_query_path(path, results) is not None


def _paired(groups: dict[str, list[dict]], task: str, label: str, baseline: str, key: str):
    """compare's macro cell of ``key``: ``label`` vs ``baseline`` on the seeds both have, pooled per query."""
    from hybrid_plugin.evaluation.measures import MEASURES
    from hybrid_plugin.stats import compare_runs

    groups = _matched(groups, label, baseline)
    measure = MEASURES[key]
    systems = [(name, [g["results_path"][task] for g in groups[name]]) for name in (baseline, label)]
    cmp = compare_runs(
        systems, permutations=10_000, bootstraps=2_000, seed=0, alpha=CLAIM_ALPHA, measures=(measure,)
    )
    return cmp.pairs[0].measure(key).macro, cmp.units


def _stated(cell, places: int = 3) -> str:
    d = cell.difference
    return f"{d.value:+.{places}f} [{d.low:+.{places}f}, {d.high:+.{places}f}], p = {cell.test.p:.4f}"


def claims(rows: list[dict], task: str) -> list[str]:
    """The paper's three claims: with per-query files, each difference with its 95% bootstrap interval and
    a paired randomization test over question groups (seeds of a model pooled per query); without them,
    the seed means only, saying which runs lack per-query files."""
    groups = _group([r for r in rows if task in r["tasks"] and r["merge"] is None])
    need = ("hybrid α=0.5", "X-X-mono", "X-Y")
    if not all(k in groups for k in need):
        return ["(needs the main plan's hybrid, X-X-mono and X-Y runs)"]
    return _claims(groups, task, need) + _seeds_left_out(groups, need)


def _common_seeds(groups: dict[str, list[dict]], labels: tuple[str, ...]) -> set:
    return set.intersection(*({g.get("seed") for g in groups[label]} for label in labels))


def _matched(groups: dict[str, list[dict]], a: str, b: str) -> dict[str, list[dict]]:
    """``a`` and ``b`` on the seeds both have, so a comparison sets like against like (a model's extra
    seeds still count in the seed spread); a pair with no common seed keeps all of each."""
    common = _common_seeds(groups, (a, b))
    if not common:
        return groups
    return {k: [g for g in v if k not in (a, b) or g.get("seed") in common] for k, v in groups.items()}


def _seeds_left_out(groups: dict[str, list[dict]], need: tuple[str, ...]) -> list[str]:
    """A line saying which seeds each comparison used where some model has seeds another lacks."""
    seed_sets = [{g.get("seed") for g in groups[label]} for label in need]
    if all(s == seed_sets[0] for s in seed_sets):
        return []
    hybrid, *baselines = need

    def seeds(values: set) -> str:
        return f"seed{'s' if len(values) > 1 else ''} {', '.join(str(v) for v in sorted(values))}"

    used = [f"hybrid vs {b} on {seeds(_common_seeds(groups, (hybrid, b)))}" for b in baselines]
    return [
        f"- Seeds matched per comparison: {'; '.join(used)} (the seeds both models have; the others "
        "count in the seed spread)."
    ]


def _per_seed(
    groups: dict[str, list[dict]], task: str, key: str, places: int = 3, baseline: str = "X-X-mono"
) -> str:
    """Hybrid − ``baseline`` seed by seed (where they share more than one seed): the interval pools the
    seeds per query, so it covers query sampling only; the per-seed differences show the seed noise."""
    matched = _matched(groups, "hybrid α=0.5", baseline)
    by_seed = [
        {g.get("seed"): g["tasks"][task].get(key) for g in matched[k]} for k in ("hybrid α=0.5", baseline)
    ]
    seeds = sorted(set(by_seed[0]) & set(by_seed[1]))
    if len(seeds) < 2 or any(by_seed[i][s] is None for i in (0, 1) for s in seeds):
        return ""
    shown = ", ".join(f"seed {s} {by_seed[0][s] - by_seed[1][s]:+.{places}f}" for s in seeds)
    return f"; by seed: {shown}"


def _claims(groups: dict[str, list[dict]], task: str, need: tuple[str, ...]) -> list[str]:
    lacking = sorted(
        g.get("name", label)
        for label in need
        for g in groups[label]
        if not (g.get("results_path", {}).get(task) and _has_per_query(g["results_path"][task]))
    )
    lacking_labels = {label for label in need if any(g.get("name", label) in lacking for g in groups[label])}
    if lacking_labels & {"hybrid α=0.5", "X-X-mono"}:
        return _point_claims(groups, task) + [
            f"- These are point estimates: no per-query files for {', '.join(lacking)} (evaluated before "
            "per-query files existed), so no interval or test can be given; re-evaluating those runs "
            "(the study re-run) makes them testable."
        ]
    a = CLAIM_ALPHA
    out = []
    with_cross = _matched(groups, "hybrid α=0.5", "X-Y")
    vs_mono, units = _paired(groups, task, "hybrid α=0.5", "X-X-mono", "multi_map")
    if "X-Y" in lacking_labels:  # hybrid vs X-Y on seed means only
        h, x = (float(np.mean([g["tasks"][task]["multi_map"] for g in with_cross[k]])) for k in need[::2])
        if vs_mono.difference.value < 0 and vs_mono.test.p < a:
            verdict = "no"
        elif h < x:
            verdict = "no on the point estimate against X-Y (untested)"
        else:
            verdict = "not established: X-Y has no per-query file to test against"
        against_cross = (
            f"hybrid {h:.3f} vs X-Y {x:.3f}, a point estimate: {', '.join(lacking)} has no per-query file"
        )
    else:
        vs_cross, _ = _paired(groups, task, "hybrid α=0.5", "X-Y", "multi_map")
        cells = (vs_mono, vs_cross)
        if all(c.difference.value > 0 and c.test.p < a for c in cells):
            verdict = "yes"
        elif any(c.difference.value < 0 and c.test.p < a for c in cells):
            verdict = "no"
        else:
            unclear = [name for name, c in zip(("X-X-mono", "X-Y"), cells) if c.test.p >= a]
            verdict = f"not distinguishable from {' and '.join(unclear)} at α = {a:g}"
        against_cross = (
            f"hybrid − X-Y {_stated(vs_cross)}{_per_seed(groups, task, 'multi_map', baseline='X-Y')}"
        )
    out.append(
        f"- Hybrid ≥ both baselines on multilingual retrieval: **{verdict}** (multi mAP hybrid − X-X-mono "
        f"{_stated(vs_mono)}{_per_seed(groups, task, 'multi_map')}; {against_cross})."
    )
    mono, _ = _paired(groups, task, "hybrid α=0.5", "X-X-mono", "mono_map")
    d = mono.difference
    if d.low >= -MONO_MARGIN:
        verdict = "yes"
    elif d.high < -MONO_MARGIN:
        verdict = "no"
    else:
        verdict = f"not established: the interval spans the −{MONO_MARGIN:g} margin (low end {d.low:+.4f})"
    out.append(
        f"- Hybrid keeps monolingual quality close to mono-only (within {MONO_MARGIN:g} mAP, i.e. the "
        f"interval's low end ≥ −{MONO_MARGIN:g}): **{verdict}** (mono mAP hybrid − X-X-mono {_stated(mono)}"
        f"{_per_seed(groups, task, 'mono_map')})."
    )
    bias, _ = _paired(groups, task, "hybrid α=0.5", "X-X-mono", "max_rank_distance")
    if bias.difference.value < 0 and bias.test.p < a:
        verdict = "yes"
    elif bias.difference.value > 0 and bias.test.p < a:
        verdict = "no"
    else:
        verdict = f"not distinguishable at α = {a:g}"
    out.append(
        f"- Hybrid cuts language bias vs mono-only: **{verdict}** (max rank distance hybrid − X-X-mono "
        f"{_stated(bias, 1)}{_per_seed(groups, task, 'max_rank_distance', 1)})."
    )
    seeds = ", ".join(f"{label} {len(groups[label])}" for label in need)
    out.append(
        f"- Tests: paired randomization over {units} parallel question groups (10,000 sign flips, seed 0), "
        "two-sided, uncorrected per claim; 95% paired bootstrap intervals over groups (2,000 resamples); "
        f"seeds per model: {seeds}. With one seed a test says whether these trained models differ on other "
        "questions, not whether retraining would reproduce the difference."
    )
    return out


def _point_claims(groups: dict[str, list[dict]], task: str) -> list[str]:
    """The claims on seed means alone (results without per-query files), each pair on its common seeds."""

    def means(a: str, b: str) -> tuple[dict[str, float], dict[str, float]]:
        matched = _matched(groups, a, b)
        return tuple(
            {
                m: float(np.mean([g["tasks"][task][m] for g in matched[label]]))
                for m in ("mono_map", "multi_map", "max_rank_distance")
            }
            for label in (a, b)
        )

    h, mono = means("hybrid α=0.5", "X-X-mono")
    h_cross, cross = means("hybrid α=0.5", "X-Y")
    out = []
    ok = h["multi_map"] >= mono["multi_map"] and h_cross["multi_map"] >= cross["multi_map"]
    if _common_seeds(groups, ("hybrid α=0.5", "X-X-mono")) == _common_seeds(groups, ("hybrid α=0.5", "X-Y")):
        shown = f"hybrid {h['multi_map']:.3f}, X-X-mono {mono['multi_map']:.3f}, X-Y {cross['multi_map']:.3f}"
    else:  # the two comparisons use different seeds of hybrid
        shown = (
            f"hybrid {h['multi_map']:.3f} vs X-X-mono {mono['multi_map']:.3f}; hybrid "
            f"{h_cross['multi_map']:.3f} vs X-Y {cross['multi_map']:.3f}"
        )
    out.append(
        f"- Hybrid ≥ both baselines on multilingual retrieval: **{'yes' if ok else 'no'}** "
        f"(multi mAP {shown})."
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


def breakdown_table(
    rows: list[dict],
    task: str,
    metric: str = "multi_map",
    labels: list[str] | None = None,
    deltas: list[tuple[str, str]] | None = None,
) -> list[str]:
    """``metric`` (per query language) of ``labels`` (default: the main plan's models) by language
    family and by seen or unseen training language (seed means), with the ``deltas`` (default:
    hybrid's differences to the two baselines)."""
    main_labels = labels or ["untrained base", "X-X-mono", "X-Y", "hybrid α=0.5", "X-X"]
    groups = _group([r for r in rows if task in r["tasks"] and r["label"] in main_labels])
    groups = {label: groups[label] for label in main_labels if label in groups}
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
    short = deltas is None  # the default columns say "hybrid − X-Y"
    pairs = deltas or [("hybrid α=0.5", "X-X-mono"), ("hybrid α=0.5", "X-Y")]
    deltas = [(a, b) for a, b in pairs if {a, b} <= set(groups)]
    columns = header + [f"{a.split()[0] if short else a} − {b}" for a, b in deltas]
    lines = ["| languages | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for bucket, members in buckets.items():
        if not members:
            continue
        means = {}
        for label, group in groups.items():
            vals = [
                g["tasks"][task]["per_language"][lang][metric]
                for g in group
                for lang in members
                if g["tasks"][task]["per_language"][lang][metric] is not None
            ]
            means[label] = float(np.mean(vals)) if vals else None
        places = 1 if metric == "max_rank_distance" else 3
        cells = [_fmt(means[label], places) for label in header]
        cells += [
            f"{means[a] - means[b]:+.{places}f}" if means[a] is not None and means[b] is not None else "–"
            for a, b in deltas
        ]
        name = f"{bucket} ({'/'.join(members)})"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def sweep_points(rows: list[dict], task: str, by: str, batch_size: int) -> dict[float, list[dict]]:
    """Task scores by α (X-Y is 0, X-X-mono 1; batch ``batch_size``) or by batch size (hybrid α = 0.5),
    each with one entry per seed, in ascending order."""
    points: dict[float, list[dict]] = {}
    for r in rows:
        if task not in r["tasks"] or r["merge"] is not None:
            continue
        if by == "alpha" and r["strategy"] in ("hybrid", "mono", "cross") and r["batch_size"] == batch_size:
            points.setdefault(Run(r["strategy"], r["alpha"]).alpha_value, []).append(r["tasks"][task])
        elif by == "batch" and r["strategy"] == "hybrid" and r["alpha"] == 0.5:
            points.setdefault(r["batch_size"], []).append(r["tasks"][task])
    return dict(sorted(points.items()))


def sweep_table(rows: list[dict], task: str, by: str, batch_size: int, bias: bool = False) -> list[str]:
    """Seed means along the α sweep (``by="alpha"``) or the batch-size sweep (``by="batch"``); with
    ``bias``, also Lang-nDCG@10 and Mean Rank Correlation."""
    points = sweep_points(rows, task, by, batch_size)
    if len(points) < 2:
        return []
    name = "α" if by == "alpha" else "batch size"
    metrics = ["mono_map", "cross_map", "multi_map", "max_rank_distance", "same_language_top_share"]
    header = "mono mAP | cross mAP | multi mAP | max rank distance ↓ | same-language top share"
    if bias:
        metrics += ["lang_ndcg_10", "mean_rank_correlation"]
        header += " | Lang-nDCG@10 ↑ | MRC ↑"
    lines = [f"| {name} | seeds | {header} |", "|---|---|" + "---|" * len(metrics)]
    for key, vals in points.items():
        cells = (_cell([v.get(m) for v in vals], m) for m in metrics)
        lines.append(f"| {key:g} | {len(vals)} | " + " | ".join(cells) + " |")
    return lines


def _seed_mean(group: list[dict], task: str, metric: str) -> float | None:
    vals = [g["tasks"][task].get(metric) for g in group]
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None


def pareto(rows: list[dict], task: str) -> list[dict]:
    """Every model's seed-mean monolingual and multilingual mAP, with the models that dominate it
    (at least as good on both, better on one); an empty ``dominated_by`` puts it on the front."""
    points = [
        {"label": label, "mono": _seed_mean(g, task, "mono_map"), "multi": _seed_mean(g, task, "multi_map")}
        for label, g in _group([r for r in rows if task in r["tasks"]]).items()
    ]
    points = [p for p in points if p["mono"] is not None and p["multi"] is not None]
    for p in points:
        p["dominated_by"] = [
            q["label"]
            for q in points
            if q is not p
            and q["mono"] >= p["mono"]
            and q["multi"] >= p["multi"]
            and (q["mono"] > p["mono"] or q["multi"] > p["multi"])
        ]
    return points


def pareto_lines(points: list[dict]) -> tuple[list[str], str]:
    """The Pareto table and one sentence saying which recipe dominates (if any)."""
    front = sorted((p for p in points if not p["dominated_by"]), key=lambda p: p["mono"])
    lines = [
        "| # | model | mono mAP | multi mAP | dominated by |",
        "|---|---|---|---|---|",
    ]
    for i, p in enumerate(points, 1):
        lines.append(
            f"| {i} | {p['label']} | {p['mono']:.3f} | {p['multi']:.3f} | "
            + (", ".join(p["dominated_by"]) or "**on the front**")
            + " |"
        )
    if len(front) == 1:
        sentence = (
            f"{front[0]['label']} dominates every other model (seed means: better or equal on both axes)."
        )
    else:
        sentence = (
            "No single recipe dominates; the front runs from "
            + ", ".join(f"{p['label']} ({p['mono']:.3f} / {p['multi']:.3f})" for p in front)
            + " (mono / multi mAP, seed means), trading monolingual for multilingual mAP."
        )
    return lines, sentence


@plain_plot_text()  # labels are model and run names: '$' is a dollar sign
def plot_pareto(points: list[dict], task: str, path: Path) -> None:
    """Monolingual vs multilingual mAP of every model: numbered markers with a key (labels never
    overlap), the front as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, key) = plt.subplots(1, 2, figsize=(8.5, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    front = sorted((p for p in points if not p["dominated_by"]), key=lambda p: p["mono"])
    ax.plot([p["mono"] for p in front], [p["multi"] for p in front], "--", color="0.6", lw=1, zorder=1)
    for i, p in enumerate(points, 1):
        on_front = not p["dominated_by"]
        ax.scatter(p["mono"], p["multi"], s=90, zorder=2, color="tab:blue" if on_front else "tab:gray")
        ax.annotate(str(i), (p["mono"], p["multi"]), ha="center", va="center", fontsize=7, color="white")
    ax.set_xlabel("monolingual mAP (X→X)")
    ax.set_ylabel("multilingual mAP (pool)")
    ax.set_title(f"{task}: mono vs multi trade-off (seed means)", fontsize=9)
    ax.margins(0.12)
    key.axis("off")
    key.text(
        0,
        1,
        "\n".join(
            f"{i:>2}  {p['label']}" + ("" if p["dominated_by"] else "  *") for i, p in enumerate(points, 1)
        )
        + "\n\n* on the Pareto front",
        va="top",
        family="monospace",
        fontsize=7.5,
        transform=key.transAxes,
    )
    _save_png(fig, path)


def _query_se(path: str, key: str) -> float | None:
    """Standard error of one result's macro score from query sampling: the width of its 95% bootstrap
    interval over question groups / (2 · 1.96)."""
    from hybrid_plugin.evaluation.measures import MEASURES
    from hybrid_plugin.stats.compare import score_interval

    measure = MEASURES[key]
    interval = score_interval(path, measure, bootstraps=2_000, seed=0)
    return None if interval is None else (interval[1] - interval[0]) / (2 * 1.959964)


def spread_table(rows: list[dict], task: str) -> tuple[list[str], str | None]:
    """Seed-to-seed spread (sample sd over seeds) against query-sampling noise (bootstrap SE over
    question groups, mean over seeds), for every model with two or more seeds with per-query files."""
    lines = [
        "| model | seeds | multi mAP: seed sd | multi mAP: query SE "
        "| mono mAP: seed sd | mono mAP: query SE |",
        "|---|---|---|---|---|---|",
    ]
    ratios = []
    for label, group in _group([r for r in rows if task in r["tasks"]]).items():
        paths = [g["results_path"].get(task) for g in group]
        if len(group) < 2 or not all(p and _has_per_query(p) for p in paths):
            continue
        cells = []
        for key in ("multi_map", "mono_map"):
            sd = float(np.std([g["tasks"][task][key] for g in group], ddof=1))
            se = float(np.mean([_query_se(p, key) for p in paths]))
            cells += [f"{sd:.4f}", f"{se:.4f}"]
            if key == "multi_map":
                ratios.append((label, sd / se))
        lines.append(f"| {label} | {len(group)} | " + " | ".join(cells) + " |")
    if not ratios:
        return [], None
    bigger = [label for label, r in ratios if r > 1]
    sentence = (
        "Seed-to-seed spread of multi mAP is "
        + ", ".join(f"{r:.2f}× the query-sampling SE for {label}" for label, r in ratios)
        + "; "
        + (
            f"so retraining moves the score more than resampling questions does ({', '.join(bigger)})"
            if bigger
            else "so for one model's score query sampling is the larger noise"
        )
        + ". A paired difference between two models on the same questions cancels most of the query "
        "noise (compare the claims' intervals with the query SE here), so there the seed spread can be "
        "the larger one: a verdict from one seed holds for those trained models, not yet for the recipe"
        + f". With {min(len(g) for g in _group(rows).values() if len(g) > 1)} seeds a standard deviation "
        "is itself a rough estimate."
    )
    return lines, sentence


def batch_section(rows: list[dict], task: str, batch_size: int) -> tuple[list[str], str | None]:
    """The seed question: hybrid α = 0.5 at each batch size (equal training pairs where the runs say so),
    by language family and seen/unseen training language, with paired tests between adjacent sizes."""
    sizes = sorted(
        {r["batch_size"] for r in rows if task in r["tasks"] and r["strategy"] == "hybrid"
         and r["alpha"] == 0.5 and r["merge"] is None and not r.get("debias")}
    )  # fmt: skip
    if len(sizes) < 2:
        return [], None
    base = "hybrid α=0.5"
    labels = {b: base if b == batch_size else f"{base} (batch {b})" for b in sizes}
    groups = _group([r for r in rows if task in r["tasks"] and r["label"] in labels.values()])
    labels = {b: lab for b, lab in labels.items() if lab in groups}
    sizes = list(labels)
    steps = {b: sorted({g.get("steps") for g in groups[labels[b]]}) for b in sizes}
    pairs = {b: [s * b for s in steps[b] if s] for b in sizes}
    lines = [
        "Training pairs seen: "
        + ", ".join(f"batch {b}: {'/'.join(map(str, steps[b]))} steps = {'/'.join(map(str, pairs[b]))} pairs"
                    for b in sizes)
        + ". Learning rate, warm-up ratio and linear decay are the same for every size (the runs' "
        "`training.json` files record them); the cached loss is used above the mini-batch size.",
        "",
        *sweep_table(rows, task, "batch", batch_size, bias=True),
        "",
    ]  # fmt: skip
    adjacent = list(zip(sizes, sizes[1:]))
    for metric, name in (("multi_map", "Multilingual mAP"), ("max_rank_distance", "Max rank distance ↓")):
        lines += [f"{name} by query-language group (seed means):", ""]
        lines += breakdown_table(
            rows, task, metric, labels=[labels[b] for b in sizes],
            deltas=[(labels[b], labels[a]) for a, b in adjacent],
        )  # fmt: skip
        lines += [""]
    testable = all(
        g.get("results_path", {}).get(task) and _has_per_query(g["results_path"][task])
        for lab in labels.values()
        for g in groups[lab]
    )
    verdicts = []
    if testable:
        lines += ["Adjacent sizes, paired over question groups (difference [95% CI], p):", ""]
        for a, b in adjacent:
            cells = {
                key: _paired(groups, task, labels[b], labels[a], key)[0]
                for key in ("multi_map", "max_rank_distance", "lang_ndcg_10")
            }
            lines.append(
                f"- batch {b} − batch {a}: multi mAP {_stated(cells['multi_map'])}; max rank distance "
                f"{_stated(cells['max_rank_distance'], 1)}; Lang-nDCG@10 {_stated(cells['lang_ndcg_10'])}."
            )
            c = cells["multi_map"]
            verdicts.append((a, b, c.difference.value, c.test.p < CLAIM_ALPHA))
        if any(len(groups[labels[a]]) != len(groups[labels[b]]) for a, b in adjacent):
            lines.append("- Each test uses the seeds both sizes have; the tables above average all seeds.")
        lines += [""]
    multi = {b: _seed_mean(groups[labels[b]], task, "multi_map") for b in sizes}
    unseen = {
        b: float(np.mean([
            g["tasks"][task]["per_language"][lang]["multi_map"]
            for g in groups[labels[b]] for lang in g["tasks"][task]["per_language"] if lang not in SEEN
        ]))
        for b in sizes
    }  # fmt: skip
    trend = " → ".join(f"{multi[b]:.3f} (batch {b})" for b in sizes)
    spread = {  # a size's seed sd of multi mAP, where it has two seeds or more
        b: float(np.std([g["tasks"][task]["multi_map"] for g in groups[labels[b]]], ddof=1))
        for b in sizes
        if len(groups[labels[b]]) > 1
    }

    def verdict(a: int, b: int, d: float, sig: bool) -> str:
        said = f"{b} vs {a}: {'higher' if d > 0 else 'lower'} by {abs(d):.3f}"
        said += "" if sig else ", not significant"
        noisy = [f"batch {x}'s seed sd {spread[x]:.3f}" for x in (a, b) if x in spread and abs(d) < spread[x]]
        return said + (f", smaller than {' and '.join(noisy)}" if noisy else "")

    tested = "; ".join(verdict(*v) for v in verdicts) if verdicts else "no per-query files, so no test"
    answer = (
        f"At equal training pairs, multilingual mAP goes {trend}; on the languages never seen in "
        "training it goes "
        + " → ".join(f"{unseen[b]:.3f}" for b in sizes)
        + f". Adjacent sizes, paired test on multi mAP: {tested}. Limits: seeds per size "
        + ", ".join(f"{b}: {len(groups[labels[b]])}" for b in sizes)
        + ", "
        f"{max(max(p) for p in pairs.values() if p)} training pairs on 2 CPU cores (the paper trains far "
        "longer), a small base model; a larger batch also means fewer optimizer steps here."
    )
    return lines, answer


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
                    _cell([v[m] for v in vals], m)
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
        ndcg = [g["tasks"]["tydi-goldp"].get("mono_ndcg10") for g in group]
        ndcg = [v for v in ndcg if v is not None]
        macro_text = f"{macro:.3f} / {np.mean(ndcg):.3f}" if ndcg else f"{macro:.3f}"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {macro_text} |")
    return lines


def _save_png(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"), suffix=".png")
    plt.close(fig)


@plain_plot_text()
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


@plain_plot_text()
def plot_alpha(rows: list[dict], task: str, path: Path, batch_size: int) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [(a, v) for a, seeds in sweep_points(rows, task, "alpha", batch_size).items() for v in seeds]
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


def training_settings(rows: list[dict]) -> str:
    """The trained runs' settings, each value once (read from their records, not from the arguments)."""
    seen: dict[str, list] = {}
    for row in rows:
        for key, value in row.get("training", {}).items():
            if value not in seen.setdefault(key, []):
                seen[key].append(value)
    if not seen:
        return "no trained runs"
    return "; ".join(
        f"{key.replace('_', ' ')} {' / '.join(str(v) for v in values)}" for key, values in seen.items()
    )


def conclusions(
    rows: list[dict],
    stated: dict[str, list[str]],
    spreads: dict[str, tuple[list[str], str | None]],
    batches: dict[str, tuple[list[str], str | None]],
    fronts: dict[str, list[dict]],
) -> list[str]:
    """The section at the top: what the numbers below support, and what they cannot, each sentence
    built from the same results as the tables (nothing typed by hand but the fixed limits)."""
    lines = ["## What we can and cannot conclude", ""]
    for task, claim_lines in stated.items():
        tested = [line for line in claim_lines if line.startswith(("- Hybrid", "- Seeds matched"))]
        if tested:
            lines += [f"On {task}:", "", *tested, ""]
    for task, (_, sentence) in spreads.items():
        if sentence:
            lines += [f"- Noise ({task}): {sentence}"]
    for task, (_, answer) in batches.items():
        if answer:
            lines += [f"- Batch size ({task}): {answer}"]
    for task, points in fronts.items():
        if len(points) > 1:
            lines += [f"- Trade-off ({task}): {pareto_lines(points)[1]}"]
    seeds = max(
        (len(g) for g in _group([r for r in rows if r["strategy"] != "untrained"]).values()), default=0
    )
    lines += [
        "",
        "What these runs cannot tell:",
        "",
        f"- Whether the paper's full-scale numbers hold: {training_settings(rows)}; at most {seeds} "
        "seed(s) per model, a small multilingual-e5 base (the paper fine-tunes XLM-R and LaBSE on far "
        "more data).",
        "- A test over question groups says whether two trained models differ on other questions, not "
        "whether retraining would reproduce the difference; only the seed spread speaks to that.",
        "- MLQA-R is in-domain for this training data (same Wikipedia source); XQuAD-R is the zero-shot "
        "test.",
        "",
    ]
    return lines


def write_report(rows: list[dict], args: argparse.Namespace, command: str, missing: list[str]) -> Path:
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
        "- Training data: offline MLQA test copy (questions ar/de/es/hi/vi/zh, passages de/es/vi/zh; "
        "paragraph positives: its answers carry no spans). Training settings, as the runs' "
        f"`training.json` files record them: {training_settings(rows)}.",
        "- XQuAD-R is zero-shot (no XQuAD data in training). **MLQA-R is in-domain**: MLQA test and "
        "MLQA-R share their Wikipedia source. TyDi GoldP is a held-out monolingual check, never trained on.",
        f"- Evaluation languages: {json.dumps(args.eval_languages) if args.eval_languages else 'all'}.",
        *(
            [
                "- The runs record more than one base fingerprint: the fingerprint's definition changed, "
                "not the base's weights ([study guide: base fingerprints](study-guide.md#base-fingerprints))."
            ]
            if len({r.get("training", {}).get("base_fingerprint") for r in rows} - {None}) > 1
            else []
        ),
        "",
    ]
    tasks = [t for t in ("xquad-r", "mlqa-r") if any(t in r["tasks"] for r in rows)]
    stated = {task: claims(rows, task) for task in tasks}
    spreads = {task: spread_table(rows, task) for task in tasks}
    batches = {task: batch_section(rows, task, args.batch_size) for task in tasks}
    fronts = {task: pareto(rows, task) for task in tasks}
    lines += conclusions(rows, stated, spreads, batches, fronts)
    for task in tasks:
        lines += [f"## {task}" + (" (in-domain)" if task == "mlqa-r" else " (zero-shot)"), ""]
        lines += main_table(rows, task) + [""] + paper_reference(task)
        lines += ["Claims of the paper:", ""] + stated[task] + [""]
        spread, sentence = spreads[task]
        if spread:
            lines += ["Seed-to-seed spread against query sampling:", "", *spread, "", sentence or "", ""]
        plot_scatter(rows, task, assets / f"{task}-scatter.png")
        lines += [f"![multi mAP vs bias]({assets.name}/{task}-scatter.png)", ""]
        if len(fronts[task]) > 1:
            table, sentence = pareto_lines(fronts[task])
            plot_pareto(fronts[task], task, assets / f"{task}-pareto.png")
            lines += ["Mono vs multi trade-off of every model (Pareto front):", "", *table, "", sentence, ""]
            lines += [f"![Pareto plot]({assets.name}/{task}-pareto.png)", ""]
        alpha = sweep_table(rows, task, "alpha", args.batch_size)
        if alpha:
            lines += [
                f"α sweep (batch {args.batch_size}; α = 0 is the X-Y run, α = 1 the X-X-mono run):",
                "",
                *alpha,
                "",
            ]
        if plot_alpha(rows, task, assets / f"{task}-alpha.png", args.batch_size):
            lines += [f"![alpha sweep]({assets.name}/{task}-alpha.png)", ""]
        batch, answer = batches[task]
        if batch:
            lines += [f"### Batch size (hybrid α = 0.5; cached loss above {args.mini_batch_size})", ""]
            lines += batch + [f"**Answer.** {answer}", ""]
        for metric, name in (("multi_map", "Multilingual"), ("mono_map", "Monolingual")):
            lines += [f"{name} mAP by query-language group:", ""]
            lines += breakdown_table(rows, task, metric) + [""]
        for r in rows:
            if task in r["tasks"] and r["seed"] == min(args.seeds) and r.get("results_path"):
                res = Results.load(r["results_path"][task])
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
        # a code span, not a link: a folder is no page, and the docs site builds with broken links failing
        f"Each run's results JSONs and `training.json` are in `{portable_path(assets)}/runs/<run>/` "
        "(the models themselves are not committed).",
        "",
        "| run | strategy | α | batch | seed | merged λ | steps | s/step | evaluated on |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['strategy']} | {_fmt(r['alpha'], 2)} | {r['batch_size'] or '–'} "
            f"| {r['seed']} | {_fmt(r['merge'], 2)} | {r.get('steps') or '–'} "
            f"| {_fmt(r.get('seconds_per_step'), 2)} | {', '.join(r['tasks']) or '–'} |"
        )
    if missing:
        lines += [
            "",
            "## Not run",
            "",
            "Pieces of this plan that the work folder does not hold:",
            "",
        ]
        lines += [f"- {gap}" for gap in missing]
    lines += [
        "",
        f"Versions: {json.dumps(library_versions(('torch', 'sentence-transformers', 'transformers')))}",
        "",
    ]
    write_text(report, "\n".join(lines))
    summary = [{k: v for k, v in r.items() if k not in ("results_path", "model_path")} for r in rows]
    write_text(assets / "summary.json", json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    copy_records(rows, assets / "runs")
    return report


def copy_records(rows: list[dict], target: Path) -> None:
    """Each run's results JSONs and training record next to the report (models stay out)."""
    for row in rows:
        sources = {f"{Path(path).stem}.json": Path(path) for path in row["results_path"].values()}
        for path in map(Path, row["results_path"].values()):
            per_query = path.with_name(path.stem + ".queries.parquet")
            if per_query.is_file():
                sources[per_query.name] = per_query
        if row.get("model_path"):
            sources["training.json"] = Path(row["model_path"]) / "training.json"
        for name, source in sources.items():
            write_bytes(target / row["name"] / name, source.read_bytes())


def study_pieces(runs: dict[Run, tuple[str, ...]], args: argparse.Namespace) -> tuple[int, int]:
    """(pieces in the plan, pieces already in the work folder): one training per trained run, one
    evaluation per run and task. A merge counts as a training."""
    total = done = 0
    for run, plan_tasks in runs.items():
        if run.strategy != "untrained":
            total += 1
            done += (Path(args.work) / run.name / "model" / "training.json").is_file()
        for task in args.tasks or plan_tasks:
            total += 1
            done += eval_path(run, task, args.eval_languages.get(task), args.work).is_file()
    return total, done


def collect(runs: dict[Run, tuple[str, ...]], args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    """Train and evaluate what is missing; one row per run, and what ``--report-only`` found missing.

    A study bar counts the plan's trainings and evaluations (with the time per piece and an ETA);
    training and encoding show their own bars below it. It is redrawn every few seconds.
    """
    total, done = study_pieces(runs, args)
    bar = tqdm(
        total=total,
        initial=done,
        desc="study",
        unit="piece",
        position=0,
        disable=args.report_only or args.no_progress,
    )
    with bar, heartbeat(bar, every=5.0):
        return _collect(runs, args, bar)


def _collect(runs: dict[Run, tuple[str, ...]], args: argparse.Namespace, bar) -> tuple[list[dict], list[str]]:
    rows, missing = [], []
    for run, plan_tasks in runs.items():
        bar.set_postfix_str(run.name)
        trained_before = (Path(args.work) / run.name / "model" / "training.json").is_file()
        try:
            model = ensure_trained(run, args)
        except Missing as gap:
            missing.append(str(gap))
            continue
        if run.strategy != "untrained" and not trained_before:
            bar.update()
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
            row["model_path"] = str(model)
            c = record["config"]
            row["training"] = {
                "loss": record["loss"],
                "steps": record["steps"],
                "learning_rate": c["learning_rate"],
                "max_seq_length": c["max_seq_length"],
                "freeze_embeddings": c["freeze_embeddings"],
                "passage_unit": c["passage_unit"],
                "base_model": record["base_model"]["name"],
                "base_fingerprint": record["base_model"]["fingerprint"][:12],
            }
        for task in args.tasks or plan_tasks:
            path = eval_path(run, task, args.eval_languages.get(task), args.work)
            evaluated_before = path.is_file()
            bar.set_postfix_str(f"{run.name} on {task}")
            try:
                results = ensure_evaluated(run, model, task, args)
            except Missing as gap:
                missing.append(str(gap))
                continue
            if not evaluated_before:
                bar.update()
            row["tasks"][task] = _summary(results)
            row["results_path"][task] = str(path)
        rows.append(row)
    return rows, missing


LEADERBOARD_SUBMITTER = "hybrid_plugin maintainers"


def leaderboard_name(label: str, seed: int, steps: int) -> str:
    """A study row's display name: base and recipe first, then what tells the runs of a recipe apart."""
    return f"e5-small + {label}, seed {seed}, {steps} steps"


def submit_to_leaderboard(rows: list[dict], args: argparse.Namespace) -> list[str]:
    """One leaderboard row per trained model and full-language ranked task (earlier rows replaced)."""
    from hybrid_plugin.leaderboard.board import remove, submit
    from hybrid_plugin.leaderboard.render import render
    from hybrid_plugin.leaderboard.tasks import ranked_specs

    ranked = set(ranked_specs())
    done = []
    for row in rows:
        if row["strategy"] == "untrained":
            continue
        for task, path in row["results_path"].items():
            if task not in ranked or args.eval_languages.get(task):
                continue
            name = leaderboard_name(row["label"], row["seed"], row["steps"])
            # a retrained run has a new fingerprint: its earlier row goes by name, not by key
            remove(Path(args.leaderboard), task, name=name, missing_ok=True)
            submitted = submit(
                Path(path),
                Path(args.leaderboard),
                name=name,
                notes=f"benchmarks/study.py run {row['name']}; docs/study.md",
                submitter=LEADERBOARD_SUBMITTER,
                replace=True,
            )
            done.append(f"{submitted.csv}: {submitted.row.name}")
    render(Path(args.leaderboard))
    return done


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--plan", default="main", help=", ".join(PLANS))
    p.add_argument("--seeds", default="0,1", help="comma list of seeds for the main plan")
    p.add_argument("--alphas", default="0,0.25,0.5,0.75,1", help="α values of the alpha plan")
    p.add_argument("--batch-sizes", default="16,64,256", help="batch sizes of the batch plan")
    p.add_argument("--merge", default="0.5", help="comma list of λ for the merge plan")
    p.add_argument("--data-dir", default="../shared/datasets")
    p.add_argument("--train-data", action="append", default=None, help="override the training data")
    p.add_argument("--work", default="study-runs", help="models and result files (not committed)")
    p.add_argument("--report", default="docs/study.md")
    p.add_argument(
        "--report-only", action="store_true", help="train and evaluate nothing; report what --work holds"
    )
    p.add_argument(
        "--leaderboard", default=None, metavar="DIR", help="submit trained models' rows to this board"
    )
    p.add_argument("--base-model", default="default")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument(
        "--pairs", type=int, default=None, help="training pairs per run (steps = pairs / batch size)"
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--mini-batch-size", type=int, default=64, help="cached loss above this batch size")
    p.add_argument("--learning-rate", type=float, default=3e-5)
    p.add_argument("--max-seq-length", type=int, default=128)
    p.add_argument("--freeze-embeddings", action="store_true")
    p.add_argument("--save-steps", type=int, default=50)
    p.add_argument("--tasks", default=None, help="comma list replacing every plan's tasks")
    p.add_argument(
        "--only",
        default=None,
        metavar="RUNS",
        help="comma list of the plan's run names: make only these, in this order (e.g. to spend a short "
        "budget on the runs that matter first)",
    )
    p.add_argument(
        "--eval-languages",
        default=None,
        help="TASK=LANGS;... e.g. 'xquad-r=de,en,zh;mlqa-r=de,en,zh' (sweeps on a subset)",
    )
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        args.seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
        args.alphas = tuple(float(x) for x in args.alphas.split(",") if x.strip())
        args.batch_sizes = tuple(int(x) for x in args.batch_sizes.split(",") if x.strip())
        args.merge = tuple(float(x) for x in args.merge.split(",") if x.strip())
    except ValueError as err:
        p.error(f"--seeds/--alphas/--batch-sizes/--merge: {err}")
    if not args.seeds:
        p.error("--seeds: give at least one seed")
    if any(not 0 <= a <= 1 for a in args.alphas):
        p.error("--alphas: each α must be in [0, 1]")
    if any(not 0 < m < 1 for m in args.merge):
        p.error("--merge: each λ must be in (0, 1)")
    if args.pairs is not None and args.pairs <= 0:
        p.error("--pairs: expected a positive number of training pairs")
    args.tasks = [t for t in (args.tasks or "").split(",") if t.strip()] or None
    args.only = [r.strip() for r in (args.only or "").split(",") if r.strip()] or None
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

        runs = plan_runs(args.plan, args.seeds, args.batch_size, args.alphas, args.batch_sizes, args.merge)
        if args.only:
            runs = only_runs(runs, args.only)
        for task in args.tasks or sorted({t for tasks in runs.values() for t in tasks}):
            get_spec(task)
        rows, missing = collect(runs, args)
        command = "python benchmarks/study.py " + portable_command(argv if argv is not None else sys.argv[1:])
        report = write_report(rows, args, command, missing)
        submitted = submit_to_leaderboard(rows, args) if args.leaderboard else []
    except UserError as err:
        print(f"study: error: {err}", file=sys.stderr)
        return 2
    for line in submitted:
        print(f"leaderboard: {line}")
    print(f"wrote {report}" + (f" ({len(missing)} missing pieces listed in it)" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
