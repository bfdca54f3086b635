"""Reading user-supplied json with one-line errors that name the file and the field."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from hybrid_plugin.errors import UserError

MiB = 2**20


def read_limited(path: Path, limit: int, what: str = "file") -> bytes:
    """The bytes of a file read whole, refused (before reading) when larger than ``limit``."""
    path = Path(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        data = fh.read(limit + 1) if size <= limit else b""
    if size > limit or len(data) > limit:  # (a file growing while read counts too)
        raise UserError(
            f"{path}: {max(size, len(data)) / MiB:.0f} MiB, "
            f"larger than the {limit // MiB} MiB a {what} may be"
        )
    return data


def load_json(path: Path) -> object:
    """Parse a UTF-8 json file; malformed input is a :class:`UserError` naming line and column."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(
            f"{path}: malformed json at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None
    except UnicodeDecodeError as err:
        raise UserError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def need(obj: object, key: str, kind: type, where: str, path: Path) -> object:
    """``obj[key]``, which must exist and be a ``kind``; ``where`` names ``obj`` (e.g. data[0].qas[3])."""
    if not isinstance(obj, dict) or key not in obj:
        raise UserError(f"{path}: {where} has no field {key!r}")
    value = obj[key]
    if not isinstance(value, kind):
        raise UserError(f"{path}: {where}.{key} should be a {kind.__name__}, got {type(value).__name__}")
    return value


def squad_paragraphs(path: Path) -> Iterator[tuple[int, int, str, dict, str]]:
    """Each paragraph of a SQuAD-format file: (article index, paragraph index, where, paragraph, context).

    ``where`` names the paragraph in errors (``data[3].paragraphs[0]``); an empty context is refused.
    """
    raw = load_json(path)
    for a, article in enumerate(need(raw, "data", list, "top level", path)):
        for p, para in enumerate(need(article, "paragraphs", list, f"data[{a}]", path)):
            where = f"data[{a}].paragraphs[{p}]"
            context = need(para, "context", str, where, path)
            if not context.strip():
                raise UserError(f"{path}: {where}: field 'context' is empty")
            yield a, p, where, para, context


def squad_questions(para: dict, where: str, path: Path) -> Iterator[tuple[str, dict, str, str]]:
    """Each question of a paragraph: (where, qa, id, question); an empty id or question is refused."""
    for k, qa in enumerate(need(para, "qas", list, where, path)):
        qwhere = f"{where}.qas[{k}]"
        qid = need(qa, "id", str, qwhere, path)
        question = need(qa, "question", str, qwhere, path)
        for name, value in (("id", qid), ("question", question)):
            if not value.strip():
                raise UserError(f"{path}: {qwhere}: field {name!r} is empty")
        yield qwhere, qa, qid, question
