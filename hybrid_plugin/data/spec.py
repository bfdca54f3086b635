"""Declarative task specs (``tasks/*.toml``): the single source of truth for languages, files and counts."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from importlib import resources
from pathlib import Path

from hybrid_plugin.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, released as tomli
    import tomli as tomllib


class SettingKind(str, Enum):
    """What a setting's candidates are: X→X, X→Y (X≠Y) or X→pool of all selected languages.

    A ``str`` (Python 3.10 has no ``enum.StrEnum``): it equals, hashes, formats and serialises as its
    value, so results files, spec files and setting keys keep the plain words.
    """

    MONO = "mono"
    CROSS = "cross"
    MULTI = "multi"

    def __str__(self) -> str:
        return self.value


SETTING_KINDS: tuple[SettingKind, ...] = tuple(SettingKind)
# candidate unit -> the candidate formats it offers (the first is the default)
CANDIDATE_UNITS = {"sentence": ("sentence", "sentence+context"), "passage": ("passage",)}


@dataclass(frozen=True)
class TaskSpec:
    """What a task is: its languages, settings, where its files come from, what they must contain.

    ``settings`` lists the setting kinds the task has (a monolingual-only task has ``("mono",)``);
    ``candidate_unit`` says whether candidates are LAReQA sentences or whole SQuAD passages.
    """

    name: str
    title: str
    description: str
    languages: tuple[str, ...]
    license: str
    reference: str
    citation: str
    origin_url: str
    origin_commit: str
    folder: str
    files: dict[str, str]  # file name -> sha256
    expected_questions: dict[str, int]
    expected_candidates: dict[str, int]
    in_domain_training: tuple[str, ...] = ()
    source: str = field(default="", compare=False)  # path of the spec file
    settings: tuple[str, ...] = SETTING_KINDS
    candidate_unit: str = "sentence"
    file_pattern: str = "{lang}.json"

    def file_for(self, lang: str) -> str:
        return self.file_pattern.format(lang=lang)

    @property
    def candidate_formats(self) -> tuple[str, ...]:
        return CANDIDATE_UNITS[self.candidate_unit]

    def candidate_format(self, requested: str | None) -> str:
        """``--candidate-format`` checked against the task (``None``: the task's default)."""
        if requested is None:
            return self.candidate_formats[0]
        if requested not in self.candidate_formats:
            raise UserError(
                f"--candidate-format {requested} does not apply to {self.name}: its candidates are "
                f"{self.candidate_unit}s; use {' or '.join(self.candidate_formats)}"
            )
        return requested

    def n_settings(self, kind: str) -> int:
        """How many settings of ``kind`` the task has over all its languages (0 if it has none)."""
        n = len(self.languages)
        return 0 if kind not in self.settings else n * (n - 1) if kind == SettingKind.CROSS else n

    def url_for(self, file: str) -> str:
        return self.origin_url.format(commit=self.origin_commit, file=file)

    @property
    def origin_repo(self) -> str:
        """The repository the files come from (``https://github.com/OWNER/REPO`` for raw GitHub URLs)."""
        parts = self.origin_url.split("/")
        if len(parts) > 4 and parts[2] == "raw.githubusercontent.com":
            return f"https://github.com/{parts[3]}/{parts[4]}"
        return "/".join(parts[:3])

    @property
    def n_cross_settings(self) -> int:
        return self.n_settings(SettingKind.CROSS)


def _spec_dir() -> Path:
    """Specs ship in the wheel as ``hybrid_plugin/_tasks``; in a source checkout they are ``tasks/``."""
    packaged = resources.files("hybrid_plugin") / "_tasks"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "tasks"


def _parse(path: Path) -> TaskSpec:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    try:
        spec = TaskSpec(
            name=raw["name"],
            title=raw["title"],
            description=raw["description"],
            languages=tuple(raw["languages"]),
            license=raw["license"],
            reference=raw["reference"],
            citation=raw["citation"].strip(),
            origin_url=raw["origin"]["url"],
            origin_commit=raw["origin"]["commit"],
            folder=raw["origin"]["folder"],
            files=dict(raw["files"]),
            expected_questions=dict(raw["expected"]["questions"]),
            expected_candidates=dict(raw["expected"]["candidates"]),
            in_domain_training=tuple(raw.get("in_domain_training", ())),
            source=str(path),
            settings=tuple(raw.get("settings", SETTING_KINDS)),
            candidate_unit=raw.get("candidate_unit", "sentence"),
            file_pattern=raw["origin"].get("file", "{lang}.json"),
        )
    except KeyError as err:
        raise UserError(f"{path}: task spec lacks field {err.args[0]!r}") from None
    unknown = [k for k in spec.settings if k not in SETTING_KINDS]
    if unknown or not spec.settings:
        raise UserError(f"{path}: settings must be a non-empty list of {', '.join(SETTING_KINDS)}")
    if spec.candidate_unit not in CANDIDATE_UNITS:
        raise UserError(f"{path}: candidate_unit must be one of {', '.join(CANDIDATE_UNITS)}")
    for lang in spec.languages:
        for table in ("files", "expected_questions", "expected_candidates"):
            keys = spec.files if table == "files" else getattr(spec, table)
            key = spec.file_for(lang) if table == "files" else lang
            if key not in keys:
                raise UserError(f"{path}: [{table}] has no entry for language {lang!r}")
    return spec


@cache
def all_specs() -> dict[str, TaskSpec]:
    """Every task spec shipped with the plugin, by name."""
    specs = [_parse(p) for p in sorted(_spec_dir().glob("*.toml"))]
    return {s.name: s for s in specs}


_REGISTERED: dict[str, TaskSpec] = {}


def register_spec(spec: TaskSpec) -> None:
    """Make a task folder's spec known by name in this process (its leaderboard reads it by name)."""
    if spec.name in all_specs():
        raise UserError(f"task {spec.name!r}: a built-in task has this name")
    _REGISTERED[spec.name] = spec


def forget_registered() -> None:
    """Drop every registered task folder spec (a leaderboard folder's tasks replace the last one's)."""
    _REGISTERED.clear()


def known_specs() -> dict[str, TaskSpec]:
    """Built-in specs and the task folders' specs registered in this process, by name."""
    return {**all_specs(), **_REGISTERED}


def get_spec(name: str) -> TaskSpec:
    specs = known_specs()
    key = name.lower()
    if key not in specs:
        raise UserError(f"unknown task {name!r}; known tasks: {', '.join(sorted(specs))}")
    return specs[key]


def select_languages(spec: TaskSpec, languages: str | list[str] | None) -> tuple[str, ...]:
    """Validate a ``--languages`` selection (comma list) against the task; keeps the spec's order."""
    if languages is None:
        return spec.languages
    wanted = languages.split(",") if isinstance(languages, str) else list(languages)
    wanted = [w.strip().lower() for w in wanted if w.strip()]
    unknown = [w for w in wanted if w not in spec.languages]
    if unknown:
        raise UserError(
            f"unknown language(s) {', '.join(unknown)} for task {spec.name}; "
            f"it has {', '.join(spec.languages)}"
        )
    if not wanted:  # "", ",", []: an empty selection is a mistake, not "all languages" (that is None)
        raise UserError(
            f"empty language selection {languages!r} for task {spec.name}; leave --languages out for all"
        )
    return tuple(lang for lang in spec.languages if lang in wanted)
