"""World blocks of the optics, detector and beamline IOCs, and how readers evaluate them.

The optics IOC (zone plate and OSA stages) and the beamline IOC (monochromator and EPU) read
each other's blocks for their interlocks, and the APD reads all three, so the layouts are
declared together here rather than in each owner's module (which would import each other):

- ``optics_stages`` (owner ``optics``): the current :class:`~stxm_ctrl.physics.motion.Move`
  of ``zp_x``, ``zp_y``, ``zp_z``, ``osa_x``, ``osa_y``, ``osa_z`` (motor dial readings, um);
- ``detector_stage`` (owner ``detector``): the moves of ``detector_x``, ``detector_y``;
- ``beamline`` (owner ``beamline``): the monochromator's
  :class:`~stxm_ctrl.physics.monochromator.EnergyMove` (``energy``), the EPU gap's move
  (``epu_gap``, in mm), the polarisation (an index into
  :data:`~stxm_ctrl.physics.undulator.POLARIZATIONS`), the one before it and when the
  change between them ends (``polarization_until_s``): until then the beam still has the
  previous polarisation.

A fresh block starts with the instrument aligned (:func:`start_values`): the world's blocks
start zeroed, and ``World.own`` applies these only when it creates the block, so an IOC
restarted on a running world keeps where its stages are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from sim_iocs.motor import MOVE_DTYPE, axis_positions_um, motion_block, move_of
from sim_iocs.world import BlockLayout
from stxm_ctrl.physics.instrument import InstrumentModel
from stxm_ctrl.physics.monochromator import ENERGY_MOVE_FIELDS, EnergyMove
from stxm_ctrl.physics.undulator import POLARIZATIONS

__all__ = [
    "BEAMLINE",
    "DETECTOR_AXES",
    "DETECTOR_STAGE",
    "ENERGY_MOVE_DTYPE",
    "OPTICS_AXES",
    "OPTICS_STAGES",
    "BeamlineState",
    "a0_reach",
    "rest",
    "start_values",
]

OPTICS_AXES = {
    "zp_x": "Zone plate x",
    "zp_y": "Zone plate y",
    "zp_z": "Zone plate z (focus)",
    "osa_x": "OSA x",
    "osa_y": "OSA y",
    "osa_z": "OSA z (A0)",
}
"""Axes of the optics IOC and their descriptions (``.DESC``)."""

DETECTOR_AXES = {"detector_x": "Detector stage x", "detector_y": "Detector stage y"}
"""Axes of the detector IOC and their descriptions."""

OPTICS_STAGES = motion_block("optics_stages", tuple(OPTICS_AXES))
"""World block: the current move of each zone-plate and OSA axis."""

DETECTOR_STAGE = motion_block("detector_stage", tuple(DETECTOR_AXES))
"""World block: the current move of each detector-stage axis."""

ENERGY_MOVE_DTYPE = np.dtype([(name, "<f8") for name in ENERGY_MOVE_FIELDS])
"""One monochromator move in a world block."""

BEAMLINE = BlockLayout(
    "beamline",
    np.dtype(
        [
            ("energy", ENERGY_MOVE_DTYPE),
            ("epu_gap", MOVE_DTYPE),
            ("polarization", "<f8"),
            ("polarization_from", "<f8"),
            ("polarization_until_s", "<f8"),
        ]
    ),
)
"""World block: the energy move, the EPU gap's move and the polarisation."""


def rest(position: float) -> tuple[float, ...]:
    """A motion-block entry for an axis standing at ``position``."""
    return (position, position, 0.0, 1.0, 0.0)


def start_values(model: InstrumentModel) -> dict[str, dict[str, object]]:
    """Initial contents of a fresh block, by block name: the aligned, focused, tuned start."""
    readings = model.start_readings()
    energy = model.start_energy_eV
    start = EnergyMove.at_rest(energy)
    return {
        OPTICS_STAGES.name: {axis: rest(readings[axis]) for axis in OPTICS_AXES},
        DETECTOR_STAGE.name: {axis: rest(readings[axis]) for axis in DETECTOR_AXES},
        BEAMLINE.name: {
            "energy": tuple(getattr(start, name) for name in ENERGY_MOVE_FIELDS),
            "epu_gap": rest(model.tuned_gap_mm(energy, POLARIZATIONS[0])),
            "polarization": 0.0,
            "polarization_from": 0.0,
            "polarization_until_s": 0.0,
        },
    }


@dataclass(frozen=True)
class BeamlineState:
    """A snapshot of the ``beamline`` block, evaluated at any instant."""

    energy_move: EnergyMove
    record: np.void

    @classmethod
    def from_record(cls, record: np.void) -> BeamlineState:
        """From a snapshot of :data:`BEAMLINE`."""
        fields = record["energy"]
        move = EnergyMove(*(float(fields[name]) for name in ENERGY_MOVE_FIELDS))
        return cls(move, record)

    def energies_eV(self, t_s: NDArray[np.float64]) -> NDArray[np.float64]:
        """Photon energy at the instants ``t_s``."""
        return self.energy_move.energies_eV(t_s)

    def gaps_mm(self, t_s: NDArray[np.float64]) -> NDArray[np.float64]:
        """EPU gap at the instants ``t_s``."""
        return axis_positions_um(self.record, "epu_gap", t_s)

    def polarization(self, t_s: float) -> str:
        """Polarisation in the beam at ``t_s`` (the previous one until a change ends)."""
        record = self.record
        index = (
            record["polarization"]
            if t_s >= float(record["polarization_until_s"])
            else record["polarization_from"]
        )
        return POLARIZATIONS[int(index)]

    @property
    def energy_range_eV(self) -> tuple[float, float]:
        """Lowest and highest energy the current move passes through."""
        move = self.energy_move
        return min(move.start_eV, move.target_eV), max(move.start_eV, move.target_eV)


def a0_reach(model: InstrumentModel, optics: np.void, axis: str) -> tuple[float, float]:
    """Smallest and largest nominal distance upstream of the sample (z_sign x reading) that
    ``axis`` (``zp_z`` or ``osa_z``) takes during its current move (where it is now and where
    it goes).

    Nominal, as a motion controller sees it: it knows its readings, not where the sample
    really is (``[sim.optics] sample_z_offset_um``), and neither do the devices, whose
    interlock checks are the same.
    """
    import time

    move = move_of(optics, axis)
    here = move.position_um(time.monotonic())
    distances = sorted((model.z_sign * here, model.z_sign * move.end_um))
    return distances[0], distances[1]
