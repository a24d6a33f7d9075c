"""Avalanche-photodiode point counter on an EPICS scaler record."""

from __future__ import annotations

from ophyd import Component as Cpt
from ophyd import Device, EpicsSignal, EpicsSignalRO
from ophyd.status import StatusBase

__all__ = ["ApdPointCounter"]

_TRIGGER_MARGIN_S = 5.0


class ApdPointCounter(Device):
    """APD counter that counts photons for ``dwell`` seconds on each trigger.

    The counter is a scaler record ``<prefix>SCALER`` (the synApps scaler record, as ophyd's
    ``ScalerCH`` drives it) whose channel 2 counts the APD's photons; channel 1 counts the
    time base.

    Components
    ----------
    dwell
        ``.TP``, the preset counting time per point, s (configuration, monitored; its
        control limits are the allowed range).
    acquire
        ``.CNT``: put 1 with put-completion to count; completes when counting has finished.
    counts
        ``.S2``, photons counted in the last count (read with a CA get, never a stale
        monitor).
    count_mode
        ``.CONT``, staged to ``OneShot`` (no auto-counting between triggers).
    """

    dwell = Cpt(EpicsSignal, "SCALER.TP", kind="config", auto_monitor=True)
    acquire = Cpt(EpicsSignal, "SCALER.CNT", put_complete=True, kind="omitted")
    counts = Cpt(EpicsSignalRO, "SCALER.S2", kind="hinted")
    count_mode = Cpt(EpicsSignal, "SCALER.CONT", string=True, kind="omitted")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stage_sigs["count_mode"] = "OneShot"

    def trigger(self) -> StatusBase:
        """Count for one dwell; the status finishes when the IOC reports completion."""
        timeout = float(self.dwell.get()) + _TRIGGER_MARGIN_S  # monitored: no round trip
        return self.acquire.set(1, timeout=timeout)

    @property
    def dwell_limits_s(self) -> tuple[float, float]:
        """Allowed dwell range (low, high) in s, as the IOC publishes it."""
        return tuple(self.dwell.limits)
