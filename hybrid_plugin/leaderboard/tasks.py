"""Which tasks have leaderboards: those with cross-lingual and multilingual settings (a
monolingual-only task such as tydi-goldp has no multilingual mAP to rank by)."""

from __future__ import annotations

from hybrid_plugin.data.spec import TaskSpec, all_specs


def ranked_specs() -> dict[str, TaskSpec]:
    """Task specs that get a leaderboard, by name."""
    return {name: spec for name, spec in all_specs().items() if "multi" in spec.settings}
