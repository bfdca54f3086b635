"""Statistics on results: paired significance tests and bootstrap intervals (reads evaluation/data only)."""

from hybrid_plugin.stats.compare import Comparison, compare, compare_runs, score_interval
from hybrid_plugin.stats.render import render

__all__ = ["Comparison", "compare", "compare_runs", "render", "score_interval"]
