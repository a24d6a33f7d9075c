"""What every run records of the instrument: optics and energy in its start document, and a
baseline of the optics' positions at its start and end.

:class:`InstrumentMetadata` is a RunEngine preprocessor that fills the start document of
every run, as it opens, with the state it is taken in: energy, polarisation, the zone plate
and OSA in the beam (names and dimensions), A0, ZP z, the focus offset and whether focus
follows energy; the coarse sample position and the ring current; the energy range the run
covers; the configuration it runs under; on the simulated beamline, the sample the scan
looks at (where the scan will be, not where the stage stands). That state is the run's
start, before its plan moves anything, and ``instrument_state_at`` says so: a plan that moves
energy records the state of each frame, read after its moves, in its ``frames`` stream (the
NXstxm file takes it from there). Values a plan gives itself in its metadata win.
:func:`record_instrument_state` installs it and bluesky's
:class:`~bluesky.preprocessors.SupplementalData` with the optics as its baseline, so a run
also reads every optics axis when it starts and when it ends.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, cast

from bluesky import RunEngine
from bluesky import preprocessors as bpp
from bluesky.utils import Msg

from devices import StxmDevices
from stxm_ctrl.config import BeamlineConfig
from stxm_ctrl.data.nexus_writer import NXSTXM_SCAN_TYPES

__all__ = [
    "STATE_AT_START",
    "InstrumentMetadata",
    "energy_range",
    "instrument_state",
    "record_instrument_state",
    "sample_position_um",
]

log = logging.getLogger(__name__)


STATE_AT_START = (
    "run start: energy_eV, polarization, a0_um, zp_z_um, sample_x_um, sample_y_um and "
    "ring_current_mA as the run opened, before its plan moved anything; the state each frame "
    "was measured in (energy, EPU gap, ZP z, polarisation) is that frame's event in the "
    "'frames' stream, each point's position its event in 'primary'"
)
"""What the start document's instrument state is (its ``instrument_state_at``)."""


def instrument_state(devices: StxmDevices, config: BeamlineConfig) -> dict[str, Any]:
    """The instrument's state now, as start-document metadata (monitored values, no I/O).

    Taken as a run opens, before its plan moves anything; ``instrument_state_at`` says so
    (:data:`STATE_AT_START`).
    """
    optics = config.optics
    zone_plate = optics.selected_zone_plate
    energy = devices.energy
    interlock = devices.interlock
    return {
        "energy_eV": round(float(energy.mono.readback.get()), 4),
        "polarization": str(devices.polarization.readback.get()),
        "zone_plate": {"name": optics.zone_plate, **zone_plate.model_dump()},
        "osa": {"name": optics.osa, **optics.selected_osa.model_dump()},
        "a0_um": round(interlock.a0_um(), 3),
        "zp_z_um": round(float(devices.zone_plate.z.user_readback.get()), 3),
        "focus_offset_um": float(cast(Any, energy.focus_offset_um.get())),
        "focus_follows_energy": bool(energy.focus_follows_energy.get()),
        "z_sign": optics.z_sign,
        # Monitored values (no I/O): where the sample was and the ring current as the run
        # opened; kept out of the baseline, whose closing read would fail the run's end when
        # the stage or ring IOC is down and hide the reason the run failed.
        "sample_x_um": round(float(devices.sample_x.user_readback.get()), 4),
        "sample_y_um": round(float(devices.sample_y.user_readback.get()), 4),
        "ring_current_mA": round(float(devices.ring.current.get()), 4),
        "instrument_state_at": STATE_AT_START,
    }


class InstrumentMetadata:
    """RunEngine preprocessor: every ``open_run`` gets the instrument's state (see module).

    On the simulated beamline it also names the sample the run looks at
    (:meth:`~stxm_ctrl.config.SimConfig.sample_name_at`: the pattern or a magnetic sample,
    by the window the scan's centre or the stage is in), unless the plan's metadata or the
    RunEngine's ``md`` (``session_md``) gives ``sample_name``.
    """

    def __init__(
        self,
        devices: StxmDevices,
        config: BeamlineConfig,
        session_md: Mapping[str, Any] | None = None,
    ) -> None:
        self.devices = devices
        self.config = config
        self.session_md: Mapping[str, Any] = session_md if session_md is not None else {}

    def __call__(self, plan: Iterable[Msg]) -> Any:
        return bpp.msg_mutator(plan, self._fill)

    def _fill(self, msg: Msg) -> Msg:
        if msg.command != "open_run":
            return msg
        try:
            state = instrument_state(self.devices, self.config)
        except Exception as exc:  # a disconnected axis must not stop the run from starting
            log.warning("instrument state not recorded in the run: %s", exc)
            state = {"instrument_state_error": str(exc)}
        kwargs = {**state, **msg.kwargs}
        kwargs.setdefault("configuration", self.config.model_dump(mode="json"))
        if self.config.simulated and "sample_name" not in kwargs | dict(self.session_md):
            try:
                where = sample_position_um(kwargs)
            except (IndexError, TypeError, ValueError) as exc:  # odd plan metadata: no name
                log.warning("sample in the beam not recorded in the run: %s", exc)
                where = None
            if where is not None:
                kwargs["sample_name"] = self.config.sim.sample_name_at(*where)
        return msg._replace(kwargs={**kwargs, **energy_range(kwargs)})


_CENTRED_SCAN_TYPES = ("sample image", "sample image stack", "sample point spectrum")
"""Scan types (NXstxm's names) whose ``x_center_um``, ``y_center_um`` are a point of the
sample."""


def sample_position_um(md: Mapping[str, Any]) -> tuple[float, float] | None:
    """Where a run looks at the sample: its scan's centre when it scans the sample (the
    stage moves there after the run opens), else where the stage stands.

    Parameters
    ----------
    md
        The run's start metadata (``stxm_scan_type``, ``sample_x_um``/``sample_y_um``, the
        scan's centre or line ends).

    Returns
    -------
    tuple of float or None
        (x, y) in um, or None when the metadata name no position.
    """

    def number(key: str) -> float | None:
        value = md.get(key)
        return float(value) if isinstance(value, int | float) else None

    # The plans write "point spectrum", "line spectrum"; NXstxm (and md from elsewhere)
    # "sample point spectrum", ...: both are the same scan.
    scan_type = str(md.get("stxm_scan_type", ""))
    scan_type = NXSTXM_SCAN_TYPES.get(scan_type, scan_type)
    here = number("sample_x_um"), number("sample_y_um")
    centre = number("x_center_um"), number("y_center_um")
    start, stop = md.get("line_start_um"), md.get("line_stop_um")
    if scan_type == "sample line spectrum" and isinstance(start, list) and isinstance(stop, list):
        here = 0.5 * (float(start[0]) + float(stop[0])), 0.5 * (float(start[1]) + float(stop[1]))
    elif scan_type in _CENTRED_SCAN_TYPES:
        here = centre
    elif scan_type == "sample focus":  # one sample axis (x_field) against the zone plate's z
        axis = str(md.get("x_field", ""))
        if axis.endswith("_x"):
            here = centre[0], here[1]
        elif axis.endswith("_y"):
            here = here[0], centre[0]
    x, y = here
    return None if x is None or y is None else (x, y)


def energy_range(md: dict[str, Any]) -> dict[str, float]:
    """``energy_min_eV`` / ``energy_max_eV`` a run covers (its frames, else its energy).

    Recorded so that runs can be found by energy range in the catalog.
    """
    frames = md.get("frames")
    energies = [float(f["energy_eV"]) for f in frames] if isinstance(frames, list) else []
    if not energies and isinstance(md.get("energy_eV"), int | float):
        energies = [float(md["energy_eV"])]
    if not energies:
        return {}
    return {"energy_min_eV": min(energies), "energy_max_eV": max(energies)}


def record_instrument_state(
    RE: RunEngine, devices: StxmDevices, config: BeamlineConfig
) -> tuple[InstrumentMetadata, bpp.SupplementalData]:
    """Make every run of ``RE`` record the instrument's state (start document and baseline)."""
    metadata = InstrumentMetadata(devices, config, session_md=RE.md)
    baseline = bpp.SupplementalData(
        baseline=[
            devices.energy,
            devices.polarization,
            devices.zone_plate,
            devices.osa,
            devices.detector,
        ]
    )
    RE.preprocessors.append(metadata)
    RE.preprocessors.append(baseline)
    return metadata, baseline
