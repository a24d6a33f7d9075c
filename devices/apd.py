"""Avalanche-photodiode point counter on an EPICS scaler record."""

from __future__ import annotations

from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, EpicsSignal, Staged
from ophyd.status import StatusBase

from devices.signals import BoundedEpicsSignal, CheckedEpicsSignalRO

__all__ = ["ApdPointCounter"]


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
        monitor; a count the IOC reports INVALID fails the read,
        :class:`devices.signals.CheckedEpicsSignalRO`).
    count_mode
        ``.CONT``, staged to ``OneShot`` (no auto-counting between triggers).

    Parameters
    ----------
    count_margin_s
        A count may take its dwell plus this before it fails (the IOC stopped answering).
    put_timeout_s
        A dwell change may take this before it fails.
    """

    dwell = Cpt(BoundedEpicsSignal, "SCALER.TP", kind="config", auto_monitor=True)
    acquire = Cpt(EpicsSignal, "SCALER.CNT", put_complete=True, kind="omitted")
    counts = Cpt(CheckedEpicsSignalRO, "SCALER.S2", kind="hinted")
    count_mode = Cpt(EpicsSignal, "SCALER.CONT", string=True, kind="omitted")

    def __init__(
        self, *args: Any, count_margin_s: float = 5.0, put_timeout_s: float = 10.0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.stage_sigs["count_mode"] = "OneShot"
        self.count_margin_s = count_margin_s
        self.dwell.timeout_s = put_timeout_s

    def stage(self) -> list[Any]:  # pyright: ignore[reportIncompatibleMethodOverride]
        """Stage as ophyd does, first finishing an unstaging a dead IOC interrupted.

        When the IOC dies during a run, the run's unstage cannot restore ``.CONT`` and
        ophyd leaves the device "partially staged": every later run would be refused with
        ``RedundantStaging`` although the restarted IOC answers. Unstaging again restores
        the saved value (or raises, naming the PV, if the IOC is still gone).
        """
        if self._staged == Staged.partially:
            self.unstage()
        return super().stage()

    # ophyd types Device.trigger as returning DeviceStatus; a signal's put status is what
    # the RunEngine waits on here, and any StatusBase serves it.
    def trigger(self) -> StatusBase:  # pyright: ignore[reportIncompatibleMethodOverride]
        """Count for one dwell; the status finishes when the IOC reports completion, or
        fails after the dwell plus ``count_margin_s``."""
        timeout = float(self.dwell.get()) + self.count_margin_s  # monitored: no round trip
        return self.acquire.set(1, timeout=timeout)

    @property
    def dwell_limits_s(self) -> tuple[float, float]:
        """Allowed dwell range (low, high) in s, as the IOC publishes it."""
        low, high = self.dwell.limits
        return float(low), float(high)
