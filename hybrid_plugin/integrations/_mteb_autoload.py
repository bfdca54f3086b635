"""Deferred registrations (imports nothing of the package), and the old .pth hook's entry point.

The interpreter-start hook itself is the top-level module ``_hybrid_plugin_mteb`` (installed next to
``hybrid_plugin_mteb.pth``, stdlib only). :func:`install` stays for .pth files written by older
installs, which call it by this name.
"""

from __future__ import annotations

import os

ENV_SWITCH = "HYBRID_PLUGIN_MTEB_AUTOREGISTER"


def install() -> None:
    """What an older ``hybrid_plugin_mteb.pth`` calls: the current hook, if it is importable."""
    if os.environ.get(ENV_SWITCH, "1").strip().lower() in ("0", "false", "no", "off"):
        return
    try:
        from _hybrid_plugin_mteb import install as install_hook
    except ImportError:
        return
    install_hook()


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
