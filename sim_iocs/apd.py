"""Avalanche-photodiode counter: an EPICS scaler record counting photons through the sample.

Record ``[epics.prefixes] apd`` + ``SCALER`` (``STXM:APD:SCALER``), a scaler record
(:mod:`sim_iocs.scaler`) that stock ophyd ``ScalerCH`` counts with: ``.TP`` the preset time
(refused outside ``[sim.apd] min_dwell_s``..``max_dwell_s``, the reason in
``SCALER:MESSAGE``), ``.CNT`` put 1 counts and completes after the results' monitors
(:mod:`sim_iocs.put_order`), ``.S1`` clock ticks, ``.S2`` photons, ``.T`` elapsed seconds;
``.RATE`` and AutoCount as on a real scaler. Simulator control
``STXM:SIM:APD:FAIL_COUNTS``: the next N counts fail as a failing counter card would (READ
/INVALID alarm, old values kept).

Photons are Poisson draws around the mean detected rate of
:class:`stxm_ctrl.physics.instrument.InstrumentModel` (the rate model of decision 0007, also
the tests' ground truth), averaged over each stretch of the gate by
:func:`~stxm_ctrl.physics.detector.gate_average_rate_Hz`, with the state of every world block
(stages, optics, detector, beamline, ring) at each instant. Every field, the rate formula
and the measured figures: ``docs/reference/sim-iocs.md``, section "APD counter IOC".
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, NoReturn

import numpy as np
from caproto import AlarmSeverity, AlarmStatus, SkipWrite
from caproto.server import PVGroup, pvproperty

from sim_iocs.fly import FINE_STAGE
from sim_iocs.motor import axis_positions_um
from sim_iocs.optics_world import (
    BEAMLINE,
    DETECTOR_AXES,
    DETECTOR_STAGE,
    OPTICS_STAGES,
    BeamlineState,
)
from sim_iocs.records import (
    DELAY_FIELD_UNITS,
    describe,
    describe_fault_count,
    fault_count,
    forward_put,
    long_string,
    post_alarm,
    refuse,
    set_value,
    take_fault,
)
from sim_iocs.registry import IocContext
from sim_iocs.ring import RING, RingState
from sim_iocs.sample_stage import SAMPLE_STAGE
from sim_iocs.scaler import CONT, GATE, SCALER_FIELD_UNITS, scaler_fields
from sim_iocs.world import BlockReader, World, open_reader
from stxm_ctrl.config import BeamlineConfig
from stxm_ctrl.physics.detector import gate_average_rate_Hz, gate_sample_times_s
from stxm_ctrl.physics.fly_line import interferometer_drift_um
from stxm_ctrl.physics.instrument import OPTICS_AXES, InstrumentModel

__all__ = [
    "APD_CHANNEL",
    "CHANNELS",
    "CLOCK_CHANNEL",
    "RECORD",
    "ApdCounter",
    "ApdFaults",
    "CountFailedError",
    "build",
]

log = logging.getLogger(__name__)

RECORD = "SCALER"
"""Record name after the ``apd`` prefix."""
CHANNELS = 32
"""Channels of the record (ophyd's ScalerCH connects to 32)."""
CLOCK_CHANNEL = 1
APD_CHANNEL = 2
_INPUTS = 2  # channels with a signal: the clock and the APD

# asyncio sleeps wake on a millisecond grid (the selector rounds its timeout up), so the
# last part of a count is slept with time.sleep, blocking this IOC's loop for at most this.
_PRECISE_SLEEP_S = 0.0015
# With a photon preset armed, the counter looks at its counts at least this often.
_PRESET_CHECK_S = 0.01
# Without any preset, a count runs until CNT = 0; it is looked at this often.
_OPEN_COUNT_CHECK_S = 0.1


def build(context: IocContext) -> list[PVGroup]:
    """The APD IOC: one :class:`ApdCounter` reading the world's blocks, and its faults."""
    faults = ApdFaults(f"{context.config.sim.control_prefix}APD:")
    counter = ApdCounter(
        context.prefix + RECORD,
        config=context.config,
        world=context.world,
        faults=faults,
    )
    return [counter, faults]


class CountFailedError(RuntimeError):
    """A count of the simulated counter failed (``FAIL_COUNTS``)."""


class ApdFaults(PVGroup):
    """Simulator control of the APD counter (``docs/reference/sim-iocs.md``)."""

    fail_counts = pvproperty(
        name="FAIL_COUNTS",
        value=0,
        record="longout",
        doc="Simulator: counts to fail",
        alarm_group="fail_counts",
    )

    async def initialise(self) -> None:
        """Describe the record; run once at start."""
        await describe_fault_count(self.fail_counts, "counts")

    @fail_counts.putter
    async def fail_counts(self, instance, value):
        return fault_count(instance, value, "counts")

    async def take(self) -> bool:
        """True (and one count less) if counts are left to fail."""
        return await take_fault(self.fail_counts)


_Fields = scaler_fields(CHANNELS)
_HANDLED = ["count", "count_mode", "preset_time", "auto_count_time", "freq", "delay"]
_HANDLED += ["auto_count_delay", "update_rate", "auto_count_update_rate", "display_precision"]
_HANDLED += [f"pr{n}" for n in range(1, CHANNELS + 1)]
_HANDLED += [f"d{n}" for n in range(1, CHANNELS + 1)]
_HANDLED += [f"g{n}" for n in range(1, CHANNELS + 1)]
_REFUSED_TP_ALARM = (AlarmStatus.WRITE, AlarmSeverity.MINOR_ALARM)
_UNSET_GATE_PRESET = 1000  # the record's preset for a gate set with a preset of 0


class ApdCounter(PVGroup):
    """Simulated APD counter, a scaler record (``docs/reference/sim-iocs.md``).

    Parameters
    ----------
    record_name
        Full record name, e.g. ``STXM:APD:SCALER``.
    config
        Configuration: ``[sim]`` detector, beam, zone plate and sample.
    world
        The fleet's world (the ``sample_stage`` and ``ring`` blocks are read).
    faults
        The simulator's fault control (``FAIL_COUNTS``), if any.
    """

    scaler = pvproperty(name="", value=0.0, record=_Fields, doc="APD photon counter")
    message = long_string(":MESSAGE", "Why the last put to the scaler was refused")
    for _name in _HANDLED:
        getattr(scaler.fields, _name).putter(forward_put(_name))
    del _name

    def __init__(
        self,
        record_name: str,
        *,
        config: BeamlineConfig,
        world: World,
        faults: ApdFaults | None = None,
        **kwargs: Any,
    ):
        super().__init__(record_name, **kwargs)
        self.faults = faults
        sim = config.sim
        self.sim = sim
        self.scaler.reported_record_type = "scaler"
        self.world = world
        self.stage_block: BlockReader | None = None
        self.fine_block: BlockReader | None = None
        self.ring_block: BlockReader | None = None
        self.optics_block: BlockReader | None = None
        self.detector_block: BlockReader | None = None
        self.beamline_block: BlockReader | None = None
        self.epoch_s = world.epoch_s
        self.model = InstrumentModel(config)
        self.rng = np.random.default_rng(sim.random_seed or None)
        self._counting: asyncio.Future[None] | None = None  # done when the count ends
        self._auto_task: asyncio.Task | None = None  # the auto-count loop
        self._abort = asyncio.Event()

    @property
    def _fields(self) -> Any:
        return self.scaler.field_inst

    def _channel(self, name: str) -> Any:
        return self.scaler.get_field(name)

    # -- start-up ---------------------------------------------------------------------
    async def initialise(self) -> None:
        """Open the world blocks and publish the configuration; run once at start."""
        # The other IOCs create their blocks when they start, maybe after this one.
        self.stage_block = await open_reader(self.world, SAMPLE_STAGE)
        self.fine_block = await open_reader(self.world, FINE_STAGE)
        self.ring_block = await open_reader(self.world, RING)
        self.optics_block = await open_reader(self.world, OPTICS_STAGES)
        self.detector_block = await open_reader(self.world, DETECTOR_STAGE)
        self.beamline_block = await open_reader(self.world, BEAMLINE)
        now = time.monotonic()
        self.mean_rate_Hz(now, now + 1e-3)  # builds the grids now, not in the first count
        apd = self.sim.apd
        fields = self._fields
        await describe(
            self.scaler,
            description="APD photon counter",
            units="counts",
            precision=5,
            field_units=SCALER_FIELD_UNITS(CHANNELS),
        )
        await fields.freq.write(apd.clock_frequency_Hz, verify_value=False)
        await self._set_preset_time(0.001)
        tp = fields.preset_time
        await tp.write_metadata(lower_ctrl_limit=apd.min_dwell_s, upper_ctrl_limit=apd.max_dwell_s)
        await tp.write_metadata(lower_disp_limit=apd.min_dwell_s, upper_disp_limit=apd.max_dwell_s)
        await self._channel(f"NM{CLOCK_CHANNEL}").write("clock", verify_value=False)
        await self._channel(f"NM{APD_CHANNEL}").write("APD", verify_value=False)
        await fields.channel_count.write(_INPUTS, verify_value=False)
        await describe(self.message, precision=3, field_units=DELAY_FIELD_UNITS)

    # -- puts -------------------------------------------------------------------------
    async def put_field(self, name: str, instance: Any, value: Any) -> Any:
        """Dispatch a put to field ``name`` to its ``_put_<name>`` handler."""
        return await getattr(self, f"_put_{name.rstrip('0123456789')}")(instance, value)

    def _refuse(self, instance: Any, message: str) -> NoReturn:
        refuse(instance, f"{self.scaler.pvname}.{self._field_name(instance)}: {message}")

    async def _put_count(self, instance: Any, value: Any) -> Any:
        count = value in ("Count", 1)
        if not count:
            if self._counting is not None:
                self._abort.set()
                await asyncio.shield(self._counting)
            return "Done"
        if self._counting is not None:
            # A second Count while counting completes with the count in progress.
            await asyncio.shield(self._counting)
            return SkipWrite
        # The count starts now (its gate is a span of world time), whatever the posting
        # below costs: nothing adds to the time a client waits for it.
        requested = time.monotonic()
        await self._stop_auto_count()
        await set_value(instance, "Count")
        self._abort.clear()
        self._counting = asyncio.get_running_loop().create_future()
        try:
            await self._count(requested)  # in the put itself: no task hop per count
        except CountFailedError as exc:
            # As a record whose device support failed: in alarm, the old counts kept, CNT
            # back to Done; the put completes (CA cannot say it failed), the alarm tells.
            log.warning("%s: count failed: %s", self.scaler.pvname, exc)
            await self._post_count_alarm(AlarmStatus.READ, AlarmSeverity.INVALID_ALARM)
            await set_value(self._fields.count, "Done")
        finally:
            counting, self._counting = self._counting, None
            counting.set_result(None)
            self._abort.clear()
        if self._fields.count_mode.value == "AutoCount":
            self._start_auto_count()
        return SkipWrite

    async def _put_count_mode(self, instance: Any, value: Any) -> Any:
        mode = value if isinstance(value, str) else CONT[value]
        await instance.write(mode, verify_value=False)
        if mode == "AutoCount":
            self._start_auto_count()
        else:
            await self._stop_auto_count()
        return SkipWrite

    async def _put_preset_time(self, instance: Any, value: Any) -> Any:
        apd = self.sim.apd
        if not apd.min_dwell_s <= float(value) <= apd.max_dwell_s:
            # The scaler record does not clamp TP: refused where every client sees it (a
            # put without completion cannot fail): the record in WRITE/MINOR alarm until a
            # good TP, the reason in MESSAGE, and a failed put for a put with completion.
            message = (
                f"{self.scaler.pvname}.TP: preset time {value} s is outside "
                f"{apd.min_dwell_s}..{apd.max_dwell_s} s; give a counting time in that range"
            )
            await self._say(message)
            for channel in (self.scaler, instance):
                await post_alarm(channel, AlarmStatus.WRITE, AlarmSeverity.MINOR_ALARM)
            refuse(instance, message)
        for channel in (self.scaler, instance):
            if (channel.alarm.status, channel.alarm.severity) == _REFUSED_TP_ALARM:
                await post_alarm(channel, AlarmStatus.NO_ALARM, AlarmSeverity.NO_ALARM)
        await self._set_preset_time(float(value))
        return SkipWrite

    async def _say(self, message: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        await self.message.write(f"{stamp} {message}"[:511], verify_value=False)

    async def _set_preset_time(self, seconds: float) -> None:
        fields = self._fields
        await fields.preset_time.write(seconds, verify_value=False)
        await set_value(fields.pr1, round(seconds * float(fields.freq.value)))
        await set_value(fields.g1, "Y")

    async def _put_pr(self, instance: Any, value: Any) -> Any:
        if int(value) < 0:
            self._refuse(instance, f"preset {value} < 0; give a number of counts >= 0")
        if instance is self._fields.pr1:
            seconds = int(value) / float(self._fields.freq.value)
            return await self._put_preset_time(self._fields.preset_time, seconds)
        if int(value) > 0:  # as the record: a preset arms its channel's gate
            gate = self._channel("G" + self._field_name(instance).removeprefix("PR"))
            await set_value(gate, "Y")
        return int(value)

    async def _put_g(self, instance: Any, value: Any) -> Any:
        gate = value if isinstance(value, str) else GATE[int(value)]
        number = self._field_name(instance).removeprefix("G")
        preset = self._channel(f"PR{number}")
        if gate == "Y" and int(preset.value) == 0:  # a gate needs a preset: the record's
            await set_value(preset, _UNSET_GATE_PRESET)
        return gate

    def _field_name(self, instance: Any) -> str:
        return next(name for name, channel in self.scaler.fields.items() if channel is instance)

    async def _put_auto_count_time(self, instance: Any, value: Any) -> Any:
        apd = self.sim.apd
        if not apd.min_dwell_s <= float(value) <= apd.max_dwell_s:
            self._refuse(
                instance,
                f"auto-count time {value} s is outside {apd.min_dwell_s}..{apd.max_dwell_s} "
                "s; give a counting time in that range",
            )
        return float(value)

    async def _put_freq(self, instance: Any, value: Any) -> Any:
        if not float(value) > 0:
            self._refuse(instance, f"time base {value} Hz; give a frequency > 0 Hz")
        await instance.write(float(value), verify_value=False)
        await self._set_preset_time(float(self._fields.preset_time.value))
        return SkipWrite

    async def _put_delay(self, instance: Any, value: Any) -> Any:
        if not 0 <= float(value) <= 3600:
            self._refuse(instance, f"delay {value} s; give 0 to 3600 s")
        return float(value)

    _put_auto_count_delay = _put_delay

    async def _put_update_rate(self, instance: Any, value: Any) -> Any:
        if not 0 <= float(value) <= 60:
            self._refuse(instance, f"display rate {value} Hz; give 0 (at the end only) to 60 Hz")
        return float(value)

    _put_auto_count_update_rate = _put_update_rate

    async def _put_display_precision(self, instance: Any, value: Any) -> Any:
        if not 0 <= int(value) <= 17:
            self._refuse(instance, f"precision {value}; give 0 to 17 digits")
        await describe(self.scaler, precision=int(value))
        return SkipWrite

    async def _put_d(self, instance: Any, value: Any) -> Any:
        if value not in ("Up", 0):
            self._refuse(instance, "this counter counts up only; leave the direction at Up")
        return "Up"

    # -- counting ---------------------------------------------------------------------
    def _start_auto_count(self) -> None:
        if self._auto_task is None and self._counting is None:
            self._auto_task = asyncio.get_running_loop().create_task(self._auto_count())

    async def _stop_auto_count(self) -> None:
        task, self._auto_task = self._auto_task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def _auto_count(self) -> None:
        fields = self._fields
        self._abort.clear()
        while fields.count_mode.value == "AutoCount":
            await asyncio.sleep(float(fields.auto_count_delay.value))
            await self._run(
                start=time.monotonic(),
                preset_s=float(fields.auto_count_time.value),
                rate_Hz=float(fields.auto_count_update_rate.value),
                presets={},
            )

    async def _count(self, requested: float) -> None:
        fields = self._fields
        try:
            start = requested + float(fields.delay.value)
            if start > time.monotonic():
                await asyncio.sleep(start - time.monotonic())
            presets = {
                n: int(self._channel(f"PR{n}").value)
                for n in range(2, _INPUTS + 1)
                if self._channel(f"G{n}").value == "Y" and int(self._channel(f"PR{n}").value)
            }
            preset_s = float(fields.preset_time.value) if fields.g1.value == "Y" else None
            if self.faults is not None and await self.faults.take():
                await self._wait_until(start + (preset_s or 0.0))
                raise CountFailedError("simulated read failure of the counter card")
            await self._run(
                start=start,
                preset_s=preset_s,
                rate_Hz=float(fields.update_rate.value),
                presets=presets,
            )
        except asyncio.CancelledError:
            # The put went away (its client disconnected): the count ends here.
            asyncio.ensure_future(fields.count.write("Done", verify_value=False))
            raise
        # As the record after a completed count: VAL = T (posted before CNT = Done).
        await set_value(self.scaler, float(fields.elapsed_time.value))
        await set_value(fields.count, "Done")

    async def _run(
        self, *, start: float, preset_s: float | None, rate_Hz: float, presets: dict[int, int]
    ) -> None:
        """Count from ``start`` (monotonic) until the time preset, a photon preset, or an
        abort; post the results."""
        fields = self._fields
        freq = float(fields.freq.value)
        end = start + preset_s if preset_s is not None else None
        photons = 0
        t = start
        next_post = start + 1.0 / rate_Hz if rate_Hz > 0 else None
        while True:
            stops = [s for s in (end, next_post) if s is not None]
            if presets:
                stops.append(t + _PRESET_CHECK_S)
            if not stops:
                stops.append(t + _OPEN_COUNT_CHECK_S)
            stretch_end = min(stops)
            aborted = await self._wait_until(stretch_end)
            t1 = min(time.monotonic(), stretch_end) if not aborted else time.monotonic()
            got = int(self.rng.poisson(self.mean_rate_Hz(t, t1) * (t1 - t))) if t1 > t else 0
            preset = presets.get(APD_CHANNEL)
            if preset is not None and photons + got >= preset:
                # The preset-th photon arrives like the k-th of `got` uniform arrivals.
                k = preset - photons
                t1 = t + (t1 - t) * float(self.rng.beta(k, got - k + 1))
                photons = preset
                await self._post(t1 - start, photons, freq)
                return
            photons += got
            t = t1
            if aborted or (end is not None and t >= end):
                await self._post(t - start, photons, freq)
                return
            if next_post is not None and t >= next_post:
                await self._post(t - start, photons, freq)
                next_post += 1.0 / rate_Hz

    async def _wait_until(self, deadline: float) -> bool:
        """Sleep until ``deadline`` (monotonic) or an abort; True if aborted."""
        remaining = deadline - time.monotonic()
        if remaining > 0.005:
            try:
                await asyncio.wait_for(self._abort.wait(), remaining - _PRECISE_SLEEP_S)
                return True
            except TimeoutError:
                pass
        elif remaining > _PRECISE_SLEEP_S:
            await asyncio.sleep(remaining - _PRECISE_SLEEP_S)
        # asyncio wakes on a millisecond grid; the last stretch is slept precisely.
        time.sleep(max(deadline - time.monotonic(), 0.0))
        return self._abort.is_set()

    async def _post(self, elapsed_s: float, photons: int, freq: float) -> None:
        alarm = self.scaler.alarm
        if (alarm.status, alarm.severity) == (AlarmStatus.READ, AlarmSeverity.INVALID_ALARM):
            await self._post_count_alarm(AlarmStatus.NO_ALARM, AlarmSeverity.NO_ALARM)
        ticks = round(elapsed_s * freq)
        await set_value(self._channel(f"S{CLOCK_CHANNEL}"), ticks)
        await set_value(self._channel(f"S{APD_CHANNEL}"), photons)
        # The timer reads the clock channel, as the scaler record's T = S1 / FREQ.
        await set_value(self._fields.elapsed_time, ticks / freq)

    async def _post_count_alarm(self, status: AlarmStatus, severity: AlarmSeverity) -> None:
        """The record's alarm, on the record and on the count fields a client reads (an IOC
        answers a DBR_TIME get of any field with its record's STAT and SEVR)."""
        for channel in (
            self.scaler,
            self._channel(f"S{CLOCK_CHANNEL}"),
            self._channel(f"S{APD_CHANNEL}"),
            self._fields.elapsed_time,
        ):
            await post_alarm(channel, status, severity)

    def mean_rate_Hz(self, t_start_s: float, t_end_s: float) -> float:
        """Mean detected rate over a gate from ``t_start_s`` to ``t_end_s`` (monotonic).

        One read of each world block; the state at the gate's start, middle and end.
        """
        assert self.ring_block is not None and self.stage_block is not None
        assert self.optics_block is not None and self.detector_block is not None
        assert self.beamline_block is not None and self.fine_block is not None
        ring = RingState.from_record(self.ring_block.read())
        stage = self.stage_block.read()
        fine = self.fine_block.read()
        optics = self.optics_block.read()
        detector = self.detector_block.read()
        beamline = BeamlineState.from_record(self.beamline_block.read())
        times = gate_sample_times_s(t_start_s, t_end_s)
        hours = (times - self.epoch_s) / 3600.0
        beam = self.sim.beam
        # The sample: coarse stage + piezo + its drift (what the interferometer reads, but
        # for noise); plus the beam's own drift, which the interferometer does not see.
        drift_x, drift_y = interferometer_drift_um(hours, self.sim.interferometer)
        sample_x = axis_positions_um(stage, "sample_x", times) + axis_positions_um(
            fine, "fine_x", times
        )
        sample_y = axis_positions_um(stage, "sample_y", times) + axis_positions_um(
            fine, "fine_y", times
        )
        beam_x = sample_x + drift_x + beam.drift_x_um_per_h * hours
        beam_y = sample_y + drift_y + beam.drift_y_um_per_h * hours
        readings = {
            axis: axis_positions_um(detector if axis in DETECTOR_AXES else optics, axis, times)
            for axis in OPTICS_AXES
        }
        energies = beamline.energies_eV(times)
        gaps = beamline.gaps_mm(times)
        polarization = beamline.polarization(float(times[1]))
        state = np.array([*readings.values(), energies, gaps])
        model, current = self.model, ring.current_on_sample_mA
        if (state == state[:, :1]).all():  # the optics stand still during the gate
            at = model.optics_positions(
                float(energies[0]), {a: float(r[0]) for a, r in readings.items()}
            )
            rates = model.detected_rate_Hz(
                beam_x,
                beam_y,
                at,
                ring_current_mA=current,
                gap_mm=float(gaps[0]),
                polarization=polarization,
            )
        else:
            rates = np.empty(len(times))
            for i in range(len(times)):
                at = model.optics_positions(
                    float(energies[i]), {a: float(r[i]) for a, r in readings.items()}
                )
                rates[i] = model.detected_rate_Hz(
                    beam_x[i],
                    beam_y[i],
                    at,
                    ring_current_mA=current,
                    gap_mm=float(gaps[i]),
                    polarization=polarization,
                )
        return gate_average_rate_Hz(rates)
