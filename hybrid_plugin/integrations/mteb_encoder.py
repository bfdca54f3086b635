"""An MTEB model as the dense retriever's :class:`~hybrid_plugin.scoring.dense.Encoder` (imports mteb).

The MTEB tasks score through the one engine like ``hybrid-plugin evaluate`` does; what differs is only
how texts are embedded (the model's own MTEB ``encode``, so wrappers with instructions work) and how
the model is identified in the embedding store. For a plain SentenceTransformer wrapper of a local
folder the identity equals the evaluator's (folder fingerprint, literal prompts), so both share the
cache; a model that cannot be identified gets no fingerprint and is encoded without the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.types import PromptType

from hybrid_plugin.scoring.dense import Role


@dataclass(frozen=True)
class EncoderIdentity:
    """How a model's embeddings are keyed in the embedding store, and how they are compared."""

    fingerprint: str | None  # None: the model cannot be identified, so nothing is cached on disk
    name: str
    prompt_keys: dict[PromptType, str]
    similarity: str  # "cosine" or "dot"

    @property
    def normalize(self) -> bool:
        return self.similarity == "cosine"


_FINGERPRINTS: dict[str, str] = {}


def folder_fingerprint(path: str) -> str:
    """The evaluator's content fingerprint of a model folder (computed once per process)."""
    if path not in _FINGERPRINTS:
        from hybrid_plugin.models.ref import fingerprint_folder

        _FINGERPRINTS[path] = fingerprint_folder(Path(path))
    return _FINGERPRINTS[path]


def _similarity(model: Any) -> str:
    meta = getattr(model, "mteb_model_meta", None)
    name = getattr(meta, "similarity_fn_name", None)
    if name is None:
        name = getattr(getattr(model, "model", None), "similarity_fn_name", None) or "cosine"
    return str(getattr(name, "value", name))


def encoder_identity(model: Any, metadata: TaskMetadata, encode_kwargs: Mapping[str, Any]) -> EncoderIdentity:
    """Store keys: the model folder's fingerprint (shared with ``hybrid-plugin evaluate``) or name@revision.

    Prompt keys are the literal prompt strings when the model is a plain MTEB SentenceTransformer
    wrapper whose prompt mteb resolves (so the evaluator's cache is shared), else a key naming the
    task and role: other wrappers may build task-specific instructions.
    """
    from mteb.models import SentenceTransformerEncoderWrapper
    from mteb.models.abs_encoder import get_prompt_name

    similarity = _similarity(model)
    if similarity not in ("cosine", "dot"):
        raise ValueError(
            f"{metadata.name} ranks by cosine or dot product; this model's similarity is {similarity!r}"
        )
    meta = getattr(model, "mteb_model_meta", None)
    name = str(getattr(meta, "name", None) or type(model).__name__)
    path = (getattr(meta, "loader_kwargs", None) or {}).get("model_path")
    extra = {k: encode_kwargs[k] for k in ("precision",) if encode_kwargs.get(k) is not None}
    experiment = getattr(meta, "experiment_kwargs", None) or {}
    fingerprint = None
    if path:
        fingerprint = folder_fingerprint(path)
    elif meta is not None and meta.name and meta.revision and "no_model_name" not in meta.name:
        fingerprint = hashlib.sha256(f"mteb:{meta.name}@{meta.revision}".encode()).hexdigest()
    if fingerprint and (extra or experiment):
        fingerprint = hashlib.sha256(
            f"{fingerprint}|{sorted(extra.items())}|{sorted(experiment.items())}".encode()
        )
        fingerprint = fingerprint.hexdigest()

    keys: dict[PromptType, str] = {}
    for role in (PromptType.query, PromptType.document):
        prompt = None
        if type(model) is SentenceTransformerEncoderWrapper and model.model_prompts:
            prompt_name = get_prompt_name(model.model_prompts, metadata, role)
            prompt = model.model_prompts.get(prompt_name) if prompt_name else None
        keys[role] = prompt if prompt is not None else f"<mteb {metadata.name} {role.value}>"
    if keys[PromptType.query] == keys[PromptType.document]:  # never let the two roles share a store
        keys = {role: f"{key}<{role.value}>" for role, key in keys.items()}
    return EncoderIdentity(fingerprint, name, keys, similarity)


def encode_with_mteb_model(
    model: Any,
    texts: list[str],
    role: PromptType,
    metadata: TaskMetadata,
    hf_split: str,
    hf_subset: str,
    encode_kwargs: Mapping[str, Any],
) -> np.ndarray:
    """Embeddings of ``texts`` (exactly as given: no stripping) through ``model.encode``, float32."""
    import torch
    from datasets import Dataset
    from torch.utils.data import DataLoader

    columns = {"text": texts, ("query" if role == PromptType.query else "body"): texts}
    batch_size = int(encode_kwargs.get("batch_size") or 32)
    loader = DataLoader(Dataset.from_dict(columns), batch_size=batch_size)
    emb = model.encode(
        loader,
        task_metadata=metadata,
        hf_split=hf_split,
        hf_subset=hf_subset,
        prompt_type=role,
        **{**encode_kwargs, "show_progress_bar": False},
    )
    if isinstance(emb, torch.Tensor):
        emb = emb.detach().float().cpu().numpy()
    emb = np.asarray(emb, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(texts):
        raise ValueError(
            f"{metadata.name}: the model returned embeddings of shape {emb.shape} for {len(texts)} texts"
        )
    return emb


@dataclass
class MTEBEncoder:
    """An MTEB model, for one task and split, as an :class:`~hybrid_plugin.scoring.dense.Encoder`.

    ``hf_subset`` is the subset MTEB was evaluating when the pool was first scored: every subset shares
    these embeddings, as the model's encode only sees it for task-specific instructions.
    """

    model: Any = field(repr=False)
    metadata: TaskMetadata = field(repr=False)
    hf_split: str
    hf_subset: str
    encode_kwargs: Mapping[str, Any] = field(default_factory=dict)
    identity: EncoderIdentity = field(init=False)

    def __post_init__(self) -> None:
        self.identity = encoder_identity(self.model, self.metadata, self.encode_kwargs)

    @property
    def name(self) -> str:
        return self.identity.name

    @property
    def fingerprint(self) -> str | None:
        return self.identity.fingerprint

    @property
    def similarity(self) -> str:
        return self.identity.similarity

    @property
    def batch_size(self) -> int:
        """MTEB's encode batch size (its default: 32)."""
        return int(self.encode_kwargs.get("batch_size") or 32)

    def prompt(self, role: Role) -> str:
        return self.identity.prompt_keys[PromptType(role)]

    def encode(self, texts: list[str], role: Role, batch_size: int) -> np.ndarray:
        kwargs = dict(self.encode_kwargs)
        if batch_size != self.batch_size or "batch_size" in kwargs:  # else MTEB's own default applies
            kwargs["batch_size"] = batch_size
        return encode_with_mteb_model(
            self.model, texts, PromptType(role), self.metadata, self.hf_split, self.hf_subset, kwargs
        )

    def provenance(self) -> dict[str, Any]:
        meta = getattr(self.model, "mteb_model_meta", None)
        return {
            "name": self.name,
            "revision": getattr(meta, "revision", None),
            "fingerprint": self.fingerprint,
            "query_prompt": self.prompt("query"),
            "document_prompt": self.prompt("document"),
            "similarity": self.similarity,
            "mteb_task": self.metadata.name,
        }

    def device(self) -> str:
        inner = getattr(self.model, "model", self.model)
        device = getattr(inner, "device", None)
        if device is not None:
            return str(device)
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
