"""Typed results: what an evaluation produced, read by report, leaderboard, study, stats and MTEB.

The JSON file is the exchange format (``Results.to_json`` / ``Results.from_json``); inside the package
everything reads these objects. Format 2 added the per-query file (``per_query``) and exact standard
measures (``standard_measures.native``); format-1 files load unchanged (no per-query file).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, create_model, model_validator

from hybrid_plugin.data.files import sha256_file
from hybrid_plugin.data.settings import Setting
from hybrid_plugin.data.spec import SETTING_KINDS, SettingKind
from hybrid_plugin.errors import UserError
from hybrid_plugin.evaluation.measures import MEASURES, Measure

RESULTS_FORMAT = 2
READABLE_FORMATS = (1, 2)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class SettingResult(_Model):
    """One setting: its kind, sizes, exact mAP, standard measures and (pool) mean max rank distance."""

    kind: SettingKind
    queries: int
    map: float
    candidates: int
    measures: dict[str, float] = Field(default_factory=dict)
    max_rank_distance: float | None = None


class _MeasureScores(_Model):
    """Scores keyed by measure: one field per built-in measure (:data:`MEASURES`, in its order);
    measures registered later (a plug-in's, a test's) ride as extra keys, each checked against the
    registry and typed ``float | None`` like the fields."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())
    __pydantic_extra__: dict[str, float | None] = Field(init=False)

    @model_validator(mode="after")
    def _registered(self) -> _MeasureScores:
        unknown = [key for key in self.model_extra or {} if key not in MEASURES]
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not a measure (known: {', '.join(MEASURES.names())})")
        return self

    def get(self, key: str) -> float | None:
        return getattr(self, key, None)


def _fields(measures: tuple[Measure, ...]) -> dict[str, Any]:
    return {m.key: (float | None, Field(None, description=m.label)) for m in measures}


# the per-language fields: the format-1 measures, their count of rank-distance queries, then the later ones
LanguageScores = create_model(
    "LanguageScores",
    __base__=_MeasureScores,
    __doc__="Aggregates for one query language (``None`` where the task has no such setting).",
    __module__=__name__,
    **_fields(MEASURES.classic()),
    rank_distance_queries=(int, 0),
    **_fields(tuple(m for m in MEASURES.builtin if m.since > 1)),
)
Scores = create_model(
    "Scores",
    __base__=_MeasureScores,
    __doc__="Macro averages over query languages of the :data:`~hybrid_plugin.evaluation.measures.MEASURES`.",
    __module__=__name__,
    **_fields(MEASURES.builtin),
)


class StandardMeasures(_Model):
    """Standard measures macro-averaged per setting kind like mAP (per setting → per language → macro).

    ``native`` lists the ones computed exactly from full rankings; the others came from ir-measures on
    runs cut at ``run_depth`` (``None`` = full runs). Format-1 files computed all on runs.
    """

    run_depth: int | None = None
    by_kind: dict[str, dict[str, float]] = Field(default_factory=dict)
    native: list[str] = Field(default_factory=list)


class PerQueryFile(_Model):
    """The per-query Parquet file written beside the results JSON (name relative to it)."""

    file: str
    sha256: str
    schema_version: int
    rows: int


class Results(_Model):
    """Everything one evaluation of one retriever on one task (and language selection) produced."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())  # later blocks (e.g. alignment)

    format: int = RESULTS_FORMAT
    task: str
    task_title: str
    languages: list[str]
    candidate_format: str
    setting_kinds: list[str] = Field(default_factory=lambda: list(SETTING_KINDS))
    in_domain_training: list[str] = Field(default_factory=list)
    scores: Scores
    per_language: dict[str, LanguageScores]
    standard_measures: StandardMeasures = Field(default_factory=StandardMeasures)
    bias: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, SettingResult]
    counts: dict[str, Any]
    model: dict[str, Any]
    provenance: dict[str, Any]
    timings: dict[str, float]
    per_query: PerQueryFile | None = None
    _source: Path | None = PrivateAttr(default=None)  # the JSON it was loaded from (not part of it)

    def __eq__(self, other: object) -> bool:  # where results were loaded from is not part of them
        if not isinstance(other, Results):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    # --- typed access ------------------------------------------------------------------------------

    def setting(self, setting: Setting) -> SettingResult | None:
        return self.settings.get(setting.key)

    def iter_settings(self, kind: str | None = None) -> Iterator[tuple[Setting, SettingResult]]:
        """Settings in report order, optionally of one kind."""
        for key, entry in self.settings.items():
            if kind is None or entry.kind == kind:
                yield Setting.parse(key), entry

    def count_settings(self) -> dict[str, int]:
        return {k: sum(1 for e in self.settings.values() if e.kind == k) for k in SETTING_KINDS}

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.setting_kinds)

    @property
    def mean_rank(self) -> dict[str, dict[str, float]]:
        return self.bias.get("mean_rank", {})

    @property
    def rank_correlation(self) -> dict[str, dict[str, float]]:
        """X×Y mean Spearman correlation of parallel queries' pool rankings (empty before schema 2)."""
        return self.bias.get("rank_correlation", {})

    @property
    def top_language_share(self) -> dict[str, dict[str, float]]:
        """X×Y share of the top-10 pool candidates in language Y for queries in X (empty before schema 2)."""
        return self.bias.get("top10_language_share", {})

    @property
    def alignment(self) -> dict[str, Any] | None:
        return (self.model_extra or {}).get("alignment")

    # --- the JSON edge -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        data = self.model_dump(mode="python")
        if data.get("per_query") is None:
            data.pop("per_query", None)
        for entry in data["settings"].values():  # keys a setting does not have stay absent, as in format 1
            if entry.get("max_rank_distance") is None:
                entry.pop("max_rank_distance", None)
            if not entry.get("measures"):
                entry.pop("measures", None)
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Results:
        """Read format 1 or 2; raises ``ValueError`` (pydantic's) on anything else."""
        fmt = data.get("format") if isinstance(data, dict) else None
        if fmt not in READABLE_FORMATS:
            raise ValueError(
                f"field format: {fmt!r} is not a results format this version reads "
                f"({', '.join(map(str, READABLE_FORMATS))}; is this a hybrid-plugin results JSON?)"
            )
        return cls.model_validate(data)

    @classmethod
    def load(cls, path: str | Path) -> Results:
        results = cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        results._source = Path(path)
        return results

    @property
    def source(self) -> Path | None:
        """The results JSON these were loaded from (``None``: made in this process, not loaded)."""
        return self._source

    def per_query_file(self) -> Path:
        """The per-query Parquet file beside the loaded JSON, its sha256 checked (:func:`locate_per_query`)
        (raises :class:`PerQueryNotFound` or, for results not loaded from a file, a UserError)."""
        if self._source is None:
            raise UserError("these results were not loaded from a file: save them, then load the JSON")
        return locate_per_query(self._source, self)

    def per_query_table(self) -> Any:
        """The per-query rows (one per query and setting) as a pyarrow Table."""
        import pyarrow.parquet as pq

        return pq.read_table(self.per_query_file())


class PerQueryNotFound(UserError):
    """A results JSON's per-query file cannot be used; ``reason`` says why: ``"none"`` (none recorded:
    format 1 or ``--no-per-query``), ``"missing"`` (not beside it) or ``"changed"`` (another sha256)."""

    def __init__(self, message: str, reason: Literal["none", "missing", "changed"]) -> None:
        super().__init__(message)
        self.reason = reason


def locate_per_query(results_path: str | Path, results: Results) -> Path:
    """The per-query file of a results JSON: the name it records beside it, or ``<stem>.queries.parquet``
    (a leaderboard copy renames both), whichever has the recorded sha256 (hashed in blocks: any size).
    Raises :class:`PerQueryNotFound` with a one-line reason otherwise."""
    path = Path(results_path)
    if results.per_query is None:
        raise PerQueryNotFound(
            f"{path}: no per-query file recorded (format-{results.format} results or --no-per-query)", "none"
        )
    candidates = [
        path.with_name(Path(results.per_query.file).name),
        path.with_name(path.stem + ".queries.parquet"),
    ]
    existing = [c for c in candidates if c.is_file()]
    if not existing:
        raise PerQueryNotFound(
            f"{path}: its per-query file {results.per_query.file} is missing beside it", "missing"
        )
    for candidate in existing:
        if sha256_file(candidate) == results.per_query.sha256:
            return candidate
    raise PerQueryNotFound(
        f"{path}: per-query file {existing[0].name} does not have the sha256 the results record "
        "(changed after evaluation?)",
        "changed",
    )


def per_query_path(results_path: str | Path, results: Results) -> Path | None:
    """:func:`locate_per_query`, or ``None`` where the results have no usable per-query file."""
    try:
        return locate_per_query(results_path, results)
    except PerQueryNotFound:
        return None
