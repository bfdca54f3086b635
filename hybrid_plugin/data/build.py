"""Build a task's :class:`Pool` from its language files, with the reader its candidate unit needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hybrid_plugin.data.files import ResolvedFiles, resolve_files
from hybrid_plugin.data.lareqa import read_language_file
from hybrid_plugin.data.passages import read_passage_file
from hybrid_plugin.data.pool import LanguageFile, Pool, pool_from_files
from hybrid_plugin.data.spec import TaskSpec, get_spec, select_languages
from hybrid_plugin.errors import UserError


def check_counts(spec: TaskSpec, parsed: LanguageFile, path: Path) -> None:
    """The file must hold exactly the spec's published question and candidate counts."""
    for what, expected, found in (
        ("questions", spec.expected_questions[parsed.lang], len(parsed.question_ids)),
        ("candidates", spec.expected_candidates[parsed.lang], len(parsed.cand_ids)),
    ):
        if expected != found:
            raise UserError(
                f"{path}: {found} {what} for {parsed.lang}, the {spec.name} spec expects {expected}"
            )


def build_pool(
    spec: TaskSpec,
    files: dict[str, Path],
    candidate_format: str | None = None,
    check: bool = True,
) -> Pool:
    """One pool over the given language files (in spec order), with relevance through shared ids.

    Sentence tasks read LAReQA files; passage tasks (``candidate_unit = "passage"``) read plain
    SQuAD files with :func:`~hybrid_plugin.data.passages.read_passage_file`. ``candidate_format``
    ``None`` is the task's default; one the task does not offer is a :class:`UserError`.
    """
    candidate_format = spec.candidate_format(candidate_format)
    read = read_passage_file if spec.candidate_unit == "passage" else read_language_file
    languages = tuple(lang for lang in spec.languages if lang in files)
    parsed = []
    for lang in languages:
        lf = read(files[lang], lang)
        if check:
            check_counts(spec, lf, files[lang])
        parsed.append(lf)
    return pool_from_files(spec.name, languages, parsed, candidate_format, spec.settings)


@dataclass(frozen=True)
class LoadedTask:
    """A task's spec, the pool of the selected languages, its files, and notes for the results."""

    spec: TaskSpec
    pool: Pool
    files: ResolvedFiles
    notes: dict = field(default_factory=dict)


def load_pool(
    task: str,
    languages: str | list[str] | None = None,
    candidate_format: str | None = None,
    data_dir: str | Path | None = None,
    verify: bool = True,
) -> LoadedTask:
    """The pool of a built-in task (by name) or of a user task folder (a path: ``--task PATH``)."""
    from hybrid_plugin.data import taskdir
    from hybrid_plugin.provenance import portable_path

    if taskdir.looks_like_folder(task):
        loaded = taskdir.load_folder(task, languages, candidate_format)
        notes = {"task_folder": portable_path(str(Path(task).resolve())), **loaded.notes()}
        return LoadedTask(loaded.spec, loaded.pool, loaded.files, notes)
    spec = get_spec(task)
    langs = select_languages(spec, languages)
    candidate_format = spec.candidate_format(candidate_format)  # before any file is looked for
    files = resolve_files(spec, langs, data_dir, verify=verify)
    return LoadedTask(spec, build_pool(spec, files.paths, candidate_format, check=verify), files)
