"""A motor-record-compatible stage axis whose moves take real time.

PVs (prefix ``P``, e.g. ``STXM:SMP:X``), as the EPICS motor record names them:

- ``P`` / ``P.VAL``  setpoint, um; its control limits follow HLM/LLM (ophyd reads them)
- ``P.RBV``, ``P.DRBV``  readback, um, updated at ~50 Hz while moving
- ``P.DMOV`` / ``P.MOVN``  done-moving / moving flags; DMOV pulses 1-0-1 on every move
- ``P.VELO`` (um/s), ``P.ACCL`` (s to full speed)  used at the start of each move
- ``P.HLM`` / ``P.LLM``  soft limits, enforced by the IOC: they are published as the control
  limits of VAL, so a put outside them is refused with an error status and nothing moves
  (``P.LVIO`` is set should one get past that check)
- ``P.STOP``  stops a move where it is; ``P.TDIR`` direction of the last move
- ``P.EGU`` ``um``

Motion follows :class:`stxm_ctrl.physics.motion.Move` (trapezoidal profile) and is published
in a world block of motions (:func:`motion_block`), one field per axis, so any other IOC sees
the stage exactly where the profile puts it, at any instant. One implementation serves every
motor-record stage of the instrument: an instrument module declares its block with
:func:`motion_block` and builds one :class:`MotorAxis` per axis.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import numpy as np
from caproto.server import PVGroup, pvproperty
from caproto.server.records import MotorFields
from numpy.typing import ArrayLike, NDArray

from sim_iocs.world import BlockLayout, BlockWriter
from stxm_ctrl.config import StageMotionConfig
from stxm_ctrl.physics.motion import MOVE_FIELDS, Move, positions_um

__all__ = ["MOVE_DTYPE", "MotorAxis", "axis_positions_um", "motion_block", "move_of"]

_SCALAR_PATH_MAX = 16

MOVE_DTYPE = np.dtype([(name, "<f8") for name in MOVE_FIELDS])
"""One axis' current move in a world block."""


def motion_block(name: str, axes: Sequence[str]) -> BlockLayout:
    """The world block of a motor IOC: the current :class:`Move` of each of ``axes``."""
    return BlockLayout(name, np.dtype([(axis, MOVE_DTYPE) for axis in axes]))


def move_of(record: np.void, axis: str) -> Move:
    """The move of ``axis`` in a snapshot of a motion block."""
    fields = record[axis]
    return Move(*(float(fields[name]) for name in MOVE_FIELDS))


def axis_positions_um(record: np.void, axis: str, t_s: ArrayLike) -> NDArray[np.float64]:
    """Positions of ``axis`` at times ``t_s`` (vectorised) from one snapshot of its block."""
    times = np.asarray(t_s, dtype=float)
    if times.size <= _SCALAR_PATH_MAX:
        # A counting gate has 3 instants: numpy's per-call overhead would cost ~25x more.
        move = move_of(record, axis)
        return np.array([move.position_um(float(t)) for t in times.ravel()]).reshape(times.shape)
    fields = record[axis]
    return positions_um(*(fields[name] for name in MOVE_FIELDS), times)


_READBACK_PERIOD_S = 0.02
# Longest blocking sleep at the end of a move (the other axis waits at most this long).
_PRECISE_SLEEP_S = 0.0015


class MotorAxis(PVGroup):
    """One simulated stage axis (see the module docstring for its PVs).

    Parameters
    ----------
    prefix
        Full record name, e.g. ``STXM:SMP:X``.
    axis
        Field of ``block`` this axis publishes to (``sample_x``, ...).
    stage
        Limits, speed, acceleration and precision from the configuration.
    block
        The owning IOC's motion block (:func:`motion_block`).
    """

    motor = pvproperty(value=0.0, name="", record="motor", precision=4, doc="Stage setpoint")

    def __init__(
        self, prefix: str, *, axis: str, stage: StageMotionConfig, block: BlockWriter, **kwargs
    ):
        super().__init__(prefix, **kwargs)
        self.axis = axis
        self.stage = stage
        self.block = block
        self._motion: asyncio.Task | None = None

    def _current_move(self) -> Move:
        """The move this axis last published (its rest position is a zero-length move)."""
        return move_of(self.block.read(), self.axis)

    def _publish_move(self, move: Move) -> None:
        """Publish the move this axis is making, for every IOC that reads the block."""
        self.block.write(**{self.axis: tuple(getattr(move, name) for name in MOVE_FIELDS)})

    @property
    def _fields(self) -> MotorFields:
        return self.motor.field_inst

    async def initialise(self) -> None:
        """Publish configured speed, limits and the current position; run once at start."""
        fields = self._fields
        instance = self.motor
        # The stage is wherever the world says (an IOC restart does not move hardware).
        position = self._current_move().position_um(time.monotonic())
        self._publish_move(Move(position, position, time.monotonic(), 1.0, 0.0))
        await fields.engineering_units.write("um")
        await fields.velocity.write(self.stage.velocity_um_per_s)
        await fields.max_velocity.write(self.stage.velocity_um_per_s * 2)
        await fields.seconds_to_velocity.write(self.stage.acceleration_time_s)
        await fields.display_precision.write(self.stage.precision_digits)
        await fields.user_low_limit.write(self.stage.low_limit_um)
        await fields.user_high_limit.write(self.stage.high_limit_um)
        await self._publish_limits()
        await instance.write(position)
        await self._write_readback(position)
        await fields.done_moving_to_value.write(1)
        await fields.motor_is_moving.write(0)

    @motor.putter
    async def motor(self, instance, value: float) -> float:
        fields = self._fields
        target = float(value)
        low, high = fields.user_low_limit.value, fields.user_high_limit.value
        if not low <= target <= high:
            await fields.limit_violation.write(1)
            return instance.value  # the motor record keeps the old setpoint
        await fields.limit_violation.write(0)
        if self._motion is not None and not self._motion.done():
            self._motion.cancel()
        now = time.monotonic()
        start = self._current_move().position_um(now)
        move = Move(
            start_um=start,
            end_um=target,
            t0_s=now,
            velocity_um_per_s=max(fields.velocity.value, 1e-9),
            acceleration_time_s=max(fields.seconds_to_velocity.value, 0.0),
        )
        self._publish_move(move)
        # Every write is a monitor update per client (~0.2 ms each in caproto): send
        # only what changed.
        direction = 1 if target >= start else 0
        if fields.direction_of_travel.value != direction:
            await fields.direction_of_travel.write(direction)
        await fields.done_moving_to_value.write(0)
        await fields.motor_is_moving.write(1)
        self._motion = asyncio.get_running_loop().create_task(self._follow(move))
        return target

    async def _follow(self, move: Move) -> None:
        fields = self._fields
        end_time = move.t0_s + move.duration_s
        while (remaining := end_time - time.monotonic()) > _PRECISE_SLEEP_S:
            await asyncio.sleep(min(_READBACK_PERIOD_S, remaining - _PRECISE_SLEEP_S))
            if end_time - time.monotonic() > _PRECISE_SLEEP_S:
                await self._write_readback(move.position_um(time.monotonic()))
        # asyncio wakes on a millisecond grid; the last stretch is slept precisely.
        time.sleep(max(end_time - time.monotonic(), 0.0))
        # Readback first, then done: a client sees the final position when DMOV goes to 1.
        await fields.user_readback_value.write(move.end_um)
        await fields.done_moving_to_value.write(1)
        await fields.motor_is_moving.write(0)
        await fields.dial_readback_value.write(move.end_um)

    @motor.fields.stop.putter
    async def motor(fields: MotorFields, instance, value: int) -> int:
        axis: MotorAxis = fields.parent.group
        if value and axis._motion is not None and not axis._motion.done():
            axis._motion.cancel()
            now = time.monotonic()
            here = axis._current_move().position_um(now)
            axis._publish_move(Move(here, here, now, 1.0, 0.0))
            await axis._write_readback(here)
            await fields.parent.write(here)
            await fields.motor_is_moving.write(0)
            await fields.done_moving_to_value.write(1)
        return 0

    @motor.fields.user_high_limit.putter
    async def motor(fields: MotorFields, instance, value: float) -> float:
        await fields.parent.group._publish_limits(high=float(value))
        return value

    @motor.fields.user_low_limit.putter
    async def motor(fields: MotorFields, instance, value: float) -> float:
        await fields.parent.group._publish_limits(low=float(value))
        return value

    async def _publish_limits(self, low: float | None = None, high: float | None = None) -> None:
        fields = self._fields
        low = fields.user_low_limit.value if low is None else low
        high = fields.user_high_limit.value if high is None else high
        await self.motor.write_metadata(lower_ctrl_limit=low, upper_ctrl_limit=high)

    async def _write_readback(self, position: float) -> None:
        fields = self._fields
        await fields.user_readback_value.write(position)
        await fields.dial_readback_value.write(position)
