"""The detector stage: X and Y motor records carrying the APD.

PVs: ``[epics.prefixes] detector`` + ``[epics.axes] detector_x`` / ``detector_y``
(``STXM:DET:X``, ``STXM:DET:Y``), motor records as described in :mod:`sim_iocs.motor`, moving
as ``[sim.stages.detector_x]``/``detector_y`` say. Simulator controls:
``STXM:SIM:DETECTOR_X:STALL``, ``STXM:SIM:DETECTOR_Y:STALL``.

What is simulated: the APD's active area (``[sim.apd] active_diameter_um``, at
``distance_um`` behind the sample) is centred on the zone plate's axis at the readings
``[sim.optics] detector_center_x_um``/``detector_center_y_um``, where a fresh world starts
it (a restarted IOC keeps where the stage is). Off centre the APD catches only part of the
diverging cone and of the zero order that gets past the OSA
(:meth:`stxm_ctrl.physics.beam_path.BeamPath.detector_first_order`); far off, only dark
counts remain. The APD reads the ``detector_stage`` block (owned here,
:mod:`sim_iocs.optics_world`).
"""

from __future__ import annotations

from caproto.server import PVGroup

from sim_iocs.motor import MotorAxis, MotorFaults
from sim_iocs.optics_world import DETECTOR_AXES, DETECTOR_STAGE, start_values
from sim_iocs.registry import IocContext
from stxm_ctrl.physics.instrument import InstrumentModel

__all__ = ["build"]


def build(context: IocContext) -> list[PVGroup]:
    """One motor record per axis, publishing to the ``detector_stage`` block, and faults."""
    config = context.config
    initial = start_values(InstrumentModel(config, feature_maps=False))[DETECTOR_STAGE.name]
    block = context.world.own(DETECTOR_STAGE, initial=initial)
    groups: list[PVGroup] = []
    for axis, description in DETECTOR_AXES.items():
        motor = MotorAxis(
            context.prefix + getattr(config.epics.axes, axis),
            axis=axis,
            stage=getattr(config.sim.stages, axis),
            block=block,
            description=description,
        )
        groups += [motor, MotorFaults(f"{config.sim.control_prefix}{axis.upper()}:", axis=motor)]
    return groups
