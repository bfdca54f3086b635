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


#: files read whole as json (task data, training data): far above any real one, far below the RAM
JSON_MAX_BYTES = 1024 * MiB


def parse_json(text: str | bytes, source: object) -> object:
    """``json.loads`` whose failures are one :class:`UserError` line naming ``source``: malformed
    input (line and column), bytes that are not UTF-8, nesting too deep for the parser."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UserError(
            f"{source}: malformed json at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None
    except UnicodeDecodeError as err:
        raise UserError(f"{source}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except RecursionError:
        raise UserError(f"{source}: json nested too deeply (thousands of levels): not a data file") from None


def load_json(path: Path) -> object:
    """Parse a UTF-8 json file (size-checked first); bad input is a :class:`UserError` naming it."""
    return parse_json(read_limited(path, JSON_MAX_BYTES, "json file"), path)


def need(obj: object, key: str, kind: type, where: str, path: Path) -> object:
    """``obj[key]``, which must exist and be a ``kind``; ``where`` names ``obj`` (e.g. data[0].qas[3])."""
    if not isinstance(obj, dict) or key not in obj:
        raise UserError(f"{path}: {where} has no field {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        # json true/false are Python bools, and bool is an int: never accept one as a number
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
