"""The batch strategies by name, and the monolingual-batch probability each uses (no heavy imports)."""

from __future__ import annotations

from hybrid_plugin.errors import UserError
from hybrid_plugin.models.record import STRATEGIES

ALIASES = {"same-language": "mixed", "x-x-mono": "mono", "x-y": "cross", "x-x": "mixed", "en-en": "english"}
FIXED_ALPHA = {"mono": 1.0, "cross": 0.0, "english": 1.0}
DEFAULT_ALPHA = 0.5
MONO_WEIGHTS = ("uniform", "size")


def canonical_strategy(strategy: str) -> str:
    """The strategy's name in :data:`STRATEGIES` (accepts the paper's names, e.g. ``X-Y``)."""
    name = ALIASES.get(strategy.lower(), strategy.lower())
    if name not in STRATEGIES:
        raise UserError(f"--strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")
    return name


def resolve_alpha(strategy: str, alpha: float | None) -> float | None:
    """The monolingual-batch probability a strategy uses (None for mixed)."""
    strategy = canonical_strategy(strategy)
    if strategy == "hybrid":
        alpha = DEFAULT_ALPHA if alpha is None else float(alpha)
        if not 0.0 <= alpha <= 1.0:
            raise UserError(f"--alpha must be in [0, 1], got {alpha}")
        return alpha
    if alpha is not None and alpha != FIXED_ALPHA.get(strategy):
        raise UserError(f"--alpha applies to --strategy hybrid only (strategy {strategy})")
    return FIXED_ALPHA.get(strategy)
