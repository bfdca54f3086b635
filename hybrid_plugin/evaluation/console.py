"""The console table of one evaluation: per-language classic measures, the macro, and the bias line."""

from __future__ import annotations

from typing import Any

from hybrid_plugin.data.settings import Setting
from hybrid_plugin.data.spec import SETTING_KINDS, SettingKind
from hybrid_plugin.evaluation.measures import MEASURES
from hybrid_plugin.evaluation.results import Results, Scores

MONO_MEASURE = "nDCG@10"  # the standard measure shown per language for monolingual-only tasks


def _fmt(value: float | None, key: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if key == "max_rank_distance" else f"{value:.3f}"


def scores_line(scores: Scores) -> str:
    """Macro scores on one line, leaving out those a task does not have (``None``)."""
    values = [(m, scores.get(m.key)) for m in MEASURES.classic()]
    return "  ".join(
        f"{m.label} {v:.1f}" if m.key == "max_rank_distance" else f"{m.label} {v:.4f}"
        for m, v in values
        if v is not None
    )


def _mono_rows(results: Results) -> tuple[list[str], list[list[str]]]:
    """Monolingual-only task: per language its queries, candidates, mAP and nDCG@10 (if measured)."""
    header = ["lang", "queries", "candidates", "mAP"]
    by_kind = results.standard_measures.by_kind
    with_measure = MONO_MEASURE in by_kind.get(SettingKind.MONO, {})
    if with_measure:
        header.append(MONO_MEASURE)
    rows = []
    for lang, vals in results.per_language.items():
        entry = results.setting(Setting(lang, lang))
        row = [lang, str(entry.queries if entry else 0), str(entry.candidates if entry else 0)]
        row.append(_fmt(vals.mono_map, ""))
        if with_measure:
            row.append(_fmt(entry.measures.get(MONO_MEASURE) if entry else None, ""))
        rows.append(row)
    c = results.counts
    macro = ["macro", str(c["queries"]), str(c["candidates"]), _fmt(results.scores.mono_map, "")]
    if with_measure:
        macro.append(_fmt(by_kind[SettingKind.MONO][MONO_MEASURE], ""))
    return header, [*rows, macro]


def console_table(results: Results) -> str:
    """Per query language and macro: the mAP of each setting kind the task has, and (with a multilingual
    pool) max rank distance and same-language share; monolingual-only tasks show mAP and nDCG@10."""
    kinds = results.kinds
    counts = results.counts["settings"]
    if kinds == (SettingKind.MONO,):
        header, rows = _mono_rows(results)
        settings = f"{counts[SettingKind.MONO]} monolingual settings (no cross-lingual or multilingual ones)"
    else:
        columns = [(m.label, m.key) for m in MEASURES.classic() if m.kind in kinds]
        header = ["lang", *(name for name, _ in columns)]
        rows = [
            [lang, *(_fmt(getattr(vals, key), key) for _, key in columns)]
            for lang, vals in results.per_language.items()
        ]
        rows.append(["macro", *(_fmt(results.scores.get(key), key) for _, key in columns)])
        settings = "/".join(str(counts[k]) for k in SETTING_KINDS) + " settings"
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    sep = "-" * len(line(header))
    title = (
        f"{results.task_title} · {results.model['name']} · {results.candidate_format} candidates · {settings}"
    )
    body = [title, line(header), sep, *(line(r) for r in rows[:-1]), sep, line(rows[-1])]
    bias = [
        (m.label, results.scores.get(m.key))
        for m in MEASURES.later()
        if results.scores.get(m.key) is not None
    ]
    if bias:
        body.append("language bias in the pool (macro): " + "  ".join(f"{k} {v:.3f}" for k, v in bias))
    standard = results.standard_measures
    if standard.by_kind:
        body.append(f"standard measures (macro; {_measures_source(standard)}):")
        for kind, values in standard.by_kind.items():
            body.append(f"  {kind:<5} " + "  ".join(f"{m} {v:.3f}" for m, v in values.items()))
    align = results.alignment
    if align and align.get("parallel_cosine") is not None:
        lid = align["language_id"]
        body.append(
            f"alignment: cosine parallel {align['parallel_cosine']:.3f} vs non-parallel "
            f"{align['non_parallel_cosine']:.3f} (gap {align['gap']:.3f}); language-ID probe accuracy "
            f"{lid['accuracy']:.3f} (majority class {lid['chance']:.3f})"
        )
    t = results.timings
    tail = f"metrics {t['metrics_s']:.2f}s · ir-measures {t['ir_measures_s']:.1f}s"
    if "index_s" in t:  # BM25
        missed = results.provenance["unretrieved"]["pairs"][SettingKind.MULTI]
        body.append(
            f"BM25 index {t['index_s']:.1f}s · search {t['search_s']:.1f}s · {tail} · "
            f"relevant pairs unretrieved in the pool {missed['unretrieved']} of {missed['relevant']} "
            "(AP counts them 0)"
        )
    else:
        body.append(
            f"texts encoded {results.counts['texts_encoded']} of {results.counts['unique_texts']} "
            f"unique · encode {t['encode_s']:.1f}s · {tail}"
        )
    return "\n".join(body)


def _measures_source(standard: Any) -> str:
    native = set(standard.native)
    others = [m for values in standard.by_kind.values() for m in values if m not in native]
    if not others:
        return "exact, full ranking"
    exact = ", ".join(standard.native) or "none"
    via_runs = ", ".join(dict.fromkeys(others))
    return f"exact: {exact}; ir-measures on runs of depth {standard.run_depth or 'full'}: {via_runs}"
