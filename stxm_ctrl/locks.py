"""One instance per data directory: an exclusive lock held for the life of a command.

Two commands on one data directory would fight over its ports, scan ids, spool and catalog
database. :class:`DataDirLock` takes an exclusive ``flock`` on ``data_dir/.lock`` and writes
who holds it (pid, command, start time) into that file, so a second command can say whom
to stop. The kernel releases the lock when the holder exits, however it exits (a SIGKILL
included): there is no stale lock to clean up.

Commands that share a data directory on purpose (``stxm sim`` and ``stxm serve`` side by
side, a shell using both) lock *parts* of it instead: ``DataDirLock(d, "stxm sim",
part="sim")`` locks ``d/.sim.lock``, and a command that runs both parts (``stxm demo``) takes
both locks.

``flock`` locks are per open file, so two locks in one process conflict too. They are not
reliable on every network filesystem; keep the data directory on a local disk.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from types import TracebackType

from stxm_ctrl.disk import PRIVATE_FILE_MODE, make_private_dir

__all__ = ["LOCK_FILE", "DataDirInUseError", "DataDirLock", "lock_holder", "lock_path"]

LOCK_FILE = ".lock"
# A holder writes its details right after taking the lock; a reader that finds the file
# empty in that instant retries briefly.
_HOLDER_READ_WAIT_S = 0.5


class DataDirInUseError(RuntimeError):
    """Another process holds the data directory (the message names it and what to do).

    Attributes
    ----------
    data_dir
        The directory.
    holder
        What the holder wrote into the lock file (``pid``, ``purpose``, ``since``, ...), or
        an empty dict if it could not be read.
    """

    def __init__(self, message: str, data_dir: Path, holder: dict) -> None:
        super().__init__(message)
        self.data_dir = data_dir
        self.holder = holder


def _read_holder(fd: int) -> dict:
    try:
        text = os.pread(fd, 4096, 0).decode(errors="replace")
        holder = json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def lock_path(data_dir: Path, part: str | None = None) -> Path:
    """The lock file of ``data_dir`` (``.lock``), or of one part of it (``.<part>.lock``).

    Raises
    ------
    ValueError
        If ``part`` is not a plain name (letters, digits, ``_``, ``-``).
    """
    if part is None:
        return Path(data_dir) / LOCK_FILE
    if not re.fullmatch(r"[A-Za-z0-9_-]+", part):
        raise ValueError(
            f"lock part must be a plain name (letters, digits, '_', '-'), got {part!r}"
        )
    return Path(data_dir) / f".{part}.lock"


def lock_holder(data_dir: Path, part: str | None = None) -> dict:
    """What the lock file of ``data_dir`` says about its holder ({} if none is recorded).

    The record may be stale if nobody holds the lock now; :class:`DataDirLock` is the way
    to find out whether it is held.
    """
    try:
        fd = os.open(lock_path(data_dir, part), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        return _read_holder(fd)
    finally:
        os.close(fd)


def _in_use_message(data_dir: Path, part: str | None, holder: dict) -> str:
    what = f"data directory {data_dir}" + (f" ({part})" if part else "")
    if not holder:
        return (
            f"{what} is in use by another process (it has not said which yet; see "
            f"{lock_path(data_dir, part)}); stop it or use another data_dir"
        )
    since = holder.get("since") or 0.0
    try:
        started = datetime.fromtimestamp(float(since)).strftime("%H:%M:%S")
        day = datetime.fromtimestamp(float(since)).date()
        if day != datetime.now().date():
            started = f"{day.isoformat()} {started}"
    except (TypeError, ValueError, OverflowError, OSError):
        started = "an unknown time"
    host = holder.get("host")
    where = f" on {host}" if host and host != os.uname().nodename else ""
    return (
        f"{what} is in use by `{holder.get('purpose', '?')}` "
        f"(pid {holder.get('pid', '?')}{where}, since {started}); stop it or use another "
        "data_dir"
    )


class DataDirLock:
    """Exclusive use of a data directory for the life of a command.

    Use as a context manager (or call :meth:`acquire` and :meth:`release`)::

        with DataDirLock(config.data_dir, "stxm demo"):
            ...

    Parameters
    ----------
    data_dir
        The data directory (created 0700 if missing).
    purpose
        What the holder runs, as a user would recognise it (``"stxm demo"``); shown to
        anyone who finds the directory in use.
    part
        Lock only this part of the directory (``"sim"``, ``"catalog"``): the file
        ``.<part>.lock`` instead of ``.lock``. None (default) locks the whole directory.

    Raises
    ------
    DataDirInUseError
        From :meth:`acquire`, at once, if another process (or another lock in this one)
        holds the directory; the message names its pid, purpose and start time.
    """

    def __init__(self, data_dir: Path, purpose: str, *, part: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.purpose = purpose
        self.part = part
        self.path = lock_path(self.data_dir, part)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> DataDirLock:
        """Take the lock or fail at once (never waits); return self."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this DataDirLock")
        make_private_dir(self.data_dir)
        # No O_TRUNC: the file holds the current holder's details until we have the lock.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._wait_for_holder(fd)
            os.close(fd)
            raise DataDirInUseError(
                _in_use_message(self.data_dir, self.part, holder), self.data_dir, holder
            ) from None
        except BaseException:
            os.close(fd)
            raise
        record = {
            "pid": os.getpid(),
            "purpose": self.purpose,
            "part": self.part,
            "since": time.time(),
            "host": os.uname().nodename,
            "argv": list(sys.argv),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self._fd = fd
        return self

    @staticmethod
    def _wait_for_holder(fd: int) -> dict:
        deadline = time.monotonic() + _HOLDER_READ_WAIT_S
        while True:
            holder = _read_holder(fd)
            if holder or time.monotonic() >= deadline:
                return holder
            time.sleep(0.01)

    def release(self) -> None:
        """Give the lock up (the record is cleared: nobody holds the directory)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing releases the flock

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
