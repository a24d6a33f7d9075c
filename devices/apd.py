"""Avalanche-photodiode point counter."""

from __future__ import annotations

from ophyd import Component as Cpt
from ophyd import Device, EpicsSignal, EpicsSignalRO
from ophyd.status import StatusBase

__all__ = ["ApdPointCounter"]

_TRIGGER_MARGIN_S = 5.0


class ApdPointCounter(Device):
    """APD counter that counts photons for ``dwell`` seconds on each trigger.

    Components
    ----------
    dwell
        Counting time per point, s (configuration, monitored; its control limits are the
        allowed range).
    acquire
        Put 1 with put-completion to count; completes when counting has finished.
    counts
        Photons counted in the last acquisition (read with a CA get, never a stale monitor).
    """

    dwell = Cpt(EpicsSignal, "DWELL", kind="config", auto_monitor=True)
    acquire = Cpt(EpicsSignal, "ACQUIRE", put_complete=True, kind="omitted")
    counts = Cpt(EpicsSignalRO, "COUNTS", kind="hinted")

    def trigger(self) -> StatusBase:
        """Count for one dwell; the status finishes when the IOC reports completion."""
        timeout = float(self.dwell.get()) + _TRIGGER_MARGIN_S  # monitored: no round trip
        return self.acquire.set(1, timeout=timeout)

    @property
    def dwell_limits_s(self) -> tuple[float, float]:
        """Allowed dwell range (low, high) in s, as the IOC publishes it."""
        return tuple(self.dwell.limits)
