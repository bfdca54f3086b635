"""Leaderboard rows from the study: one per trained model and full-language ranked task."""

from __future__ import annotations

import argparse
from pathlib import Path

from .records import RunRecord, as_records

LEADERBOARD_SUBMITTER = "hybrid_plugin maintainers"


def leaderboard_name(label: str, seed: int, steps: int) -> str:
    """A study row's display name: base and recipe first, then what tells the runs of a recipe apart."""
    return f"e5-small + {label}, seed {seed}, {steps} steps"


def submit_to_leaderboard(rows: list[RunRecord], args: argparse.Namespace) -> list[str]:
    """One leaderboard row per trained model and full-language ranked task (earlier rows replaced)."""
    rows = as_records(rows)
    from hybrid_plugin.leaderboard.board import remove, submit
    from hybrid_plugin.leaderboard.render import render
    from hybrid_plugin.leaderboard.tasks import ranked_specs

    ranked = set(ranked_specs())
    done = []
    for row in rows:
        if row.strategy == "untrained":
            continue
        for task, path in row.results_path.items():
            if task not in ranked or args.eval_languages.get(task):
                continue
            name = leaderboard_name(row.label, row.seed, row.steps)
            # a retrained run has a new fingerprint: its earlier row goes by name, not by key
            remove(Path(args.leaderboard), task, name=name, missing_ok=True)
            submitted = submit(
                Path(path),
                Path(args.leaderboard),
                name=name,
                notes=f"benchmarks/study.py run {row.name}; docs/study.md",
                submitter=LEADERBOARD_SUBMITTER,
                replace=True,
            )
            done.append(f"{submitted.csv}: {submitted.row.name}")
    render(Path(args.leaderboard))
    return done
