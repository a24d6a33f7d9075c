"""Scan ids that keep counting across sessions on one data directory."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["ScanIdFile"]

log = logging.getLogger(__name__)


class ScanIdFile:
    """A RunEngine ``scan_id_source`` that keeps the last scan id in a file.

    bluesky's default counts from the RunEngine's in-memory metadata, so every new
    session would start again at scan 1 and images and logs from different days would
    share numbers. bluesky's own persistent option (``PersistentDict``) needs ``zict`` and
    stores all metadata; only the counter needs to survive, so it gets a one-line file.

    Parameters
    ----------
    path
        The file (``data_dir/last_scan_id``); created on first use.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def last(self) -> int:
        """The last scan id handed out (0 if none yet, or the file is unreadable)."""
        try:
            return int(self.path.read_text().strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            log.warning("%s does not hold a scan id; counting again from the metadata", self.path)
            return 0

    def __call__(self, md: Mapping[str, Any]) -> int:
        """Next scan id: one more than the larger of the file's and the metadata's.

        Allocated under an exclusive lock on ``<path>.lock``, so two sessions on one data
        directory never hand out the same number.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            new = max(self.last(), int(md.get("scan_id", 0))) + 1
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(f"{new}\n")
            os.replace(tmp, self.path)  # never a half-written counter
        finally:
            os.close(lock_fd)  # releases the lock
        return new
