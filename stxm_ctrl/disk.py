"""Disk space and owner-only files in the data directory.

A run that the disk cannot hold should be refused before it starts
(:func:`check_free_space`), and what we write into the data directory (spool, logs, lock,
catalog databases) is for the owner's eyes only: directories we create are 0700
(:func:`make_private_dir`), files 0600.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "DiskSpaceError",
    "check_free_space",
    "format_bytes",
    "free_bytes",
    "make_private_dir",
    "open_private_append",
    "same_disk",
]

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


class DiskSpaceError(OSError):
    """The disk holding a directory has less free space than a job needs.

    An ``OSError`` with ``errno.ENOSPC``, so code that handles a full disk handles it too.
    """

    def __init__(self, message: str) -> None:
        super().__init__(errno.ENOSPC, message)

    def __str__(self) -> str:
        return self.strerror or ""


def format_bytes(size: int) -> str:
    """``size`` for people: ``"12.3 MB"`` (decimal units, as ``df -H`` prints them)."""
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _existing_ancestor(path: Path) -> Path:
    # A directory that does not exist yet will live on the disk of its nearest ancestor.
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def same_disk(a: Path, b: Path) -> bool:
    """True if ``a`` and ``b`` (existing or not yet) would be on the same filesystem."""
    try:
        return _existing_ancestor(a).stat().st_dev == _existing_ancestor(b).stat().st_dev
    except OSError:
        return False


def free_bytes(directory: Path) -> int:
    """Bytes this user may still write on the disk holding ``directory``.

    ``directory`` need not exist yet; its nearest existing ancestor is asked. Space reserved
    for root is not counted (``statvfs`` ``f_bavail``, as ``shutil.disk_usage`` reports).
    """
    return shutil.disk_usage(_existing_ancestor(Path(directory))).free


def check_free_space(directory: Path, needed_bytes: int, *, what: str = "this run") -> int:
    """Refuse a job the disk holding ``directory`` cannot hold.

    Parameters
    ----------
    directory
        Where the job will write (need not exist yet).
    needed_bytes
        Bytes the job will write (for a scan: :func:`stxm_ctrl.data.writers.estimate_spool_bytes`).
    what
        What needs the space, for the message (``"the spool of a 64 x 64 image"``).

    Returns
    -------
    int
        Free bytes on that disk now.

    Raises
    ------
    DiskSpaceError
        If fewer than ``needed_bytes`` are free; the message names the directory, the free
        and the needed bytes, and what to do.
    """
    free = free_bytes(directory)
    if free < needed_bytes:
        raise DiskSpaceError(
            f"not enough free space for {what} in {directory}: {format_bytes(free)} "
            f"({free} bytes) free on that disk, {format_bytes(needed_bytes)} "
            f"({needed_bytes} bytes) needed; free space there, or set [beamline] data_dir "
            "to a disk with room, or make the scan smaller"
        )
    return free


def make_private_dir(path: Path) -> Path:
    """Create ``path`` and any missing parents with mode 0700; return it.

    Directories that already exist keep their mode (they may be shared on purpose, e.g.
    ``/tmp``); ``Path.mkdir(parents=True, mode=...)`` would create the parents with the
    default mode instead.
    """
    path = Path(path)
    missing = []
    current = path.absolute()
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # made by someone else meanwhile
            continue
    return path


def open_private_append(path: Path) -> int:
    """Open ``path`` for appending, created 0600 if new; return the file descriptor.

    An existing file readable by others (left by an older version) is made 0600: these are
    logs and spool files of the data directory, which may hold run metadata.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, PRIVATE_FILE_MODE)
    except OSError:  # not ours to change (another user's file): leave it, still usable
        pass
    return fd
