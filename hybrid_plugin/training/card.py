"""The trained model's record (``training.json``) and model card (``README.md``)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from hybrid_plugin.atomic import write_text
from hybrid_plugin.models.record import RECORD_FILE, RECORD_FORMAT  # noqa: F401 (re-exported)
from hybrid_plugin.provenance import portable_path

CARD_FILE = "README.md"

_CARD = """\
---
library_name: sentence-transformers
pipeline_tag: sentence-similarity
base_model: {base_model}
tags: [sentence-transformers, multilingual, cross-lingual, hybrid-batch-training, hybrid-plugin]
---

# {name}

Fine-tuned from `{base_model}` with **{strategy_text}** batches
(Elmahdy, Lin, Ahmad 2024, arXiv 2408.10536) by hybrid_plugin {version}.

| setting | value |
|---|---|
{settings}

## Training data

{data}

{mono_note}

Batches drawn by the sampler, by kind (the data loader reads one ahead): {batches}.

## Training

{timing}
{evaluation}
## Use

```python
from sentence_transformers import SentenceTransformer
model = SentenceTransformer("PATH_TO_THIS_FOLDER")
q = model.encode(["..."]{query_prompt_arg})
d = model.encode(["..."]{doc_prompt_arg})
```
"""


def strategy_text(strategy: str, alpha: float | None) -> str:
    if strategy == "hybrid":
        return f"hybrid (monolingual with probability α = {alpha:g}, else cross-lingual)"
    return {
        "mono": "X-X-mono (monolingual)",
        "cross": "X-Y (cross-lingual)",
        "english": "En-En (English only)",
    }.get(strategy, "X-X (same-language pairs, languages mixed)")


def render_card(record: dict, name: str) -> str:
    """Markdown model card from a training record (and its evaluation scores, when present)."""
    cfg = record["config"]
    settings = [
        ("strategy", cfg["strategy"]),
        ("alpha", record["sampler"]["alpha"]),
        ("batch size", cfg["batch_size"]),
        ("loss", record["loss"]),
        ("learning rate", cfg["learning_rate"]),
        ("weight decay", cfg["weight_decay"]),
        ("warmup ratio", cfg["warmup_ratio"]),
        ("steps", record["steps"]),
        ("max sequence length (training)", cfg["max_seq_length"]),
        ("word embeddings", "frozen" if cfg.get("freeze_embeddings") else "trained"),
        ("merged with base", (record.get("merge_with_base") or {}).get("weight", "no")),
        ("pairs seen", record.get("pairs_seen", "")),
        ("processes", record.get("processes", 1)),
        ("passage unit", record["data"]["passage_unit"]),
        ("seed", cfg["seed"]),
    ]
    data_lines = []
    for src in record["data"]["sources"]:
        data_lines.append(f"- `{src['format']}` {src['path']} ({len(src['files'])} files)")
    counts = record["data"]["counts"]
    data_lines.append(
        f"- {record['data']['items']} items, {record['data']['pairs']} (query, passage) pairs; "
        + ", ".join(f"{lang}: {c['questions']} q / {c['passages']} p" for lang, c in counts.items())
    )
    by_pair = record["data"].get("pairs_by_language_pair") or {}
    if by_pair:
        data_lines.append(
            "- pairs by query-passage language: " + ", ".join(f"{k} {v}" for k, v in by_pair.items())
        )
    mono = record["sampler"]["mono_languages"]
    mono_note = f"Monolingual batches draw from: {', '.join(mono)}." if mono else ""
    batches = ", ".join(f"{k} {v}" for k, v in record["sampler"]["batches_drawn"].items()) or "none"
    timing = (
        f"{record['steps']} steps in {record['train_seconds']:.0f} s on {record['device']}: "
        f"{record['seconds_per_step']:.3f} s/step, {record['pairs_per_second']:.1f} pairs/s."
    )
    if record.get("dev_loss"):
        held = record["data"].get("dev_pairs", 0)
        timing += f"\n\nHeld-out dev loss ({held} pairs): " + ", ".join(
            f"step {e['step']}: {e['loss']:.4f}" for e in record["dev_loss"]
        )
    evaluation = ""
    if record.get("evaluation"):
        rows = ["", "## Evaluation", "", "| task | mono mAP | cross mAP | multi mAP | max rank distance |"]
        rows.append("|---|---|---|---|---|")
        columns = (
            ("mono_map", ".4f"),
            ("cross_map", ".4f"),
            ("multi_map", ".4f"),
            ("max_rank_distance", ".1f"),
        )
        for task, scores in record["evaluation"].items():
            # a task without some setting kinds (tydi-goldp: mono only) has None there
            cells = ["–" if scores.get(key) is None else f"{scores[key]:{fmt}}" for key, fmt in columns]
            rows.append(f"| {task} | {' | '.join(cells)} |")
        evaluation = "\n".join(rows) + "\n"
    names = record.get("prompt_names") or {}
    return _CARD.format(
        name=name,
        base_model=record["base_model"]["name"],
        strategy_text=strategy_text(cfg["strategy"], record["sampler"]["alpha"]),
        version=record["versions"].get("hybrid-plugin"),
        settings="\n".join(f"| {k} | {v} |" for k, v in settings),
        data="\n".join(data_lines),
        mono_note=mono_note,
        batches=batches,
        timing=timing,
        evaluation=evaluation,
        query_prompt_arg=f", prompt_name={names['query']!r}" if names.get("query") else "",
        doc_prompt_arg=f", prompt_name={names['document']!r}" if names.get("document") else "",
    )


def portable_record(record: dict) -> dict:
    """A copy of a training record whose paths (output, data, base model, merge source) are portable.

    ``training.json`` travels with the model (and into committed study records): it must not carry the
    training machine's absolute paths. See :func:`hybrid_plugin.provenance.portable_path`.
    """
    out = copy.deepcopy(record)

    def fix(holder: dict | None, key: str) -> None:
        if isinstance(holder, dict) and isinstance(holder.get(key), str):
            holder[key] = portable_path(holder[key])

    cfg = out.get("config")
    for key in ("output", "data_dir", "eval_out", "base_model"):
        fix(cfg, key)
    if isinstance(cfg, dict) and isinstance(cfg.get("train_data"), list):
        cfg["train_data"] = [_portable_source(s) if isinstance(s, str) else s for s in cfg["train_data"]]
    fix(out.get("base_model"), "path")
    fix(out.get("base_model"), "name")
    fix(out.get("merge_with_base"), "merged_from")
    for source in (out.get("data") or {}).get("sources") or []:
        fix(source, "path")
    return out


def _portable_source(spec: str) -> str:
    """``FORMAT:PATH`` (``mlqa:/data/mlqa``, ``squad[de]:...``) with its path made portable."""
    fmt, sep, path = spec.partition(":")
    return f"{fmt}{sep}{portable_path(path)}" if sep and fmt and path else portable_path(spec)


def write_record(folder: Path, record: dict, name: str) -> None:
    """``training.json`` and ``README.md`` (titled ``name``) into the model folder, atomically.

    Paths are recorded portably (:func:`portable_record`).
    """
    folder = Path(folder)
    record = portable_record(record)
    write_text(folder / RECORD_FILE, json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    write_card(folder, record, name)


def write_card(folder: Path, record: dict, name: str) -> None:
    write_text(Path(folder) / CARD_FILE, render_card(portable_record(record), name))
