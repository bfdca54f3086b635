"""What produced a result: library versions and portable paths, recorded in results and training files."""

from __future__ import annotations

import os
import platform
import re
import shlex
import tempfile
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

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


def portable_path(path: str | os.PathLike[str]) -> str:
    """A path as a results or training file should record it: never the machine's absolute layout.

    Inside the working directory: relative to it (``models/me5``); else under the home folder:
    ``~/...``; else beside it, under a common folder other than ``/``, the folder of all home folders
    and the system temp folder: relative with ``..`` (``../shared/datasets``); else unchanged. A
    relative path is returned as given. Committed artifacts stay free of machine paths this way, and
    a recorded path still resolves from the same working directory (code loads models from recorded
    paths). Those three folders are shared by everything on the machine, so a path that meets the
    working directory only there is not beside it: a checkout under ``/tmp`` would otherwise record
    ``$TMPDIR/pytest-of-me/...`` as ``../../pytest-of-me/...``, which means nothing from anywhere else.
    """
    text = os.fspath(path)
    if not text or not os.path.isabs(os.path.expanduser(text)) or text.startswith("~"):
        return text
    target = Path(os.path.normpath(text))
    for base, prefix in ((Path.cwd(), ""), (Path.home(), "~/")):
        if base == Path(base.anchor):  # "/" as cwd or home would make every path "relative"
            continue
        for root in dict.fromkeys((base, base.resolve())):
            if target == root:
                return "." if not prefix else "~"
            if target.is_relative_to(root):
                return prefix + target.relative_to(root).as_posix()
    cwd = Path.cwd()
    shared = Path(os.path.commonpath([target, cwd]))
    if shared not in _machine_wide_folders(shared):  # a sibling: ../shared/datasets
        return Path(os.path.relpath(target, cwd)).as_posix()
    return text


def _machine_wide_folders(shared: Path) -> set[Path]:
    """Folders that everything on the machine shares (as given and resolved): a path that meets the
    working directory only in one of them is not beside it."""
    places = {Path(shared.anchor), Path.home().parent, Path(tempfile.gettempdir())}
    return places | {p.resolve() for p in places}


def display_path(path: str | os.PathLike[str]) -> str:
    """A path for a record that is only read, never used (a command line, a benchmark's inputs):
    :func:`portable_path`, and a path in the temp folder as ``$TMPDIR/...``."""
    text = portable_path(path)
    if os.path.isabs(text):
        temp = Path(tempfile.gettempdir())
        target = Path(os.path.normpath(text))
        if target.is_relative_to(temp):
            return "$TMPDIR/" + target.relative_to(temp).as_posix()
    return text


def portable_command(argv: Sequence[str]) -> str:
    """A command line for a record, as a shell would take it back: absolute paths in it
    (``--opt PATH``, ``--opt=PATH``, ``FORMAT:PATH``) go through :func:`display_path`, and an
    argument with spaces or quotes is quoted (a leading ``~/`` stays outside the quotes)."""

    def one(arg: str) -> str:
        for sep in ("=", ":"):
            head, found, tail = arg.partition(sep)
            if found and head and not head.startswith(("/", "~")) and os.path.isabs(tail):
                return head + sep + display_path(tail)
        return display_path(arg) if os.path.isabs(arg) else arg

    def quoted(arg: str) -> str:
        if re.fullmatch(r"[\w@%+=:,./~-]+", arg):
            return arg
        if arg.startswith("~/"):
            return "~/" + shlex.quote(arg[2:])
        return shlex.quote(arg)

    return " ".join(quoted(one(a)) for a in argv)
