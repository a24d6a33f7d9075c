"""An EPICS motor record for a simulated stage axis, with the record's semantics.

One implementation serves every motor-record stage of the instrument: an instrument module
declares its world block with :func:`motion_block` and builds one :class:`MotorAxis` per
axis. Stock clients (ophyd ``EpicsMotor``, pyepics ``Motor``, ``caput``, Phoebus motor
screens) drive it as they drive a real motor record: moves by ``.VAL``/``.DVAL``/``.RVAL``
completing after ``.DMOV``, user/dial/raw coordinates, soft limits in dial coordinates with
``.LVIO``, limit switches, tweak, jog, home, stop/pause, ``.CNEN``, speeds clamped to
``.VBAS``..``.VMAX``, ``.MSTA`` bits. An axis may have *extra limits* imposed from outside
the record (an interlock, ``limit_hook``): the published soft limits are then the
intersection of the user's own limits and the extra range, re-published when it changes
(:meth:`MotorAxis.refresh_limits`). Motion is trapezoidal
(:class:`stxm_ctrl.physics.motion.Move`).

Every field, what it does and what is not simulated (backlash, retries, encoders, servo
gains): ``docs/reference/sim-iocs.md``, section "Sample-stage IOC".

Motion is published in a world block of motions (:func:`motion_block`), one field per axis,
so any other IOC sees the stage exactly where the profile puts it, at any instant. All world
access goes through :meth:`MotorAxis._current_move` and :meth:`MotorAxis._publish_move`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

import numpy as np
from caproto import AlarmSeverity, AlarmStatus, ChannelType, SkipWrite
from caproto.server import PVGroup, pvproperty
from numpy.typing import ArrayLike, NDArray

from sim_iocs.motor_fields import FIELD_ATTRS, MOTOR_FIELD_UNITS, SPEEDS, MotorRecordFields, Msta
from sim_iocs.motor_settings import MotorSettings
from sim_iocs.records import (
    BO_FIELD_UNITS,
    RecordDouble,
    describe,
    forward_put,
    post_alarm,
    set_value,
    severity_of,
)
from sim_iocs.world import BlockLayout, BlockWriter
from stxm_ctrl.config import StageMotionConfig
from stxm_ctrl.physics.motion import MOVE_FIELDS, Move, positions_um

__all__ = [
    "MOTOR_FIELD_UNITS",
    "MOVE_DTYPE",
    "MotorAxis",
    "MotorFaults",
    "Msta",
    "axis_positions_um",
    "motion_block",
    "move_of",
]

log = logging.getLogger(__name__)

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
    start, end, t0, velocity, acceleration_time = (fields[name] for name in MOVE_FIELDS)
    return positions_um(start, end, t0, velocity, acceleration_time, times)


_READBACK_PERIOD_S = 0.02
# Longest blocking sleep at the end of a move (the other axis waits at most this long).
_PRECISE_SLEEP_S = 0.0015
_SPMG = ("Stop", "Pause", "Move", "Go")
_DIRECTION, _DONE, _MOVING, _PLUS_LS, _MINUS_LS = (
    int(bit) for bit in (Msta.DIRECTION, Msta.DONE, Msta.MOVING, Msta.PLUS_LS, Msta.MINUS_LS)
)
_HOME, _POSITION, _PROBLEM, _HOMED, _GAIN_SUPPORT = (
    int(bit) for bit in (Msta.HOME, Msta.POSITION, Msta.PROBLEM, Msta.HOMED, Msta.GAIN_SUPPORT)
)


@dataclass(frozen=True)
class _Motion:
    """One motion the axis was asked for: what kind, and where it was meant to end."""

    kind: str  # "move", "jog" or "home"
    target_dial: float
    velocity: float
    acceleration_time: float


# Fields whose puts the axis handles (by field name).
_HANDLED = (
    "DVAL RVAL RLV OFF DIR FOFF SET SSET SUSE FOF VOF SYNC HLM LLM DHLM DLLM VELO VBAS VMAX "
    "JVEL HVEL BVEL S SBAS SMAX SBAK UREV ACCL JAR DLY MRES EGU PREC STOP SPMG TWF TWR TWV "
    "JOGF JOGR HOMF HOMR CNEN HLSV"
).split()


class MotorAxis(MotorSettings, PVGroup):
    """One simulated stage axis: an EPICS motor record (``docs/reference/sim-iocs.md``).

    Parameters
    ----------
    prefix
        Full record name, e.g. ``STXM:SMP:X``.
    axis
        Field of ``block`` this axis publishes to (``sample_x``, ...).
    stage
        Limits, limit and home switches, speeds, resolution and precision.
    block
        The owning IOC's motion block (:func:`motion_block`).
    description
        ``.DESC`` of the record.
    units
        Engineering units of positions (``.EGU``; speeds in units/s). The stage's
        configuration gives its numbers in these units.
    limit_hook
        Extra dial limits (low, high; +-inf for none) imposed from outside the record, e.g.
        an interlock; called whenever a target is checked, so always current.
    on_refused
        Awaited with the dial target when a target beyond the soft limits is refused
        (before ``.LVIO`` is set), e.g. to say which interlock refused it.

    Attributes
    ----------
    motion_listeners
        Called (synchronously, no arguments) whenever the axis publishes a new move, a stop
        or a rest position; an interlock uses it to re-check other axes.
    """

    motor = pvproperty(
        value=0.0,
        name="",
        record=MotorRecordFields,
        dtype=RecordDouble,
        precision=4,
        doc="Stage",
    )
    for _name in _HANDLED:
        getattr(motor.fields, FIELD_ATTRS[_name]).putter(forward_put(_name))
    del _name

    def __init__(
        self,
        prefix: str,
        *,
        axis: str,
        stage: StageMotionConfig,
        block: BlockWriter,
        description: str = "",
        units: str = "um",
        limit_hook: Callable[[], tuple[float, float]] | None = None,
        on_refused: Callable[[float], Awaitable[None]] | None = None,
        **kwargs,
    ):
        super().__init__(prefix, **kwargs)
        self.axis = axis
        self.stage = stage
        self.block = block
        self.description = description or axis
        self.units = units
        self.limit_hook = limit_hook
        self.on_refused = on_refused
        self.motion_listeners: list[Callable[[], None]] = []
        # The user's own dial soft limits (low, high); equal: disabled.
        self.own_limits_um = (stage.low_limit_um, stage.high_limit_um)
        self.motor.reported_record_type = "motor"
        self._task: asyncio.Task | None = None  # follows the motion in progress
        self._motion: _Motion | None = None  # what the axis is doing (or stalled on)
        self._waiters: list[asyncio.Future[None]] = []  # put completions due at rest
        self._stalled = False
        self._homed = False
        self._problem = False
        self._positive = True  # raw direction of the last motion
        self._generation = 0  # counts motions started
        fields = self._fields
        # One alarm per record: readbacks report the record's STAT/SEVR, as on an IOC
        # (ophyd reads the severity of .RBV when a move ends).
        for attr in ("user_readback_value", "dial_readback_value"):
            getattr(fields, attr).alarm = self.motor.alarm

    # -- world interface --------------------------------------------------------------
    def _current_move(self) -> Move:
        """The move this axis last published (its rest position is a zero-length move)."""
        return move_of(self.block.read(), self.axis)

    def _publish_move(self, move: Move) -> None:
        """Publish the move this axis is making, for every IOC that reads the block."""
        self.block.write(**{self.axis: tuple(getattr(move, name) for name in MOVE_FIELDS)})
        for listener in self.motion_listeners:
            listener()

    def _here(self) -> float:
        """Physical (dial) position now."""
        return self._current_move().position_um(time.monotonic())

    def _rest_at(self, dial: float) -> None:
        self._publish_move(Move(dial, dial, time.monotonic(), 1.0, 0.0))

    # -- coordinates ------------------------------------------------------------------
    def _sign(self) -> float:
        return -1.0 if self._fields.user_direction.value == "Neg" else 1.0

    def _user(self, dial: float) -> float:
        return self._sign() * dial + self._fields.user_offset.value

    def _dial(self, user: float) -> float:
        return (user - self._fields.user_offset.value) * self._sign()

    def _mres(self) -> float:
        return float(self._fields.motor_step_size.value)

    def _steps(self, dial: float) -> int:
        return round(dial / self._mres())

    @property
    def interlocked(self) -> bool:
        """True if limits are imposed from outside the record (``limit_hook``)."""
        return self.limit_hook is not None

    def soft_limits_um(self) -> tuple[float, float] | None:
        """Dial soft limits in force, or None when they are disabled (own limits equal and
        no extra limits)."""
        low, high = self.own_limits_um
        if self.limit_hook is None:
            return None if low == high else (low, high)
        if low == high:
            low, high = -math.inf, math.inf
        extra_low, extra_high = self.limit_hook()
        low, high = max(low, extra_low), min(high, extra_high)
        if not math.isfinite(low):
            low = self.stage.low_limit_switch_um
        if not math.isfinite(high):
            high = self.stage.high_limit_switch_um
        return low, high

    def _violates_soft_limits(self, target: float, here: float) -> bool:
        """The motor record's check: beyond a limit and further out than the stage is."""
        limits = self.soft_limits_um()
        if limits is None:
            return False
        low, high = limits
        return (target > high and target > here) or (target < low and target < here)

    def _moving(self) -> bool:
        return self._motion is not None

    # -- start-up ---------------------------------------------------------------------
    async def initialise(self) -> None:
        """Publish the configuration and the current position; run once at start."""
        fields = self._fields
        stage = self.stage
        # The stage is wherever the world says (an IOC restart does not move hardware).
        here = self._here()
        self._rest_at(here)
        for channel, value in (
            (fields.motor_step_size, stage.resolution_um),
            (fields.base_velocity, stage.base_velocity_um_per_s),
            (fields.max_velocity, stage.max_velocity_um_per_s),
            (fields.velocity, stage.velocity_um_per_s),
            (fields.jog_velocity, stage.jog_velocity_um_per_s),
            (fields.home_velocity, stage.home_velocity_um_per_s),
            (fields.seconds_to_velocity, stage.acceleration_time_s),
            (fields.jog_accel, 0.0),
            (fields.tweak_step_size, 1.0),
            (fields.egu_s_per_revolution, 1.0),
            (fields.hw_limit_violation_svr, "MAJOR"),
            (fields.limit_violation, 0),
            (fields.enable_control, "Enable"),
        ):
            await channel.write(value, verify_value=False)
        for speed, revs in SPEEDS.items():
            await self._post_revs(speed, revs)
        await describe(
            self.motor,
            description=self.description,
            units=self.units,
            precision=stage.precision_digits,
            field_units=MOTOR_FIELD_UNITS(self.units),
        )
        await self._publish_limits()
        await self._post_setpoint(here)
        await self._post_readback(here)
        await self._post_switches(here)
        await set_value(fields.done_moving_to_value, 1)
        await set_value(fields.motor_is_moving, 0)
        await self._post_status()

    # -- puts -------------------------------------------------------------------------
    @motor.putter
    async def motor(self, instance, value: float):
        return await self._put_user_target(float(value), instance.value)

    async def put_field(self, name: str, instance, value):
        """Dispatch a put to field ``name`` (see ``_HANDLED``) to its handler."""
        return await getattr(self, f"_put_{name}")(instance, value)

    async def _put_user_target(self, user: float, previous: float):
        fields = self._fields
        if fields.set_use_switch.value == "Set":
            return await self._redefine_user_position(user)
        return await self._request_move(self._dial(user), reject_value=previous)

    async def _request_move(self, dial: float, *, reject_value: float | None = None):
        """A new target from VAL, DVAL, RVAL, RLV or a tweak; completes at rest."""
        fields = self._fields
        here = self._here()
        if self._violates_soft_limits(dial, here):
            low, high = self.soft_limits_um() or (0.0, 0.0)
            if self.on_refused is not None:
                await self.on_refused(dial)
            log.warning(
                "%s: target %.6g (dial) outside the soft limits %.6g..%.6g; not moving "
                "(.LVIO = 1); move within the limits or widen .HLM/.LLM",
                self.motor.pvname,
                dial,
                low,
                high,
            )
            await set_value(fields.limit_violation, 1)
            return reject_value if reject_value is not None else SkipWrite
        await set_value(fields.limit_violation, 0)
        if fields.enable_control.value == "Disable":
            log.warning(
                "%s: torque disabled (.CNEN = Disable); not moving; set .CNEN = Enable",
                self.motor.pvname,
            )
            self._problem = True
            await self._post_status()
            return reject_value if reject_value is not None else SkipWrite
        if fields.stop_pause_move_go.value in ("Stop", "Pause"):
            await self._post_setpoint(dial)
            return SkipWrite  # the new target waits for Go (or Move)
        await self._start(self._motion_to(dial), setpoint=dial)
        await self._at_rest()
        await self._end_of_move_once()
        return SkipWrite

    async def _end_of_move_once(self) -> None:
        """SPMG = Move is Go for one move: Pause once a move has ended (not before one)."""
        spmg = self._fields.stop_pause_move_go
        if spmg.value == "Move" and not self._moving():
            await spmg.write("Pause", verify_value=False)

    def _motion_to(self, dial: float) -> _Motion:
        fields = self._fields
        return _Motion("move", dial, float(fields.velocity.value), self._acceleration_time())

    def _acceleration_time(self) -> float:
        return max(float(self._fields.seconds_to_velocity.value), 0.0)

    async def _redefine_user_position(self, user: float):
        """SET = Set: make the current position read ``user`` by changing OFF only."""
        fields = self._fields
        if fields.offset_freeze_switch.value == "Frozen":
            self._refuse(
                "",
                "with .FOFF = Frozen a Set-mode put would redefine the dial position, which "
                "this simulated controller keeps equal to the stage position; set .FOFF = "
                "Variable to redefine the user position (OFF)",
            )
        here = self._here()
        await fields.user_offset.write(user - self._sign() * here, verify_value=False)
        await set_value(fields.dial_desired_value, here)
        await self._coordinates_changed(here)
        return SkipWrite

    def _refuse_dial_redefinition(self, field: str) -> NoReturn:
        self._refuse(
            field,
            "the simulated controller's dial position is the stage position and cannot be "
            "redefined; redefine the user position instead (.SET = Set, .FOFF = Variable, "
            "put .VAL)",
        )

    async def _put_DVAL(self, instance, value):
        if self._fields.set_use_switch.value == "Set":
            self._refuse_dial_redefinition("DVAL")
        return await self._request_move(float(value), reject_value=instance.value)

    async def _put_RVAL(self, instance, value):
        if self._fields.set_use_switch.value == "Set":
            self._refuse_dial_redefinition("RVAL")
        return await self._request_move(int(value) * self._mres(), reject_value=instance.value)

    async def _put_RLV(self, instance, value):
        if value:
            fields = self._fields
            await set_value(fields.last_rel_value, float(value))
            await self._request_move(self._dial(float(self.motor.value) + float(value)))
        return 0.0

    async def _put_TWF(self, instance, value):
        return await self._tweak(value, +1.0)

    async def _put_TWR(self, instance, value):
        return await self._tweak(value, -1.0)

    async def _tweak(self, value, sign: float):
        if value:
            step = sign * float(self._fields.tweak_step_size.value)
            await self._request_move(self._dial(float(self.motor.value) + step))
        return 0

    async def _put_TWV(self, instance, value):
        return float(value)

    async def _put_OFF(self, instance, value):
        await instance.write(float(value), verify_value=False)
        await self._coordinates_changed(self._here())
        return SkipWrite

    async def _put_DIR(self, instance, value):
        await instance.write(value, verify_value=False)
        await self._coordinates_changed(self._here())
        return SkipWrite

    async def _put_FOFF(self, instance, value):
        return value

    async def _put_SET(self, instance, value):
        return value

    async def _put_SSET(self, instance, value):
        if value:
            await self._fields.set_use_switch.write("Set", verify_value=False)
        return 0

    async def _put_SUSE(self, instance, value):
        if value:
            await self._fields.set_use_switch.write("Use", verify_value=False)
        return 0

    async def _put_FOF(self, instance, value):
        if value:
            await self._fields.offset_freeze_switch.write("Frozen", verify_value=False)
        return 0

    async def _put_VOF(self, instance, value):
        if value:
            await self._fields.offset_freeze_switch.write("Variable", verify_value=False)
        return 0

    async def _put_SYNC(self, instance, value):
        if value and not self._moving():
            await self._post_setpoint(self._here())
        return 0

    async def _coordinates_changed(self, here: float) -> None:
        """OFF or DIR changed: the same dial positions have new user values."""
        fields = self._fields
        await set_value(self.motor, self._user(float(fields.dial_desired_value.value)))
        await self._publish_limits()
        await self._post_readback(here)

    # -- limits -----------------------------------------------------------------------
    async def _put_HLM(self, instance, value):
        await self._set_user_limit(float(value), high=True)
        return SkipWrite

    async def _put_LLM(self, instance, value):
        await self._set_user_limit(float(value), high=False)
        return SkipWrite

    async def _set_user_limit(self, user: float, *, high: bool) -> None:
        # With DIR = Neg the user high limit is the dial low limit.
        await self._set_own_limit(self._dial(user), high=high == (self._sign() > 0))

    async def _set_own_limit(self, dial: float, *, high: bool) -> None:
        low, top = self.own_limits_um
        self.own_limits_um = (low, dial) if high else (dial, top)
        await self._publish_limits()

    async def _put_DHLM(self, instance, value):
        await self._set_own_limit(float(value), high=True)
        return SkipWrite

    async def _put_DLLM(self, instance, value):
        await self._set_own_limit(float(value), high=False)
        return SkipWrite

    async def refresh_limits(self) -> None:
        """Re-publish the soft limits (after the extra limits of ``limit_hook`` changed)."""
        await self._publish_limits()

    async def _publish_limits(self) -> None:
        """Dial and user limits and the metadata clients take limits from, after a change of
        the user's own limits, the extra limits, or the coordinates."""
        fields = self._fields
        dial_low, dial_high = self.soft_limits_um() or self.own_limits_um
        await set_value(fields.dial_low_limit, dial_low)
        await set_value(fields.dial_high_limit, dial_high)
        low, high = sorted((self._user(dial_low), self._user(dial_high)))
        # A motor record reports HLM/LLM as the control (and display) limits of VAL: ophyd's
        # limits. One metadata update, before HLM/LLM change, since ophyd re-reads them
        # when it sees HLM/LLM change.
        value = self.motor
        if (value.lower_ctrl_limit, value.upper_ctrl_limit) != (low, high):
            await value.write_metadata(
                lower_ctrl_limit=low,
                upper_ctrl_limit=high,
                lower_disp_limit=low,
                upper_disp_limit=high,
            )
        # Display limits of the other position fields, for screens; not posted (caproto
        # would send each as a value update to every client of the field).
        user = dict.fromkeys(("RBV", "HLM", "LLM"), (low, high))
        dial = dict.fromkeys(("DVAL", "DRBV", "DHLM", "DLLM"), (dial_low, dial_high))
        # Control limits as the motor record's get_control_double: RBV the user limits,
        # DVAL/DRBV the dial limits, the speeds VBAS..VMAX.
        await describe(
            value,
            display_limits=user | dial | self._speed_range(),
            control_limits={"RBV": (low, high)}
            | {n: dial[n] for n in ("DVAL", "DRBV")}
            | self._speed_control_limits(),
            publish=False,
        )
        await set_value(fields.user_low_limit, low)
        await set_value(fields.user_high_limit, high)

    async def _put_HLSV(self, instance, value):
        await instance.write(value, verify_value=False)
        await self._post_status()
        return SkipWrite

    # -- stop, pause, go, torque ------------------------------------------------------
    async def _put_STOP(self, instance, value):
        if value:
            await self._halt(keep_target=False)
        return 0

    async def _put_SPMG(self, instance, value):
        fields = self._fields
        mode = _SPMG[value] if isinstance(value, int) else str(value)
        previous = fields.stop_pause_move_go.value
        await fields.last_spmg.write(previous, verify_value=False)
        await fields.stop_pause_move_go.write(mode, verify_value=False)
        if mode in ("Stop", "Pause"):
            await self._halt(keep_target=(mode == "Pause"))
            return SkipWrite
        # Go or Move: head for the target, if the stage is not there.
        here = self._here()
        target = float(fields.dial_desired_value.value)
        if self._moving() or abs(target - here) <= self._mres() / 2:
            # Nothing to resume: Move stays armed for the next move (as the record does).
            return SkipWrite
        await self._start(self._motion_to(target))
        await self._at_rest()
        await self._end_of_move_once()
        return SkipWrite

    async def _put_CNEN(self, instance, value):
        enable = (value if isinstance(value, str) else ("Disable", "Enable")[value]) == "Enable"
        await instance.write("Enable" if enable else "Disable", verify_value=False)
        if not enable:
            await self._halt(keep_target=False)  # no torque: the stage holds no position
        else:
            self._problem = False
        await self._post_status()
        return SkipWrite

    # -- jog and home -----------------------------------------------------------------
    async def _put_JOGF(self, instance, value):
        return await self._jog(instance, value, +1.0)

    async def _put_JOGR(self, instance, value):
        return await self._jog(instance, value, -1.0)

    async def _jog(self, instance, value, direction: float):
        if not value:
            if self._motion is not None and self._motion.kind == "jog":
                await self._halt(keep_target=False)
            return 0
        fields = self._fields
        limits = self.soft_limits_um()
        stage = self.stage
        if limits is not None:
            end = limits[1] if direction > 0 else limits[0]
        else:  # no soft limits: the jog runs into the limit switch
            end = stage.high_limit_switch_um if direction > 0 else stage.low_limit_switch_um
        here = self._here()
        if (end - here) * direction <= 0 or fields.enable_control.value == "Disable":
            return 0  # already at the end of the jog range (or no torque)
        velocity = float(fields.jog_velocity.value)
        jar = float(fields.jog_accel.value)
        accel_time = velocity / jar if jar > 0 else self._acceleration_time()
        await instance.write(1, verify_value=False)
        await self._start(_Motion("jog", end, velocity, accel_time))
        await self._at_rest()
        return SkipWrite

    async def _put_HOMF(self, instance, value):
        return await self._home(instance, value, +1.0)

    async def _put_HOMR(self, instance, value):
        return await self._home(instance, value, -1.0)

    async def _home(self, instance, value, direction: float):
        if not value:
            return 0
        fields = self._fields
        if fields.enable_control.value == "Disable":
            self._problem = True
            await self._post_status()
            return 0
        stage = self.stage
        here = self._here()
        home = stage.home_switch_um
        if (home - here) * direction >= 0:
            end = home
        else:  # the switch is behind: the search runs into the limit switch
            end = stage.high_limit_switch_um if direction > 0 else stage.low_limit_switch_um
        if self.limit_hook is not None:  # an interlock stops the search too
            extra_low, extra_high = self.limit_hook()
            end = min(max(end, extra_low), extra_high)
        await instance.write(1, verify_value=False)
        velocity = float(fields.home_velocity.value)
        await self._start(_Motion("home", end, velocity, self._acceleration_time()))
        await self._at_rest()
        return SkipWrite

    # -- motion -----------------------------------------------------------------------
    async def _start(self, motion: _Motion, *, setpoint: float | None = None) -> None:
        """Begin ``motion`` from where the stage is (replacing any motion in progress).

        ``setpoint`` (dial) is posted as the new target (VAL, DVAL, RVAL) once the motion
        has begun: the move's clock starts before any of this record's posts.
        """
        fields = self._fields
        stage = self.stage
        self._cancel_follower()
        self._generation += 1
        self._problem = False
        now = time.monotonic()
        here = self._current_move().position_um(now)
        # Whole steps; the limit switches end the travel.
        end = self._steps(motion.target_dial) * self._mres()
        end = min(max(end, stage.low_limit_switch_um), stage.high_limit_switch_um)
        self._motion = motion
        if self._stalled:
            end = here  # a stalled stage does not move; the motion waits
        move = Move(here, end, now, max(motion.velocity, 1e-9), motion.acceleration_time)
        self._publish_move(move)
        await set_value(fields.done_moving_to_value, 0)
        await set_value(fields.motor_is_moving, 1)
        if setpoint is not None:
            await self._post_setpoint(setpoint)
        if end != here:
            # TDIR, like MSTA's direction bit, is the raw direction of the latest motion.
            self._positive = end > here
            await set_value(fields.direction_of_travel, int(self._positive))
            await self._post_switches(here, leaving=True)
        await self._post_status()
        if not self._stalled:
            self._task = asyncio.get_running_loop().create_task(self._follow(move))

    async def _follow(self, move: Move) -> None:
        fields = self._fields
        end_time = move.t0_s + move.duration_s
        while (remaining := end_time - time.monotonic()) > _PRECISE_SLEEP_S:
            await asyncio.sleep(min(_READBACK_PERIOD_S, remaining - _PRECISE_SLEEP_S))
            if end_time - time.monotonic() > _PRECISE_SLEEP_S:
                await self._post_readback(move.position_um(time.monotonic()))
        # asyncio wakes on a millisecond grid; the last stretch is slept precisely.
        time.sleep(max(end_time - time.monotonic(), 0.0))
        settle = float(fields.readback_settle_time.value)
        if settle > 0:
            await asyncio.sleep(settle)
        self._task = None
        await self._arrived(move.end_um)

    def _cancel_follower(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = None

    def _end_motion(self) -> tuple[_Motion | None, list[asyncio.Future[None]], int]:
        """Take the motion and its pending completions (before any await)."""
        motion, self._motion = self._motion, None
        waiters, self._waiters = self._waiters, []
        return motion, waiters, self._generation

    async def _arrived(self, here: float) -> None:
        """The motion ended at ``here`` (its target, a limit switch, or the home switch)."""
        motion, waiters, generation = self._end_motion()
        fields = self._fields
        if motion is not None and motion.kind == "home":
            self._homed = self._at_home(here)
        if motion is not None and motion.kind in ("jog", "home"):
            for channel in (fields.home_forward, fields.home_reverse):
                await set_value(channel, 0)
            for channel in (fields.jog_motor_forward, fields.jog_motor_reverse):
                await set_value(channel, 0)
            if generation == self._generation:
                await self._post_setpoint(here)  # the end of a jog or search is the target
        await self._come_to_rest(here, waiters, generation)

    async def _halt(self, *, keep_target: bool) -> None:
        """Stop where the stage is now (STOP, SPMG Stop/Pause, end of a jog, no torque)."""
        fields = self._fields
        for channel in (fields.jog_motor_forward, fields.jog_motor_reverse):
            await set_value(channel, 0)
        if self._motion is None:
            if not keep_target:
                await self._post_setpoint(self._here())
            return
        self._cancel_follower()
        motion, waiters, generation = self._end_motion()
        here = self._here()
        self._rest_at(here)
        if motion is not None and motion.kind == "home":
            for channel in (fields.home_forward, fields.home_reverse):
                await set_value(channel, 0)
        if not keep_target:
            await self._post_setpoint(here)
        await self._come_to_rest(here, waiters, generation)

    async def _come_to_rest(
        self, here: float, waiters: list[asyncio.Future[None]], generation: int
    ) -> None:
        """Post the end of a motion, then complete the puts that waited for it.

        A new motion may start while this one's end is being posted (each write yields);
        from then on the new motion owns DMOV, MOVN, the readback and the switches.
        """
        fields = self._fields
        # RBV, switches and alarm before DMOV: a client that sees DMOV = 1 reads them
        # (ophyd reads HLS/LLS and the readback's severity when a move ends); the other
        # readbacks right after (every write before DMOV delays each step of a scan).
        if generation == self._generation:
            await set_value(fields.user_readback_value, self._user(here))
        if generation == self._generation:
            await self._post_switches(here)
        if generation == self._generation:
            await self._post_status(alarm_only=True)
        if generation == self._generation:
            await set_value(fields.done_moving_to_value, 1)
            await set_value(fields.motor_is_moving, 0)
            await self._post_readback(here)
            await self._post_status()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _at_rest(self) -> None:
        """Wait until the axis comes to rest (the put completion of a move)."""
        if self._motion is None:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    # -- stall (simulator fault) ------------------------------------------------------
    @property
    def stalled(self) -> bool:
        """True while the simulated stage is stuck (see :meth:`set_stalled`)."""
        return self._stalled

    async def set_stalled(self, stalled: bool) -> None:
        """Fault injection: a stuck stage stops where it is and stops arriving anywhere.

        While stalled, a motion in progress (or a new one) leaves the stage where it is with
        ``.DMOV`` = 0 and its put completions pending; STOP (or SPMG Stop/Pause) still ends
        it. Clearing the stall resumes the motion towards its target.
        """
        if stalled == self._stalled:
            return
        self._stalled = stalled
        motion = self._motion
        if motion is None:
            return
        if stalled:
            self._cancel_follower()
            here = self._here()
            self._rest_at(here)
            await self._post_readback(here)
            await self._post_status()
        else:
            await self._start(motion)

    # -- posting state ----------------------------------------------------------------
    async def _post_setpoint(self, dial: float) -> None:
        fields = self._fields
        await set_value(self.motor, self._user(dial))
        await set_value(fields.dial_desired_value, dial)
        await set_value(fields.raw_desired_value, self._steps(dial))

    async def _post_readback(self, dial: float) -> None:
        fields = self._fields
        raw = self._steps(dial)
        await set_value(fields.user_readback_value, self._user(dial))
        await set_value(fields.dial_readback_value, dial)
        await set_value(fields.raw_readback_value, raw)
        await set_value(fields.raw_motor_position, raw)
        diff = float(fields.dial_desired_value.value) - dial
        await set_value(fields.difference_dval_drbv, diff)
        await set_value(fields.difference_rval_rrbv, round(diff / self._mres()))

    def _at_home(self, dial: float) -> bool:
        return abs(dial - self.stage.home_switch_um) <= self._mres() / 2

    async def _post_switches(self, dial: float, *, leaving: bool = False) -> None:
        """Limit and home switches at ``dial`` (on leaving, all open as the stage moves)."""
        fields = self._fields
        stage = self.stage
        high = not leaving and dial >= stage.high_limit_switch_um
        low = not leaving and dial <= stage.low_limit_switch_um
        home = not leaving and self._at_home(dial)
        await set_value(fields.user_high_limit_switch, int(high if self._sign() > 0 else low))
        await set_value(fields.user_low_limit_switch, int(low if self._sign() > 0 else high))
        await set_value(fields.raw_high_limit_switch, int(high))
        await set_value(fields.raw_low_limit_switch, int(low))
        await set_value(fields.at_home, int(home))

    def _msta(self) -> int:
        """MSTA of the current state (plain ints: IntFlag arithmetic costs ~1 us a bit)."""
        fields = self._fields
        moving = self._motion is not None
        flags = (
            (_DIRECTION, self._positive),
            (_DONE, not moving),
            (_MOVING, moving and not self._stalled),
            (_PLUS_LS, fields.raw_high_limit_switch.value),
            (_MINUS_LS, fields.raw_low_limit_switch.value),
            (_HOME, fields.at_home.value),
            (_POSITION, fields.enable_control.value == "Enable"),
            (_PROBLEM, self._problem),
            (_HOMED, self._homed),
        )
        bits = _GAIN_SUPPORT
        for bit, on in flags:
            if on:
                bits |= bit
        return bits

    async def _post_status(self, *, alarm_only: bool = False) -> None:
        """MSTA and the record's alarm (problem: STATE/MAJOR; limit switch: HWLIMIT/HLSV)."""
        fields = self._fields
        if self._problem:
            status, severity = AlarmStatus.STATE, AlarmSeverity.MAJOR_ALARM
        elif fields.raw_high_limit_switch.value or fields.raw_low_limit_switch.value:
            status, severity = AlarmStatus.HWLIMIT, severity_of(fields.hw_limit_violation_svr)
            if severity == AlarmSeverity.NO_ALARM:
                status = AlarmStatus.NO_ALARM
        else:
            status, severity = AlarmStatus.NO_ALARM, AlarmSeverity.NO_ALARM
        await post_alarm(self.motor, status, severity)
        if not alarm_only:
            await set_value(fields.motor_status, self._msta())


class MotorFaults(PVGroup):
    """Simulator control of one axis, under the simulator's own prefix (not the beamline's).

    PVs (prefix ``P``, e.g. ``STXM:SIM:SAMPLE_X:``):

    - ``P STALL`` (bo ``Free``/``Stalled``): put ``Stalled`` and the stage sticks where it
      is: a move in progress stops without arriving (``.DMOV`` stays 0, put completions
      stay pending), new moves do not move it. ``Free`` resumes the motion.

    Parameters
    ----------
    prefix
        PV prefix, ``[sim] control_prefix`` + the axis name in capitals + ``:``.
    axis
        The :class:`MotorAxis` it controls.
    """

    stall = pvproperty(
        name="STALL",
        value="Free",
        dtype=ChannelType.ENUM,
        enum_strings=["Free", "Stalled"],
        record="bo",
        doc="Simulator: stage stuck",
    )

    def __init__(self, prefix: str, *, axis: MotorAxis, **kwargs):
        super().__init__(prefix, **kwargs)
        self.axis = axis

    async def initialise(self) -> None:
        """Describe the record; run once at start."""
        await describe(
            self.stall,
            description=f"Simulator: {self.axis.motor.pvname} stuck",
            precision=3,
            field_units=BO_FIELD_UNITS,
        )

    @stall.putter
    async def stall(self, instance, value):
        await self.axis.set_stalled(value == "Stalled")
        return value
