"""Merging trained weights with the base's (λ·trained + (1 − λ)·base); the files a saved model keeps."""

from __future__ import annotations

import shutil
from pathlib import Path

from hybrid_plugin.atomic import atomic_dir
from hybrid_plugin.errors import UserError
from hybrid_plugin.models.ref import fingerprint_v1, resolve_model
from hybrid_plugin.training.card import RECORD_FILE, write_record


def merge_weights(model, base_state: dict, weight: float) -> int:
    """In place: every floating-point tensor becomes ``weight·trained + (1 − weight)·base``.

    Returns the number of tensors merged.
    """
    import torch

    merged = 0
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            base = base_state.get(name)
            if base is None or not tensor.is_floating_point():
                continue
            tensor.copy_(weight * tensor + (1.0 - weight) * base.to(tensor.device, tensor.dtype))
            merged += 1
    return merged


#: files that training never changes: copied from the base model byte for byte
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "sentencepiece.bpe.model",
    "spiece.model",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)
#: module configs whose settings the saved copy must keep (sentence-transformers drops ``model_kwargs``)
MODULE_CONFIGS = ("sentence_bert_config.json",)


def keep_base_files(base: Path, saved: Path) -> None:
    """Undo what saving changes besides the weights: the tokenizer files go back to the base's bytes
    (saving writes the training truncation into tokenizer.json), and module-config keys that the base
    has but the save dropped (``model_kwargs``, e.g. no pooler) are restored."""
    import json

    from hybrid_plugin.atomic import write_text

    base, saved = Path(base), Path(saved)
    for src in base.rglob("*"):
        rel = src.relative_to(base)
        dest = saved / rel
        if not src.is_file() or not dest.is_file():
            continue
        if src.name in TOKENIZER_FILES:
            shutil.copyfile(src, dest)
        elif src.name in MODULE_CONFIGS:
            want = json.loads(src.read_text(encoding="utf-8"))
            have = json.loads(dest.read_text(encoding="utf-8"))
            missing = {k: v for k, v in want.items() if k not in have}
            if missing:
                write_text(dest, json.dumps({**have, **missing}, indent=2, ensure_ascii=False) + "\n")


def merge_saved(
    trained: str | Path, weight: float, output: str | Path, base_model: str | None = None
) -> dict:
    """Write ``weight·trained + (1 − weight)·base`` of an already trained model folder to ``output``.

    The same weights as training with ``--merge-with-base weight`` (training is deterministic for a
    seed), without training again. The base is ``base_model`` (default: the one in the trained
    model's ``training.json``, which must match its fingerprint). Returns the new record.
    """
    import json

    trained, output = Path(trained), Path(output)
    record_file = trained / RECORD_FILE
    if not record_file.is_file():
        raise UserError(f"{trained}: no {RECORD_FILE}; expected a model written by hybrid-plugin train")
    record = json.loads(record_file.read_text(encoding="utf-8"))
    if record.get("merge_with_base"):
        weight_before = record["merge_with_base"]["weight"]
        raise UserError(f"{trained}: already merged with its base (weight {weight_before})")
    if not 0.0 <= weight <= 1.0:
        raise UserError(f"merge weight must be in [0, 1] (1 = the trained weights), got {weight}")
    if output.exists():
        raise UserError(f"{output} exists; choose a new folder for the merged model")
    base_ref = resolve_model(base_model if base_model is not None else record["config"]["base_model"])
    recorded = record["base_model"]["fingerprint"]
    # a model trained before content-v2 records its base's files-v1 fingerprint
    if recorded != base_ref.fingerprint and recorded != fingerprint_v1(base_ref.path):
        raise UserError(
            f"base model {base_ref.name} (fingerprint {base_ref.fingerprint[:12]}) is not the one "
            f"{trained} was trained from ({record['base_model']['fingerprint'][:12]})"
        )
    model = resolve_model(str(trained)).load()
    tensors = merge_weights(model, base_ref.load().state_dict(), weight)
    record = dict(record)
    record["config"] = dict(record["config"], merge_with_base=weight, output=str(output))
    record["merge_with_base"] = {"weight": weight, "tensors": tensors, "merged_from": str(trained)}
    record["evaluation"] = {}
    with atomic_dir(output) as tmp:
        model.save(str(tmp), create_model_card=False)
        keep_base_files(trained, Path(tmp))
        write_record(Path(tmp), record, name=output.name)
    print(f"wrote {output}: {weight:g}·{trained.name} + {1 - weight:g}·base ({tensors} tensors)")
    return record
