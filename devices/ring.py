"""Storage ring current and the beamline shutter."""

from __future__ import annotations

from ophyd import Component as Cpt
from ophyd import Device, EpicsSignal, EpicsSignalRO

__all__ = ["StorageRing"]


class StorageRing(Device):
    """Ring current (recorded as a monitor stream during scans, for normalisation) and the shutter.

    Components
    ----------
    current
        Ring current, mA (monitored: it changes slowly, reads cost nothing).
    shutter
        ``"Open"`` / ``"Closed"``; setting it completes when the shutter has moved.
    """

    current = Cpt(EpicsSignalRO, "CURRENT", kind="hinted", auto_monitor=True)
    shutter = Cpt(EpicsSignal, "SHUTTER", string=True, put_complete=True, kind="config")
