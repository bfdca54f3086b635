"""Parse LAReQA json (SQuAD format plus ``sentences`` / ``sentence_breaks``): one candidate per sentence."""

from __future__ import annotations

from pathlib import Path

from hybrid_plugin.data.jsonfile import need, squad_paragraphs, squad_questions
from hybrid_plugin.data.pool import LanguageFile
from hybrid_plugin.errors import UserError


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
