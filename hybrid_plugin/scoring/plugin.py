"""Encoder plug-ins: any object with an ``encode`` method, given in Python or as ``--model module:factory``.

The protocol (:class:`TextEncoder`) is what sentence-transformers models and MTEB's model wrappers
already offer, so most models need no adapter:

- ``encode(texts: list[str], prompt_name=..., **kwargs)`` returning one vector per text (numpy,
  torch or nested lists). ``prompt_name`` is ``"query"`` or ``"document"``; an object with a
  ``prompts`` dict (a SentenceTransformer) is passed only the names it defines.
- or MTEB's ``encode(inputs: DataLoader, *, task_metadata, hf_split, hf_subset, prompt_type)``
  (recognised by its ``task_metadata`` parameter), called with the task's MTEB metadata.
- optional: ``fingerprint`` (a string naming exactly these weights; the embedding cache key),
  ``name``, ``similarity`` / ``similarity_fn_name`` (``"cosine"``, the default, or ``"dot"``).

The cache key of a model is what it reports as ``fingerprint``. Without one, a ``module:factory``
model is keyed by the module, the attribute, the module file's bytes and the versions of its
package and of the libraries that compute embeddings; an object handed in from Python with no
fingerprint is never cached on disk. ``--model module:factory`` imports and runs user code: that is
the user's explicit choice on the command line, as with ``python -m``.

What a plug-in raises, or returns in a shape we cannot use, is one line naming the plug-in and the
problem (``HYBRID_PLUGIN_DEBUG=1`` lets its exceptions through with their traceback). What ``encode``
returns is copied: an encoder may hand back the same buffer on every call.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from hybrid_plugin.errors import UserError
from hybrid_plugin.models.ref import DOCUMENT_PROMPT_NAMES
from hybrid_plugin.scoring.dense import Role

_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
PLUGIN_PATTERN = re.compile(rf"({_DOTTED}):({_DOTTED})")
HEX64 = re.compile(r"[0-9a-f]{64}")
# libraries whose versions can change what a plug-in computes (part of its derived fingerprint)
EMBEDDING_LIBRARIES = ("numpy", "torch", "transformers", "sentence-transformers", "mteb")
# MTEB's names of the built-in tasks, as hybrid_plugin.integrations.mteb_metadata registers them
MTEB_TASK_NAMES = {"xquad-r": "XQuADR", "mlqa-r": "MLQAR"}
#: set to 1 to see a plug-in's own exceptions with their traceback instead of one line
DEBUG_ENV = "HYBRID_PLUGIN_DEBUG"
_LOADING: set[str] = set()  # factories being called now (a factory running its own --model again)


class ReenteredFactory(Exception):
    """A factory ran ``--model`` with itself again (not a UserError: the inner CLI must not print it)."""


@runtime_checkable
class TextEncoder(Protocol):
    """The one method a plug-in model needs (see the module docstring for its two call shapes)."""

    def encode(self, *args: Any, **kwargs: Any) -> Any: ...


def is_plugin_spec(model: str) -> bool:
    """``package.module:factory`` (not a hub id ``org/name``, a folder or a built-in name)."""
    return PLUGIN_PATTERN.fullmatch(model) is not None and not Path(model).expanduser().exists()


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def derived_fingerprint(module_name: str, attribute: str) -> str:
    """sha256 of module + attribute + the module file's bytes + package and library versions."""
    module = sys.modules[module_name]
    top = module_name.partition(".")[0]
    packages = sorted(metadata.packages_distributions().get(top, []))
    parts = [f"plugin {module_name}:{attribute}"]
    parts += [f"{name}=={_version(name)}" for name in (*packages, *EMBEDDING_LIBRARIES)]
    source = getattr(module, "__file__", None)
    if source and Path(source).is_file():
        parts.append(hashlib.sha256(Path(source).read_bytes()).hexdigest())
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def reported_fingerprint(model: Any) -> str | None:
    """What the model says identifies it (a 64-hex digest as is, any other string hashed)."""
    value = getattr(model, "fingerprint", None)
    if not isinstance(value, str) or not value:
        return None
    return value if HEX64.fullmatch(value) else hashlib.sha256(f"reported {value}".encode()).hexdigest()


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    text = text if len(text) <= 300 else text[:297] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


@contextmanager
def user_code(what: str) -> Iterator[None]:
    """Run a plug-in's code: what it raises becomes one line naming ``what`` and the exception (with
    ``HYBRID_PLUGIN_DEBUG=1`` it propagates with its traceback). Our own one-line errors pass."""
    try:
        yield
    except UserError:
        raise
    except Exception as err:
        if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        if isinstance(err, ReenteredFactory):
            raise UserError(f"{what} ran --model {err} again (a factory must return an encoder)") from None
        if isinstance(err, RecursionError):
            raise UserError(f"{what} recursed without end (RecursionError)") from None
        raise UserError(f"{what} raised {_one_line(err)} (set {DEBUG_ENV}=1 for the traceback)") from None


def load_factory(spec: str) -> tuple[Any, str]:
    """Import ``module:factory``, call the factory, return (model, fingerprint)."""
    module_name, attribute = PLUGIN_PATTERN.fullmatch(spec).groups()  # type: ignore[union-attr]
    if spec in _LOADING:
        raise ReenteredFactory(spec)
    with user_code(f"--model {spec}: importing module {module_name}"):
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise UserError(
                f"--model {spec}: cannot import module {module_name} ({_one_line(err)})"
            ) from None
        target: Any = module
        for part in attribute.split("."):
            if not hasattr(target, part):
                raise UserError(f"--model {spec}: module {module_name} has no attribute {attribute}")
            target = getattr(target, part)
    if not callable(target):
        raise UserError(f"--model {spec}: {attribute} is not callable (expected a factory)")
    _LOADING.add(spec)
    try:
        with user_code(f"--model {spec}: the factory"):
            model = target()
            if isinstance(model, (str, bytes, bytearray)) or not callable(getattr(model, "encode", None)):
                raise UserError(
                    f"--model {spec}: the factory returned a {type(model).__name__}, which is not an "
                    "encoder (expected an object with an encode method)"
                )
            fingerprint = reported_fingerprint(model)
    finally:
        _LOADING.discard(spec)
    return model, fingerprint or derived_fingerprint(module_name, attribute)


def _parameters(function: Any) -> tuple[set[str], bool]:
    """(named parameters, whether it takes **kwargs) of a callable."""
    try:
        params = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return set(), True
    return {p.name for p in params}, any(p.kind is p.VAR_KEYWORD for p in params)


def _as_array(emb: Any, n: int, name: str) -> np.ndarray:
    """What ``encode`` returned as a fresh float32 ``(n, dim)`` array (a copy: encoders may reuse one
    buffer on every call), or one line saying why it cannot be used."""
    what = f"model {name}: encode"
    expected = f"expected an array of shape ({n}, dim)"
    with user_code(f"{what}'s output"):
        if hasattr(emb, "detach"):  # a torch tensor
            emb = emb.detach().float().cpu().numpy()
        if isinstance(emb, Iterator):
            raise UserError(f"{what} returned a {type(emb).__name__} for {n} texts ({expected})")
        try:
            arr = np.asarray(emb)
        except ValueError:  # NumPy's refusal of rows of different lengths
            raise UserError(f"{what} returned rows of different lengths for {n} texts ({expected})") from None
    if arr.dtype.kind not in "fiu":
        found = f"a {type(emb).__name__}" if arr.ndim == 0 else f"values of type {arr.dtype}"
        raise UserError(f"{what} returned {found} for {n} texts ({expected} of numbers)")
    if arr.ndim != 2 or arr.shape[0] != n:
        raise UserError(f"{what} returned shape {arr.shape} for {n} texts ({expected})")
    if arr.shape[1] == 0:
        raise UserError(
            f"{what} returned shape {arr.shape}: embeddings of dimension 0 (expected ({n}, dim) with dim ≥ 1)"
        )
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        raise UserError(f"{what} returned NaN or infinite values for {int((~finite).sum())} of {n} texts")
    with np.errstate(over="ignore"):
        out = np.array(arr, dtype=np.float32, order="C")  # always a copy
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        raise UserError(
            f"{what} returned values beyond float32's range (±3.4e38) for {int((~finite).sum())} of {n} texts"
        )
    return out


@dataclass
class PluginEncoder:
    """A :class:`TextEncoder` as the dense retriever's :class:`~hybrid_plugin.scoring.dense.Encoder`."""

    model: Any = field(repr=False)
    fingerprint: str | None = None
    name: str = ""
    source: str | None = None  # "module:factory" when it came from the command line
    task: str | None = None  # the pool's task, for MTEB-protocol models (their task metadata)

    def __post_init__(self) -> None:
        if not callable(getattr(self.model, "encode", None)):
            raise TypeError(f"a {type(self.model).__name__} has no encode method")
        if self.fingerprint is None:
            self.fingerprint = reported_fingerprint(self.model)
        if not self.name:
            reported = getattr(self.model, "name", None)
            self.name = (
                reported
                if isinstance(reported, str) and reported
                else (self.source or type(self.model).__name__)
            )
        names, self._any_kwargs = _parameters(self.model.encode)
        self._names = names
        self.mteb_protocol = "task_metadata" in names
        similarity = getattr(self.model, "similarity", None)
        if not isinstance(similarity, str):
            similarity = getattr(self.model, "similarity_fn_name", None)
        if self.mteb_protocol:
            meta_similarity = getattr(
                getattr(self.model, "mteb_model_meta", None), "similarity_fn_name", None
            )
            similarity = getattr(meta_similarity, "value", meta_similarity) or similarity
        self.similarity = str(similarity or "cosine")
        if self.similarity not in ("cosine", "dot"):
            raise UserError(
                f"model {self.name}: similarity {self.similarity!r} is not supported (cosine or dot)"
            )

    def _prompt_name(self, role: Role) -> str | None:
        prompts = getattr(self.model, "prompts", None)
        if isinstance(prompts, dict):  # sentence-transformers: only the names the model defines
            names = ("query",) if role == "query" else DOCUMENT_PROMPT_NAMES
            return next((n for n in names if n in prompts), None)
        if "prompt_name" in self._names or self._any_kwargs:
            return role
        return None

    def prompt(self, role: Role) -> str:
        """The store key of a role: the literal prompt text, else a tag naming the prompt (or none)."""
        if self.mteb_protocol:
            return f"<mteb {self.task} {role}>"
        name = self._prompt_name(role)
        prompts = getattr(self.model, "prompts", None)
        if isinstance(prompts, dict):
            text = prompts.get(name, "") if name else ""
            other = "document" if role == "query" else "query"
            if text == "" and self._prompt_name(other) is not None:  # the other role has a prompt
                return f"<{role}: no prompt>"
            return text
        return f"<prompt_name={name}>" if name else ""

    def encode(self, texts: list[str], role: Role, batch_size: int) -> np.ndarray:
        if self.mteb_protocol:
            return self._encode_mteb(texts, role, batch_size)
        kwargs: dict[str, Any] = {}
        name = self._prompt_name(role)
        if name is not None:
            kwargs["prompt_name"] = name
        if "batch_size" in self._names:
            kwargs["batch_size"] = batch_size
        if "show_progress_bar" in self._names:
            kwargs["show_progress_bar"] = False
        with user_code(f"model {self.name}: encode"):
            emb = self.model.encode(list(texts), **kwargs)
        return _as_array(emb, len(texts), self.name)

    def _encode_mteb(self, texts: list[str], role: Role, batch_size: int) -> np.ndarray:
        import mteb
        from datasets import Dataset
        from mteb.types import PromptType
        from torch.utils.data import DataLoader

        if self.task not in MTEB_TASK_NAMES:
            raise UserError(
                f"model {self.name} follows MTEB's encoder protocol, which needs an MTEB task; "
                f"{self.task} is not one (use hybrid-plugin mteb, or give the model encode(texts))"
            )
        task_metadata = mteb.get_task(MTEB_TASK_NAMES[self.task]).metadata
        prompt_type = PromptType.query if role == "query" else PromptType.document
        column = "query" if role == "query" else "body"
        loader = DataLoader(Dataset.from_dict({"text": texts, column: texts}), batch_size=batch_size)
        with user_code(f"model {self.name}: encode"):
            emb = self.model.encode(
                loader,
                task_metadata=task_metadata,
                hf_split="test",
                hf_subset="default",
                prompt_type=prompt_type,
                batch_size=batch_size,
                show_progress_bar=False,
            )
        return _as_array(emb, len(texts), self.name)

    def provenance(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "plugin": self.source
            or f"python object {type(self.model).__module__}.{type(self.model).__name__}",
            "protocol": "mteb" if self.mteb_protocol else "encode(texts)",
            "fingerprint": self.fingerprint,
            "query_prompt": self.prompt("query"),
            "document_prompt": self.prompt("document"),
            "similarity": self.similarity,
        }

    def device(self) -> str:
        inner = getattr(self.model, "model", self.model)
        device = getattr(inner, "device", None)
        return str(device) if device is not None else "cpu"
