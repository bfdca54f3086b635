"""Where the plugin keeps its user-level cache (converted models, embeddings, downloaded data), and
which names may become a folder name."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

from hybrid_plugin.errors import UserError

CACHE_ENV = "HYBRID_PLUGIN_CACHE"


def cache_root() -> Path:
    """User cache folder; ``$HYBRID_PLUGIN_CACHE`` overrides the platform default."""
    return Path(os.environ.get(CACHE_ENV) or user_cache_dir("hybrid-plugin"))


def path_component(value: str, what: str) -> str:
    """``value`` if it is safe as one file or folder name under an output folder, else a UserError.

    Why: names and revisions given on the command line become folders (MTEB's
    ``results/<model>/<revision>/``); ``..``, a separator, a drive colon or a leading dot would put
    files outside the folder the user chose, or hide them.
    """
    if not value:
        problem = "is empty"
    elif "/" in value or "\\" in value:
        problem = "contains a path separator ('/' or '\\')"
    elif ":" in value:
        problem = "contains ':' (a drive or stream on Windows)"
    elif any(ord(c) < 32 or ord(c) == 127 for c in value):
        problem = "contains a NUL or control character"
    elif value.startswith("."):
        problem = "starts with '.' ('..' leaves the folder, '.x' is hidden)"
    elif len(value.encode("utf-8")) > 255:
        problem = "is longer than 255 bytes"
    else:
        return value
    raise UserError(f"{what} {value!r}: {problem}; expected one folder name")
