"""Storage ring current and the beamline shutter."""

from __future__ import annotations

from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, EpicsSignalRO

from devices.signals import BoundedEpicsSignal

__all__ = ["StorageRing"]


class StorageRing(Device):
    """Ring current (recorded as a monitor stream during scans, for normalisation) and the shutter.

    Components
    ----------
    current
        Ring current, mA (monitored: it changes slowly, reads cost nothing).
    shutter
        ``"Open"`` / ``"Closed"``; setting it completes when the shutter has moved, or
        fails after ``put_timeout_s``.

    Parameters
    ----------
    put_timeout_s
        How long a shutter move may take before it fails.
    """

    current = Cpt(EpicsSignalRO, "CURRENT", kind="hinted", auto_monitor=True)
    shutter = Cpt(BoundedEpicsSignal, "SHUTTER", string=True, put_complete=True, kind="config")

    def __init__(self, *args: Any, put_timeout_s: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shutter.timeout_s = put_timeout_s
