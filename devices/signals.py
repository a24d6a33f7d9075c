"""Signals that do not hide a fault: no put waits forever on an IOC that has gone, and no
read passes on a value its IOC says is invalid."""

from __future__ import annotations

from typing import Any

from ophyd import EpicsSignal, EpicsSignalRO

__all__ = ["BoundedEpicsSignal", "CheckedEpicsSignalRO", "InvalidReadingError"]

_INVALID_SEVERITY = 3  # EPICS menuAlarmSevr INVALID: the IOC could not produce the value
_ALARM_STATUS = (
    "NO_ALARM",
    "READ",
    "WRITE",
    "HIHI",
    "HIGH",
    "LOLO",
    "LOW",
    "STATE",
    "COS",
    "COMM",
    "TIMEOUT",
    "HWLIMIT",
    "CALC",
    "SCAN",
    "LINK",
    "SOFT",
)


class InvalidReadingError(RuntimeError):
    """A PV's value came with an INVALID alarm: the IOC could not measure it."""


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


class CheckedEpicsSignalRO(EpicsSignalRO):
    """An :class:`ophyd.EpicsSignalRO` (no monitor) whose ``read`` fails on an INVALID alarm.

    A record whose device support failed (a counter card that could not be read) keeps its
    old value and goes into INVALID alarm; Channel Access completes the put that started
    the measurement all the same, as it cannot say a put failed. Recording that old value
    as a new measurement would put a number no detector measured into the run, so the read
    fails instead, naming the PV and its alarm.
    """

    def read(self) -> dict[str, dict[str, Any]]:
        """Read as ophyd does (a CA get with the alarm); raise if the alarm is INVALID.

        Raises
        ------
        InvalidReadingError
            If the IOC sent the value with an INVALID alarm.
        """
        reading = super().read()
        severity = self.alarm_severity
        if severity is not None and int(severity) >= _INVALID_SEVERITY:
            status = int(self.alarm_status or 0)
            name = _ALARM_STATUS[status] if status < len(_ALARM_STATUS) else str(status)
            raise InvalidReadingError(
                f"{self.pvname} is in {name}/INVALID alarm: its IOC could not measure it, "
                f"and the value it holds ({reading[self.name]['value']!r}) is an old one; "
                "the run stops here with every point before it kept. Check the IOC's log "
                "and the hardware, then measure again"
            )
        return reading
