"""Signals whose waits are bounded: no put waits forever on an IOC that has gone."""

from __future__ import annotations

from typing import Any

from ophyd import EpicsSignal

__all__ = ["BoundedEpicsSignal"]


class BoundedEpicsSignal(EpicsSignal):
    """An :class:`ophyd.EpicsSignal` whose ``set`` fails after ``timeout_s`` unless told otherwise.

    ophyd's default write timeout is "forever", so a put with completion (a shutter, a
    dwell) to an IOC that died would hold a scan for ever. The owning device sets
    ``timeout_s`` from the configuration (``[epics.timeouts] put_s``).
    """

    timeout_s: float = 10.0

    def set(self, value: Any, *, timeout: Any = None, **kwargs: Any) -> Any:
        """Put ``value``; the status fails if it does not finish within the timeout."""
        return super().set(value, timeout=self.timeout_s if timeout is None else timeout, **kwargs)
