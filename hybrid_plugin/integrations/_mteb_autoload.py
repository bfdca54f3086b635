"""Interpreter-start hook (run from ``hybrid_plugin_mteb.pth``): registers XQuADR/MLQAR with mteb, lazily.

At start-up this only puts a watcher on ``sys.meta_path`` (stdlib only, about a millisecond).
The first time anything imports ``mteb``, the watcher hands over to wrapt's post-import hooks
(and stays, inert), which call :func:`hybrid_plugin.integrations.mteb.on_task_lookup_imported` right
after ``mteb.get_tasks`` (mteb's task registry) is executed, and
:func:`~hybrid_plugin.integrations.mteb.on_model_lookup_imported` after ``mteb.models.get_model_meta``.
Neither mteb nor wrapt is imported before that.

``HYBRID_PLUGIN_MTEB_AUTOREGISTER=0`` turns it off; ``hybrid_plugin.integrations.mteb.register()``
is the explicit route.
"""

from __future__ import annotations

import os
import sys

ENV_SWITCH = "HYBRID_PLUGIN_MTEB_AUTOREGISTER"
_HOOKS = {
    "mteb.get_tasks": "hybrid_plugin.integrations.mteb:on_task_lookup_imported",
    "mteb.models.get_model_meta": "hybrid_plugin.integrations.mteb:on_model_lookup_imported",
}


class MTEBImportWatcher:
    """Meta-path finder that never finds anything: it only notices the first ``import mteb``.

    After that it stays in place, inert: removing it while the import system iterates over
    ``sys.meta_path`` could make that iteration skip the next finder.
    """

    armed = False

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname == "mteb" and not self.armed:
            self.armed = True
            arm()
        return None


def arm() -> None:
    """Hand over to wrapt: post-import hooks on mteb's task and model lookups."""
    try:
        from wrapt import register_post_import_hook
    except ImportError:
        sys.stderr.write(
            "hybrid-plugin: wrapt is not installed, so XQuADR/MLQAR are not registered with mteb "
            "automatically; pip install 'hybrid-plugin[mteb]' or call "
            "hybrid_plugin.integrations.mteb.register()\n"
        )
        return
    for module, hook in _HOOKS.items():
        register_post_import_hook(hook, module)


def install() -> None:
    """Called from the .pth file: watch for mteb unless switched off (idempotent)."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return
    if any(isinstance(f, MTEBImportWatcher) for f in sys.meta_path):
        return
    if "mteb" in sys.modules:  # imported before us (unusual): hook in right away
        arm()
        return
    sys.meta_path.insert(0, MTEBImportWatcher())


_deferred: list = []  # registrations put off while a plugin MTEB module was still importing


def defer(registration) -> None:
    """Keep a registration for when the plugin module that (indirectly) imported mteb has finished."""
    _deferred.append(registration)


def register_deferred() -> None:
    """Called at the end of each plugin MTEB module: the registration its own ``import mteb`` put off.

    Importing e.g. ``mteb_tasks`` before mteb runs the hook while ``mteb_tasks`` has no names yet;
    the last of the plugin modules to finish importing registers the tasks. Lives here, in the module
    that imports nothing of the package, so the MTEB modules call it without an import cycle.
    """
    pending = list(_deferred)
    _deferred.clear()
    for registration in pending:
        registration()
