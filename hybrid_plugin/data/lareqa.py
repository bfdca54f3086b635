"""Parse LAReQA json (SQuAD format plus ``sentences`` / ``sentence_breaks``) into a :class:`Pool`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hybrid_plugin.data.jsonfile import need, squad_paragraphs, squad_questions
from hybrid_plugin.data.pool import Pool
from hybrid_plugin.data.spec import SETTING_KINDS, TaskSpec
from hybrid_plugin.errors import UserError


@dataclass
class LanguageFile:
    """Candidates and questions read from one language's file."""

    lang: str
    cand_ids: list[str] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    question_ids: list[str] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)
    answer_cand: list[int] = field(default_factory=list)  # index into this file's candidates


def read_language_file(path: Path, lang: str) -> LanguageFile:
    """Read one LAReQA file; every question must have its answer start inside one sentence."""
    out = LanguageFile(lang)
    seen: set[str] = set()
    for a, p, where, para, context in squad_paragraphs(path):
        sentences = need(para, "sentences", list, where, path)
        breaks = need(para, "sentence_breaks", list, where, path)
        if len(sentences) != len(breaks):
            raise UserError(
                f"{path}: {where} has {len(sentences)} sentences but {len(breaks)} sentence_breaks"
            )
        first = len(out.cand_ids)
        for s, sentence in enumerate(sentences):
            if not isinstance(sentence, str):
                raise UserError(f"{path}: {where}.sentences[{s}] should be a string")
            out.cand_ids.append(f"{lang}-a{a:03d}-p{p:02d}-s{s:03d}")
            out.sentences.append(sentence)
            out.contexts.append(context)
        for qwhere, qa, qid, question in squad_questions(para, where, path):
            answers = need(qa, "answers", list, qwhere, path)
            if not answers:
                raise UserError(f"{path}: question {qid} ({qwhere}) has no answer")
            start = need(answers[0], "answer_start", int, f"{qwhere}.answers[0]", path)
            hit = [
                s
                for s, span in enumerate(breaks)
                if isinstance(span, list) and len(span) == 2 and span[0] <= start < span[1]
            ]
            if len(hit) != 1:
                raise UserError(
                    f"{path}: question {qid} ({qwhere}) has answer_start {start} outside every "
                    f"sentence of its paragraph"
                )
            if qid in seen:
                raise UserError(f"{path}: question id {qid} appears twice ({qwhere})")
            seen.add(qid)
            out.question_ids.append(qid)
            out.questions.append(question)
            out.answer_cand.append(first + hit[0])
    return out


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
    if spec.candidate_unit == "passage":
        from hybrid_plugin.data.passages import read_passage_file as read  # imports this module
    else:
        read = read_language_file
    languages = tuple(lang for lang in spec.languages if lang in files)
    parsed = []
    for lang in languages:
        lf = read(files[lang], lang)
        if check:
            check_counts(spec, lf, files[lang])
        parsed.append(lf)
    return pool_from_files(spec.name, languages, parsed, candidate_format, spec.settings)


def pool_from_files(
    task: str,
    languages: tuple[str, ...],
    parsed: list[LanguageFile],
    candidate_format: str,
    settings: tuple[str, ...] = SETTING_KINDS,
) -> Pool:
    """Pool of parsed files. Questions with one id are parallel across languages, unless the task is
    monolingual-only (``settings == ("mono",)``): then every question is its own group."""
    parallel = settings != ("mono",)
    cand_ids: list[str] = []
    sentences: list[str] = []
    contexts: list[str] = []
    cand_lang: list[int] = []
    query_ids: list[str] = []
    query_text: list[str] = []
    query_lang: list[int] = []
    query_group: list[int] = []
    group_index: dict[str, int] = {}
    answers: list[tuple[int, int]] = []  # (group, candidate)
    for li, lf in enumerate(parsed):
        offset = len(cand_ids)
        cand_ids += lf.cand_ids
        sentences += lf.sentences
        contexts += lf.contexts
        cand_lang += [li] * len(lf.cand_ids)
        for qid, text, ans in zip(lf.question_ids, lf.questions, lf.answer_cand):
            g = group_index.setdefault(qid if parallel else f"{lf.lang}/{qid}", len(group_index))
            query_ids.append(f"{lf.lang}-q-{qid}")
            query_text.append(text)
            query_lang.append(li)
            query_group.append(g)
            answers.append((g, offset + ans))
    pairs = np.array(sorted(set(answers)), dtype=np.int64).reshape(-1, 2)
    group_ptr = np.searchsorted(pairs[:, 0], np.arange(len(group_index) + 1)).astype(np.int64)
    return Pool(
        task=task,
        languages=languages,
        candidate_format=candidate_format,
        cand_ids=cand_ids,
        cand_lang=np.asarray(cand_lang, dtype=np.int64),
        cand_sentence=sentences,
        cand_context=contexts,
        query_ids=query_ids,
        query_lang=np.asarray(query_lang, dtype=np.int64),
        query_text=query_text,
        query_group=np.asarray(query_group, dtype=np.int64),
        group_names=list(group_index),
        group_ptr=group_ptr,
        group_cands=pairs[:, 1].copy(),
        settings=settings,
    )
