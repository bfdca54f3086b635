"""Training-free de-biasing of a dense model's embeddings: ``--debias center | lsar[:R] | leace``.

Each method is *fitted* on a set of texts with their languages (:class:`FitTexts`) and then applied
to every query and candidate embedding before ranking (cosine models re-normalise):

- ``center``: subtract the mean embedding of the text's language (Libovický et al., 2020, "On the
  Language Neutrality of Pre-trained Multilingual Representations"). Needs each text's language at
  inference, and a fitted mean for every evaluated language.
- ``lsar``: project out the rank-R subspace spanned by the differences between language means
  (the top right-singular vectors of the language-mean matrix minus its row mean; Xie et al., 2024,
  "Discovering Low-rank Subspaces for Language-agnostic Multilingual Representations", arXiv
  2401.05792). R defaults to languages − 1, the whole span of the mean differences. Needs no
  language label at inference.
- ``leace``: LEAst-squares Concept Erasure of language identity (Belrose et al., NeurIPS 2023): the
  affine map ``x − W⁺ P W (x − μ)`` with ``W`` the whitening of the fit set's covariance and ``P`` the
  projection onto the column space of the whitened cross-covariance with the one-hot language.
  After it no linear classifier can predict a fit text's language better than a constant. Equal to
  ``concept_erasure.LeaceFitter(shrinkage=False, constrain_cov_trace=False)`` (tested).

**Which texts.** ``pool`` (the default, as before) fits on the evaluated pool's candidates: label-free
but *transductive* (it looks at the evaluated collection), and every result says so
(``model.debias.fit.transductive``). An out-of-sample fit uses other texts: a training source
(``mlqa:PATH``…, read by the trainer's readers) or a JSONL file of ``{"lang", "text"}`` lines; or a
saved artifact (``.npz``, no pickle) made by an earlier fit. Cosine models' embeddings are
L2-normalised before fitting and applying, so every text weighs the same.

Cost: the fit is one pass over the fit texts' embeddings (O(n·d), LEACE adds O(n·d² + d³)); applying is
O(d·R) (lsar) or O(d²) (leace) per embedded text.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hybrid_plugin.data.pool import Pool, unique_texts
from hybrid_plugin.errors import UserError
from hybrid_plugin.scoring.dense import DenseRetriever, PoolEmbeddings
from hybrid_plugin.scoring.retriever import Retrieval, Retriever

DEBIAS_METHODS = ("center", "lsar", "leace")
ARTIFACT_VERSION = 1
POOL_FIT = "pool"
MEANS_FROM = "pool candidates of each language (queries: the candidate mean of their language)"
LEACE_SVD_TOL = 0.01  # concept_erasure's default: whitened cross-covariance singular values below are dropped
_SPEC = re.compile(r"^(?P<method>[a-z]+)(?::(?P<rank>[0-9]+))?$")


@dataclass(frozen=True)
class DebiasSpec:
    """A parsed ``--debias`` value: the method and, for ``lsar``, the rank (None: languages − 1)."""

    method: str
    rank: int | None = None

    def __str__(self) -> str:
        return self.method + (f":{self.rank}" if self.rank is not None else "")


def parse_debias(text: str | None) -> DebiasSpec | None:
    """``"lsar:4"`` → DebiasSpec("lsar", 4); ``None``/``""``/``"none"`` → None; else one clear UserError."""
    if text in (None, "", "none"):
        return None
    m = _SPEC.match(str(text))
    if m is None or m["method"] not in DEBIAS_METHODS or (m["rank"] and m["method"] != "lsar"):
        raise UserError(f"--debias {text}: expected none, center, lsar, lsar:R (R ≥ 1) or leace")
    rank = int(m["rank"]) if m["rank"] else None
    if rank is not None and rank < 1:
        raise UserError(f"--debias {text}: the rank R of lsar:R must be at least 1")
    return DebiasSpec(m["method"], rank)


@dataclass(frozen=True)
class FitTexts:
    """Texts with their language codes that a de-biasing method is fitted on, and where they came from."""

    texts: list[str]
    langs: list[str]
    source: str  # what a reader recognises: "pool", "mlqa:…", "texts.jsonl"
    transductive: bool = False  # True: the evaluated pool itself

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for lang, text in zip(self.langs, self.texts):
            digest.update(f"{lang}\t{text}\n".encode())
        return digest.hexdigest()

    def record(self) -> dict[str, Any]:
        """What the results say about the fit set."""
        counts: dict[str, int] = {}
        for lang in self.langs:
            counts[lang] = counts.get(lang, 0) + 1
        return {
            "source": self.source,
            "transductive": self.transductive,
            "texts": len(self.texts),
            "per_language": dict(sorted(counts.items())),
            "sha256": self.fingerprint(),
        }


def pool_fit_texts(pool: Pool) -> FitTexts:
    """The pool's candidates (one per candidate row, as the old ``center`` did): transductive."""
    return FitTexts(pool.cand_text, [pool.languages[i] for i in pool.cand_lang], POOL_FIT, transductive=True)


def read_fit_jsonl(path: Path) -> FitTexts:
    """A JSONL file of ``{"lang": "de", "text": "..."}`` lines (blank lines skipped)."""
    texts, langs = [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--debias-fit {path}: cannot read it ({exc.__class__.__name__})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise UserError(f"{path}:{number}: not a JSON object") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
            raise UserError(f'{path}:{number}: expected {{"lang": CODE, "text": non-empty string}}')
        lang = row.get("lang")
        if not isinstance(lang, str) or re.fullmatch(r"[a-z]{2,3}", lang) is None:
            raise UserError(f"{path}:{number}: 'lang' must be a language code such as 'de', got {lang!r}")
        texts.append(row["text"])
        langs.append(lang)
    if len(set(langs)) < 2:
        raise UserError(f"--debias-fit {path}: needs texts in at least 2 languages, found {len(set(langs))}")
    return FitTexts(texts, langs, path.name)


def resolve_fit(fit: str | Path | FitTexts | Debiaser | None) -> str | FitTexts | Debiaser:
    """What ``--debias-fit`` names: ``pool``, a saved ``.npz`` map, or ``.jsonl`` of ``{"lang", "text"}``.

    Training sources (``mlqa:PATH``…) are read by the CLI with
    :func:`hybrid_plugin.training.fit_texts.fit_texts_from_sources`, which returns :class:`FitTexts`.
    """
    if fit is None or fit == POOL_FIT:
        return POOL_FIT
    if isinstance(fit, FitTexts | Debiaser):
        return fit
    path = Path(fit).expanduser()
    if path.suffix == ".npz" and path.is_file():
        return Debiaser.load(path)
    if path.suffix == ".jsonl" and path.is_file():
        return read_fit_jsonl(path)
    raise UserError(
        f"--debias-fit {fit}: expected pool, an existing .jsonl of {{lang, text}} lines, a saved .npz, "
        "or a training source FORMAT:PATH (mlqa:, squad:, jsonl:)"
    )


def _unit_rows(emb: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.where(norms > 0, norms, 1.0)


def _language_means(emb: np.ndarray, lang_index: np.ndarray, languages: int) -> np.ndarray:
    """(languages, dim) float64 means of ``emb`` rows by language index (a language with no rows: 0)."""
    means = np.zeros((languages, emb.shape[1]))
    for lang in range(languages):
        rows = emb[lang_index == lang]
        if len(rows):
            means[lang] = rows.mean(axis=0)
    return means


def lsar_basis(means: np.ndarray, rank: int | None) -> np.ndarray:
    """(R, dim) orthonormal rows spanning the top-R directions of the language means' differences."""
    centered = means - means.mean(axis=0, keepdims=True)
    _, singular, vt = np.linalg.svd(centered, full_matrices=False)
    available = int(np.sum(singular > singular[0] * 1e-10)) if singular.size and singular[0] > 0 else 0
    if rank is not None and rank > available:
        raise UserError(
            f"--debias lsar:{rank}: the fit set's {len(means)} languages span only {available} directions"
        )
    return vt[: available if rank is None else rank].copy()


def leace_projection(
    emb: np.ndarray, lang_index: np.ndarray, languages: int
) -> tuple[np.ndarray, np.ndarray]:
    """(d, d) matrix ``M`` and mean ``μ`` of LEACE's eraser ``x − (x − μ) M``, fitted on ``emb`` (float64)."""
    n = len(emb)
    mean = emb.mean(axis=0)
    centered = emb - mean
    onehot = np.zeros((n, languages))
    onehot[np.arange(n), lang_index] = 1.0
    sigma_xx = centered.T @ centered / (n - 1)
    sigma_xx = (sigma_xx + sigma_xx.T) / 2
    sigma_xz = centered.T @ (onehot - onehot.mean(axis=0)) / (n - 1)
    eigval, eigvec = np.linalg.eigh(sigma_xx)
    keep = eigval > eigval[-1] * sigma_xx.shape[0] * np.finfo(eigval.dtype).eps  # torch.linalg.pinv's cut
    eigval = np.clip(eigval, 0.0, None)
    whiten = (eigvec * np.where(keep, 1 / np.sqrt(np.where(keep, eigval, 1.0)), 0.0)) @ eigvec.T
    unwhiten = (eigvec * np.where(keep, np.sqrt(eigval), 0.0)) @ eigvec.T
    u, singular, _ = np.linalg.svd(whiten @ sigma_xz, full_matrices=False)
    u = u * (singular > LEACE_SVD_TOL)
    # x' = x − (x − μ) (W⁺ U Uᵀ W)ᵀ
    return (unwhiten @ u @ u.T @ whiten).T, mean


@dataclass
class Debiaser:
    """A fitted de-biasing map: saved as a small ``.npz`` (no pickle) and identified by its sha256."""

    method: str
    languages: tuple[str, ...]  # the fit set's languages, sorted
    normalize: bool  # fitted (and applied) on L2-normalised embeddings
    base_fingerprint: str | None  # the model whose embeddings it was fitted on
    fit: dict[str, Any]  # FitTexts.record()
    means: np.ndarray | None = None  # center: (languages, d)
    basis: np.ndarray | None = None  # lsar: (R, d)
    matrix: np.ndarray | None = None  # leace: (d, d)
    mean: np.ndarray | None = None  # leace: (d,)
    params: dict[str, Any] = field(default_factory=dict)  # lsar: {"rank": R}

    @classmethod
    def fit_embeddings(
        cls,
        spec: DebiasSpec,
        emb: np.ndarray,
        langs: Sequence[str],
        fit: FitTexts,
        normalize: bool,
        base_fingerprint: str | None,
    ) -> Debiaser:
        """Fit ``spec`` on ``emb`` (one row per fit text, in ``fit``'s order) with languages ``langs``."""
        languages = tuple(sorted(set(langs)))
        if len(languages) < 2:
            raise UserError(f"--debias {spec}: the fit set needs at least 2 languages, has {len(languages)}")
        index = {lang: i for i, lang in enumerate(languages)}
        lang_index = np.fromiter((index[x] for x in langs), dtype=np.int64, count=len(langs))
        x = emb.astype(np.float64)
        if normalize:
            x = _unit_rows(x)
        out = cls(spec.method, languages, normalize, base_fingerprint, fit.record())
        if spec.method == "center":
            out.means = _language_means(x, lang_index, len(languages))
        elif spec.method == "lsar":
            out.basis = lsar_basis(_language_means(x, lang_index, len(languages)), spec.rank)
            out.params = {"rank": len(out.basis)}
        else:
            out.matrix, out.mean = leace_projection(x, lang_index, len(languages))
        return out

    def apply(self, emb: np.ndarray, langs: Sequence[str] | None = None) -> np.ndarray:
        """Float32 de-biased rows of ``emb`` (``langs``: each row's language, needed by ``center`` only)."""
        x = emb.astype(np.float64)
        if self.normalize:
            x = _unit_rows(x)
        if self.method == "center":
            assert self.means is not None and langs is not None
            index = {lang: i for i, lang in enumerate(self.languages)}
            missing = sorted(set(langs) - set(index))
            if missing:
                raise UserError(
                    f"--debias center: no fitted mean for {', '.join(missing)} (the fit set has "
                    f"{', '.join(self.languages)}); fit on every evaluated language, or use lsar/leace"
                )
            x = x - self.means[np.fromiter((index[x] for x in langs), dtype=np.int64, count=len(langs))]
        elif self.method == "lsar":
            assert self.basis is not None
            x = x - (x @ self.basis.T) @ self.basis
        else:
            assert self.matrix is not None and self.mean is not None
            x = x - (x - self.mean) @ self.matrix
        return x.astype(np.float32)

    @property
    def source(self) -> str:
        """What the results' config records for ``--debias-fit`` given a saved map."""
        return f"saved {self.method} map fitted on {self.fit.get('source')}"

    def metadata(self) -> dict[str, Any]:
        return {
            "version": ARTIFACT_VERSION,
            "method": self.method,
            "languages": list(self.languages),
            "normalize": self.normalize,
            "base_fingerprint": self.base_fingerprint,
            "fit": self.fit,
            "params": self.params,
        }

    def _arrays(self) -> dict[str, np.ndarray]:
        named = {"means": self.means, "basis": self.basis, "matrix": self.matrix, "mean": self.mean}
        return {k: v for k, v in named.items() if v is not None}

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, metadata=np.array(json.dumps(self.metadata(), sort_keys=True)), **self._arrays())
        return buffer.getvalue()

    def fingerprint(self) -> str:
        """sha256 of what the map computes: its metadata and its arrays' bytes (not of the file)."""
        digest = hashlib.sha256(json.dumps(self.metadata(), sort_keys=True).encode())
        for name, array in sorted(self._arrays().items()):
            digest.update(name.encode() + np.ascontiguousarray(array, dtype=np.float64).tobytes())
        return digest.hexdigest()

    def save(self, path: Path) -> None:
        from hybrid_plugin.atomic import write_bytes

        path.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(path, self.to_bytes())

    @classmethod
    def load(cls, path: Path) -> Debiaser:
        """A saved map (``allow_pickle=False``: a file from elsewhere cannot run code)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["metadata"]))
                arrays = {k: np.array(data[k]) for k in data.files if k != "metadata"}
        except (OSError, ValueError, KeyError) as exc:
            raise UserError(
                f"--debias-fit {path}: not a de-biasing artifact ({exc.__class__.__name__})"
            ) from None
        if not isinstance(meta, dict) or meta.get("version") != ARTIFACT_VERSION:
            raise UserError(f"--debias-fit {path}: artifact version {meta.get('version')!r}, expected 1")
        return cls(
            meta["method"],
            tuple(meta["languages"]),
            bool(meta["normalize"]),
            meta.get("base_fingerprint"),
            meta["fit"],
            params=meta.get("params", {}),
            **arrays,
        )


def debiased_fingerprint(fingerprint: str, method: str, fit: str | None = None) -> str:
    """The wrapped model's identity: a de-biased model never shares a key with the plain one.

    ``center`` fitted on the pool keeps the identity it always had (``fit=None``); any other map adds
    its own fingerprint, so two fits on different texts are two models.
    """
    means = MEANS_FROM if fit is None else f"fit={fit}"
    return hashlib.sha256(f"{fingerprint}|debias={method}|means={means}".encode()).hexdigest()


@dataclass
class DebiasedRetriever:
    """A fitted de-biasing map over a dense retriever (its embeddings still come from its store).

    ``fit``: ``"pool"`` (transductive), :class:`FitTexts` (embedded with the same model, cached), or a
    :class:`Debiaser` already fitted (a loaded artifact). The fitted map travels with the scored pool
    (``Retrieval.artifacts``), so the CLI saves it beside the results that record its sha256.
    """

    inner: DenseRetriever
    spec: DebiasSpec
    fit: str | FitTexts | Debiaser = POOL_FIT

    def _fit(self, pool: Pool, emb: PoolEmbeddings, normalize: bool) -> Debiaser:
        base = self.inner.encoder.fingerprint
        if isinstance(self.fit, Debiaser):
            known = self.fit
            if known.method != self.spec.method or known.base_fingerprint != base:
                raise UserError(
                    f"--debias-fit: the artifact is {known.method} for model "
                    f"{str(known.base_fingerprint)[:12]}, not {self.spec.method} for {str(base)[:12]}"
                )
            return known
        if self.fit == POOL_FIT:
            texts = pool_fit_texts(pool)
            fit_emb = emb.cand[emb.cand_row]
        elif isinstance(self.fit, FitTexts):
            texts = self.fit
            distinct, rows = unique_texts(texts.texts)
            matrix, _ = self.inner.embed(distinct, "document", "encoding de-biasing fit texts")
            fit_emb = np.asarray(matrix)[rows]
        else:
            raise UserError(f"--debias-fit {self.fit}: expected pool, FORMAT:PATH, a .jsonl or a .npz file")
        return Debiaser.fit_embeddings(self.spec, fit_emb, texts.langs, texts, normalize, base)

    def score(self, pool: Pool) -> Retrieval:
        emb = self.inner.embed_pool(pool)
        normalize = self.inner.encoder.similarity == "cosine"
        debiaser = self._fit(pool, emb, normalize)
        q_langs = [pool.languages[i] for i in pool.query_lang]
        c_langs = [pool.languages[i] for i in pool.cand_lang]
        if debiaser.method == "center":  # language-dependent: one row per query and candidate
            query = debiaser.apply(emb.query[emb.query_row], q_langs)
            cand = debiaser.apply(emb.cand[emb.cand_row], c_langs)
            rows = (np.arange(len(query)), np.arange(len(cand)))
            debiased = replace(emb, query=query, query_row=rows[0], cand=cand, cand_row=rows[1])
        else:  # one map for every text: each distinct text once
            debiased = replace(emb, query=debiaser.apply(emb.query), cand=debiaser.apply(emb.cand))
        model: dict[str, Any] = dict(self.inner.encoder.provenance())
        base = model.get("fingerprint")
        transductive = bool(debiaser.fit.get("transductive"))
        legacy = debiaser.method == "center" and transductive  # keeps the identity centered rows always had
        artifact = debiaser.fingerprint()
        rank = f" r={debiaser.params['rank']}" if "rank" in debiaser.params else ""
        label = " (pool-fitted)" if transductive else ""
        model["name"] = f"{model.get('name')} + {debiaser.method}{rank}{label}"
        model["fingerprint"] = (
            debiased_fingerprint(base, debiaser.method, None if legacy else artifact) if base else None
        )
        model["debias"] = {
            "method": debiaser.method,
            **debiaser.params,
            "base_fingerprint": base,
            "transductive": transductive,
            "fit": debiaser.fit,
            "artifact": artifact_name(debiaser.method, artifact),
            "artifact_sha256": artifact,
        }
        if legacy:
            model["debias"]["means_from"] = MEANS_FROM
        scored = self.inner.retrieval(pool, debiased, model)
        scored.artifacts[artifact_name(debiaser.method, artifact)] = debiaser.to_bytes()
        return scored


def artifact_name(method: str, fingerprint: str) -> str:
    """File name of a fitted map beside the results: ``debias-lsar-<12 hex>.npz``."""
    return f"debias-{method}-{fingerprint[:12]}.npz"


def debias_retriever(
    retriever: Retriever, method: str | DebiasSpec | None, fit: str | FitTexts | Debiaser = POOL_FIT
) -> Retriever:
    """``retriever`` wrapped by the de-biasing ``method`` (``None``/``"none"``: as is)."""
    spec = method if isinstance(method, DebiasSpec) else parse_debias(method)
    if spec is None:
        return retriever
    if not isinstance(retriever, DenseRetriever):
        raise UserError(f"--debias {spec} needs an embedding model; this retriever has no embeddings")
    return DebiasedRetriever(retriever, spec, fit)
