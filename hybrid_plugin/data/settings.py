"""Settings of a pool: which queries are asked against which candidates, and the one place keys are made.

A setting is X→Y (candidates in language Y; ``mono`` when Y = X, else ``cross``) or X→pool (``multi``:
the candidates of every selected language). Its key is ``"de-en"`` / ``"de-pool"`` in results files,
TREC file names and BEIR manifests; :meth:`Setting.key` writes it and :meth:`Setting.parse` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hybrid_plugin.data.pool import Pool
from hybrid_plugin.data.spec import SettingKind

POOL = "pool"


@dataclass(frozen=True)
class Setting:
    """X→Y (``target`` a language) or X→pool (``target`` None)."""

    query_lang: str
    target: str | None = None

    @property
    def kind(self) -> SettingKind:
        if self.target is None:
            return SettingKind.MULTI
        return SettingKind.MONO if self.target == self.query_lang else SettingKind.CROSS

    @property
    def is_pool(self) -> bool:
        return self.target is None

    @property
    def key(self) -> str:
        return f"{self.query_lang}-{POOL if self.target is None else self.target}"

    def __str__(self) -> str:
        return self.key

    @classmethod
    def parse(cls, key: str) -> Setting:
        """``"de-en"`` → Setting("de", "en"); ``"de-pool"`` → Setting("de", None)."""
        x, sep, y = key.partition("-")
        if not sep or not x or not y or "-" in y:
            raise ValueError(f"not a setting key: {key!r} (expected 'x-y' or 'x-pool')")
        return cls(x, None if y == POOL else y)


def pool_settings(pool: Pool) -> dict[Setting, np.ndarray]:
    """Queries of every setting of the pool, in report order (X, then each Y, then X→pool).

    X→Y holds the queries in X with a relevant candidate in Y; only the pool's setting kinds are
    listed (a monolingual-only task has X→X alone).
    """
    n_lang = len(pool.languages)
    has = np.zeros((len(pool.query_ids), n_lang), dtype=bool)
    rows, cands = pool.relevant_pairs()
    has[rows, pool.cand_lang[cands]] = True
    out: dict[Setting, np.ndarray] = {}
    for x, lx in enumerate(pool.languages):
        in_x = pool.query_lang == x
        for y, ly in enumerate(pool.languages):
            setting = Setting(lx, ly)
            queries = np.flatnonzero(in_x & has[:, y])
            if len(queries) and setting.kind in pool.settings:
                out[setting] = queries
        if in_x.any() and SettingKind.MULTI in pool.settings:
            out[Setting(lx, None)] = np.flatnonzero(in_x)
    return out


def relevant_in(pool: Pool, query: int, setting: Setting) -> np.ndarray:
    """Relevant candidates of ``query`` among the setting's candidates (all of them for the pool)."""
    rel = pool.relevant(query)
    if setting.target is None:
        return rel
    return rel[pool.cand_lang[rel] == pool.languages.index(setting.target)]
