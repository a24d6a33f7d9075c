"""Signals whose write access comes back with their IOC.

When an IOC stops answering without closing its connection (frozen, overloaded, a network
outage), Channel Access gives up on the circuit after ``EPICS_CA_CONN_TMO`` (30 s): every
channel on it disconnects, with an access-rights event "no access". When the IOC answers
again, libca brings the same channels back on the same circuit and calls the connection
callback, but sends no new access-rights event (the server never sent new rights: they did
not change). pyepics re-reads the rights after its connection callbacks
(``PV.write_access`` is True again) but does not tell its access callbacks, so an ophyd
signal keeps ``write_access = False`` and every move fails with ``ReadOnlyError`` until a new
session. (An IOC that restarts is a new circuit, which does send the rights.)

:func:`follow_access_rights` gives every EPICS signal of a device the missing event: on
each reconnection it reads the channel's rights from libca and hands them to ophyd's own
access-rights callback, on ophyd's metadata thread after ophyd's connection callback.
"""

from __future__ import annotations

import weakref
from typing import Any

from ophyd import Device

# ophyd's own way to run a callback on one of its dispatcher threads; it has no public one.
from ophyd._dispatch import wrap_callback  # noqa: PLC2701
from ophyd.signal import EpicsSignalBase

__all__ = ["follow_access_rights"]

_FOLLOWED = "_access_rights_followed"  # set on a signal once its PVs are followed


def _replay_rights(
    signal_ref: weakref.ref[EpicsSignalBase], pvname: str | None, conn: bool
) -> None:
    """On the metadata thread, after ophyd saw ``pvname`` connect: tell it the rights."""
    signal = signal_ref()
    if signal is None or not conn or signal._destroyed:  # noqa: SLF001 - ophyd's flag
        return
    for pv in _pvs_of(signal):
        # Not pv.connected: pyepics sets it only after its connection callbacks have run.
        if pv.pvname == pvname:
            pv.force_read_access_rights()  # libca's rights now, not pyepics' cached ones
            signal._pv_access_callback(pv.read_access, pv.write_access, pv)  # noqa: SLF001


def _pvs_of(signal: EpicsSignalBase) -> list[Any]:
    pvs = [getattr(signal, "_read_pv", None), getattr(signal, "_write_pv", None)]
    unique = {id(pv): pv for pv in pvs if pv is not None}
    return list(unique.values())


def follow_access_rights(device: Device) -> None:
    """Make every EPICS signal of ``device`` (sub-devices included) take its rights back
    when its channel reconnects (see the module docstring). Calling it again is harmless.
    """
    for walk in device.walk_signals():
        signal = walk.item
        if not isinstance(signal, EpicsSignalBase) or getattr(signal, _FOLLOWED, False):
            continue
        dispatcher = signal.cl.get_dispatcher()
        ref = weakref.ref(signal)
        for pv in _pvs_of(signal):
            if not hasattr(pv, "force_read_access_rights"):
                continue  # not pyepics: its control layer keeps rights itself
            replay = wrap_callback(
                dispatcher,
                "metadata",
                lambda pvname=None, conn=False, ref=ref, **_: _replay_rights(ref, pvname, conn),
            )
            pv.connection_callbacks.append(replay)
        setattr(signal, _FOLLOWED, True)
