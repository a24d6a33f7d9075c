"""The sample stage: X and Y motor records (:class:`sim_iocs.motor.MotorAxis`).

PVs: ``[epics.prefixes] sample_stage`` + ``[epics.axes] sample_x`` / ``sample_y``
(``STXM:SMP:X``, ``STXM:SMP:Y``), each a motor record as described in
:mod:`sim_iocs.motor`, moving as ``[sim.stages.<axis>]`` says. Simulator controls, under
``[sim] control_prefix``: ``STXM:SIM:SAMPLE_X:STALL``, ``STXM:SIM:SAMPLE_Y:STALL``
(:class:`sim_iocs.motor.MotorFaults`).

World block ``sample_stage`` (owned): the current move of ``sample_x`` and ``sample_y``, so
the counter sees the sample where it really is at every instant of its gate.
"""

from __future__ import annotations

from caproto.server import PVGroup

from sim_iocs.motor import MotorAxis, MotorFaults, motion_block
from sim_iocs.registry import IocContext

__all__ = ["AXES", "SAMPLE_STAGE", "build"]

AXES = {"sample_x": "Sample stage x", "sample_y": "Sample stage y"}
"""The axes of the stage and their descriptions (``.DESC``)."""

SAMPLE_STAGE = motion_block("sample_stage", tuple(AXES))
"""World block: the current move of each sample-stage axis."""


def build(context: IocContext) -> list[PVGroup]:
    """One motor record per axis, publishing to the ``sample_stage`` block, and its faults."""
    config = context.config
    block = context.world.own(SAMPLE_STAGE)
    prefix = context.prefix
    record_names = config.epics.axes
    stages = config.sim.stages
    groups: list[PVGroup] = []
    for axis, description in AXES.items():
        motor = MotorAxis(
            prefix + getattr(record_names, axis),
            axis=axis,
            stage=getattr(stages, axis),
            block=block,
            description=description,
        )
        faults = MotorFaults(f"{config.sim.control_prefix}{axis.upper()}:", axis=motor)
        groups += [motor, faults]
    return groups
