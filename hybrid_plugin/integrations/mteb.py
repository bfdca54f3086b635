"""MTEB integration: XQuADR and MLQAR as MTEB retrieval tasks, plus local-folder models for ``mteb run``.

After ``pip install 'hybrid-plugin[mteb]'`` a plain ``mteb run -m MODEL -t XQuADR`` works: the
``hybrid_plugin_mteb.pth`` file installed next to the package arms a watcher at interpreter start
(stdlib only; mteb is never imported then), and when mteb is first imported, wrapt post-import hooks
call :func:`on_task_lookup_imported` as soon as ``mteb.get_tasks`` (mteb's task registry) has run and
:func:`on_model_lookup_imported` after ``mteb.models.get_model_meta``. Where ``.pth`` files are not
processed, or with ``HYBRID_PLUGIN_MTEB_AUTOREGISTER=0``, call :func:`register` or use
``hybrid-plugin mteb run`` (same options as ``mteb run``, plus ``--subsets`` and ``--data-dir``).

This module imports neither mteb nor torch at import time; the tasks live in
:mod:`hybrid_plugin.integrations.mteb_tasks`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from functools import wraps
from pathlib import Path
from types import ModuleType
from typing import Any

from hybrid_plugin.errors import UserError
from hybrid_plugin.integrations import _mteb_autoload

TASK_NAMES = {"xquad-r": "XQuADR", "mlqa-r": "MLQAR"}  # spec name -> MTEB task name
SUPPORTED_MTEB = ">=2.26,<3"  # the registry layout relied on; tested with 2.26.24
REGISTERED_FLAG = "_hybrid_plugin_local_folders"


PLUGIN_MODULES = tuple(
    f"hybrid_plugin.integrations.{m}" for m in ("mteb_metadata", "mteb_encoder", "mteb_tasks")
)


class IncompatibleMTEB(UserError):
    """mteb's task or model registry is not laid out as the supported versions lay it out."""


class _PluginImporting(Exception):
    """The hook fired inside the import of one of :data:`PLUGIN_MODULES` (it imported mteb first)."""


def _plugin_module_importing() -> bool:
    return any(
        getattr(getattr(sys.modules.get(name), "__spec__", None), "_initializing", False)
        for name in PLUGIN_MODULES
    )


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
# Registration


def register_tasks(task_lookup: ModuleType) -> tuple[str, ...]:
    """Add the plugin's tasks to mteb's task registry (module ``mteb.get_tasks``); idempotent."""
    registry = getattr(task_lookup, "_TASKS_REGISTRY", None)
    task_list = getattr(task_lookup, "TASK_LIST", None)
    similar = getattr(task_lookup, "_SIMILAR_TASKS", None)
    if not isinstance(registry, dict) or not isinstance(task_list, (tuple, list)):
        raise _incompatible("mteb.get_tasks has no _TASKS_REGISTRY dict / TASK_LIST tuple")
    try:
        from hybrid_plugin.integrations.mteb_tasks import TASK_CLASSES, compatibility_problems
    except ImportError as err:
        if _plugin_module_importing():  # a circular import, not a broken install: retried at its end
            raise _PluginImporting from None
        raise _incompatible(f"cannot import {err.name or err}") from None
    except Exception as err:  # noqa: BLE001 - e.g. a TaskMetadata field mteb no longer accepts
        raise _incompatible(f"{type(err).__name__}: {str(err).splitlines()[0]}") from None
    problems = compatibility_problems()
    if problems:
        raise _incompatible(problems[0])
    added = []
    for name, cls in TASK_CLASSES.items():
        current = registry.get(name)
        if current is cls:
            continue
        if current is not None and getattr(current, "__module__", "") != cls.__module__:
            raise _incompatible(f"mteb already has a different task named {name}")
        registry[name] = cls
        added.append(cls)
    if added:
        kept = [t for t in task_list if getattr(t, "__name__", None) not in TASK_CLASSES]
        task_lookup.TASK_LIST = type(task_list)([*kept, *TASK_CLASSES.values()])
        if isinstance(similar, dict):
            for cls in added:
                for parent in cls.metadata.adapted_from or ():
                    if cls.metadata.name not in similar.setdefault(parent, []):
                        similar[parent].append(cls.metadata.name)
    return tuple(TASK_CLASSES)


def patch_model_lookup(model_lookup: ModuleType) -> None:
    """Let mteb's ``get_model_meta`` (module ``mteb.models.get_model_meta``) accept local model folders."""
    original = getattr(model_lookup, "get_model_meta", None)
    if original is None or not callable(original):
        raise _incompatible("mteb.models.get_model_meta has no get_model_meta function")
    if getattr(original, REGISTERED_FLAG, False):
        return

    @wraps(original)
    def get_model_meta(model_name: str, *args: Any, **kwargs: Any) -> Any:
        from hybrid_plugin.integrations.mteb_models import is_model_folder, local_model_meta

        registry = getattr(model_lookup, "MODEL_REGISTRY", {})
        if isinstance(model_name, str) and model_name not in registry and is_model_folder(model_name):
            return local_model_meta(model_name)
        return original(model_name, *args, **kwargs)

    setattr(get_model_meta, REGISTERED_FLAG, True)
    model_lookup.get_model_meta = get_model_meta
    package = sys.modules.get("mteb")
    if package is not None and getattr(package, "get_model_meta", None) is original:
        package.get_model_meta = get_model_meta


def register() -> tuple[str, ...]:
    """Register XQuADR and MLQAR (and local-folder models) with mteb, explicitly; returns the task names.

    Imports mteb (seconds). Raises :class:`IncompatibleMTEB` (one line, naming the supported mteb
    versions) if mteb's registries are not laid out as expected.
    """
    from importlib import import_module

    try:  # by module name: mteb's package namespace shadows both modules with functions of their name
        task_lookup = import_module("mteb.get_tasks")
        model_lookup = import_module("mteb.models.get_model_meta")
    except ImportError as err:
        raise _incompatible(f"cannot import {err.name or err}") from None
    names = register_tasks(task_lookup)
    patch_model_lookup(model_lookup)
    return names


def _report(err: Exception) -> None:
    """A hook must never break ``import mteb``: say what went wrong on one line instead."""
    message = str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}"
    sys.stderr.write(f"hybrid-plugin: {(message.splitlines() or [''])[0]}\n")


def on_task_lookup_imported(task_lookup: ModuleType) -> None:
    """wrapt post-import hook for ``mteb.get_tasks``."""
    try:
        register_tasks(task_lookup)
    except _PluginImporting:  # retried by _mteb_autoload.register_deferred() when the module is imported
        _mteb_autoload.defer(lambda: on_task_lookup_imported(task_lookup))
    except Exception as err:  # noqa: BLE001
        _report(err)


def on_model_lookup_imported(model_lookup: ModuleType) -> None:
    """wrapt post-import hook for ``mteb.models.get_model_meta``."""
    try:
        patch_model_lookup(model_lookup)
    except Exception as err:  # noqa: BLE001
        _report(err)


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


def _load_model(name: str, device: str | None) -> Any:
    from pathlib import Path

    import mteb

    from hybrid_plugin.integrations.mteb_models import is_model_folder

    looks_local = name.startswith((".", "/", "~")) or Path(name).expanduser().exists()
    if looks_local and not is_model_folder(name):
        raise UserError(f"--model {name}: not a SentenceTransformer or transformers model folder")
    try:
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
    register()
    import mteb
    from mteb.cache import ResultCache

    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be ≥ 1, got {args.batch_size}")
    subsets = _subsets(args.subsets)
    from hybrid_plugin.atomic import check_writable

    check_writable(Path(args.output_folder), "--output-folder")
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
    model = _load_model(args.model, args.device)
    encode_kwargs = {"batch_size": args.batch_size} if args.batch_size else None
    result = mteb.evaluate(
        model,
        tasks,
        cache=ResultCache(args.output_folder),
        encode_kwargs=encode_kwargs,
        overwrite_strategy=args.overwrite_strategy,
        prediction_folder=args.prediction_folder,
        co2_tracker=False,
    )
    cache = ResultCache(args.output_folder)
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
    r.add_argument("--output-folder", default="results", help="MTEB results folder (default: results)")
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
