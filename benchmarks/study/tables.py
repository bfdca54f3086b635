"""The report's tables: scores per model (seed means ± sd), by language group, along the α and batch
sweeps, the Pareto front, alignment and TyDi GoldP."""

from __future__ import annotations

import numpy as np

from .plans import Run
from .records import RunRecord, TaskResult, as_records, by_label, seed_mean

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


def main_table(rows: list[RunRecord], task: str) -> list[str]:
    lines = [
        "| model | seeds | mono mAP | cross mAP | multi mAP | max rank distance ↓ "
        "| same-language top share |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, group in by_label([r for r in rows if task in r.tasks]).items():
        vals = [g.tasks[task] for g in group]
        lines.append(
            f"| {label} | {len(group)} | "
            + " | ".join(
                _cell([v.score(m) for v in vals], m)
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


def breakdown_table(
    rows: list[RunRecord],
    task: str,
    metric: str = "multi_map",
    labels: list[str] | None = None,
    deltas: list[tuple[str, str]] | None = None,
) -> list[str]:
    """``metric`` (per query language) of ``labels`` (default: the main plan's models) by language
    family and by seen or unseen training language (seed means), with the ``deltas`` (default:
    hybrid's differences to the two baselines)."""
    main_labels = labels or ["untrained base", "X-X-mono", "X-Y", "hybrid α=0.5", "X-X"]
    groups = by_label([r for r in rows if task in r.tasks and r.label in main_labels])
    groups = {label: groups[label] for label in main_labels if label in groups}
    if not groups:
        return []
    langs = list(next(iter(groups.values()))[0].tasks[task].per_language)
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
                g.tasks[task].per_language[lang][metric]
                for g in group
                for lang in members
                if g.tasks[task].per_language[lang][metric] is not None
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


def sweep_points(rows: list[RunRecord], task: str, by: str, batch_size: int) -> dict[float, list[TaskResult]]:
    """Task scores by α (X-Y is 0, X-X-mono 1; batch ``batch_size``) or by batch size (hybrid α = 0.5),
    each with one entry per seed, in ascending order."""
    points: dict[float, list[TaskResult]] = {}
    for r in rows:
        if task not in r.tasks or r.merge is not None or r.debias:
            continue
        if by == "alpha" and r.strategy in ("hybrid", "mono", "cross") and r.batch_size == batch_size:
            points.setdefault(Run(r.strategy, r.alpha).alpha_value, []).append(r.tasks[task])
        elif by == "batch" and r.strategy == "hybrid" and r.alpha == 0.5:
            points.setdefault(r.batch_size, []).append(r.tasks[task])
    return dict(sorted(points.items()))


def sweep_table(rows: list[RunRecord], task: str, by: str, batch_size: int, bias: bool = False) -> list[str]:
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


def pareto(rows: list[RunRecord], task: str) -> list[dict]:
    """Every model's seed-mean monolingual and multilingual mAP, with the models that dominate it
    (at least as good on both, better on one); an empty ``dominated_by`` puts it on the front."""
    rows = as_records(rows)
    points = [
        {"label": label, "mono": seed_mean(g, task, "mono_map"), "multi": seed_mean(g, task, "multi_map")}
        for label, g in by_label([r for r in rows if task in r.tasks]).items()
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


def alignment_table(rows: list[RunRecord]) -> list[str]:
    lines = [
        "| model | task | parallel cosine | non-parallel cosine | gap ↑ "
        "| language-ID accuracy ↓ (majority class) |",
        "|---|---|---|---|---|---|",
    ]
    for label, group in by_label(rows).items():
        for task in ("xquad-r", "mlqa-r"):
            vals = [
                g.tasks[task].alignment
                for g in group
                if task in g.tasks and g.tasks[task].alignment is not None
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


def tydi_table(rows: list[RunRecord]) -> list[str]:
    groups = by_label([r for r in rows if "tydi-goldp" in r.tasks])
    if not groups:
        return []
    langs = list(next(iter(groups.values()))[0].tasks["tydi-goldp"].per_language)
    lines = ["| model | " + " | ".join(langs) + " | macro |", "|---|" + "---|" * (len(langs) + 1)]
    for label, group in groups.items():
        cells = []
        for lang in langs:
            m = np.mean([g.tasks["tydi-goldp"].per_language[lang]["mono_map"] for g in group])
            n = [g.tasks["tydi-goldp"].ndcg10_per_language.get(lang) for g in group]
            n = [v for v in n if v is not None]
            cells.append(f"{m:.3f} / {np.mean(n):.3f}" if n else f"{m:.3f}")
        macro = np.mean([g.tasks["tydi-goldp"].score("mono_map") for g in group])
        ndcg = [g.tasks["tydi-goldp"].get("mono_ndcg10") for g in group]
        ndcg = [v for v in ndcg if v is not None]
        macro_text = f"{macro:.3f} / {np.mean(ndcg):.3f}" if ndcg else f"{macro:.3f}"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {macro_text} |")
    return lines
