"""What produced a result: library versions, recorded in every results and training file."""

from __future__ import annotations

import platform
from importlib import metadata

from hybrid_plugin import __version__


def library_versions(libraries: tuple[str, ...]) -> dict[str, str | None]:
    """The plugin's, Python's and each installed library's version (None where not installed)."""
    out: dict[str, str | None] = {"hybrid-plugin": __version__, "python": platform.python_version()}
    for lib in libraries:
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = None
    return out
