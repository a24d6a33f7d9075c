"""Monochromator energy and the elliptically polarising undulator (EPU).

Records under ``[epics.prefixes] beamline`` (``STXM:BL:``): ``ENERGY`` (ao, eV; a put
completes when the energy has settled, and is refused when the OSA where it stands would
pass the second order), ``ENERGY:RBV``, ``ENERGY:DMOV``, ``ENERGY:STOP``; ``EPU:GAP``, a
motor record (:mod:`sim_iocs.motor`) in mm; ``EPU:POLARIZATION`` (mbbo, a put completes
after ``[sim.beamline] polarization_change_s``), ``EPU:POLARIZATION:RBV``, ``EPU:BUSY``;
``INTERLOCK``, why the last energy put was refused. Simulator control
``STXM:SIM:EPU_GAP:STALL`` (:class:`sim_iocs.motor.MotorFaults`).

The energy moves as :class:`stxm_ctrl.physics.monochromator.EnergyMove` says; the
monochromator alone moves with ``ENERGY`` (the session's ``Energy`` device moves the gap and
the zone plate with it), so an energy put by itself detunes the undulator and defocuses the
zone plate, as at a beamline. Every record and the energy move's timing:
``docs/reference/sim-iocs.md``, section "Beamline IOC".

World block ``beamline`` (owned, :mod:`sim_iocs.optics_world`): the energy move, the gap's
move, the polarisation and when its change ends. A fresh world starts at ``[sim.beam]
energy_eV``, circular left, with the gap tuned to it; a restarted IOC keeps the block's
state. Reads ``optics_stages`` (where the OSA is, for the interlock).
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from caproto import ChannelType, SkipWrite
from caproto.server import PVGroup, pvproperty

from sim_iocs.motor import MotorAxis, MotorFaults
from sim_iocs.optics_world import BEAMLINE, OPTICS_STAGES, BeamlineState, a0_reach, start_values
from sim_iocs.records import (
    AI_FIELD_UNITS,
    AO_FIELD_UNITS,
    BO_FIELD_UNITS,
    DELAY_FIELD_UNITS,
    MBBI_FIELD_UNITS,
    RecordDouble,
    analog_alarm,
    describe,
    long_string,
    refuse,
    set_value,
    write_with_alarm,
)
from sim_iocs.registry import IocContext
from sim_iocs.world import BlockReader, BlockWriter, World, open_reader
from stxm_ctrl.config import BeamlineConfig, StageMotionConfig
from stxm_ctrl.physics.instrument import InstrumentModel
from stxm_ctrl.physics.interlocks import InterlockError
from stxm_ctrl.physics.monochromator import ENERGY_MOVE_FIELDS, EnergyMove
from stxm_ctrl.physics.undulator import POLARIZATIONS

__all__ = ["Beamline", "build", "epu_gap_stage"]

_MOVING_PERIOD_S = 0.02
_REST_PERIOD_S = 0.5


def epu_gap_stage(config: BeamlineConfig) -> StageMotionConfig:
    """The EPU gap as a motor stage, in mm, from ``[sim.beamline]``."""
    bl = config.sim.beamline
    return StageMotionConfig(
        low_limit_um=bl.epu_min_gap_mm,
        high_limit_um=bl.epu_max_gap_mm,
        low_limit_switch_um=bl.epu_min_gap_mm - 0.2,
        high_limit_switch_um=bl.epu_max_gap_mm + 0.2,
        home_switch_um=0.5 * (bl.epu_min_gap_mm + bl.epu_max_gap_mm),
        velocity_um_per_s=bl.epu_gap_speed_mm_per_s,
        max_velocity_um_per_s=5 * bl.epu_gap_speed_mm_per_s,
        jog_velocity_um_per_s=bl.epu_gap_speed_mm_per_s,
        home_velocity_um_per_s=bl.epu_gap_speed_mm_per_s,
        acceleration_time_s=0.2,
        resolution_um=0.0001,
        precision_digits=4,
    )


def build(context: IocContext) -> list[PVGroup]:
    """The monochromator/EPU records publishing to ``beamline``, the gap and its fault."""
    config = context.config
    model = InstrumentModel(config, feature_maps=False)
    block = context.world.own(BEAMLINE, initial=start_values(model)[BEAMLINE.name])
    prefix = context.prefix
    beamline = Beamline(prefix, config=config, model=model, block=block, world=context.world)
    gap = MotorAxis(
        prefix + "EPU:GAP",
        axis="epu_gap",
        stage=epu_gap_stage(config),
        block=block,
        description="EPU gap",
        units="mm",
    )
    return [beamline, gap, MotorFaults(f"{config.sim.control_prefix}EPU_GAP:", axis=gap)]


class Beamline(PVGroup):
    """Monochromator energy and EPU polarisation (``docs/reference/sim-iocs.md``).

    Parameters
    ----------
    prefix
        ``[epics.prefixes] beamline``.
    config
        The configuration (``[optics]`` energy range, ``[sim.beamline]``).
    model
        The instrument model (the interlock geometry).
    block
        The ``beamline`` world block (this IOC's).
    world
        The fleet's world (``optics_stages`` is read).
    """

    energy = pvproperty(
        name="ENERGY",
        value=0.0,
        dtype=RecordDouble,
        record="ao",
        precision=3,
        alarm_group="energy",
        doc="Photon energy setpoint",
    )
    energy_rbv = pvproperty(
        name="ENERGY:RBV",
        value=0.0,
        dtype=ChannelType.DOUBLE,
        record="ai",
        precision=3,
        read_only=True,
        alarm_group="energy_rbv",
        doc="Photon energy",
    )
    energy_dmov = pvproperty(
        name="ENERGY:DMOV",
        value="Done",
        dtype=ChannelType.ENUM,
        enum_strings=["Moving", "Done"],
        record="bi",
        read_only=True,
        alarm_group="energy_dmov",
        doc="Energy move done",
    )
    energy_stop = pvproperty(
        name="ENERGY:STOP",
        value="Go",
        dtype=ChannelType.ENUM,
        enum_strings=["Go", "Stop"],
        record="bo",
        alarm_group="energy_stop",
        doc="Stop the energy move",
    )
    polarization = pvproperty(
        name="EPU:POLARIZATION",
        value=POLARIZATIONS[0],
        dtype=ChannelType.ENUM,
        enum_strings=list(POLARIZATIONS),
        record="mbbo",
        alarm_group="polarization",
        doc="EPU polarisation setpoint",
    )
    polarization_rbv = pvproperty(
        name="EPU:POLARIZATION:RBV",
        value=POLARIZATIONS[0],
        dtype=ChannelType.ENUM,
        enum_strings=list(POLARIZATIONS),
        record="mbbi",
        read_only=True,
        alarm_group="polarization_rbv",
        doc="EPU polarisation",
    )
    busy = pvproperty(
        name="EPU:BUSY",
        value="Done",
        dtype=ChannelType.ENUM,
        enum_strings=["Done", "Busy"],
        record="bi",
        read_only=True,
        alarm_group="busy",
        doc="EPU changing polarisation",
    )
    interlock = long_string("INTERLOCK", "Why the last energy put was refused")

    def __init__(
        self,
        prefix: str,
        *,
        config: BeamlineConfig,
        model: InstrumentModel,
        block: BlockWriter,
        world: World,
        **kwargs,
    ):
        super().__init__(prefix, **kwargs)
        self.config = config
        self.model = model
        self.block = block
        self.world = world
        self.optics: BlockReader | None = None
        self._wake = asyncio.Event()
        # Set (and replaced) whenever a new energy move or a stop is published: a put
        # waiting for its move to settle then waits for the move in force instead.
        self._energy_changed = asyncio.Event()

    # -- state ------------------------------------------------------------------------
    def _state(self) -> BeamlineState:
        return BeamlineState.from_record(self.block.read())

    def _publish_energy(self, move: EnergyMove) -> None:
        self.block.write(energy=tuple(getattr(move, name) for name in ENERGY_MOVE_FIELDS))
        self._wake.set()
        changed, self._energy_changed = self._energy_changed, asyncio.Event()
        changed.set()

    @property
    def _tolerance_eV(self) -> float:
        return self.config.sim.beamline.mono_tolerance_eV

    # -- start-up ---------------------------------------------------------------------
    async def initialise(self) -> None:
        """Describe the records, publish the block's state, follow the energy; run once."""
        optics = self.config.optics
        low, high = optics.energy_min_eV, optics.energy_max_eV
        await describe(self.energy, units="eV", precision=3, field_units=AO_FIELD_UNITS("eV"))
        fields = self.energy.field_inst
        await fields.drive_high_limit.write(high, verify_value=False)
        await fields.drive_low_limit.write(low, verify_value=False)
        await self.energy.write_metadata(
            lower_ctrl_limit=low,
            upper_ctrl_limit=high,
            lower_disp_limit=low,
            upper_disp_limit=high,
        )
        await describe(self.energy_rbv, units="eV", precision=3, field_units=AI_FIELD_UNITS("eV"))
        await self.energy_rbv.write_metadata(lower_disp_limit=low, upper_disp_limit=high)
        rbv = self.energy_rbv.field_inst
        for severity in ("hihi", "high", "low", "lolo"):
            await getattr(rbv, f"{severity}_severity").write("NO_ALARM", verify_value=False)
        for record in (self.energy_dmov, self.busy, self.polarization, self.interlock):
            await describe(record, precision=3, field_units=DELAY_FIELD_UNITS)
        await describe(self.energy_stop, precision=3, field_units=BO_FIELD_UNITS)
        await describe(self.polarization_rbv, precision=3, field_units=MBBI_FIELD_UNITS)
        state = self._state()
        now = time.monotonic()
        await self.energy.write(state.energy_move.target_eV, verify_value=False)
        polarization = state.polarization(float("inf"))  # where a change in progress ends
        await self.polarization.write(polarization, verify_value=False)
        await self.polarization_rbv.write(state.polarization(now), verify_value=False)
        if now < float(state.record["polarization_until_s"]):  # restarted mid-change
            asyncio.get_running_loop().create_task(self._polarization_change(state))
        self.optics = await open_reader(self.world, OPTICS_STAGES)
        asyncio.get_running_loop().create_task(self._follow_forever())

    # -- energy -----------------------------------------------------------------------
    async def _say(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        await self.interlock.write(f"{stamp} {message}"[:511], verify_value=False)

    @energy.putter
    async def energy(self, instance, value: float):
        low = self.config.optics.energy_min_eV
        high = self.config.optics.energy_max_eV
        name = self.energy.pvname
        if not math.isfinite(float(value)):
            message = f"{name}: {value}; give an energy in {low:g} to {high:g} eV"
            await self._say(message)
            refuse(instance, message)
        # As an ao record: a target beyond DRVL..DRVH (the beamline's range) is driven at
        # the limit.
        target = min(max(float(value), low), high)
        if self.optics is not None:
            _, a0_far = a0_reach(self.model, self.optics.read(), "osa_z")
            try:
                self.model.geometry.check_energy(target, a0_far, clip_first_order=False)
            except InterlockError as exc:
                message = f"{name}: interlock: {exc}"
                await self._say(message)
                refuse(instance, message)
        bl = self.config.sim.beamline
        now = time.monotonic()
        here = self._state().energy_move.energy_eV(now)
        move = EnergyMove(
            here, target, now, bl.mono_speed_eV_per_s, bl.mono_overhead_s, bl.mono_settle_s
        )
        self._publish_energy(move)
        # The setpoint is the target from now on, as an ao's VAL: a stop or a new target
        # during the move replaces it, and this put's completion must not write it back.
        await instance.write(target, verify_value=False)
        await set_value(self.energy_dmov, "Moving")
        await self._settled()
        return SkipWrite

    async def _settled(self) -> None:
        """Wait until the energy move in force (whichever it is by then) has settled."""
        while True:
            move = self._state().energy_move
            changed = self._energy_changed
            remaining = move.done_s(self._tolerance_eV) - time.monotonic()
            if remaining > 0:
                try:  # a stop or a new target ends this wait: wait for that move then
                    await asyncio.wait_for(changed.wait(), remaining)
                    continue
                except TimeoutError:
                    pass
                # asyncio wakes on a millisecond grid; finish precisely.
                time.sleep(max(move.done_s(self._tolerance_eV) - time.monotonic(), 0.0))
            if self._state().energy_move == move:
                await self._post_energy(time.monotonic())
                return

    async def _post_energy(self, now: float) -> bool:
        """Post RBV (with its alarm) and DMOV at ``now``; True if the move is done."""
        move = self._state().energy_move
        energy = move.energy_eV(now)
        alarm = analog_alarm(self.energy_rbv, energy)
        await write_with_alarm(self.energy_rbv, energy, *alarm)
        done = now >= move.done_s(self._tolerance_eV)
        await set_value(self.energy_dmov, "Done" if done else "Moving")
        return done

    async def _follow_forever(self) -> None:
        while True:
            now = time.monotonic()
            done = await self._post_energy(now)
            self._wake.clear()
            period = _REST_PERIOD_S if done else _MOVING_PERIOD_S
            try:
                await asyncio.wait_for(self._wake.wait(), period)
            except TimeoutError:
                pass

    @energy_stop.putter
    async def energy_stop(self, instance, value: Any):
        if value in ("Stop", 1):
            now = time.monotonic()
            move = self._state().energy_move
            if now >= move.done_s(self._tolerance_eV):
                # At rest: stopping it in its settle tail would leave it off the setpoint.
                return "Go"
            here = move.energy_eV(now)
            bl = self.config.sim.beamline
            self._publish_energy(EnergyMove(here, here, now, bl.mono_speed_eV_per_s, 0.0, 0.0))
            await self.energy.write(here, verify_value=False)
            await self._post_energy(now)
        return "Go"

    # -- polarisation -----------------------------------------------------------------
    @polarization.putter
    async def polarization(self, instance, value: Any):
        wanted = value if isinstance(value, str) else POLARIZATIONS[int(value)]
        now = time.monotonic()
        state = self._state()
        in_beam = state.polarization(now)
        if wanted == in_beam and now >= float(state.record["polarization_until_s"]):
            return wanted
        self.block.write(
            polarization=float(POLARIZATIONS.index(wanted)),
            polarization_from=float(POLARIZATIONS.index(in_beam)),
            polarization_until_s=now + self.config.sim.beamline.polarization_change_s,
        )
        await self._polarization_change(self._state())
        return wanted

    async def _polarization_change(self, state: BeamlineState) -> None:
        """BUSY while the change published in ``state`` runs; RBV at its end."""
        until = float(state.record["polarization_until_s"])
        await set_value(self.busy, "Busy")
        while (remaining := until - time.monotonic()) > 0:
            await asyncio.sleep(remaining)
        current = self._state()
        if float(current.record["polarization_until_s"]) == until:  # not replaced meanwhile
            await set_value(self.polarization_rbv, current.polarization(until))
            await set_value(self.busy, "Done")
