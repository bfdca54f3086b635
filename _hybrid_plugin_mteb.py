"""Interpreter-start hook (run from ``hybrid_plugin_mteb.pth``): offers XQuADR/MLQAR to ``mteb run``.

Installed as a top-level module next to the .pth file and standard-library only, so that it loads
even when hybrid_plugin cannot be imported (a moved editable checkout, a missing dependency). At
start-up it only puts a finder on ``sys.meta_path`` (the .pth line reads
``HYBRID_PLUGIN_MTEB_AUTOREGISTER`` first and with ``0`` imports nothing at all). Once ``mteb`` has
been imported it calls one function of the plugin, :func:`hybrid_plugin.integrations.mteb.register`,
and takes itself off ``sys.meta_path``; nothing of the plugin is imported before that, and the plugin
never imports this module.

When the first import of mteb comes from inside one of the plugin's MTEB modules (say
``import hybrid_plugin.integrations.mteb_tasks`` before ``import mteb``), that module is half-made
when mteb is ready, so the call waits until the outermost of those modules has finished importing.
Any failure is one line on stderr, once, and mteb goes on without the plugin's tasks. mteb has no
plugin API: this is a convenience for ``mteb run -t XQuADR``; the official route is Python,
``mteb.evaluate(model, tasks=...)`` with the objects of :mod:`hybrid_plugin.integrations.mteb`.
"""

from __future__ import annotations

import os
import sys

ENV_SWITCH = "HYBRID_PLUGIN_MTEB_AUTOREGISTER"
OFF = ("0", "false", "no", "off")
TRIGGER = "mteb"
PLUGIN_MODULES = "hybrid_plugin.integrations."  # may import mteb while they are themselves importing


def switched_off() -> bool:
    return os.environ.get(ENV_SWITCH, "1").strip().lower() in OFF


def warn(err: BaseException) -> None:
    """One line on stderr: the hook never breaks ``import mteb``."""
    first = (str(err).splitlines() or [""])[0]
    if getattr(err, "one_line", False):  # hybrid_plugin's own message (e.g. an unsupported mteb version)
        message = first
    else:
        message = f"XQuADR/MLQAR not registered with mteb ({type(err).__name__}: {first})"
    sys.stderr.write(f"hybrid-plugin: {message}; {ENV_SWITCH}=0 silences this\n")


def register_with_mteb() -> None:
    """The one call into the plugin; never raises."""
    try:
        from hybrid_plugin.integrations.mteb import register

        register()
    except Exception as err:  # noqa: BLE001 - anything at all: mteb works on without our tasks
        warn(err)


class MTEBImportHook:
    """Meta-path finder that finds nothing itself: it wraps the loaders of mteb and the plugin's modules.

    It counts the plugin modules being executed, so that :func:`register_with_mteb` runs when mteb is
    imported and none of them is half-made; then, once per process, it leaves ``sys.meta_path``.
    """

    def __init__(self) -> None:
        self._looking: set[str] = set()
        self._plugin_depth = 0  # plugin modules being executed, nested
        self._mteb_ready = False
        self._done = False

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        watched = fullname == TRIGGER or fullname.startswith(PLUGIN_MODULES)
        if not watched or self._done or fullname in self._looking:
            return None
        self._looking.add(fullname)
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
            self._looking.discard(fullname)
        loader = getattr(spec, "loader", None)
        original = getattr(loader, "exec_module", None)
        if original is None:
            return None
        wrapped = self._after_mteb if fullname == TRIGGER else self._around_plugin
        try:
            loader.exec_module = lambda module: wrapped(original, module)  # this module's loader only
        except Exception:  # noqa: BLE001 - a loader that refuses attributes: no hook
            return None
        return spec

    def _after_mteb(self, exec_module, module: object) -> None:
        exec_module(module)
        self._mteb_ready = True
        self._maybe_register()

    def _around_plugin(self, exec_module, module: object) -> None:
        self._plugin_depth += 1
        try:
            exec_module(module)
        finally:
            self._plugin_depth -= 1
        self._maybe_register()  # not reached when the module failed: the next one that imports calls

    def _maybe_register(self) -> None:
        if self._done or not self._mteb_ready or self._plugin_depth:
            return
        self._done = True
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        register_with_mteb()


def install() -> None:
    """Called from the .pth file: watch for mteb; idempotent."""
    if switched_off() or any(type(f).__name__ == "MTEBImportHook" for f in sys.meta_path):
        return
    if TRIGGER in sys.modules:  # mteb was imported before us (unusual): register now
        register_with_mteb()
        return
    sys.meta_path.insert(0, MTEBImportHook())
