"""MTEB integration: XQuADR and MLQAR as MTEB tasks and the ``LAReQA`` benchmark, the official way first.

The route MTEB documents for tasks outside its own package is Python, and it needs no hook::

    import mteb
    from hybrid_plugin.integrations.mteb import benchmark, XQuADR

    model = mteb.get_model("intfloat/multilingual-e5-small")      # or a SentenceTransformer
    mteb.evaluate(model, tasks=benchmark())                         # XQuADR + MLQAR, every subset
    mteb.evaluate(model, tasks=[XQuADR().filter_languages(hf_subsets=["deu-eng", "deu-pool"])])

For the command line, ``hybrid_plugin_mteb.pth`` (installed with the package) calls :func:`register`
once mteb has been imported (hook: the top-level, standard-library-only module ``_hybrid_plugin_mteb``),
so ``mteb run -t XQuADR`` and ``mteb run -b LAReQA`` also work. mteb has no plugin API: registering
writes into private registries of the supported versions (:data:`SUPPORTED_MTEB`); the hook turns any
failure into one line on stderr while mteb works on without our tasks.
``HYBRID_PLUGIN_MTEB_AUTOREGISTER=0`` turns the hook off; calling :func:`register` is the explicit form.
Local model folders run through ``hybrid-plugin mteb run -m ./folder`` (or a SentenceTransformer passed
in Python): mteb's own model lookup is left alone.

Importing this module imports neither mteb nor torch; the task classes (in
:mod:`~hybrid_plugin.integrations.mteb_tasks`) import mteb but not torch, so registering is cheap.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from hybrid_plugin.errors import UserError

TASK_NAMES = {"xquad-r": "XQuADR", "mlqa-r": "MLQAR"}  # spec name -> MTEB task name
# the registry layout relied on; tested with 2.26.0 and 2.26.24 (the newest release when written)
SUPPORTED_MTEB = ">=2.26,<3"
BENCHMARK_NAME = "LAReQA"
BENCHMARK_ATTRIBUTE = "HYBRID_PLUGIN_LAREQA"  # its name in mteb.benchmarks.benchmarks
_LAZY = ("XQuADR", "MLQAR", "TASK_CLASSES", "LAReQARetrieval")


def __getattr__(name: str) -> Any:
    """``XQuADR``, ``MLQAR``, ``TASK_CLASSES`` on first use (importing them imports mteb: seconds)."""
    if name in _LAZY:
        from hybrid_plugin.integrations import mteb_tasks

        return getattr(mteb_tasks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class IncompatibleMTEB(UserError):
    """mteb's task or benchmark registry is not laid out as the supported versions lay it out."""

    one_line = True  # the hook prints it as it is


class MissingDependency(UserError):
    """Something the tasks import (other than mteb) is missing."""

    one_line = True


def _mteb_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("mteb")
    except metadata.PackageNotFoundError:
        return "not installed"


def _incompatible(what: str) -> IncompatibleMTEB:
    return IncompatibleMTEB(
        f"cannot register {', '.join(TASK_NAMES.values())} with mteb {_mteb_version()} "
        f"({what}); supported: mteb{SUPPORTED_MTEB} (pip install 'hybrid-plugin[mteb]')"
    )


# ---------------------------------------------------------------------------------------------
# The official route: task objects and a Benchmark (no registry involved)


def _task_classes() -> dict[str, type]:
    try:
        from hybrid_plugin.integrations.mteb_tasks import TASK_CLASSES, compatibility_problems
    except ImportError as err:
        if (err.name or "mteb").split(".")[0] == "mteb":
            raise _incompatible(f"cannot import {err.name or err}") from None
        raise MissingDependency(
            f"XQuADR/MLQAR not registered with mteb: cannot import {err.name} "
            "(pip install 'hybrid-plugin[mteb]')"
        ) from None
    except Exception as err:  # noqa: BLE001 - e.g. a TaskMetadata field mteb no longer accepts
        raise _incompatible(f"{type(err).__name__}: {str(err).splitlines()[0]}") from None
    problems = compatibility_problems()
    if problems:
        raise _incompatible(problems[0])
    return TASK_CLASSES


def tasks(data_dir: str | None = None) -> list[Any]:
    """One instance of each plugin task (XQuADR, MLQAR), every subset selected."""
    out = []
    for cls in _task_classes().values():
        task = cls()
        task.data_dir = data_dir
        out.append(task)
    return out


@cache
def benchmark() -> Any:
    """The ``LAReQA`` :class:`mteb.Benchmark` (XQuADR + MLQAR): ``mteb.evaluate(model, benchmark())``."""
    from mteb import Benchmark

    from hybrid_plugin.data.spec import get_spec

    citations = dict.fromkeys(get_spec(s).citation.strip() for s in TASK_NAMES)  # the data's sources
    return Benchmark(
        name=BENCHMARK_NAME,
        tasks=tasks(),
        description=(
            "Language-agnostic answer retrieval (LAReQA, Roy et al. 2020) at once monolingual, "
            "cross-lingual and multilingual: XQuAD-R (11 languages, 11-way parallel, professional "
            "translations) and MLQA-R (7 languages, naturally 2-4-way parallel Wikipedia). One subset "
            "per setting: x-x, x-y and x-pool (the merged candidates of every language, where every "
            "parallel answer is relevant). Main score: exact full-rank MAP; pools also report "
            "language-bias values. Packaged by hybrid_plugin (settings and measures of Elmahdy et al. "
            "2024, arXiv 2408.10536)."
        ),
        reference="https://arxiv.org/abs/2408.10536",
        citation="\n\n".join(citations),
        contacts=None,
    )


# ---------------------------------------------------------------------------------------------
# Registration (for ``mteb run``): private registries of the supported mteb versions


def register_tasks(task_lookup: ModuleType) -> tuple[str, ...]:
    """Add the plugin's tasks to mteb's task registry (module ``mteb.get_tasks``); idempotent."""
    registry = getattr(task_lookup, "_TASKS_REGISTRY", None)
    task_list = getattr(task_lookup, "TASK_LIST", None)
    similar = getattr(task_lookup, "_SIMILAR_TASKS", None)
    if not isinstance(registry, dict) or not isinstance(task_list, (tuple, list)):
        raise _incompatible("mteb.get_tasks has no _TASKS_REGISTRY dict / TASK_LIST tuple")
    task_classes = _task_classes()
    added = []
    for name, cls in task_classes.items():
        current = registry.get(name)
        if current is cls:
            continue
        if current is not None and getattr(current, "__module__", "") != cls.__module__:
            raise _incompatible(f"mteb already has a different task named {name}")
        registry[name] = cls
        added.append(cls)
    if added:
        kept = [t for t in task_list if getattr(t, "__name__", None) not in task_classes]
        task_lookup.TASK_LIST = type(task_list)([*kept, *task_classes.values()])
        if isinstance(similar, dict):
            for cls in added:
                for parent in cls.metadata.adapted_from or ():
                    if cls.metadata.name not in similar.setdefault(parent, []):
                        similar[parent].append(cls.metadata.name)
    return tuple(task_classes)


def register_benchmark(benchmark_list: ModuleType) -> str:
    """Add the ``LAReQA`` benchmark to mteb's benchmark list (module ``mteb.benchmarks.benchmarks``).

    mteb builds its benchmark registry from that module's Benchmark objects, once (cached): if it was
    built already, the cache is cleared so the next lookup sees the new entry.
    """
    if not isinstance(benchmark_list, ModuleType):
        raise _incompatible("mteb.benchmarks.benchmarks is not a module")
    current = getattr(benchmark_list, BENCHMARK_ATTRIBUTE, None)
    if current is None:
        setattr(benchmark_list, BENCHMARK_ATTRIBUTE, benchmark())
        lookup = sys.modules.get("mteb.benchmarks.get_benchmark")
        for builder in ("_build_registry", "_build_aliases_registry"):
            clear = getattr(getattr(lookup, builder, None), "cache_clear", None)
            if clear is not None:
                clear()
    return BENCHMARK_NAME


def register() -> tuple[str, ...]:
    """Register XQuADR, MLQAR and the LAReQA benchmark with mteb; idempotent; returns the task names.

    What the interpreter-start hook calls once mteb is imported, and the explicit form without it. Only
    lookups by name need it (``mteb.get_task("XQuADR")``, ``mteb run``); passing the objects of
    :func:`tasks` / :func:`benchmark` to ``mteb.evaluate`` does not. Imports mteb (seconds), not torch.
    Raises :class:`IncompatibleMTEB` (one line, naming the supported mteb versions) if mteb's
    registries are not laid out as expected.
    """
    # by module name: mteb's package namespace shadows both modules with functions of their name
    names = register_tasks(_mteb_module("mteb.get_tasks"))
    register_benchmark(_mteb_module("mteb.benchmarks.benchmarks"))
    return names


def _mteb_module(name: str) -> ModuleType:
    from importlib import import_module

    try:
        return import_module(name)
    except ImportError as err:
        raise _incompatible(f"cannot import {err.name or err}") from None


# ---------------------------------------------------------------------------------------------
# CLI: ``hybrid-plugin mteb {run,tasks,stats}``


def _task_name(name: str) -> str:
    """``XQuADR``, ``xquadr`` or ``xquad-r`` -> ``XQuADR``; other names must be mteb's own."""
    by_key = {k.lower(): v for k, v in TASK_NAMES.items()} | {v.lower(): v for v in TASK_NAMES.values()}
    if name.lower() in by_key:
        return by_key[name.lower()]
    from hybrid_plugin.data.spec import all_specs

    if name.lower() in all_specs():  # a task of ours with no MTEB form (tydi-goldp)
        raise UserError(
            f"task {name!r} has no MTEB form; evaluate it with: hybrid-plugin evaluate --task {name.lower()}"
        )
    from mteb.get_tasks import _TASKS_REGISTRY

    if name in _TASKS_REGISTRY:
        return name
    import difflib

    close = difflib.get_close_matches(name, [*TASK_NAMES.values(), *_TASKS_REGISTRY], n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise UserError(f"unknown task {name!r}; plugin tasks: {', '.join(TASK_NAMES.values())}{hint}")


def _languages(task_name: str, languages: Sequence[str] | None) -> list[str] | None:
    """``-l`` values for a plugin task: ISO 639-1 (``de``) or 639-3 (``deu``) codes, checked."""
    if not languages:
        return None
    if task_name not in TASK_NAMES.values():
        return list(languages)
    from hybrid_plugin.data.spec import get_spec
    from hybrid_plugin.integrations.mteb_metadata import iso3

    spec = get_spec(next(k for k, v in TASK_NAMES.items() if v == task_name))
    known = {iso3(lang): iso3(lang) for lang in spec.languages} | {
        lang: iso3(lang) for lang in spec.languages
    }
    out = []
    for raw in languages:
        for code in filter(None, (c.strip().lower() for c in raw.split(","))):
            if code.split("-")[0] not in known:
                codes = ", ".join(sorted(set(known.values())))
                raise UserError(f"unknown language {code!r} for {task_name}; it has {codes}")
            out.append(known[code.split("-")[0]])
    return out


def _subsets(values: Sequence[str] | None) -> list[str] | None:
    if not values:
        return None
    return [s.strip() for v in values for s in v.split(",") if s.strip()]


def _load_model(name: str, device: str | None, model_name: str | None, revision: str | None) -> Any:
    """A local folder through the plugin's loader (mteb resolves only names); anything else through mteb."""
    import mteb

    from hybrid_plugin.integrations.mteb_models import is_model_folder, local_model_meta

    looks_local = name.startswith((".", "/", "~")) or Path(name).expanduser().exists()
    if looks_local and not is_model_folder(name):
        raise UserError(f"--model {name}: not a SentenceTransformer or transformers model folder")
    if (model_name or revision) and not looks_local:
        raise UserError("--model-name and --revision name a local model folder; mteb names hub models itself")
    try:
        if looks_local:
            return local_model_meta(name, model_name=model_name, revision=revision).load_model(device=device)
        return mteb.get_model(name, device=device)
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - unknown name, offline hub, broken folder: one line
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"cannot load model {name!r} through mteb: {first}") from None


def summarize(task_result: Any) -> dict[str, float]:
    """Macro scores like ``hybrid-plugin evaluate`` (mean per query language, then over languages)."""
    import numpy as np

    from hybrid_plugin.integrations.mteb_metadata import subsets

    spec_name = next(k for k, v in TASK_NAMES.items() if v == task_result.task_name)
    settings = subsets(spec_name)
    per_kind: dict[str, dict[str, list[float]]] = {"mono": {}, "cross": {}, "multi": {}}
    for split_scores in task_result.scores.values():
        for entry in split_scores:
            setting = settings[entry["hf_subset"]]
            per_kind[setting.kind].setdefault(setting.query_lang, []).append(entry["main_score"])
    return {
        f"{kind}_map": float(np.mean([np.mean(v) for v in by_lang.values()]))
        for kind, by_lang in per_kind.items()
        if by_lang
    }


def _cmd_run(args: argparse.Namespace) -> int:
    from hybrid_plugin.integrations.mteb_models import check_result_names

    check_result_names(args.model_name, args.revision)  # before anything is loaded or made
    register()
    import mteb
    from mteb.cache import ResultCache

    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    subsets = _subsets(args.subsets)
    from hybrid_plugin.atomic import check_writable

    output = Path(args.output_folder) if args.output_folder else ResultCache().default_cache_path
    check_writable(output, "--output-folder")
    if args.prediction_folder:
        check_writable(Path(args.prediction_folder), "--prediction-folder")
    tasks = []
    for raw in args.tasks:
        name = _task_name(raw)
        try:
            task = mteb.get_task(name, languages=_languages(name, args.languages), hf_subsets=subsets)
        except ValueError as err:
            raise UserError(str(err).splitlines()[0]) from None
        if name in TASK_NAMES.values():
            task.data_dir = args.data_dir
            task.use_embedding_cache = not args.no_cache
        tasks.append(task)
    model = _load_model(args.model, args.device, args.model_name, args.revision)
    encode_kwargs = {"batch_size": args.batch_size} if args.batch_size else None
    result = mteb.evaluate(
        model,
        tasks,
        cache=ResultCache(output),
        encode_kwargs=encode_kwargs,
        overwrite_strategy=args.overwrite_strategy,
        prediction_folder=args.prediction_folder,
        co2_tracker=False,
    )
    cache = ResultCache(output)
    for task_result in result.task_results:
        n = sum(len(v) for v in task_result.scores.values())
        scores = summarize(task_result) if task_result.task_name in TASK_NAMES.values() else {}
        shown = "  ".join(f"{k} {v:.4f}" for k, v in scores.items())
        print(f"{task_result.task_name}: {n} subsets  {shown}")
        print(f"  {cache.get_task_result_path(task_result.task_name, model.mteb_model_meta)}")
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    register()
    from hybrid_plugin.integrations.mteb_tasks import TASK_CLASSES

    for name, cls in TASK_CLASSES.items():
        meta = cls.metadata
        subsets = list(meta.eval_langs)
        print(f"{name}  ({meta.license}, main score {meta.main_score}, split {', '.join(meta.eval_splits)})")
        print(f"  languages  {' '.join(meta.bcp47_codes)}")
        print(f"  subsets    {len(subsets)}: {subsets[0]}, {subsets[1]}, ..., {subsets[-1]}")
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    register()
    from hybrid_plugin.integrations.mteb_tasks import TASK_CLASSES, write_descriptive_stats

    for raw in args.tasks or list(TASK_CLASSES):
        name = _task_name(raw)
        if name not in TASK_CLASSES:
            raise UserError(f"stats are written for the plugin's tasks only ({', '.join(TASK_CLASSES)})")
        print(f"wrote {write_descriptive_stats(name, data_dir=args.data_dir)}")
    return 0


def add_mteb_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add ``mteb`` (run / tasks / stats) to the ``hybrid-plugin`` command line."""
    p = subparsers.add_parser("mteb", help="run the MTEB tasks XQuADR / MLQAR (registers them explicitly)")
    sub = p.add_subparsers(dest="mteb_command", required=True)

    r = sub.add_parser("run", help="like `mteb run`, with the plugin's tasks registered")
    r.add_argument("-m", "--model", required=True, help="mteb model name, hub id or local model folder")
    r.add_argument("-t", "--tasks", nargs="+", required=True, help="XQuADR, MLQAR (or any mteb task)")
    r.add_argument("-l", "--languages", nargs="*", default=None, help="ISO 639-3 (deu) or 639-1 (de) codes")
    r.add_argument("--subsets", nargs="*", default=None, help="subsets, e.g. deu-eng deu-pool")
    r.add_argument(
        "--data-dir", default=None, help="folder holding xquad-r/ and mlqa-r/ (else $HYBRID_PLUGIN_DATA)"
    )
    r.add_argument(
        "--output-folder",
        default=None,
        help="MTEB results folder (default: mteb's ResultCache, $MTEB_CACHE or ~/.cache/mteb); results go to "
        "<folder>/results/<model>/<revision>/<task>.json + model_meta.json (the results repository layout)",
    )
    r.add_argument(
        "--model-name", default=None, help="a local folder's model name in results (default: local/<folder>)"
    )
    r.add_argument(
        "--revision",
        default=None,
        help="a local folder's revision in the results (default: its fingerprint); one folder name: no '/', "
        "'\\', ':' or leading '.'",
    )
    r.add_argument("--batch-size", type=int, default=None, help="encoding batch size (mteb's default: 32)")
    r.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    r.add_argument(
        "--overwrite-strategy",
        default="only-missing",
        choices=["always", "never", "only-missing", "only-cache"],
        help="mteb's overwrite strategy (default: only-missing)",
    )
    r.add_argument("--prediction-folder", default=None, help="also save each subset's top-100 run here")
    r.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    r.set_defaults(func=_cmd_run)

    t = sub.add_parser("tasks", help="list the plugin's MTEB tasks: languages, subsets, license")
    t.set_defaults(func=_cmd_tasks)

    s = sub.add_parser("stats", help="(maintainers) recompute the tasks' MTEB descriptive statistics")
    s.add_argument("-t", "--tasks", nargs="*", default=None, help="default: all plugin tasks")
    s.add_argument("--data-dir", default=None, help="folder holding xquad-r/ and mlqa-r/")
    s.set_defaults(func=_cmd_stats)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hybrid_plugin.integrations.mteb ...`` (the same as ``hybrid-plugin mteb ...``)."""
    parser = argparse.ArgumentParser(prog="hybrid-plugin")
    add_mteb_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["mteb", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except UserError as err:
        print(f"hybrid-plugin: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
