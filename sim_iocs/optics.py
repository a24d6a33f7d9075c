"""Zone-plate and OSA stages: six motor records and the optics' interlocks.

PVs: ``[epics.prefixes] optics`` + ``[epics.axes] zp_x`` ... ``osa_z`` (``STXM:OPT:ZPX``,
``ZPY``, ``ZPZ``, ``OSAX``, ``OSAY``, ``OSAZ``), each a motor record of :mod:`sim_iocs.motor`;
``STXM:OPT:INTERLOCK`` (lsi), why the last move was refused; simulator controls
``STXM:SIM:ZP_X:STALL`` ... ``STXM:SIM:OSA_Z:STALL`` (:class:`sim_iocs.motor.MotorFaults`).
Dial positions are the stage readings the physics maps to the optics (``[optics] z_sign``,
``[sim.optics] sample_z_offset_um``, the OSA's centre readings). The interlocks of
:class:`stxm_ctrl.physics.interlocks.OpticsGeometry` (zone plate clear of the OSA, OSA clear
of the sample and blocking the second order at the energy in the beam) are the soft limits
of ``ZPZ`` and ``OSAZ``: the intersection of the user's own limits and the interlock range,
re-computed whenever the other axis moves or the energy changes; lateral moves are not
interlocked. How a fresh world starts, the interlock figures and what clients see:
``docs/reference/sim-iocs.md``, section "Optics IOC"; the optics themselves:
``docs/explanation/optics.md``.

World block ``optics_stages`` (owned, :mod:`sim_iocs.optics_world`): the current move of
every axis, which the APD (the spot, defocus and clipping) and the beamline IOC (its energy
interlock) read.
"""

from __future__ import annotations

import asyncio
import math
import time

from caproto.server import PVGroup

from sim_iocs.motor import MotorAxis, MotorFaults
from sim_iocs.optics_world import (
    BEAMLINE,
    OPTICS_AXES,
    OPTICS_STAGES,
    BeamlineState,
    a0_reach,
    start_values,
)
from sim_iocs.records import DELAY_FIELD_UNITS, describe, long_string
from sim_iocs.registry import IocContext
from sim_iocs.world import BlockReader, BlockWriter, World, open_reader
from stxm_ctrl.physics.instrument import InstrumentModel
from stxm_ctrl.physics.interlocks import InterlockError

__all__ = ["INTERLOCKED_AXES", "OpticsInterlock", "build"]

INTERLOCKED_AXES = ("zp_z", "osa_z")
"""Axes whose soft limits carry the interlock."""

_REFRESH_S = 0.1  # the energy is polled this often for the interlock


def build(context: IocContext) -> list[PVGroup]:
    """Six motor records publishing to ``optics_stages``, their faults, and the interlock."""
    config = context.config
    model = InstrumentModel(config, feature_maps=False)
    block = context.world.own(OPTICS_STAGES, initial=start_values(model)[OPTICS_STAGES.name])
    interlock = OpticsInterlock(context.prefix, model=model, block=block, world=context.world)
    groups: list[PVGroup] = [interlock]
    for axis, description in OPTICS_AXES.items():
        interlocked = axis in INTERLOCKED_AXES
        motor = MotorAxis(
            context.prefix + getattr(config.epics.axes, axis),
            axis=axis,
            stage=getattr(config.sim.stages, axis),
            block=block,
            description=description,
            limit_hook=(lambda a=axis: interlock.dial_range(a)) if interlocked else None,
            on_refused=(lambda dial, a=axis: interlock.refused(a, dial)) if interlocked else None,
        )
        interlock.motors[axis] = motor
        faults = MotorFaults(f"{config.sim.control_prefix}{axis.upper()}:", axis=motor)
        groups += [motor, faults]
    return groups


class OpticsInterlock(PVGroup):
    """The optics' interlocks and the record that says why a move was refused.

    Parameters
    ----------
    prefix
        ``[epics.prefixes] optics``.
    model
        The instrument model (geometry, coordinates).
    block
        The ``optics_stages`` block (this IOC's).
    world
        The fleet's world (the ``beamline`` block is read).
    """

    interlock = long_string("INTERLOCK", "Why the last optics move was refused")

    def __init__(
        self, prefix: str, *, model: InstrumentModel, block: BlockWriter, world: World, **kwargs
    ):
        super().__init__(prefix, **kwargs)
        self.model = model
        self.block = block
        self.world = world
        self.beamline: BlockReader | None = None
        self.motors: dict[str, MotorAxis] = {}
        self._changed = asyncio.Event()

    async def initialise(self) -> None:
        """Open the beamline block, publish the interlocked limits, keep them current."""
        await describe(self.interlock, precision=3, field_units=DELAY_FIELD_UNITS)
        self.beamline = await open_reader(self.world, BEAMLINE)
        for axis in INTERLOCKED_AXES:
            self.motors[axis].motion_listeners.append(self._changed.set)
        asyncio.get_running_loop().create_task(self._keep_limits_current())

    async def _keep_limits_current(self) -> None:
        while True:
            for axis in INTERLOCKED_AXES:
                await self.motors[axis].refresh_limits()
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), _REFRESH_S)
            except TimeoutError:
                pass

    # -- the interlock ranges ---------------------------------------------------------
    def _energy_range_eV(self) -> tuple[float, float]:
        if self.beamline is None:  # not yet open: the start energy
            return self.model.start_energy_eV, self.model.start_energy_eV
        return BeamlineState.from_record(self.beamline.read()).energy_range_eV

    def distance_ranges(self) -> dict[str, tuple[float, float]]:
        """Allowed nominal distances (z_sign x reading) for ZP z and OSA z, now.

        Allows for the whole path of the other axis and the whole energy move.
        """
        geometry = self.model.geometry
        optics = self.block.read()
        zp_near, _ = a0_reach(self.model, optics, "zp_z")
        _, osa_far = a0_reach(self.model, optics, "osa_z")
        energy_low, _ = self._energy_range_eV()
        a0_low, a0_high = geometry.a0_range_um(zp_near, energy_low, clip_first_order=False)
        return {
            "zp_z": (geometry.zp_distance_min_um(osa_far), math.inf),
            "osa_z": (a0_low, a0_high),
        }

    def dial_range(self, axis: str) -> tuple[float, float]:
        """The interlock's range of ``axis`` in motor (dial) readings (+-inf: unbounded)."""
        near, far = self.distance_ranges()[axis]
        ends = [self._reading(near), self._reading(far)]
        return (ends[0], ends[1]) if ends[0] <= ends[1] else (ends[1], ends[0])

    def _reading(self, distance_um: float) -> float:
        return self.model.z_sign * distance_um

    async def refused(self, axis: str, dial: float) -> None:
        """Say why a target of ``axis`` beyond its soft limits was refused (INTERLOCK)."""
        motor = self.motors[axis]
        model, geometry = self.model, self.model.geometry
        distance = model.z_sign * dial
        optics = self.block.read()
        energy_low, _ = self._energy_range_eV()
        try:
            if axis == "zp_z":
                _, osa_far = a0_reach(model, optics, "osa_z")
                geometry.check_zp_distance(distance, osa_far)
            else:
                zp_near, _ = a0_reach(model, optics, "zp_z")
                geometry.check_a0(distance, zp_near, energy_low, clip_first_order=False)
            low, high = motor.own_limits_um
            reason = (
                f"beyond the record's own soft limits (dial {low:g} to {high:g} um); widen "
                ".DHLM/.DLLM or move within them"
            )
        except InterlockError as exc:
            reason = f"interlock: {exc}"
        text = f"{time.strftime('%H:%M:%S')} {motor.motor.pvname} target {dial:.4f} refused: "
        await self.interlock.write((text + reason)[:511], verify_value=False)
