"""The in-memory retrieval pool of a LAReQA task: candidates, queries and cross-language relevance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hybrid_plugin.data.spec import CANDIDATE_UNITS, SETTING_KINDS

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
