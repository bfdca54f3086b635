"""Report sections built on the claims' statistics: seed spread against query sampling, the batch-size
question, the training settings and the conclusions at the top."""

from __future__ import annotations

import numpy as np

from .claims import CLAIM_ALPHA, has_per_query, paired, stated
from .records import RunRecord, as_records, by_label, seed_mean
from .tables import SEEN, breakdown_table, pareto_lines, sweep_table


def _query_se(path: str, key: str) -> float | None:
    """Standard error of one result's macro score from query sampling: the width of its 95% bootstrap
    interval over question groups / (2 · 1.96)."""
    from hybrid_plugin.evaluation.measures import MEASURES
    from hybrid_plugin.stats.compare import score_interval

    measure = MEASURES[key]
    interval = score_interval(path, measure, bootstraps=2_000, seed=0)
    return None if interval is None else (interval[1] - interval[0]) / (2 * 1.959964)


def spread_table(rows: list[RunRecord], task: str) -> tuple[list[str], str | None]:
    """Seed-to-seed spread (sample sd over seeds) against query-sampling noise (bootstrap SE over
    question groups, mean over seeds), for every model with two or more seeds with per-query files."""
    rows = as_records(rows)
    lines = [
        "| model | seeds | multi mAP: seed sd | multi mAP: query SE "
        "| mono mAP: seed sd | mono mAP: query SE |",
        "|---|---|---|---|---|---|",
    ]
    ratios = []
    for label, group in by_label([r for r in rows if task in r.tasks]).items():
        paths = [g.results_path.get(task) for g in group]
        if len(group) < 2 or not all(p and has_per_query(p) for p in paths):
            continue
        cells = []
        for key in ("multi_map", "mono_map"):
            sd = float(np.std([g.tasks[task].score(key) for g in group], ddof=1))
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
        + f". With {min(len(g) for g in by_label(rows).values() if len(g) > 1)} seeds a standard deviation "
        "is itself a rough estimate."
    )
    return lines, sentence


def batch_section(rows: list[RunRecord], task: str, batch_size: int) -> tuple[list[str], str | None]:
    """The seed question: hybrid α = 0.5 at each batch size (equal training pairs where the runs say so),
    by language family and seen/unseen training language, with paired tests between adjacent sizes."""
    rows = as_records(rows)
    sizes = sorted(
        {r.batch_size for r in rows if task in r.tasks and r.strategy == "hybrid"
         and r.alpha == 0.5 and r.merge is None and not r.debias}
    )  # fmt: skip
    if len(sizes) < 2:
        return [], None
    base = "hybrid α=0.5"
    labels = {b: base if b == batch_size else f"{base} (batch {b})" for b in sizes}
    groups = by_label([r for r in rows if task in r.tasks and r.label in labels.values()])
    labels = {b: lab for b, lab in labels.items() if lab in groups}
    sizes = list(labels)
    steps = {b: sorted({g.steps for g in groups[labels[b]]}) for b in sizes}
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
        g.results_path.get(task) and has_per_query(g.tasks[task].path)
        for lab in labels.values()
        for g in groups[lab]
    )
    verdicts = []
    if testable:
        lines += ["Adjacent sizes, paired over question groups (difference [95% CI], p):", ""]
        for a, b in adjacent:
            cells = {
                key: paired(groups, task, labels[b], labels[a], key)[0]
                for key in ("multi_map", "max_rank_distance", "lang_ndcg_10")
            }
            lines.append(
                f"- batch {b} − batch {a}: multi mAP {stated(cells['multi_map'])}; max rank distance "
                f"{stated(cells['max_rank_distance'], 1)}; Lang-nDCG@10 {stated(cells['lang_ndcg_10'])}."
            )
            c = cells["multi_map"]
            verdicts.append((a, b, c.difference.value, c.test.p < CLAIM_ALPHA))
        if any(len(groups[labels[a]]) != len(groups[labels[b]]) for a, b in adjacent):
            lines.append("- Each test uses the seeds both sizes have; the tables above average all seeds.")
        lines += [""]
    multi = {b: seed_mean(groups[labels[b]], task, "multi_map") for b in sizes}
    unseen = {
        b: float(np.mean([
            g.tasks[task].per_language[lang]["multi_map"]
            for g in groups[labels[b]] for lang in g.tasks[task].per_language if lang not in SEEN
        ]))
        for b in sizes
    }  # fmt: skip
    trend = " → ".join(f"{multi[b]:.3f} (batch {b})" for b in sizes)
    spread = {  # a size's seed sd of multi mAP, where it has two seeds or more
        b: float(np.std([g.tasks[task].score("multi_map") for g in groups[labels[b]]], ddof=1))
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


def training_settings(rows: list[RunRecord]) -> str:
    """The trained runs' settings, each value once (read from their records, not from the arguments)."""
    seen: dict[str, list] = {}
    for row in rows:
        for key, value in (row.training or {}).items():
            if value not in seen.setdefault(key, []):
                seen[key].append(value)
    if not seen:
        return "no trained runs"
    return "; ".join(
        f"{key.replace('_', ' ')} {' / '.join(str(v) for v in values)}" for key, values in seen.items()
    )


def conclusions(
    rows: list[RunRecord],
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
        (len(g) for g in by_label([r for r in rows if r.strategy != "untrained"]).values()), default=0
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
