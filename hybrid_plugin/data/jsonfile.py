"""Reading user-supplied json with one-line errors that name the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

from hybrid_plugin.errors import UserError


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
