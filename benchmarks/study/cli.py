"""The study's command line: ``python benchmarks/study.py`` (or ``python -m benchmarks.study``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hybrid_plugin.errors import UserError
from hybrid_plugin.provenance import portable_command

from .archive import restore_records
from .leaderboard import submit_to_leaderboard
from .plans import PLANS, only_runs, plan_robustness, plan_runs
from .report import write_report
from .running import collect

DESCRIPTION = (
    "The reproduction study: train the batch strategies from one base model, evaluate, write docs/study.md."
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=DESCRIPTION)
    p.add_argument("--plan", default="main", help=", ".join(PLANS))
    p.add_argument("--seeds", default="0,1", help="comma list of seeds for the main plan")
    p.add_argument("--alphas", default="0,0.25,0.5,0.75,1", help="α values of the alpha plan")
    p.add_argument("--batch-sizes", default="16,64,256", help="batch sizes of the batch plan")
    p.add_argument("--merge", default="0.5", help="comma list of λ for the merge plan")
    p.add_argument("--data-dir", default="../shared/datasets")
    p.add_argument("--train-data", action="append", default=None, help="override the training data")
    p.add_argument("--work", default="study-runs", help="models and result files (not committed)")
    p.add_argument("--report", default="docs/study.md")
    p.add_argument(
        "--report-only", action="store_true", help="train and evaluate nothing; report what --work holds"
    )
    p.add_argument(
        "--restore",
        default=None,
        metavar="DIR",
        help="first copy a report's committed records (e.g. docs/study-debias/runs) into --work for the "
        "runs it does not hold, so only what is missing is made (restored models have no weights)",
    )
    p.add_argument(
        "--leaderboard", default=None, metavar="DIR", help="submit trained models' rows to this board"
    )
    p.add_argument("--base-model", default="default")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument(
        "--pairs", type=int, default=None, help="training pairs per run (steps = pairs / batch size)"
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--mini-batch-size", type=int, default=64, help="cached loss above this batch size")
    p.add_argument("--learning-rate", type=float, default=3e-5)
    p.add_argument("--max-seq-length", type=int, default=128)
    p.add_argument("--freeze-embeddings", action="store_true")
    p.add_argument("--save-steps", type=int, default=50)
    p.add_argument("--tasks", default=None, help="comma list replacing every plan's tasks")
    p.add_argument(
        "--only",
        default=None,
        metavar="RUNS",
        help="comma list of the plan's run names: make only these, in this order (e.g. to spend a short "
        "budget on the runs that matter first)",
    )
    p.add_argument(
        "--robustness",
        default=None,
        metavar="TASKS",
        help="comma list of tasks on which each plain run is also evaluated on perturbed queries "
        "(hybrid-plugin perturb's defaults, seed 0); 'none' for none (default: xquad-r,tydi-goldp for "
        "the debias plan, none for the others)",
    )
    p.add_argument(
        "--eval-languages",
        default=None,
        help="TASK=LANGS;... e.g. 'xquad-r=de,en,zh;mlqa-r=de,en,zh' (sweeps on a subset)",
    )
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        args.seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
        args.alphas = tuple(float(x) for x in args.alphas.split(",") if x.strip())
        args.batch_sizes = tuple(int(x) for x in args.batch_sizes.split(",") if x.strip())
        args.merge = tuple(float(x) for x in args.merge.split(",") if x.strip())
    except ValueError as err:
        p.error(f"--seeds/--alphas/--batch-sizes/--merge: {err}")
    if not args.seeds:
        p.error("--seeds: give at least one seed")
    if any(not 0 <= a <= 1 for a in args.alphas):
        p.error("--alphas: each α must be in [0, 1]")
    if any(not 0 < m < 1 for m in args.merge):
        p.error("--merge: each λ must be in (0, 1)")
    if args.pairs is not None and args.pairs <= 0:
        p.error("--pairs: expected a positive number of training pairs")
    args.tasks = [t for t in (args.tasks or "").split(",") if t.strip()] or None
    args.robustness = plan_robustness(args.plan, args.robustness)
    args.only = [r.strip() for r in (args.only or "").split(",") if r.strip()] or None
    langs = {}
    for part in (args.eval_languages or "").split(";"):
        if "=" in part:
            task, value = part.split("=", 1)
            langs[task.strip()] = value.strip()
    args.eval_languages = langs
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from hybrid_plugin.data.spec import get_spec

        runs = plan_runs(args.plan, args.seeds, args.batch_size, args.alphas, args.batch_sizes, args.merge)
        if args.restore:  # every run of the plan, so a later report of the whole plan finds them
            restored = restore_records(Path(args.restore), list(runs), Path(args.work))
            print(f"restored {len(restored)} run(s) from {args.restore} into {args.work}")
        if args.only:
            runs = only_runs(runs, args.only)
        planned = args.tasks or sorted({t for tasks in runs.values() for t in tasks})
        for task in dict.fromkeys([*planned, *args.robustness]):
            get_spec(task)
        rows, missing = collect(runs, args)
        command = "python benchmarks/study.py " + portable_command(argv if argv is not None else sys.argv[1:])
        report = write_report(rows, args, command, missing)
        submitted = submit_to_leaderboard(rows, args) if args.leaderboard else []
    except UserError as err:
        print(f"study: error: {err}", file=sys.stderr)
        return 2
    for line in submitted:
        print(f"leaderboard: {line}")
    print(f"wrote {report}" + (f" ({len(missing)} missing pieces listed in it)" if missing else ""))
    return 0
