"""Parse plain SQuAD json (no ``sentences``) into passage candidates: question → its gold passage.

Used by tasks whose ``candidate_unit`` is ``passage`` (TyDi QA GoldP). Every distinct ``context``
text of a file is one candidate: a paragraph that appears under several articles (TyDi QA GoldP
repeats a passage once per question asked about it) is a single candidate, and each of those
questions has that one candidate as its relevant passage. Texts are compared exactly, as encoded.
"""

from __future__ import annotations

from pathlib import Path

from hybrid_plugin.data.jsonfile import squad_paragraphs, squad_questions
from hybrid_plugin.data.pool import LanguageFile
from hybrid_plugin.errors import UserError


def read_passage_file(path: Path, lang: str) -> LanguageFile:
    """Read one SQuAD file: candidates are its distinct paragraphs, in first-seen order."""
    out = LanguageFile(lang)
    index: dict[str, int] = {}  # passage text -> candidate
    seen: set[str] = set()
    for _, _, where, para, context in squad_paragraphs(path):
        cand = index.get(context)
        if cand is None:
            cand = index[context] = len(out.cand_ids)
            out.cand_ids.append(f"{lang}-p{cand:05d}")
            out.sentences.append(context)
            out.contexts.append(context)
        for qwhere, _, qid, question in squad_questions(para, where, path):
            if qid in seen:
                raise UserError(f"{path}: question id {qid} appears twice ({qwhere})")
            seen.add(qid)
            out.question_ids.append(qid)
            out.questions.append(question)
            out.answer_cand.append(cand)
    return out
