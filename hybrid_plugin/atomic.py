"""Atomic writes: a temp file beside the target, then one rename, so readers never see half a file."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(target: Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temp path next to ``target``; on success rename it over ``target``."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; the result gets normal permissions
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


@contextmanager
def atomic_dir(target: Path) -> Iterator[Path]:
    """Yield a temp folder next to ``target``; on success rename it to ``target`` (must not exist)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_with(target: Path, writer: Callable[[Path], None], suffix: str = "") -> None:
    """Call ``writer(tmp_path)`` and atomically move the result to ``target``."""
    with atomic_path(target, suffix=suffix) as tmp:
        writer(tmp)


STAGING = ".staging-"  # prefix of the folder a new tree is built in, beside its target
RETIRED = ".retired-"  # prefix a replaced tree gets until it is deleted


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where the system cannot."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (38, 22, 95):  # ENOSYS, EINVAL (file system without exchange), EOPNOTSUPP
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def stale_staging(target: Path) -> list[Path]:
    """Folders a killed :func:`replace_tree` left beside ``target``."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    prefixes = (f"{STAGING}{target.name}.", f"{RETIRED}{target.name}.")
    return sorted(p for p in target.parent.iterdir() if p.name.startswith(prefixes))


@contextmanager
def replace_tree(target: Path) -> Iterator[Path]:
    """Yield a fresh folder beside ``target``; on success it takes ``target``'s place in one step.

    The new tree is built next to the target (never inside it), then swapped in by one atomic rename
    exchange where the system has it, so a kill at any moment leaves the old tree or the new one at
    ``target``, never a mix; the old tree is deleted after the swap. Without an exchange the old tree is
    first renamed aside (``.retired-<name>.*``), which a later call finds with :func:`stale_staging`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING}{target.name}.", dir=target.parent))
    os.chmod(staging, 0o777 & ~_umask())
    try:
        yield staging
        if not target.exists():
            os.rename(staging, target)
        elif _exchange(staging, target):
            shutil.rmtree(staging)  # now holds the old tree
        else:
            retired = Path(tempfile.mkdtemp(prefix=f"{RETIRED}{target.name}.", dir=target.parent))
            os.rename(target, retired / "tree")
            os.rename(staging, target)
            shutil.rmtree(retired)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
