"""The in-memory retrieval pool of a LAReQA task: candidates, queries and cross-language relevance."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hybrid_plugin.data.spec import CANDIDATE_UNITS, SETTING_KINDS, SettingKind

# every candidate format; which ones a task offers: TaskSpec.candidate_formats
CANDIDATE_FORMATS = tuple(f for formats in CANDIDATE_UNITS.values() for f in formats)


@dataclass
class Pool:
    """Candidates and queries of the selected languages, grouped by language in spec order.

    Relevance is by parallel group: question ids shared across languages form a group, and a
    group's relevant candidates are the answer sentences of its questions in every language.
    ``settings`` are the setting kinds evaluated on it (a monolingual-only task: ``("mono",)``).
    For passage candidates ``cand_sentence`` and ``cand_context`` both hold the passage.
    """

    task: str
    languages: tuple[str, ...]
    candidate_format: str
    cand_ids: list[str]
    cand_lang: np.ndarray  # int, index into languages
    cand_sentence: list[str]
    cand_context: list[str]
    query_ids: list[str]
    query_lang: np.ndarray  # int
    query_text: list[str]
    query_group: np.ndarray  # int, index into group_names
    group_names: list[str]
    group_ptr: np.ndarray  # CSR over groups: relevant candidates of group g are
    group_cands: np.ndarray  # group_cands[group_ptr[g]:group_ptr[g + 1]]
    settings: tuple[str, ...] = SETTING_KINDS

    @property
    def cand_text(self) -> list[str]:
        """The text encoded for each candidate, per the candidate format."""
        if self.candidate_format in ("sentence", "passage"):
            return self.cand_sentence
        return [f"{s}\n\n{c}" for s, c in zip(self.cand_sentence, self.cand_context)]

    def relevant(self, query: int) -> np.ndarray:
        g = self.query_group[query]
        return self.group_cands[self.group_ptr[g] : self.group_ptr[g + 1]]

    def relevant_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (query, relevant candidate) pair as two index arrays, queries ascending."""
        g = self.query_group
        start = self.group_ptr[g]
        counts = self.group_ptr[g + 1] - start
        queries = np.repeat(np.arange(len(g)), counts)
        offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
        return queries, self.group_cands[np.repeat(start, counts) + offsets]

    def lang_slices(self) -> list[slice]:
        """Candidates of language i are ``cand_*[lang_slices()[i]]`` (they are contiguous)."""
        bounds = np.searchsorted(self.cand_lang, np.arange(len(self.languages) + 1))
        return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]

    def counts(self) -> dict[str, dict[str, int]]:
        q = np.bincount(self.query_lang, minlength=len(self.languages))
        c = np.bincount(self.cand_lang, minlength=len(self.languages))
        return {
            lang: {"questions": int(q[i]), "candidates": int(c[i])} for i, lang in enumerate(self.languages)
        }


def relevance_csr(pairs, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """``Pool.group_ptr`` and ``Pool.group_cands`` from (group, candidate) pairs: duplicates dropped,
    each group's candidates sorted (every pool builder goes through here)."""
    table = np.array(sorted(set(pairs)), dtype=np.int64).reshape(-1, 2)
    return np.searchsorted(table[:, 0], np.arange(n_groups + 1)).astype(np.int64), table[:, 1].copy()


def unique_texts(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Distinct texts in first-seen order, and each input's row among them (encode/search each once)."""
    index: dict[str, int] = {}
    rows = np.fromiter((index.setdefault(t, len(index)) for t in texts), dtype=np.int64, count=len(texts))
    return list(index), rows


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


def pool_from_files(
    task: str,
    languages: tuple[str, ...],
    parsed: list[LanguageFile],
    candidate_format: str,
    settings: tuple[str, ...] = SETTING_KINDS,
) -> Pool:
    """Pool of parsed files. Questions with one id are parallel across languages, unless the task is
    monolingual-only (``settings == ("mono",)``): then every question is its own group."""
    parallel = settings != (SettingKind.MONO,)
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
    group_ptr, group_cands = relevance_csr(answers, len(group_index))
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
        group_cands=group_cands,
        settings=settings,
    )
