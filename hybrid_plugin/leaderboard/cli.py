"""``hybrid-plugin leaderboard submit|remove|validate|render``: parses, calls the library, prints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_DIR = "leaderboards"


def _cmd_submit(args: argparse.Namespace) -> int:
    from hybrid_plugin.leaderboard.board import submit

    done = submit(
        Path(args.results),
        Path(args.dir),
        name=args.name,
        notes=args.notes,
        submitter=args.submitter,
        replace=args.replace,
        task_folder=Path(args.task) if args.task else None,
    )
    row, verb = done.row, "replaced" if done.replaced else "added"
    print(
        f"{verb} {row.name} ({row.model_fingerprint[:12]}) in {done.csv}: "
        f"place {done.position} of {done.total} on {row.languages} ({row.candidate_format}), "
        f"multi {row.multi_map:.4f}, mono {row.mono_map:.4f}, "
        f"cross {row.cross_map:.4f}, max rank distance {row.max_rank_distance:.1f}"
    )
    print(f"provenance: {done.results_copy}; now run: hybrid-plugin leaderboard render --dir {args.dir}")
    return 0


def _cmd_remove(args: argparse.Namespace) -> int:
    from hybrid_plugin.leaderboard.board import remove

    gone = remove(Path(args.dir), args.task, name=args.name, fingerprint=args.fingerprint)
    for row in gone:
        print(f"removed {row.name} ({row.model_fingerprint[:12]}, {row.languages}, {row.candidate_format})")
    print(f"now run: hybrid-plugin leaderboard render --dir {args.dir}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from hybrid_plugin.errors import UserError
    from hybrid_plugin.leaderboard.board import validate

    paths = [Path(f) for f in args.files] or sorted(Path(args.dir).glob("*.csv"))
    if not paths:
        raise UserError(f"no CSV files given and none in {args.dir}")
    checked, problems = validate(paths)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {len(paths)} file(s)", file=sys.stderr)
        return 2
    for c in checked:
        print(f"ok {c.path}: {len(c.rows)} row(s) of {c.task}")
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from hybrid_plugin.leaderboard.render import render

    written = render(Path(args.dir), check=args.check)
    if args.check:
        for path in written:
            print(f"{path}: out of date (run hybrid-plugin leaderboard render)", file=sys.stderr)
        return 2 if written else 0
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def add_leaderboard_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``leaderboard submit|remove|validate|render`` to the main CLI's subparsers."""
    p = subparsers.add_parser(
        "leaderboard",
        help="leaderboard CSVs: submit a results JSON, validate, render README/HTML/plots",
        description="One CSV per task in leaderboards/; rows come from results JSON files only.",
    )
    actions = p.add_subparsers(dest="action", required=True)  # same parser class as p: one-line errors

    s = actions.add_parser("submit", help="add the row of a results JSON (from hybrid-plugin evaluate)")
    s.add_argument("results", metavar="RESULTS.json", help="results JSON written by hybrid-plugin evaluate")
    s.add_argument("--name", default=None, help="display name (default: the model id)")
    s.add_argument("--notes", default=None, help="free text shown with the row")
    s.add_argument("--submitter", default=None, help="who submits (default: git config user.name)")
    s.add_argument("--replace", action="store_true", help="replace a row with the same key")
    s.add_argument(
        "--task",
        default=None,
        metavar="PATH",
        help="the task folder the results were computed on (results of --task PATH); its spec is kept "
        "as DIR/tasks/NAME.toml beside its own CSV",
    )
    s.add_argument("--dir", default=DEFAULT_DIR, help=f"leaderboard folder (default: {DEFAULT_DIR})")
    s.set_defaults(func=_cmd_submit)

    d = actions.add_parser(
        "remove", help="take rows out of a task's CSV by display name or model fingerprint"
    )
    d.add_argument("--task", required=True, help="the leaderboard's task (e.g. xquad-r)")
    which = d.add_mutually_exclusive_group(required=True)
    which.add_argument("--name", default=None, help="the row's display name, exactly")
    which.add_argument("--fingerprint", default=None, help="a model fingerprint prefix (≥ 8 hex digits)")
    d.add_argument("--dir", default=DEFAULT_DIR, help=f"leaderboard folder (default: {DEFAULT_DIR})")
    d.set_defaults(func=_cmd_remove)

    v = actions.add_parser("validate", help="check CSV files: one line per problem, exit 2 on any")
    v.add_argument("files", nargs="*", metavar="FILE", help="CSV files (default: DIR/*.csv)")
    v.add_argument("--dir", default=DEFAULT_DIR, help=f"leaderboard folder (default: {DEFAULT_DIR})")
    v.set_defaults(func=_cmd_validate)

    r = actions.add_parser("render", help="write DIR/README.md, DIR/index.html and DIR/plots/*.png")
    r.add_argument("--dir", default=DEFAULT_DIR, help=f"leaderboard folder (default: {DEFAULT_DIR})")
    r.add_argument(
        "--check", action="store_true", help="write nothing; exit 2 if README/index.html are stale"
    )
    r.set_defaults(func=_cmd_render)
