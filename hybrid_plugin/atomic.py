"""Atomic writes: a temp file beside the target, then one rename, so readers never see half a file.

Every writer here turns the OSErrors of a disk that refuses the write (read-only, full, forbidden)
into a :class:`~hybrid_plugin.errors.WriteError` naming the target: one line at the CLI, exit 2,
and the temp file is gone. :func:`check_writable` fails before a long run instead of after it.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hybrid_plugin.errors import UserError, WriteError, warn

#: errnos of a write the system refuses; other OSErrors are not about the target and pass unchanged
WRITE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("EROFS", "ENOSPC", "EDQUOT", "EACCES", "EPERM", "EFBIG", "EIO", "ENAMETOOLONG", "ENOTDIR")
    if hasattr(errno, name)
)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def writing_to(target: Path) -> Iterator[None]:
    """Turn a refused write inside the block into a :class:`WriteError` that names ``target``."""
    try:
        yield
    except WriteError:
        raise
    except OSError as err:
        if err.errno in WRITE_ERRNOS:
            raise WriteError(target, err) from None
        raise


def _remove_quietly(path: Path) -> None:
    """Remove a temp file or folder; a failure here must not hide the error that got us here."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()
    except OSError:
        pass


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine): temp files of dead ones are stale."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_temp_files(folder: Path, name: str | None = None) -> int:
    """Remove the temp files and folders that killed writers left in ``folder`` (those of ``name``
    only, or all); they carry their writer's pid, so a live writer's are never touched."""
    part = re.escape(name) if name is not None else r".+"
    pattern = re.compile(rf"\.{part}\.(\d+)\.[^.]+(?:\.[a-z]+)?\.tmp")
    removed = 0
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return 0
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m is not None and int(m[1]) != os.getpid() and not pid_alive(int(m[1])):
            _remove_quietly(entry)
            removed += 1
    return removed


def check_writable(folder: Path, what: str) -> None:
    """UserError now if nothing can be created in ``folder`` (or the nearest folder above it that
    exists), rather than after a long run; creates and removes one hidden probe file there."""
    folder = Path(folder)
    probe = folder.absolute()
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise UserError(f"{what} {folder}: {probe} is not a folder")
    try:
        _probe(probe)
    except OSError as err:
        raise UserError(f"{what} {folder}: cannot write into {probe} ({err.strerror or err})") from None


def _probe(folder: Path) -> None:
    """Create and remove one hidden file in ``folder``: the OSError a refused write gives, if any
    (a real try, not a permission bit: root, ACLs and read-only mounts all answer truthfully)."""
    fd, name = tempfile.mkstemp(prefix=".hybrid-plugin-probe.", suffix=".tmp", dir=folder)
    os.close(fd)
    os.unlink(name)


def check_removable(tree: Path, what: str) -> None:
    """UserError now if the tree ``tree`` could not be deleted once replaced (a read-only folder in
    it, a read-only disk): each of its folders is probed, so a replacement fails before anything
    changed, not after the new tree is in with the old one stuck beside it."""
    tree = Path(tree)
    for folder in [tree, *(p for p in sorted(tree.rglob("*")) if p.is_dir() and not p.is_symlink())]:
        try:
            _probe(folder)
        except OSError as err:
            raise UserError(
                f"{what} {tree}: cannot replace it, {folder} cannot be written ({err.strerror or err}); "
                "nothing was changed"
            ) from None


@contextmanager
def atomic_path(target: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path next to ``target``; on success rename it over ``target``."""
    target = Path(target)
    with writing_to(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_temp_files(target.parent, target.name)
        prefix = f".{target.name}.{os.getpid()}."
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=suffix + ".tmp", dir=target.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; the result gets normal permissions
            yield tmp_path
            os.replace(tmp_path, target)
        finally:
            _remove_quietly(tmp_path)


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temp folder next to ``target``; on success rename it to ``target`` (must not exist)."""
    target = Path(target)
    with writing_to(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_dead_temp_files(target.parent, target.name)
        prefix = f".{target.name}.{os.getpid()}."
        tmp = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=target.parent))
        try:
            os.chmod(tmp, 0o777 & ~_umask())
            yield tmp
            os.replace(tmp, target)
        finally:
            _remove_quietly(tmp)


def write_with(target: Path, writer: Callable[[Path], None], suffix: str = "") -> None:
    """Call ``writer(tmp_path)`` and atomically move the result to ``target``."""
    with atomic_path(target, suffix=suffix) as tmp:
        writer(tmp)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _rename_exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux ``renameat2``); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # filesystem without RENAME_EXCHANGE: the caller falls back to two renames
    raise OSError(err, os.strerror(err), str(b))


def swap_in_dir(staged: Path, target: Path, old: Path) -> None:
    """Put the finished folder ``staged`` at ``target`` so a reader (or a kill) sees the old or the new.

    A missing or empty ``target`` is replaced by one rename. A non-empty one is exchanged with
    ``staged`` in one step where the system can (Linux); elsewhere it is first renamed to ``old`` (a
    sibling the caller can recognise and restore after a crash). The old tree is removed last; the
    caller checks beforehand that it can be (:func:`check_removable`), and should it fail anyway,
    that is one warning, not a failed replacement.
    """
    staged, target, old = Path(staged), Path(target), Path(old)
    if not target.exists() or (target.is_dir() and not any(target.iterdir())):
        os.replace(staged, target)
        return
    if _rename_exchange(staged, target):
        os.replace(staged, old)  # staged now holds the old tree: give it the recognisable name first
    else:
        os.replace(target, old)
        os.replace(staged, target)
    try:
        shutil.rmtree(old)
    except OSError as err:  # the new tree is in and complete: the replacement did not fail
        warn(f"replaced {target}, but could not remove the previous tree {old} ({err.strerror or err})")
