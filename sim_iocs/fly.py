"""Fine piezo stage, laser interferometer and line fly-scan controller.

Records under ``[epics.prefixes] fly`` (``STXM:FLY:``): the piezo axes ``FX``/``FY``
(motor records of :mod:`sim_iocs.motor`, driven by the controller during a frame and
refusing moves meanwhile), the interferometer ``IFX``/``IFY``, the frame settings
(``START_X`` ... ``SNAKE``, clamped to their drive limits), the timing read-backs
(``FRAME_TIME``, ``LINE_OVERHEAD``, ...), ``ARM`` (a put with completion runs one frame of
NY lines; 0 aborts), ``BUSY``, ``MESSAGE``, and per line ``LINE:DATA`` (the whole line in one
array, :func:`~stxm_ctrl.physics.fly_line.pack_line`) then ``LINE:INDEX`` ... ``LINE:SEQ``.
Simulator controls ``STXM:SIM:FLY:MISS_TRIGGERS`` and ``STALL``. A line is simulated by
:mod:`stxm_ctrl.physics.fly_line`: a controller closed-loop on the interferometer, pixels
gated by position, Poisson counts in the rate of
:class:`~stxm_ctrl.physics.instrument.InstrumentModel`.

Every record, its units and behaviour, why clients read ``LINE:DATA``, how a line is timed
and counted, and the measured timing: ``docs/reference/sim-iocs.md``, section "Fly IOC";
fly scanning as a whole: ``docs/explanation/fly-scanning.md``.

World block ``fine_stage`` (owned): the piezo's current move on each axis. Reads
``sample_stage``, ``ring``, ``optics_stages``, ``detector_stage`` and ``beamline``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
from caproto import ChannelType, SkipWrite
from caproto.server import PVGroup, pvproperty

from sim_iocs.motor import MotorAxis, MotorFaults, axis_positions_um, motion_block, move_of
from sim_iocs.optics_world import (
    BEAMLINE,
    DETECTOR_AXES,
    DETECTOR_STAGE,
    OPTICS_STAGES,
    BeamlineState,
)
from sim_iocs.records import (
    AI_FIELD_UNITS,
    AO_FIELD_UNITS,
    BO_FIELD_UNITS,
    DELAY_FIELD_UNITS,
    MBBI_FIELD_UNITS,
    RecordDouble,
    RecordInteger,
    analog_alarm,
    describe,
    describe_fault_count,
    fault_count,
    long_string,
    post_alarm,
    refuse,
    set_value,
    take_fault,
    write_with_alarm,
)
from sim_iocs.records import (
    waveform as record_waveform,
)
from sim_iocs.registry import IocContext
from sim_iocs.ring import RING, RingState
from sim_iocs.sample_stage import SAMPLE_STAGE
from sim_iocs.world import BlockReader, BlockWriter, World, open_reader
from stxm_ctrl.config import BeamlineConfig
from stxm_ctrl.physics.fly_line import (
    LINE_STATUSES,
    FramePlan,
    LineData,
    frame_time_s,
    interferometer_drift_um,
    line_data_length,
    pack_line,
    simulate_sweep,
    sweep_move,
)
from stxm_ctrl.physics.instrument import OPTICS_AXES, InstrumentModel
from stxm_ctrl.physics.motion import Move

__all__ = ["FINE_AXES", "FINE_STAGE", "FlyController", "FlyFaults", "PiezoAxis", "build"]

log = logging.getLogger(__name__)

FINE_AXES = {"fine_x": "Fine piezo x", "fine_y": "Fine piezo y"}
"""The piezo axes and their descriptions (``.DESC``)."""

FINE_STAGE = motion_block("fine_stage", tuple(FINE_AXES))
"""World block: the current move of each piezo axis."""

_INTERFEROMETER_PERIOD_S = 0.1
_INTERFEROMETER_DEADBAND_UM = 1e-4
_FOLLOW_PERIOD_S = 0.02
_PRECISE_SLEEP_S = 0.0015
_MISSED_FRACTION = 0.05
_LINE_DATA_BACKLOG = 100  # lines a slow client may lag behind before the oldest are dropped


def build(context: IocContext) -> list[PVGroup]:
    """The piezo axes publishing to ``fine_stage``, the controller and its faults."""
    config = context.config
    block = context.world.own(FINE_STAGE)
    prefix = context.prefix
    faults = FlyFaults(f"{config.sim.control_prefix}FLY:")
    controller_class = controller_class_for(config.sim.fly.max_pixels)
    controller = controller_class(
        prefix, config=config, world=context.world, block=block, faults=faults
    )
    axes = {
        axis: PiezoAxis(
            prefix + getattr(config.epics.axes, axis),
            axis=axis,
            stage=getattr(config.sim.stages, axis),
            block=block,
            description=description,
            is_busy=controller.running,
            on_arrival=controller.post_interferometer,
        )
        for axis, description in FINE_AXES.items()
    }
    controller.axes = axes
    stalls = [
        MotorFaults(f"{config.sim.control_prefix}{axis.upper()}:", axis=motor)
        for axis, motor in axes.items()
    ]
    return [*axes.values(), *stalls, controller, faults]


class PiezoAxis(MotorAxis):
    """A piezo axis: a motor record that the fly controller also drives during a frame.

    Parameters
    ----------
    is_busy
        True while a frame runs: moves are refused then.
    on_arrival
        Awaited when a move of its own ends, before ``.DMOV`` = 1 is posted: the
        interferometer posts where the piezo arrived, so a client that sees the move end
        has the sample's position in its monitor already (as a controller that latches the
        interferometer on "in position" does).
    """

    def __init__(
        self,
        prefix: str,
        *,
        is_busy: Callable[[], bool],
        on_arrival: Callable[[], Awaitable[None]] | None = None,
        **kwargs,
    ):
        super().__init__(prefix, **kwargs)
        self.is_busy = is_busy
        self.on_arrival = on_arrival

    async def _arrived(self, here: float) -> None:
        if self.on_arrival is not None:
            await self.on_arrival()
        await super()._arrived(here)

    def _refuse_busy(self, field: str) -> NoReturn:
        self._refuse(
            field,
            "a fly frame is running and drives the piezo; wait until STXM:FLY:BUSY is Idle "
            "or abort the frame with ARM = 0",
        )

    async def _request_move(self, dial: float, *, reject_value: float | None = None):
        if self.is_busy():
            self._refuse_busy("")
        return await super()._request_move(dial, reject_value=reject_value)

    async def _jog(self, instance, value, direction: float):
        if value and self.is_busy():
            self._refuse_busy("JOGF" if direction > 0 else "JOGR")
        return await super()._jog(instance, value, direction)

    async def _home(self, instance, value, direction: float):
        if value and self.is_busy():
            self._refuse_busy("HOMF" if direction > 0 else "HOMR")
        return await super()._home(instance, value, direction)

    def is_moving(self) -> bool:
        """True while the record makes a move of its own (or is stalled in one)."""
        return self._moving()

    def publish(self, move: Move) -> None:
        """Publish a move the controller makes (the piezo follows the controller)."""
        self._publish_move(move)

    def position_um(self, t_s: float) -> float:
        """Piezo (dial) position at ``t_s``."""
        return self._current_move().position_um(t_s)

    async def frame_started(self) -> None:
        """DMOV = 0, MOVN = 1: the controller moves the axis."""
        fields = self._fields
        await set_value(fields.done_moving_to_value, 0)
        await set_value(fields.motor_is_moving, 1)

    async def follow(self) -> None:
        """Post the readback where the piezo is now."""
        await self._post_readback(self._here())

    async def frame_ended(self) -> None:
        """The piezo rests where the frame left it; that is the new target."""
        here = self._here()
        self._rest_at(here)
        fields = self._fields
        await self._post_setpoint(here)
        await self._post_readback(here)
        await self._post_switches(here)
        await set_value(fields.done_moving_to_value, 1)
        await set_value(fields.motor_is_moving, 0)
        await self._post_status()


class FlyFaults(PVGroup):
    """Simulator controls of the fly controller (``docs/reference/sim-iocs.md``)."""

    miss_triggers = pvproperty(
        alarm_group="miss_triggers",
        name="MISS_TRIGGERS",
        value=0,
        record="longout",
        doc="Simulator: lines missing triggers",
    )
    stall = pvproperty(
        name="STALL",
        value=0,
        record="longout",
        doc="Simulator: lines stalling",
        alarm_group="stall",
    )

    async def initialise(self) -> None:
        """Describe the records; run once at start."""
        for record in (self.miss_triggers, self.stall):
            await describe_fault_count(record, "lines")

    @miss_triggers.putter
    async def miss_triggers(self, instance, value):
        return fault_count(instance, value, "lines")

    @stall.putter
    async def stall(self, instance, value):
        return fault_count(instance, value, "lines")

    async def take(self, record: Any) -> bool:
        """True (and one line less) if ``record`` has lines left to fault."""
        return await take_fault(record)


@dataclass
class _Snapshot:
    """The world as a line sees it (read once per line)."""

    coarse_xy_um: tuple[float, float]
    rate_Hz: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


class FlyController(PVGroup):
    """The fly-scan controller and the interferometer (``docs/reference/sim-iocs.md``).

    Built by :func:`controller_class_for`, which adds the per-line waveforms (their length
    is ``[sim.fly] max_pixels``).
    """

    ifx = pvproperty(
        alarm_group="ifx",
        name="IFX",
        value=0.0,
        dtype=ChannelType.DOUBLE,
        record="ai",
        precision=4,
        read_only=True,
        doc="Interferometer x (sample position)",
    )
    ify = pvproperty(
        alarm_group="ify",
        name="IFY",
        value=0.0,
        dtype=ChannelType.DOUBLE,
        record="ai",
        precision=4,
        read_only=True,
        doc="Interferometer y (sample position)",
    )
    start_x = pvproperty(
        alarm_group="start_x",
        name="START_X",
        value=-5.0,
        dtype=RecordDouble,
        record="ao",
        precision=4,
        doc="First pixel centre x (interferometer)",
    )
    stop_x = pvproperty(
        alarm_group="stop_x",
        name="STOP_X",
        value=5.0,
        dtype=RecordDouble,
        record="ao",
        precision=4,
        doc="Last pixel centre x (interferometer)",
    )
    nx = pvproperty(
        alarm_group="nx",
        name="NX",
        value=101,
        dtype=RecordInteger,
        record="longout",
        doc="Pixels per line",
    )
    start_y = pvproperty(
        alarm_group="start_y",
        name="START_Y",
        value=-5.0,
        dtype=RecordDouble,
        record="ao",
        precision=4,
        doc="First line y (interferometer)",
    )
    stop_y = pvproperty(
        alarm_group="stop_y",
        name="STOP_Y",
        value=5.0,
        dtype=RecordDouble,
        record="ao",
        precision=4,
        doc="Last line y (interferometer)",
    )
    ny = pvproperty(
        alarm_group="ny",
        name="NY",
        value=101,
        dtype=RecordInteger,
        record="longout",
        doc="Lines per frame",
    )
    dwell = pvproperty(
        alarm_group="dwell",
        name="DWELL",
        value=0.001,
        dtype=RecordDouble,
        record="ao",
        precision=5,
        doc="Dwell per pixel",
    )
    snake = pvproperty(
        alarm_group="snake",
        name="SNAKE",
        value="Off",
        dtype=ChannelType.ENUM,
        enum_strings=["Off", "On"],
        record="bo",
        doc="Alternate lines right to left",
    )
    frame_time = pvproperty(
        alarm_group="frame_time",
        name="FRAME_TIME",
        value=0.0,
        dtype=ChannelType.DOUBLE,
        record="ai",
        precision=4,
        read_only=True,
        doc="Frame duration for the settings",
    )
    line_overhead = pvproperty(
        alarm_group="line_overhead",
        name="LINE_OVERHEAD",
        value=0.0,
        dtype=ChannelType.DOUBLE,
        record="ai",
        precision=4,
        read_only=True,
        doc="Per-line time that is not dwell",
    )
    settle_time = pvproperty(
        alarm_group="settle_time",
        name="SETTLE_TIME",
        value=0.0,
        dtype=ChannelType.DOUBLE,
        record="ai",
        precision=4,
        read_only=True,
        doc="Piezo settle before a line",
    )
    run_up_time = pvproperty(
        alarm_group="run_up_time",
        name="RUN_UP_TIME",
        value=0.0,
        dtype=ChannelType.DOUBLE,
        record="ai",
        precision=4,
        read_only=True,
        doc="Acceleration before a line",
    )
    turnaround_time = pvproperty(
        alarm_group="turnaround_time",
        name="TURNAROUND_TIME",
        value=0.0,
        dtype=ChannelType.DOUBLE,
        record="ai",
        precision=4,
        read_only=True,
        doc="Deceleration after a line",
    )
    flyback_speed = pvproperty(
        alarm_group="flyback_speed",
        name="FLYBACK_SPEED",
        value=0.0,
        dtype=ChannelType.DOUBLE,
        record="ai",
        precision=1,
        read_only=True,
        doc="Speed of flyback and y step",
    )
    max_speed = pvproperty(
        alarm_group="max_speed",
        name="MAX_SPEED",
        value=0.0,
        dtype=ChannelType.DOUBLE,
        record="ai",
        precision=1,
        read_only=True,
        doc="Fastest line sweep the controller takes",
    )
    message = long_string("MESSAGE", "What the controller did last")
    arm = pvproperty(
        alarm_group="arm",
        name="ARM",
        value="Idle",
        dtype=ChannelType.ENUM,
        enum_strings=["Idle", "Arm"],
        record="bo",
        doc="Run a frame (put 0 aborts)",
    )
    busy = pvproperty(
        alarm_group="busy",
        name="BUSY",
        value="Idle",
        dtype=ChannelType.ENUM,
        enum_strings=["Idle", "Busy"],
        record="bi",
        read_only=True,
        doc="A frame is running",
    )
    line_index = pvproperty(
        alarm_group="line_index",
        name="LINE:INDEX",
        value=0,
        record="longin",
        read_only=True,
        doc="Index of the last line in its frame",
    )
    line_status = pvproperty(
        alarm_group="line_status",
        name="LINE:STATUS",
        value=LINE_STATUSES[0],
        dtype=ChannelType.ENUM,
        enum_strings=list(LINE_STATUSES),
        record="mbbi",
        read_only=True,
        doc="How the last line ended",
    )
    line_npix = pvproperty(
        alarm_group="line_npix",
        name="LINE:NPIX",
        value=0,
        record="longin",
        read_only=True,
        doc="Pixels measured in the last line",
    )
    # LINE:COUNTS, LINE:X, LINE:Y, LINE:DWELL: added by controller_class_for.
    line_seq = pvproperty(
        alarm_group="line_seq",
        name="LINE:SEQ",
        value=0,
        record="longin",
        read_only=True,
        doc="Lines published since the IOC started",
    )

    line_counts: Any
    line_x: Any
    line_y: Any
    line_dwell: Any
    line_data: Any

    def __init__(
        self,
        prefix: str,
        *,
        config: BeamlineConfig,
        world: World,
        block: BlockWriter,
        faults: FlyFaults,
        **kwargs,
    ):
        super().__init__(prefix, **kwargs)
        self.config = config
        self.sim = config.sim
        self.world = world
        self.block = block
        self.faults = faults
        self.axes: dict[str, PiezoAxis] = {}
        self.epoch_s = world.epoch_s
        self.model = InstrumentModel(config)
        self.rng = np.random.default_rng(config.sim.random_seed or None)
        self.stage_block: BlockReader | None = None
        self.ring_block: BlockReader | None = None
        self.optics_block: BlockReader | None = None
        self.detector_block: BlockReader | None = None
        self.beamline_block: BlockReader | None = None
        self._frame: asyncio.Future[None] | None = None
        self._abort = asyncio.Event()
        self._seq = 0
        self._slowest_line_s = 0.0  # computing and posting a line, in the last frame
        # One poster of IFX/IFY at a time: the 10 Hz loop computes a position, then yields
        # while posting it; a piezo move ending then must not have its arrival overwritten
        # by the loop's older, mid-move value (a step pixel read 20 nm short of its target).
        self._interferometer_lock = asyncio.Lock()

    def running(self) -> bool:
        """True while a frame runs."""
        return self._frame is not None

    # -- start-up ---------------------------------------------------------------------
    def _position_limits(self, axis: str) -> tuple[float, float]:
        """Interferometer range a setting may ask for: coarse travel + piezo travel."""
        coarse = getattr(self.sim.stages, axis)
        fine = getattr(self.sim.stages, f"fine_{axis[-1]}")
        return (
            coarse.low_limit_switch_um + fine.low_limit_um,
            coarse.high_limit_switch_um + fine.high_limit_um,
        )

    def _limits(self) -> dict[str, tuple[float, float]]:
        """Drive limits of the settings, by record name."""
        fly, apd = self.sim.fly, self.sim.apd
        return {
            "START_X": self._position_limits("sample_x"),
            "STOP_X": self._position_limits("sample_x"),
            "START_Y": self._position_limits("sample_y"),
            "STOP_Y": self._position_limits("sample_y"),
            "NX": (2, fly.max_pixels),
            "NY": (1, fly.max_pixels),
            "DWELL": (apd.min_dwell_s, apd.max_dwell_s),
        }

    def _settings(self) -> dict[str, Any]:
        return {
            "START_X": self.start_x,
            "STOP_X": self.stop_x,
            "START_Y": self.start_y,
            "STOP_Y": self.stop_y,
            "NX": self.nx,
            "NY": self.ny,
            "DWELL": self.dwell,
        }

    async def initialise(self) -> None:
        """Open the world blocks, describe the records, start the interferometer; run once."""
        self.stage_block = await open_reader(self.world, SAMPLE_STAGE)
        self.ring_block = await open_reader(self.world, RING)
        self.optics_block = await open_reader(self.world, OPTICS_STAGES)
        self.detector_block = await open_reader(self.world, DETECTOR_STAGE)
        self.beamline_block = await open_reader(self.world, BEAMLINE)
        # The model builds its grids on first use: now, not in the first line.
        now = np.array([time.monotonic()])
        self._snapshot(float(now[0])).rate_Hz(np.zeros(1), np.zeros(1), now)
        for record in (self.ifx, self.ify):
            await describe(record, units="um", precision=4, field_units=AI_FIELD_UNITS("um"))
        for record in (self.frame_time, self.line_overhead):
            await describe(record, units="s", precision=4, field_units=AI_FIELD_UNITS("s"))
        fly = self.sim.fly
        timing = (
            (self.settle_time, fly.settle_s, "s", 4),
            (self.run_up_time, fly.run_up_s, "s", 4),
            (self.turnaround_time, fly.turnaround_s, "s", 4),
            (self.flyback_speed, fly.flyback_speed_um_per_s, "um/s", 1),
            (self.max_speed, fly.max_line_speed_um_per_s, "um/s", 1),
        )
        for record, value, units, precision in timing:
            await describe(
                record, units=units, precision=precision, field_units=AI_FIELD_UNITS(units)
            )
            await self._post_analog(record, value)
        await describe(self.message, precision=3, field_units=DELAY_FIELD_UNITS)
        for record in self._analog():  # no live alarm limits at start
            fields = record.field_inst
            for severity in ("hihi", "high", "low", "lolo"):
                await getattr(fields, f"{severity}_severity").write("NO_ALARM", verify_value=False)
        settings = self._settings()
        for name, (low, high) in self._limits().items():
            record = settings[name]
            if record is self.dwell:
                await describe(record, units="s", precision=5, field_units=AO_FIELD_UNITS("s"))
            elif record in (self.nx, self.ny):
                units = "pixels" if record is self.nx else "lines"
                await describe(record, units=units, precision=3, field_units=DELAY_FIELD_UNITS)
            else:
                await describe(record, units="um", precision=4, field_units=AO_FIELD_UNITS("um"))
            fields = record.field_inst
            await fields.drive_high_limit.write(high, verify_value=False)
            await fields.drive_low_limit.write(low, verify_value=False)
            await record.write_metadata(
                lower_ctrl_limit=low,
                upper_ctrl_limit=high,
                lower_disp_limit=low,
                upper_disp_limit=high,
            )
        for record in (self.snake, self.arm):
            await describe(record, precision=3, field_units=BO_FIELD_UNITS)
        await describe(self.busy, precision=3, field_units=DELAY_FIELD_UNITS)
        await describe(self.line_status, precision=3, field_units=MBBI_FIELD_UNITS)
        for record, units in (
            (self.line_index, "line"),
            (self.line_npix, "pixels"),
            (self.line_seq, "lines"),
        ):
            await describe(record, units=units, precision=3, field_units=MBBI_FIELD_UNITS)
        waveforms = (
            (self.line_counts, "counts"),
            (self.line_x, "um"),
            (self.line_y, "um"),
            (self.line_dwell, "s"),
        )
        for record, units in waveforms:
            await describe(
                record,
                units=units,
                precision={"s": 6, "um": 4}.get(units, 0),  # counts: integers
                field_units={"HOPR": units, "LOPR": units, "SDLY": "s"},
            )
        # Elements of several units (header, counts, um, s: fly_line.pack_line), hence EGU.
        await describe(
            self.line_data,
            units="packed",
            precision=6,
            field_units={"HOPR": "packed", "LOPR": "packed", "SDLY": "s"},
        )
        await self._post_frame_time()
        asyncio.get_running_loop().create_task(self._interferometer_forever())

    def _analog(self) -> tuple[Any, ...]:
        return (
            self.ifx,
            self.ify,
            self.frame_time,
            self.line_overhead,
            self.settle_time,
            self.run_up_time,
            self.turnaround_time,
            self.flyback_speed,
            self.max_speed,
        )

    async def _say(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        await self.message.write(f"{stamp} {message}"[:511], verify_value=False)

    async def post_interferometer(self) -> None:
        """Post the interferometer's x and y now (a piezo move has just ended)."""
        if self.stage_block is None:
            return
        async with self._interferometer_lock:
            x, y = self._interferometer_um(time.monotonic())
            await self._post_analog(self.ifx, x)
            await self._post_analog(self.ify, y)

    async def _post_analog(self, record: Any, value: float) -> None:
        """Post an ai record's value with the alarm its limits give (as an ai record)."""
        await write_with_alarm(record, value, *analog_alarm(record, value))

    # -- world ------------------------------------------------------------------------
    def _drift_um(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return interferometer_drift_um((times - self.epoch_s) / 3600.0, self.sim.interferometer)

    def _coarse_um(self, t_s: float) -> tuple[float, float]:
        assert self.stage_block is not None
        stage = self.stage_block.read()
        return (
            move_of(stage, "sample_x").position_um(t_s),
            move_of(stage, "sample_y").position_um(t_s),
        )

    def _piezo_um(self, t_s: float) -> tuple[float, float]:
        record = self.block.read()
        return move_of(record, "fine_x").position_um(t_s), move_of(record, "fine_y").position_um(
            t_s
        )

    def _offsets_um(self, t_s: float) -> tuple[float, float]:
        """piezo - interferometer (without noise) at ``t_s``: -(coarse + drift)."""
        cx, cy = self._coarse_um(t_s)
        dx, dy = self._drift_um(np.array([t_s]))
        return -(cx + float(dx[0])), -(cy + float(dy[0]))

    def _interferometer_um(self, t_s: float) -> tuple[float, float]:
        """What the interferometer reads at ``t_s`` (noise included)."""
        ox, oy = self._offsets_um(t_s)
        px, py = self._piezo_um(t_s)
        noise = self.sim.interferometer.noise_nm * 1e-3
        nx, ny = self.rng.normal(0.0, noise, 2) if noise > 0 else (0.0, 0.0)
        return px - ox + float(nx), py - oy + float(ny)

    async def _interferometer_forever(self) -> None:
        last = (np.nan, np.nan)
        while True:
            async with self._interferometer_lock:
                x, y = self._interferometer_um(time.monotonic())
                if not abs(x - last[0]) <= _INTERFEROMETER_DEADBAND_UM:
                    await self._post_analog(self.ifx, x)
                if not abs(y - last[1]) <= _INTERFEROMETER_DEADBAND_UM:
                    await self._post_analog(self.ify, y)
            for record in self._analog()[2:]:  # their limits may have changed
                await post_alarm(record, *analog_alarm(record, float(record.value)))
            last = (
                x if not abs(x - last[0]) <= _INTERFEROMETER_DEADBAND_UM else last[0],
                y if not abs(y - last[1]) <= _INTERFEROMETER_DEADBAND_UM else last[1],
            )
            await asyncio.sleep(_INTERFEROMETER_PERIOD_S)

    def _snapshot(self, t_s: float) -> _Snapshot:
        """Coarse stage, optics, beamline and ring as one line sees them (read once)."""
        assert self.ring_block is not None and self.optics_block is not None
        assert self.detector_block is not None and self.beamline_block is not None
        ring = RingState.from_record(self.ring_block.read())
        optics = self.optics_block.read()
        detector = self.detector_block.read()
        beamline = BeamlineState.from_record(self.beamline_block.read())
        readings = {
            axis: float(
                axis_positions_um(detector if axis in DETECTOR_AXES else optics, axis, [t_s])[0]
            )
            for axis in OPTICS_AXES
        }
        energy = float(beamline.energies_eV(np.array([t_s]))[0])
        gap = float(beamline.gaps_mm(np.array([t_s]))[0])
        polarization = beamline.polarization(t_s)
        at = self.model.optics_positions(energy, readings)
        current = ring.current_on_sample_mA
        beam = self.sim.beam
        model, epoch = self.model, self.epoch_s

        def rate_Hz(x: np.ndarray, y: np.ndarray, times: np.ndarray) -> np.ndarray:
            hours = (times - epoch) / 3600.0
            return model.detected_rate_Hz(
                x + beam.drift_x_um_per_h * hours,
                y + beam.drift_y_um_per_h * hours,
                at,
                ring_current_mA=current,
                gap_mm=gap,
                polarization=polarization,
            )

        return _Snapshot(self._coarse_um(t_s), rate_Hz)

    # -- settings ---------------------------------------------------------------------
    def _plan(self, **override: Any) -> FramePlan:
        values = {
            "start_x_um": float(self.start_x.value),
            "stop_x_um": float(self.stop_x.value),
            "nx": int(self.nx.value),
            "start_y_um": float(self.start_y.value),
            "stop_y_um": float(self.stop_y.value),
            "ny": int(self.ny.value),
            "dwell_s": float(self.dwell.value),
            "snake": self.snake.value in ("On", 1),
        }
        return FramePlan(**(values | override))

    async def _post_frame_time(self, plan: FramePlan | None = None) -> None:
        plan = plan or self._plan()
        fly = self.sim.fly
        now = time.monotonic()
        ox, oy = self._offsets_um(now) if self.stage_block is not None else (0.0, 0.0)
        px, py = self._piezo_um(now)
        try:
            total = frame_time_s(plan, fly, (px - ox, py - oy))
        except ZeroDivisionError:  # START_X = STOP_X: no sweep to time
            total = float("nan")
        await self._post_analog(self.frame_time, total)
        await self._post_analog(self.line_overhead, total / plan.ny - plan.nx * plan.dwell_s)

    async def _put_setting(self, instance: Any, value: Any, name: str, convert: type) -> Any:
        low, high = self._limits()[name]
        asked = convert(value)
        if not math.isfinite(asked):
            refuse(instance, f"{instance.pvname}: {asked}; give a number in {low:g}..{high:g}")
        # As an ao/longout record: a value beyond DRVL..DRVH is driven at the limit.
        number = min(max(asked, low), high)
        if number != asked:
            await self._say(
                f"{name} {asked:g} is outside DRVL..DRVH {low:g}..{high:g}: set to {number:g}"
            )
        await instance.write(number, verify_value=False)
        await self._post_frame_time()
        return SkipWrite

    @ifx.getter
    async def ifx(self, instance):
        return self._read_interferometer(0)

    @ify.getter
    async def ify(self, instance):
        return self._read_interferometer(1)

    def _read_interferometer(self, axis: int) -> float | None:
        """A read (CA get) is the position now: step scans read it right after each move,
        when the 10 Hz monitor may still be at the last one. None before the world opened."""
        if self.stage_block is None:
            return None
        return self._interferometer_um(time.monotonic())[axis]

    @start_x.putter
    async def start_x(self, instance, value):
        return await self._put_setting(instance, value, "START_X", float)

    @stop_x.putter
    async def stop_x(self, instance, value):
        return await self._put_setting(instance, value, "STOP_X", float)

    @start_y.putter
    async def start_y(self, instance, value):
        return await self._put_setting(instance, value, "START_Y", float)

    @stop_y.putter
    async def stop_y(self, instance, value):
        return await self._put_setting(instance, value, "STOP_Y", float)

    @nx.putter
    async def nx(self, instance, value):
        return await self._put_setting(instance, value, "NX", int)

    @ny.putter
    async def ny(self, instance, value):
        return await self._put_setting(instance, value, "NY", int)

    @dwell.putter
    async def dwell(self, instance, value):
        return await self._put_setting(instance, value, "DWELL", float)

    @snake.putter
    async def snake(self, instance, value):
        await instance.write(value, verify_value=False)
        await self._post_frame_time()
        return SkipWrite

    # -- frames -----------------------------------------------------------------------
    def _check_arm(self, instance: Any, plan: FramePlan) -> None:
        """Refuse a frame the controller cannot run (the message says what to change)."""
        fly = self.sim.fly
        arm = instance.pvname
        prefix = self.prefix  # the controller serves the fly prefix
        if plan.start_x_um == plan.stop_x_um:
            refuse(
                instance,
                f"{arm}: START_X = STOP_X = {plan.start_x_um:g} um: a line needs a width; "
                "give STOP_X different from START_X",
            )
        speed = plan.line_speed_um_per_s
        if speed > fly.max_line_speed_um_per_s:
            slowest = abs(plan.step_x_um) / fly.max_line_speed_um_per_s
            refuse(
                instance,
                f"{arm}: line speed {speed:g} um/s (pixel step {abs(plan.step_x_um):g} um / "
                f"DWELL {plan.dwell_s:g} s) exceeds the controller's "
                f"{fly.max_line_speed_um_per_s:g} um/s ([sim.fly] max_line_speed_um_per_s); "
                f"set {prefix}DWELL >= {slowest:.6g} s or more pixels ({prefix}NX) over the "
                "line",
            )
        moving = [a.motor.pvname for a in self.axes.values() if a.is_moving()]
        if moving:
            refuse(
                instance,
                f"{arm}: the piezo is moving ({', '.join(moving)}); wait until its .DMOV = 1 "
                "(or put .STOP = 1), then arm",
            )
        now = time.monotonic()
        ox, oy = self._offsets_um(now)
        lo_x, hi_x = plan.x_extent_um(fly.run_up_s)
        lo_y, hi_y = sorted((plan.start_y_um, plan.stop_y_um))
        for axis, lo, hi, offset, name in (
            ("fine_x", lo_x, hi_x, ox, "START_X..STOP_X (with the run-up)"),
            ("fine_y", lo_y, hi_y, oy, "START_Y..STOP_Y"),
        ):
            limits = self.axes[axis].soft_limits_um()
            stage = getattr(self.sim.stages, axis)
            low, high = limits or (stage.low_limit_switch_um, stage.high_limit_switch_um)
            if lo + offset < low or hi + offset > high:
                refuse(
                    instance,
                    f"{arm}: the frame needs the piezo {axis} from {lo + offset:.4f} to "
                    f"{hi + offset:.4f} um ({name} = {lo:.4f}..{hi:.4f} um in interferometer "
                    f"coordinates, less the coarse stage and drift {-offset:.4f} um), outside "
                    f"its soft limits {low:g}..{high:g} um; move the coarse stage towards the "
                    "frame's centre or make the frame smaller",
                )

    @arm.putter
    async def arm(self, instance, value):
        if value not in ("Arm", 1):
            if self._frame is not None:
                self._abort.set()
                await asyncio.shield(self._frame)
            return "Idle"
        if self._frame is not None:
            refuse(
                instance,
                f"{instance.pvname}: a frame is already running; wait until BUSY is Idle, "
                "or put ARM = 0 to abort it",
            )
        plan = self._plan()
        try:
            self._check_arm(instance, plan)
        except ValueError as exc:
            await self._say(f"frame refused: {exc}")
            raise
        await self._say(f"frame of {plan.nx} x {plan.ny} pixels running")
        self._abort.clear()
        self._slowest_line_s = 0.0
        self._frame = asyncio.get_running_loop().create_future()
        try:
            await self._post_frame_time(plan)
            await instance.write("Arm", verify_value=False)
            await set_value(self.busy, "Busy")
            aborted = await self._run_frame(plan)
            await self._say(
                f"frame of {plan.nx} x {plan.ny} pixels {'aborted' if aborted else 'done'}"
            )
        finally:
            frame, self._frame = self._frame, None
            self._abort.clear()
            for axis in self.axes.values():
                await axis.frame_ended()
            await set_value(self.busy, "Idle")
            await instance.write("Idle", verify_value=False)
            frame.set_result(None)
        return SkipWrite

    async def _wait_until(self, deadline: float) -> bool:
        """Sleep until ``deadline`` (monotonic) or an abort; True if aborted."""
        remaining = deadline - time.monotonic()
        if self._abort.is_set():
            return True
        if remaining > _PRECISE_SLEEP_S:
            try:
                await asyncio.wait_for(self._abort.wait(), remaining - _PRECISE_SLEEP_S)
                return True
            except TimeoutError:
                pass
        time.sleep(max(deadline - time.monotonic(), 0.0))
        return self._abort.is_set()

    async def _follow_axes(self) -> None:
        while True:
            for axis in self.axes.values():
                await axis.follow()
            await asyncio.sleep(_FOLLOW_PERIOD_S)

    async def _run_frame(self, plan: FramePlan) -> bool:
        """Run the frame's lines; True if it was aborted."""
        for axis in self.axes.values():
            await axis.frame_started()
        follower = asyncio.get_running_loop().create_task(self._follow_axes())
        started = time.monotonic()
        aborted = False
        try:
            t = started
            for index in range(plan.ny):
                t, aborted = await self._run_line(plan, index, t)
                if aborted:
                    break
        finally:
            follower.cancel()
        took = time.monotonic() - started
        print(  # the IOC's log: what benchmarks/fly_frame.py reports
            f"frame of {plan.nx} x {plan.ny} pixels: {took:.4f} s (FRAME_TIME "
            f"{float(self.frame_time.value):.4f} s); busiest line's computing and posting "
            f"{1e3 * self._slowest_line_s:.2f} ms",
            flush=True,
        )
        return aborted

    async def _run_line(self, plan: FramePlan, index: int, t: float) -> tuple[float, bool]:
        """Run line ``index`` from ``t`` (monotonic); returns its end and whether aborted."""
        fly = self.sim.fly
        fx, fy = self.axes["fine_x"], self.axes["fine_y"]
        sweep_s = plan.nx * plan.dwell_s
        snapshot = self._snapshot(t)
        ox, oy = self._offsets_um(t + fly.settle_s + fly.run_up_s + 0.5 * sweep_s)
        # The move to the run-up start (the y step, and the flyback unless snaking).
        here_x, here_y = fx.position_um(t), fy.position_um(t)
        start_x = sweep_move(plan, index, 0.0, ox, fly.run_up_s).start_um
        target_y = plan.line_y_um(index) + oy
        speed = fly.flyback_speed_um_per_s
        move_x = Move(here_x, start_x, t, speed, fly.run_up_s)
        move_y = Move(here_y, target_y, t, speed, fly.run_up_s)
        fx.publish(move_x)
        fy.publish(move_y)
        t_sweep = t + max(move_x.duration_s, move_y.duration_s) + fly.settle_s
        t_first = t_sweep + fly.run_up_s
        t_end = t_first + sweep_s + fly.turnaround_s
        sweep = sweep_move(plan, index, t_sweep, ox, fly.run_up_s)
        missed = await self.faults.take(self.faults.miss_triggers)
        stall_at = np.inf
        if await self.faults.take(self.faults.stall):
            stall_at = t_first + float(self.rng.uniform(0.1, 0.9)) * sweep_s
        lost = None
        if missed:
            lost = self.rng.random(plan.nx) < _MISSED_FRACTION
            if not lost.any():
                lost[int(self.rng.integers(plan.nx))] = True
        # Settle, then the sweep (published once the move to its start has ended).
        aborted = await self._wait_until(t_sweep - fly.settle_s)
        if not aborted:
            fx.publish(sweep)
            if np.isfinite(stall_at):
                aborted = await self._wait_until(stall_at)
                if not aborted:
                    stuck = sweep.position_um(stall_at)
                    fx.publish(Move(stuck, stuck, stall_at, 1.0, 0.0))
            if not aborted:
                aborted = await self._wait_until(t_end)
        valid_until = stall_at
        if aborted:
            now = time.monotonic()
            valid_until = min(valid_until, now)
            for axis in (fx, fy):
                here = axis.position_um(now)
                axis.publish(Move(here, here, now, 1.0, 0.0))
        computing = time.monotonic()
        line = simulate_sweep(
            plan,
            index,
            move=sweep,
            t_sweep_s=t_first,
            piezo_y_um=target_y,
            coarse_xy_um=snapshot.coarse_xy_um,
            drift_um=self._drift_um,
            noise_um=self.sim.interferometer.noise_nm * 1e-3,
            rate_Hz=snapshot.rate_Hz,
            samples_per_pixel=fly.samples_per_pixel,
            rng=self.rng,
            valid_until_s=valid_until,
            lost_pixels=lost,
        )
        if aborted:
            status = 3
        elif np.isfinite(stall_at):
            status = 2
        elif missed:
            status = 1
        else:
            status = 0
        await self._publish_line(index, status, line)
        self._slowest_line_s = max(self._slowest_line_s, time.monotonic() - computing)
        return t_end, aborted

    async def _publish_line(self, index: int, status: int, line: LineData) -> None:
        """Post one line: LINE:DATA (the whole line), then the documented order, SEQ last."""
        self._seq += 1
        await self.line_data.write(pack_line(self._seq, index, status, line), verify_value=False)
        await self.line_index.write(index, verify_value=False)
        await self.line_status.write(LINE_STATUSES[status], verify_value=False)
        await self.line_npix.write(line.npix, verify_value=False)
        await self.line_counts.write(line.counts, verify_value=False)
        await self.line_x.write(line.x_um, verify_value=False)
        await self.line_y.write(line.y_um, verify_value=False)
        await self.line_dwell.write(line.dwell_s, verify_value=False)
        await self.line_seq.write(self._seq, verify_value=False)


def controller_class_for(max_pixels: int) -> type[FlyController]:
    """:class:`FlyController` with per-line waveforms of ``max_pixels`` elements."""

    def waveform(name: str, dtype: ChannelType, value: Any, doc: str) -> Any:
        return record_waveform(name, dtype, value, max_pixels, doc, alarm_group=name)

    attributes = {
        "line_counts": waveform("LINE:COUNTS", ChannelType.LONG, 0, "Counts per pixel"),
        "line_x": waveform("LINE:X", ChannelType.DOUBLE, 0.0, "Interferometer x per pixel"),
        "line_y": waveform("LINE:Y", ChannelType.DOUBLE, 0.0, "Interferometer y per pixel"),
        "line_dwell": waveform("LINE:DWELL", ChannelType.DOUBLE, 0.0, "Dwell per pixel"),
        # The whole line in one array: a monitor delivers it whole or not at all.
        "line_data": record_waveform(
            "LINE:DATA",
            ChannelType.DOUBLE,
            0.0,
            line_data_length(max_pixels),
            "Line: header, counts, x, y, dwell",
            alarm_group="LINE:DATA",
            max_subscription_backlog=_LINE_DATA_BACKLOG,
        ),
        "__doc__": FlyController.__doc__,
        "__module__": __name__,
    }
    return type("FlyController", (FlyController,), attributes)
