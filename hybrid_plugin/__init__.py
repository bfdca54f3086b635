"""hybrid_plugin: multilingual retrieval benchmark (XQuAD-R, MLQA-R), exact mAP and language-bias metrics.

Start here::

    import hybrid_plugin as hp

    ev = hp.evaluate("xquad-r", model="bm25", languages="de,en")  # an Evaluation
    ev.results.scores.multi_map  # typed Results
    saved = ev.save("results")  # results JSON, per-query Parquet, plots (what the CLI writes)
    hp.compare(saved.results, "other.json")  # paired tests on the per-query files
    hp.load(saved.results)  # Results, its per-query file checked
    hp.tasks()  # the task registry

The names load their modules on first use (PEP 562), so ``import hybrid_plugin`` stays cheap: the
CLI and the MTEB hook import it first. They live in :mod:`hybrid_plugin.api`, the top layer.
"""

__version__ = "0.1.0"

#: the public API's names, defined in :mod:`hybrid_plugin.api`
API_NAMES = (
    "Comparison",
    "EvalConfig",
    "Evaluation",
    "Results",
    "SavedFiles",
    "TaskSpec",
    "compare",
    "evaluate",
    "load",
    "tasks",
)
__all__ = [*API_NAMES, "__version__"]


def __getattr__(name: str):
    # by name at call time, not an import statement: the lowest layer never imports an upper one
    if name in API_NAMES:
        from importlib import import_module

        return getattr(import_module("hybrid_plugin.api"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *API_NAMES})
