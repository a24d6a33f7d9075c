"""The sample stage: X and Y motor records (:class:`sim_iocs.motor.MotorAxis`).

PVs: ``[epics.prefixes] sample_stage`` + ``[epics.axes] sample_x`` / ``sample_y``
(``STXM:SMP:X``, ``STXM:SMP:Y``), each a motor record as described in
:mod:`sim_iocs.motor`, moving as ``[sim.stages.<axis>]`` says.

World block ``sample_stage`` (owned): the current move of ``sample_x`` and ``sample_y``, so
the counter sees the sample where it really is at every instant of its gate.
"""

from __future__ import annotations

from sim_iocs.motor import MotorAxis, motion_block
from sim_iocs.registry import IocContext

__all__ = ["AXES", "SAMPLE_STAGE", "build"]

AXES = ("sample_x", "sample_y")
SAMPLE_STAGE = motion_block("sample_stage", AXES)
"""World block: the current move of each sample-stage axis."""


def build(context: IocContext) -> list[MotorAxis]:
    """One motor record per axis, publishing to the ``sample_stage`` block."""
    config = context.config
    block = context.world.own(SAMPLE_STAGE)
    prefix = config.epics.prefixes.sample_stage
    record_names = config.epics.axes
    stages = config.sim.stages
    return [
        MotorAxis(
            prefix + getattr(record_names, axis),
            axis=axis,
            stage=getattr(stages, axis),
            block=block,
        )
        for axis in AXES
    ]
