"""Where the plugin keeps its user-level cache (converted models, embeddings, downloaded data)."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir

CACHE_ENV = "HYBRID_PLUGIN_CACHE"


def cache_root() -> Path:
    """User cache folder; ``$HYBRID_PLUGIN_CACHE`` overrides the platform default."""
    return Path(os.environ.get(CACHE_ENV) or user_cache_dir("hybrid-plugin"))
