"""The reproduction study: train the batch strategies from one base model, evaluate, write docs/study.md.

    python benchmarks/study.py --plan main --data-dir ../shared/datasets --work study-runs

Plans (run names say what they are; a run shared by two plans is trained once):

- ``main``  untrained base + mono, cross, hybrid (α = 0.5) and mixed, ``--seeds`` each;
  evaluated on XQuAD-R and MLQA-R
- ``alpha`` α in ``--alphas`` (default 0, 0.25, 0.5, 0.75, 1) on XQuAD-R; α = 0 *is* the X-Y run and
  α = 1 the X-X-mono run (the sampler draws identical batches), so those are shared with ``main``
- ``batch`` hybrid (α = 0.5) with ``--batch-sizes`` (default 16, 64, 256; cached loss above
  ``--mini-batch-size``) on XQuAD-R, next to the ``--batch-size`` run, each for every one of ``--seeds``
- ``merge`` the training-free references: untrained, untrained with language-mean centering
  (``--debias center``), hybrid and hybrid saved as λ·trained + (1 − λ)·base for each λ in
  ``--merge`` (made from the trained run's weights, not trained again) on XQuAD-R and TyDi GoldP
  (held-out, monolingual)
- ``seeds`` X-X-mono, X-Y and hybrid (α = 0.5) for each of ``--seeds``, seed by seed, on XQuAD-R (the
  seed-spread runs of the second edition, without ``main``'s X-X and MLQA-R)
- ``debias`` untrained, hybrid α = 0.5, its λ = 0.75 merge, hybrid α = 0.25, X-X-mono and X-Y
  (``--seeds`` each), each plain and with ``--debias center / lsar / leace`` fitted on the training
  corpus's texts (out of sample), on XQuAD-R, MLQA-R and TyDi GoldP; each plain run also on perturbed
  queries of XQuAD-R and TyDi GoldP (``--robustness``, as ``hybrid-plugin perturb`` with its defaults)
- ``all``   main, alpha, batch and merge
- ``smoke`` untrained + mono + hybrid, one seed (for trying the pipeline out)

``--pairs N`` trains every run on N training pairs (steps = N / batch size, so the batch plan
compares sizes at equal compute); otherwise every run takes ``--steps``. ``--tasks`` replaces each
plan's tasks; ``--eval-languages`` evaluates a language subset (kept apart from full evaluations in
the work folder). ``--report-only`` trains and evaluates nothing: it writes
the report from what ``--work`` holds and lists the plan's runs that are missing.

Every finished piece is kept in ``--work``: a model with its ``training.json`` is never retrained,
an interrupted training resumes from its checkpoints, a task already evaluated is not evaluated
again. So the command can be stopped at any time and run again. The report (``--report``, default
``docs/study.md``) is rewritten at the end of each run. ``--leaderboard DIR`` also submits every
trained model's full-language XQuAD-R and MLQA-R results as leaderboard rows (replacing its earlier
rows) and re-renders the board.

``--restore DIR`` first copies a report's committed records (``docs/<report>/runs``) into ``--work``
for the runs it does not hold, so a fresh work folder reports the same and makes only what is missing.

The package's rooms, one job each: ``plans`` (runs and plans), ``running`` (train, evaluate, collect),
``records`` (typed run records), ``archive`` (the committed records, and ``--restore``), ``tables``,
``claims`` and ``sections`` (what the report states), ``debias`` (de-biasing × recipes, the goal),
``robustness`` (drops under perturbed queries), ``plots``, ``report`` (the Markdown), ``leaderboard``
and ``cli``.
"""

from __future__ import annotations

from .claims import claims
from .cli import main, parse_args
from .debias import debias_table, goal, shift_table
from .leaderboard import LEADERBOARD_SUBMITTER, leaderboard_name, submit_to_leaderboard
from .plans import Run, only_runs, plan_runs, steps_for
from .plots import plot_alpha, plot_pareto, plot_scatter
from .records import RunRecord, TaskResult, summarise
from .report import not_run_lines
from .running import Missing, collect, ensure_evaluated, ensure_trained, eval_path
from .sections import batch_section, spread_table
from .tables import pareto, pareto_lines

__all__ = [
    "LEADERBOARD_SUBMITTER",
    "Missing",
    "Run",
    "RunRecord",
    "TaskResult",
    "batch_section",
    "claims",
    "collect",
    "debias_table",
    "ensure_evaluated",
    "ensure_trained",
    "eval_path",
    "goal",
    "leaderboard_name",
    "main",
    "not_run_lines",
    "only_runs",
    "pareto",
    "pareto_lines",
    "parse_args",
    "plan_runs",
    "plot_alpha",
    "plot_pareto",
    "plot_scatter",
    "shift_table",
    "spread_table",
    "steps_for",
    "submit_to_leaderboard",
    "summarise",
]
