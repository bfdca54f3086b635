"""What a leaderboard row is: a pydantic model per task (the common columns + multi mAP per language).

Every cell arrives as text (from the CSV, or from :mod:`hybrid_plugin.leaderboard.rows` which
formats a results JSON into cells), so ``submit`` and ``validate`` go through the same checks:

- every cell: UTF-8 text without control or bidi-override characters, no leading or trailing
  space, no ``<``/``>`` (HTML), at most :data:`CELL_MAX` characters, and no leading ``=``, ``+``,
  ``-`` or ``@`` (a spreadsheet formula) unless the column is numeric and the cell is a number;
- per column: type, range, allowed values, length and pattern (pydantic);
- across columns (:func:`consistency`): the language set against the task spec, the per-language
  columns against it, the training columns against the strategy, the in-domain flag against the
  training data.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
)

from hybrid_plugin.data.spec import CANDIDATE_UNITS, TaskSpec, get_spec
from hybrid_plugin.evaluation.measures import MEASURES, Measure
from hybrid_plugin.models.record import STRATEGIES

CELL_MAX = 1000  # no cell of any column is longer
FORMULA_START = ("=", "+", "-", "@")
MARKUP = ("<", ">")  # HTML: no cell holds these
BOOLEANS = ("true", "false")
DATE_FORM = "YYYY-MM-DD"
ALLOWED_FORMAT_CHARS = {"\u200c", "\u200d"}  # zero-width (non-)joiner: needed to write some scripts
NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
HEX64 = r"^[0-9a-f]{64}$"
# a hub id (org/name) or a folder name: no path (no leading dot, at most one '/', no '..')
MODEL_ID = r"^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$"
LANGUAGE_LIST = r"^[a-z]{2,3}(,[a-z]{2,3})*$"
TRAINING_DATA = r"^[a-z0-9]+:[A-Za-z0-9._-]{1,80}(;[a-z0-9]+:[A-Za-z0-9._-]{1,80}){0,9}$"
ZERO_SHOT = "zero-shot"
STRATEGY_VALUES = (ZERO_SHOT, *STRATEGIES)
# a row's candidate formats: those of sentence-candidate tasks (data.pool.CANDIDATE_FORMATS has every
# format); passage tasks such as tydi-goldp are monolingual-only, so no board ranks them
ROW_CANDIDATE_FORMATS = CANDIDATE_UNITS["sentence"]
PER_LANGUAGE_PREFIX = "multi_map_"
FREE_TEXT = ("name", "submitter", "notes")
NOT_A_PATH = ("name", "submitter")  # free text that must not look like a path or URL
MIN_LANGUAGES = 2  # the multilingual pool needs two
TRAINING_COLUMNS = ("base_model", "alpha", "batch_size", "training_data", "training_languages")
TRAINED_REQUIRES = ("base_model", "batch_size", "training_data")
FREE_ALPHA = "hybrid"  # the strategy whose alpha is required and may be any in [0, 1]
FIXED_ALPHA = {"mono": 1.0, "cross": 0.0}  # the strategies whose alpha is fixed; the others have none
PATTERN_HELP = {
    "model_id": "a hub id org/name or a folder name (letters, digits, . _ -; not a path)",
    "base_model": "a hub id org/name or a folder name (letters, digits, . _ -; not a path)",
    "model_fingerprint": "64 lowercase hex digits (sha256)",
    "results_sha256": "64 lowercase hex digits (sha256)",
    "model_revision": "letters, digits, . _ + - (a commit or a release)",
    "languages": "a comma list of language codes such as de,en,zh",
    "training_languages": "a comma list of language codes such as de,en,zh",
    "training_data": "format:name, several separated by ;",
    "plugin_version": "a version such as 0.1.0",
}

Map = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class _RowHead(BaseModel):
    """The columns before the measures: who and what was evaluated."""

    model_config = ConfigDict(extra="forbid", frozen=True, regex_engine="python-re")

    model_id: str = Field(
        max_length=200,
        pattern=MODEL_ID,
        description="Hugging Face id (`org/name`) or the model folder's name (its parent's when the "
        "folder has a generic name such as `model` or `final`)",
    )
    name: str = Field(max_length=120, description="display name (free text, `--name`; default: the model id)")
    model_fingerprint: str = Field(
        pattern=HEX64,
        description="sha256 over what determines the embeddings (tensors, tokenizer, module and prompt "
        "configuration; no version stamps); `model.fingerprint_scheme` in the results says which definition",
    )
    model_revision: str | None = Field(
        None,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._+-]*$",
        description="hub snapshot commit, or the package release that ships the model; empty if unknown",
    )
    parameters: int | None = Field(
        None, ge=1, le=10**13, description="parameter count (from the weights' headers); empty if unknown"
    )
    embedding_dim: int | None = Field(
        None, ge=1, le=1_000_000, description="embedding dimension; empty if unknown or none (BM25)"
    )
    base_model: str | None = Field(
        None, max_length=200, pattern=MODEL_ID, description="what a fine-tuned model started from"
    )
    training_strategy: Literal[STRATEGY_VALUES] = Field(  # type: ignore[valid-type]
        description="`zero-shot` (not trained by hybrid-plugin) or the `hybrid-plugin train` batch strategy"
    )
    alpha: float | None = Field(
        None, ge=0, le=1, allow_inf_nan=False, description="probability of a monolingual batch (hybrid)"
    )
    batch_size: int | None = Field(None, ge=1, le=1_000_000, description="pairs per training batch")
    training_data: str | None = Field(
        None, max_length=400, pattern=TRAINING_DATA, description="`format:name` of each training source"
    )
    training_languages: str | None = Field(
        None, max_length=200, pattern=LANGUAGE_LIST, description="languages of the training pairs"
    )
    in_domain_training: bool = Field(
        description="`true` when the training data shares its source with the task (MLQA data on MLQA-R)"
    )
    task: str = Field(description="`xquad-r` or `mlqa-r` (the CSV's own task)")
    candidate_format: Literal[ROW_CANDIDATE_FORMATS] = Field(  # type: ignore[valid-type]
        description=" or ".join(f"`{f}`" for f in ROW_CANDIDATE_FORMATS)
    )
    languages: str = Field(
        max_length=200,
        pattern=LANGUAGE_LIST,
        description="evaluated languages in the task's order; fewer than the task's = a partial row",
    )


def _measure_column(m: Measure) -> tuple[Any, Any]:
    """A board measure's column: its registered range, required or empty-allowed, its description."""
    assert m.board is not None
    low, high = m.bounds
    value = Annotated[float, Field(ge=low, le=high, allow_inf_nan=False)]
    if m.board.required:
        return value, Field(description=m.board.description)
    return value | None, Field(None, description=m.board.description)


# the measure columns, generated from the registry's board measures (in its order)
_RowMeasures = create_model(
    "_RowMeasures", __base__=_RowHead, **{m.key: _measure_column(m) for m in MEASURES.board()}
)


class RowBase(_RowMeasures):  # type: ignore[misc, valid-type]
    """The columns every task's CSV has, in order; the per-language columns follow (see :func:`row_model`)."""

    multi_map_ci_low: Map | None = Field(
        None,
        description="95% bootstrap interval of multi_map, low end (2,000 resamples of whole question "
        "groups, seed 0); empty: no per-query file",
    )
    multi_map_ci_high: Map | None = Field(None, description="95% bootstrap interval of multi_map, high end")
    vs_best: Literal["best", "tied", "below"] | None = Field(
        None,
        description="against the best row with the same languages and candidates: `tied` = not "
        "distinguishable at α = 0.05 (paired randomization test over question groups, 10,000 sign "
        "flips, Holm-corrected over the rows tested), `below` = distinguishable; empty: this row or "
        "that best row has no per-query file",
    )
    vs_best_p: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = Field(
        None, description="the Holm-corrected p-value behind vs_best"
    )
    plugin_version: str = Field(
        max_length=40,
        pattern=r"^[0-9]+(\.[0-9A-Za-z]+)*([+][0-9A-Za-z.]+)?$",
        description="hybrid-plugin version that evaluated",
    )
    results_sha256: str = Field(
        pattern=HEX64, description="sha256 of the results JSON, committed as `results/<task>/<first 16>.json`"
    )
    date: dt.date = Field(description="evaluation date (UTC, from the results)")
    submitter: str = Field(max_length=80, description="who submitted (free text, `--submitter`)")
    notes: str | None = Field(None, max_length=500, description="free text, `--notes`")

    @field_validator("*", mode="before")
    @classmethod
    def _cell(cls, value: object, info: ValidationInfo) -> object:
        """Checks every cell gets before its column's own: text, safe characters, no formula."""
        if not isinstance(value, str):
            raise ValueError(f"expected text, got {type(value).__name__}")
        if value == "":
            if cls.model_fields[info.field_name].is_required():
                raise ValueError("required: the cell is empty")
            return None
        problem = cell_problem(value, numeric=is_numeric(info.field_name))
        if problem:
            raise ValueError(problem)
        field = cls.model_fields[info.field_name]
        if is_numeric(info.field_name) and not NUMBER.fullmatch(value):
            raise ValueError("expected a decimal number such as 0.2984")
        if field.annotation is bool:
            if value not in BOOLEANS:
                raise ValueError("expected true or false")
            return value == BOOLEANS[0]
        if info.field_name == "date" and not DATE.fullmatch(value):
            raise ValueError(f"expected a date {DATE_FORM}")
        if info.field_name in NOT_A_PATH and looks_like_path(value):
            raise ValueError("looks like a file path or URL: give a plain name")
        return value


def cell_problem(value: str, numeric: bool = False) -> str | None:
    """Why a cell is refused whatever its column (None when it is acceptable)."""
    if len(value) > CELL_MAX:
        return f"longer than {CELL_MAX} characters"
    for ch in value:
        if "\ud800" <= ch <= "\udfff":
            return "not valid UTF-8 text"
        category = unicodedata.category(ch)
        if (category in ("Cc", "Cf", "Zl", "Zp")) and ch not in ALLOWED_FORMAT_CHARS:
            return f"control character U+{ord(ch):04X} is not allowed"
    if value != value.strip():
        return "leading or trailing whitespace"
    if any(ch in value for ch in MARKUP):
        return "HTML markup (< or >) is not allowed"
    if value.startswith(FORMULA_START) and not (numeric and NUMBER.fullmatch(value)):
        return f"starts with {value[0]!r} (a spreadsheet formula): not allowed"
    return None


def looks_like_path(text: str) -> bool:
    """A file path, home-relative path, Windows path or URL (refused in names)."""
    return (
        text.startswith(("/", "~", "."))
        or "\\" in text
        or ".." in text
        or "://" in text
        or text.count("/") > 1
        or bool(re.match(r"^[A-Za-z]:[\\/]", text))
    )


NUMERIC = frozenset(
    {
        "parameters",
        "embedding_dim",
        "alpha",
        "batch_size",
        *(m.key for m in MEASURES.board()),
        "multi_map_ci_low",
        "multi_map_ci_high",
        "vs_best_p",
    }
)


def is_numeric(column: str) -> bool:
    return column in NUMERIC or column.startswith(PER_LANGUAGE_PREFIX)


def language_column(lang: str) -> str:
    return f"{PER_LANGUAGE_PREFIX}{lang}"


def language_description(lang: str) -> str:
    """What a per-language column holds (its schema description and the page's column title)."""
    return f"multilingual mAP of {lang} queries"


@cache
def row_model(task: str) -> type[RowBase]:
    """The row model of one task: its ``task`` value is fixed and it has one multi-mAP column per language."""
    spec = get_spec(task)
    per_language = {
        language_column(lang): (Map | None, Field(None, description=language_description(lang)))
        for lang in spec.languages
    }
    model = create_model(
        f"Row_{spec.name.replace('-', '_')}",
        __base__=RowBase,
        task=(Literal[spec.name], Field(description=RowBase.model_fields["task"].description)),
        **per_language,
    )
    return model


def header(task: str) -> list[str]:
    """The CSV header of a task: the columns in order."""
    return list(row_model(task).model_fields)


def row_key(row: RowBase) -> tuple[str, str, str, str]:
    """A row's identity: one row per (model fingerprint, task, candidate format, languages)."""
    return (row.model_fingerprint, row.task, row.candidate_format, row.languages)


def parse_row(task: str, cells: dict[str, str]) -> tuple[RowBase | None, list[tuple[str, str]]]:
    """Validate one row's cells; returns the row (or None) and its problems as (column, message)."""
    model = row_model(task)
    try:
        row = model.model_validate(cells)
    except ValidationError as err:
        return None, [_problem(e) for e in err.errors()]
    return row, consistency(row, get_spec(task))


def _problem(error: dict) -> tuple[str, str]:
    column = str(error["loc"][0]) if error["loc"] else "-"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown column"
    elif error["type"] == "string_pattern_mismatch":
        message = "expected " + PATTERN_HELP.get(column, f"the form {error['ctx']['pattern']}")
    value = error.get("input")
    if isinstance(value, str) and value and error["type"] != "extra_forbidden":
        shown = value if len(value) <= 40 else value[:37] + "..."
        message += f" (got {ascii(shown)})"
    return column, message


def consistency(row: RowBase, spec: TaskSpec) -> list[tuple[str, str]]:
    """Problems across columns: languages vs the task, per-language columns, training vs strategy."""
    problems: list[tuple[str, str]] = []
    langs = row.languages.split(",")
    unknown = [lang for lang in langs if lang not in spec.languages]
    if unknown:
        problems.append(("languages", f"{','.join(unknown)} not in {spec.name} ({','.join(spec.languages)})"))
    elif len(set(langs)) != len(langs) or langs != [x for x in spec.languages if x in langs]:
        problems.append(
            ("languages", f"expected distinct languages in the task's order {','.join(spec.languages)}")
        )
    if len(set(langs)) < MIN_LANGUAGES:
        problems.append(("languages", "a row needs at least two languages (the multilingual pool)"))
    if problems:
        return problems  # the per-language columns are checked against a well-formed language list
    for lang in spec.languages:
        value = getattr(row, language_column(lang))
        if lang in langs and value is None:
            problems.append((language_column(lang), f"required: {lang} is among the row's languages"))
        elif lang not in langs and value is not None:
            problems.append(
                (language_column(lang), f"must be empty: {lang} is not among the row's languages")
            )
    if row.training_strategy == ZERO_SHOT:
        problems += [
            (col, "must be empty for a zero-shot row")
            for col in TRAINING_COLUMNS
            if getattr(row, col) is not None
        ]
        if row.in_domain_training:
            problems.append(("in_domain_training", "must be false for a zero-shot row"))
    else:
        problems += [
            (col, f"required for a {row.training_strategy} row")
            for col in TRAINED_REQUIRES
            if getattr(row, col) is None
        ]
        fixed = {FREE_ALPHA: row.alpha if row.alpha is not None else -1.0, **FIXED_ALPHA}
        expected_alpha = fixed.get(row.training_strategy)
        if expected_alpha is None and row.alpha is not None:
            problems.append(("alpha", f"must be empty for a {row.training_strategy} row"))
        elif expected_alpha is not None and row.alpha != expected_alpha:
            what = "required" if row.training_strategy == FREE_ALPHA else f"must be {expected_alpha:g}"
            problems.append(("alpha", f"{what} for a {row.training_strategy} row"))
        if row.training_data is not None:
            formats = {source.split(":")[0] for source in row.training_data.split(";")}
            in_domain = bool(formats & set(spec.in_domain_training))
            if row.in_domain_training != in_domain:
                problems.append(
                    (
                        "in_domain_training",
                        f"must be {str(in_domain).lower()} for training data {row.training_data}",
                    )
                )
    return problems
