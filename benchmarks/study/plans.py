"""The study's runs: what a run is (strategy, α, batch, seed, merge, de-biasing) and which runs and
tasks each named plan holds."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, replace

from hybrid_plugin.errors import UserError

TRAIN_DATA_DEFAULT = "train/mlqa-test"


#: the de-biasing methods of the debias plan, with their names in tables
DEBIAS_METHODS = {"center": "centering", "lsar": "LSAR", "leace": "LEACE"}
#: what a de-biasing map is fitted on, as tables say it: the evaluated pool (transductive) or the
#: training corpus's texts (out of sample)
FITS = {"pool": "pool-fitted (transductive)", "train": "fitted on training texts"}
#: the same in a row label (no comma: labels are listed with commas)
FIT_LABELS = {"pool": "pool-fitted: transductive", "train": "fitted on training texts"}


@dataclass(frozen=True)
class Run:
    """One trained (or untrained) model of the study, with the de-biasing its evaluation applies.

    ``debias_fit`` says what the de-biasing map is fitted on: ``"train"`` (the training corpus's texts,
    out of sample) or ``None`` for the evaluated pool (transductive; ``"pool"`` is taken as None, so a
    pool-fitted run keeps the name and identity it always had).
    """

    strategy: str  # "untrained" for the base model itself
    alpha: float | None = None
    batch_size: int = 32
    seed: int = 0
    merge: float | None = None
    debias: str | None = None  # "center", "lsar", "leace": training-free de-biasing at evaluation
    debias_fit: str | None = None  # None: the evaluated pool (transductive); "train": the training texts

    def __post_init__(self) -> None:
        if self.debias_fit == "pool":
            object.__setattr__(self, "debias_fit", None)
        if self.debias is not None and self.debias not in DEBIAS_METHODS:
            raise ValueError(f"debias {self.debias!r}: expected one of {', '.join(DEBIAS_METHODS)}")
        if self.debias_fit not in (None, "train") or (self.debias_fit and not self.debias):
            raise ValueError(f"debias_fit {self.debias_fit!r}: expected 'pool' or 'train' with a method")

    @property
    def fit(self) -> str | None:
        """``"pool"`` or ``"train"`` for a de-biased run, None for a plain one."""
        return (self.debias_fit or "pool") if self.debias else None

    @property
    def plain(self) -> Run:
        """The same model without de-biasing (whose model folder a de-biased run evaluates)."""
        return replace(self, debias=None, debias_fit=None)

    @property
    def _debias_part(self) -> str:
        if not self.debias:
            return ""
        if self.debias == "center" and self.fit == "pool":
            return f"{self.debias}ed"  # the name the pool-fitted centering always had
        return f"{self.debias}-{self.fit}"

    @property
    def name(self) -> str:
        if self.strategy == "untrained":
            return "untrained" + (f"-{self._debias_part}" if self.debias else "")
        parts = [self.strategy]
        if self.alpha is not None:
            parts.append(f"a{self.alpha:g}")
        parts += [f"b{self.batch_size}", f"s{self.seed}"]
        if self.merge is not None:
            parts.append(f"m{self.merge:g}")
        if self.debias:
            parts.append(self._debias_part)
        return "-".join(parts)

    @property
    def alpha_value(self) -> float | None:
        """The probability of a monolingual batch: X-Y is α = 0 and X-X-mono α = 1 by definition."""
        return {"hybrid": self.alpha, "mono": 1.0, "cross": 0.0}.get(self.strategy)

    @property
    def recipe(self) -> str:
        """The model's label without its de-biasing."""
        if self.strategy == "untrained":
            return "untrained base"
        text = {"mono": "X-X-mono", "cross": "X-Y", "mixed": "X-X", "hybrid": "hybrid"}[self.strategy]
        if self.strategy == "hybrid":
            text += f" α={self.alpha:g}"
        if self.merge is not None:
            text += f" merged λ={self.merge:g}"
        return text

    @property
    def label(self) -> str:
        """Short row label for tables: a de-biased row says what its map was fitted on."""
        if not self.debias:
            return self.recipe
        return f"{self.recipe} + {DEBIAS_METHODS[self.debias]} ({FIT_LABELS[self.fit]})"

    def record(self) -> dict:
        """The run's fields as records keep them: ``debias_fit`` only where it says more than None."""
        fields = asdict(self)
        if fields["debias_fit"] is None:
            del fields["debias_fit"]
        return fields


MAIN_TASKS = ("xquad-r", "mlqa-r")
SWEEP_TASKS = ("xquad-r",)
MERGE_TASKS = ("xquad-r", "tydi-goldp")
DEBIAS_TASKS = ("xquad-r", "mlqa-r", "tydi-goldp")
#: where the debias plan also evaluates each plain recipe on perturbed queries (``perturb``'s default
#: perturbations; TyDi GoldP has no parallel questions, so no code-switching there)
ROBUSTNESS_TASKS = ("xquad-r", "tydi-goldp")
PLANS = ("main", "alpha", "batch", "merge", "seeds", "debias", "all", "smoke")


#: the merge the debias plan de-biases (the merge plan's best multi mAP on XQuAD-R)
DEBIAS_MERGE = 0.75


def debias_runs(seeds: list[int], batch_size: int) -> list[Run]:
    """The debias plan: the untrained base and each trained recipe (every seed), each plain and with
    every de-biasing method fitted on the training texts; recipe by recipe, the untrained base first."""
    recipes = [Run("untrained")] + [
        run
        for seed in seeds
        for run in (
            Run("hybrid", 0.5, batch_size, seed),
            Run("hybrid", 0.5, batch_size, seed, DEBIAS_MERGE),
            Run("hybrid", 0.25, batch_size, seed),
            Run("mono", batch_size=batch_size, seed=seed),
            Run("cross", batch_size=batch_size, seed=seed),
        )
    ]
    return [
        replace(run, debias=method, debias_fit="train" if method else None)
        for run in recipes
        for method in (None, *DEBIAS_METHODS)
    ]


def plan_runs(
    plan: str,
    seeds: list[int],
    batch_size: int,
    alphas: tuple[float, ...] = (0, 0.25, 0.5, 0.75, 1),
    batch_sizes: tuple[int, ...] = (16, 64, 256),
    merge: tuple[float, ...] = (0.5,),
) -> dict[Run, tuple[str, ...]]:
    """The runs of a named plan with the tasks each is evaluated on, untrained first."""
    untrained = Run("untrained")

    def alpha_run(a: float) -> Run:
        if a == 0:
            return Run("cross", batch_size=batch_size, seed=seeds[0])
        if a == 1:
            return Run("mono", batch_size=batch_size, seed=seeds[0])
        return Run("hybrid", a, batch_size, seeds[0])

    main = [untrained]
    for seed in seeds:
        main += [
            Run("mono", batch_size=batch_size, seed=seed),
            Run("cross", batch_size=batch_size, seed=seed),
            Run("hybrid", 0.5, batch_size, seed),
            Run("mixed", batch_size=batch_size, seed=seed),
        ]
    hybrid = Run("hybrid", 0.5, batch_size, seeds[0])
    plans: dict[str, list[tuple[list[Run], tuple[str, ...]]]] = {
        "main": [(main, MAIN_TASKS)],
        "alpha": [([untrained, *(alpha_run(a) for a in alphas)], SWEEP_TASKS)],
        "batch": [
            (
                [
                    untrained,
                    *(Run("hybrid", 0.5, b, seed) for seed in seeds for b in (batch_size, *batch_sizes)),
                ],
                SWEEP_TASKS,
            )
        ],
        "merge": [
            (
                [
                    untrained,
                    Run("untrained", debias="center"),
                    hybrid,
                    *(Run("hybrid", 0.5, batch_size, seeds[0], m) for m in merge),
                ],
                MERGE_TASKS,
            )
        ],
        "seeds": [
            (
                [
                    untrained,
                    *(
                        run
                        for seed in seeds
                        for run in (
                            Run("hybrid", 0.5, batch_size, seed),
                            Run("mono", batch_size=batch_size, seed=seed),
                            Run("cross", batch_size=batch_size, seed=seed),
                        )
                    ),
                ],
                SWEEP_TASKS,
            )
        ],
        "smoke": [
            ([untrained, Run("mono", batch_size=batch_size), Run("hybrid", 0.5, batch_size)], SWEEP_TASKS)
        ],
        "debias": [(debias_runs(seeds, batch_size), DEBIAS_TASKS)],
    }
    if plan == "all":
        parts = [part for name in ("main", "alpha", "batch", "merge") for part in plans[name]]
    elif plan in plans:
        parts = plans[plan]
    else:
        raise UserError(f"--plan {plan!r}: expected one of {', '.join(PLANS)}")
    runs: dict[Run, tuple[str, ...]] = {}
    for members, tasks in parts:
        for run in members:
            runs[run] = tuple(dict.fromkeys([*runs.get(run, ()), *tasks]))
    return dict(sorted(runs.items(), key=lambda item: item[0].strategy != "untrained"))


def plan_robustness(plan: str, asked: str | None) -> tuple[str, ...]:
    """The tasks on which each plain run is also evaluated under perturbed queries: ``--robustness``
    (``none``: no task), else the debias plan's :data:`ROBUSTNESS_TASKS` and no task for other plans."""
    if asked is None:
        return ROBUSTNESS_TASKS if plan == "debias" else ()
    return tuple(t.strip() for t in asked.split(",") if t.strip() and t.strip() != "none")


def only_runs(runs: dict[Run, tuple[str, ...]], names: list[str]) -> dict[Run, tuple[str, ...]]:
    """The named runs of a plan, in the order given."""
    by_name = {run.name: run for run in runs}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise UserError(f"--only {','.join(unknown)}: not in this plan (its runs: {', '.join(by_name)})")
    return {by_name[name]: runs[by_name[name]] for name in names}


def steps_for(run: Run, args: argparse.Namespace) -> int:
    """``--steps``, or with ``--pairs`` the steps that show the run that many training pairs."""
    if not args.pairs:
        return args.steps
    if args.pairs % run.batch_size:
        raise UserError(f"--pairs {args.pairs}: not a multiple of batch size {run.batch_size} ({run.name})")
    return args.pairs // run.batch_size
