"""Interpreter-start hook (run from ``hybrid_plugin_mteb.pth``): offers XQuADR/MLQAR to ``mteb run``, lazily.

Installed as a top-level module next to the .pth file, and stdlib only, so that nothing here can fail
when hybrid_plugin itself cannot be imported (a moved editable checkout, a missing dependency).
At start-up it only puts a watcher on ``sys.meta_path`` (about a millisecond; the .pth line reads
``HYBRID_PLUGIN_MTEB_AUTOREGISTER`` first and with ``0`` imports nothing at all). When mteb later
executes its task registry (``mteb.get_tasks``) or its benchmark list (``mteb.benchmarks.benchmarks``),
the watcher calls :func:`hybrid_plugin.integrations.mteb.on_mteb_module_imported` right after.
Any failure there, including an unimportable hybrid_plugin, is one line on stderr, once per process,
and mteb goes on without the plugin's tasks. mteb has no plugin API: this is a convenience for
``mteb run -t XQuADR``; the official route is Python, ``mteb.evaluate(model, tasks=...)`` with the
objects of :mod:`hybrid_plugin.integrations.mteb`, which needs no hook.
"""

from __future__ import annotations

import os
import sys

ENV_SWITCH = "HYBRID_PLUGIN_MTEB_AUTOREGISTER"
OFF = ("0", "false", "no", "off")
WATCHED = ("mteb.get_tasks", "mteb.benchmarks.benchmarks")
_warned = False


def switched_off() -> bool:
    return os.environ.get(ENV_SWITCH, "1").strip().lower() in OFF


def warn(err: BaseException) -> None:
    """One line, once per process: the hook never breaks ``import mteb``."""
    global _warned
    if _warned:
        return
    _warned = True
    first = (str(err).splitlines() or [""])[0]
    if getattr(err, "one_line", False):  # hybrid_plugin's own message (e.g. an unsupported mteb version)
        message = first
    else:
        message = f"XQuADR/MLQAR not registered with mteb ({type(err).__name__}: {first})"
    sys.stderr.write(f"hybrid-plugin: {message}; {ENV_SWITCH}=0 silences this\n")


def after_exec(name: str, module: object) -> None:
    """Hand a freshly executed mteb module to the plugin; never raise."""
    try:
        from hybrid_plugin.integrations.mteb import on_mteb_module_imported

        on_mteb_module_imported(name, module)
    except Exception as err:  # noqa: BLE001 - anything at all: mteb works on without our tasks
        warn(err)


class MTEBImportWatcher:
    """Meta-path finder that finds nothing itself: it wraps the loaders of the watched mteb modules."""

    def __init__(self) -> None:
        self._looking = False

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        if fullname not in WATCHED or self._looking:
            return None
        self._looking = True
        try:
            spec = None
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        except Exception:  # noqa: BLE001 - let the import system try (and report) on its own
            return None
        finally:
            self._looking = False
        loader = getattr(spec, "loader", None)
        original = getattr(loader, "exec_module", None)
        if original is None:
            return None

        def exec_module(module: object) -> None:
            original(module)
            after_exec(fullname, module)

        try:
            loader.exec_module = exec_module  # this module's loader instance only
        except Exception:  # noqa: BLE001 - a loader that refuses attributes: no hook
            return None
        return spec


def install() -> None:
    """Called from the .pth file (and by the old hook's name): watch for mteb; idempotent."""
    if switched_off():
        return
    if any(type(f).__name__ == "MTEBImportWatcher" for f in sys.meta_path):
        return
    for name in WATCHED:
        module = sys.modules.get(name)
        if module is not None:  # mteb was imported before us (unusual): hand over what is there
            after_exec(name, module)
    sys.meta_path.insert(0, MTEBImportWatcher())
