"""Storage ring in top-up operation, with the beamline shutter; records, with alarms.

Records (prefix ``P`` = ``[epics.prefixes] ring``, e.g. ``STXM:RING:``):

- ``P CURRENT`` (ai, mA, PREC 2) ring current, processed at 2 Hz: decays with the beam
  lifetime and is topped up every ``topup_interval_s``. Alarm limits ``.LOW`` (MINOR) and
  ``.LOLO`` (MAJOR) from ``[sim.ring] low_alarm_mA`` / ``lolo_alarm_mA``, writable; a dumped
  beam reads 0 mA, a MAJOR LOLO alarm.
- ``P TOPUP_COUNTDOWN`` (ai, s, PREC 1) seconds to the next injection.
- ``P SHUTTER`` (bo ``Closed``/``Open``) beamline shutter; a put completes when the shutter
  has moved (0.1 s).

Simulator control (prefix ``[sim] control_prefix`` + ``RING:``, e.g. ``STXM:SIM:RING:``):

- ``BEAM_DUMP`` (bo ``Stored``/``Dumped``): put 1 to dump the beam (current 0), 0 to
  refill (the current is back on the top-up curve at once).

World block ``ring`` (owned): ring current, shutter and beam-dump state, which the
detector reads to know how many photons arrive.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

import numpy as np
from caproto import ChannelType
from caproto.server import PVGroup, pvproperty

from sim_iocs.records import (
    AI_FIELD_UNITS,
    BO_FIELD_UNITS,
    analog_alarm,
    describe,
    write_with_alarm,
)
from sim_iocs.registry import IocContext
from sim_iocs.world import BlockLayout, BlockWriter
from stxm_ctrl.config import RingFillConfig
from stxm_ctrl.physics.ring import topup_current_mA

__all__ = ["RING", "RingFaults", "RingState", "StorageRing", "build"]

RING = BlockLayout(
    "ring",
    np.dtype([("current_mA", "<f8"), ("shutter_open", "<f8"), ("beam_dumped", "<f8")]),
)
"""World block: what the ring IOC last published."""


@dataclass(frozen=True)
class RingState:
    """Ring current, shutter and beam-dump state, as the ring IOC last published them."""

    current_mA: float
    shutter_open: bool
    beam_dumped: bool

    @classmethod
    def from_record(cls, record: np.void) -> RingState:
        """From a snapshot of the :data:`RING` block."""
        return cls(
            float(record["current_mA"]), bool(record["shutter_open"]), bool(record["beam_dumped"])
        )

    @property
    def current_on_sample_mA(self) -> float:
        """The current whose photons reach the sample (0 if shut or dumped)."""
        return self.current_mA if self.shutter_open and not self.beam_dumped else 0.0


def build(context: IocContext) -> list[PVGroup]:
    """The ring IOC: a :class:`StorageRing` publishing to the ``ring`` block, and its faults."""
    world = context.world
    ring = StorageRing(
        context.prefix,
        fill=context.config.sim.ring,
        block=world.own(RING),
        epoch_s=world.epoch_s,
    )
    return [ring, RingFaults(context.config.sim.control_prefix + "RING:", ring=ring)]


_UPDATE_PERIOD_S = 0.5
_SHUTTER_MOVE_S = 0.1


class StorageRing(PVGroup):
    """Simulated storage ring and shutter (see the module docstring for its records).

    Parameters
    ----------
    prefix
        PV prefix, e.g. ``STXM:RING:``.
    fill
        Top-up parameters and alarm limits from the configuration.
    block
        The ``ring`` world block this IOC publishes to.
    epoch_s
        Monotonic time the world began (the top-up cycle starts there).
    """

    current = pvproperty(
        name="CURRENT",
        alarm_group="current",  # each record has its own alarm
        value=0.0,
        dtype=ChannelType.DOUBLE,
        record="ai",
        read_only=True,
        doc="Storage ring current",
    )
    topup_countdown = pvproperty(
        name="TOPUP_COUNTDOWN",
        alarm_group="topup_countdown",  # each record has its own alarm
        value=0.0,
        dtype=ChannelType.DOUBLE,
        record="ai",
        read_only=True,
        doc="Time to the next top-up",
    )
    shutter = pvproperty(
        name="SHUTTER",
        alarm_group="shutter",  # each record has its own alarm
        value="Open",
        dtype=ChannelType.ENUM,
        enum_strings=["Closed", "Open"],
        record="bo",
        doc="Beamline shutter",
    )

    def __init__(
        self, prefix: str, *, fill: RingFillConfig, block: BlockWriter, epoch_s: float, **kwargs
    ):
        super().__init__(prefix, **kwargs)
        self.fill = fill
        self.block = block
        self.epoch_s = epoch_s
        self._updates: asyncio.Task | None = None
        self._dumped = False

    async def initialise(self) -> None:
        """Describe the records, start publishing the ring current; run once at start."""
        fill = self.fill
        await describe(self.current, units="mA", precision=2, field_units=AI_FIELD_UNITS("mA"))
        await describe(
            self.topup_countdown, units="s", precision=1, field_units=AI_FIELD_UNITS("s")
        )
        await describe(self.shutter, precision=3, field_units=BO_FIELD_UNITS)
        await self.current.write_metadata(
            lower_disp_limit=0.0,
            upper_disp_limit=fill.fill_current_mA * 1.1,
            lower_warning_limit=fill.low_alarm_mA,
            lower_alarm_limit=fill.lolo_alarm_mA,
        )
        await self.topup_countdown.write_metadata(
            lower_disp_limit=0.0, upper_disp_limit=fill.topup_interval_s
        )
        # Only LOW and LOLO are limits of this record (EPICS: a limit is live when its
        # severity is not NO_ALARM; caproto's defaults would make HIHI = 0 trip at once).
        for record in (self.current, self.topup_countdown):
            fields = record.field_inst
            await fields.hihi_severity.write("NO_ALARM", verify_value=False)
            await fields.high_severity.write("NO_ALARM", verify_value=False)
        countdown = self.topup_countdown.field_inst
        await countdown.lolo_severity.write("NO_ALARM", verify_value=False)
        await countdown.low_severity.write("NO_ALARM", verify_value=False)
        await self._publish()
        self._updates = asyncio.get_running_loop().create_task(self._update_forever())

    @property
    def dumped(self) -> bool:
        """True while the beam is dumped (fault injection)."""
        return self._dumped

    async def set_dumped(self, dumped: bool) -> None:
        """Dump the beam (the current drops to 0) or refill it (back on the top-up curve)."""
        self._dumped = dumped
        await self._publish()

    def current_mA(self, now_s: float) -> float:
        """Ring current at monotonic time ``now_s``."""
        if self._dumped:
            return 0.0
        return topup_current_mA(
            now_s - self.epoch_s,
            self.fill.fill_current_mA,
            self.fill.beam_lifetime_h,
            self.fill.topup_interval_s,
        )

    async def _update_forever(self) -> None:
        while True:
            await asyncio.sleep(_UPDATE_PERIOD_S)
            await self._publish()

    async def _publish(self, *, shutter_open: bool | None = None) -> None:
        now = time.monotonic()
        current = self.current_mA(now)
        if shutter_open is None:
            shutter_open = bool(self.shutter.value == "Open")
        self.block.write(
            current_mA=current,
            shutter_open=float(shutter_open),
            beam_dumped=float(self._dumped),
        )
        # The value and its alarm in one update.
        await write_with_alarm(self.current, current, *analog_alarm(self.current, current))
        since = now - self.epoch_s
        interval = self.fill.topup_interval_s
        countdown = interval - math.fmod(since, interval)
        await write_with_alarm(
            self.topup_countdown, countdown, *analog_alarm(self.topup_countdown, countdown)
        )

    @shutter.putter
    async def shutter(self, instance, value: str) -> str:
        if value != instance.value:
            await asyncio.sleep(_SHUTTER_MOVE_S)
        await self._publish(shutter_open=(value == "Open"))
        return value


class RingFaults(PVGroup):
    """Simulator control of the ring, under the simulator's own prefix (not the beamline's).

    Parameters
    ----------
    prefix
        ``[sim] control_prefix`` + ``RING:``.
    ring
        The :class:`StorageRing` it acts on.
    """

    beam_dump = pvproperty(
        name="BEAM_DUMP",
        value="Stored",
        dtype=ChannelType.ENUM,
        enum_strings=["Stored", "Dumped"],
        record="bo",
        doc="Simulator: beam dumped",
    )

    def __init__(self, prefix: str, *, ring: StorageRing, **kwargs):
        super().__init__(prefix, **kwargs)
        self.ring = ring

    async def initialise(self) -> None:
        """Describe the record; run once at start."""
        await describe(self.beam_dump, precision=3, field_units=BO_FIELD_UNITS)

    @beam_dump.putter
    async def beam_dump(self, instance, value: str) -> str:
        await self.ring.set_dumped(value == "Dumped")
        return value
