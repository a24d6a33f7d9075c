"""Storage ring in top-up operation, with the beamline shutter.

PVs (prefix ``P``, e.g. ``STXM:RING:``):

- ``P CURRENT``         ring current, mA, updated at 2 Hz: decays with the beam lifetime
  and is topped up every ``topup_interval_s``
- ``P TOPUP_COUNTDOWN`` seconds to the next injection
- ``P SHUTTER``         "Closed" / "Open"; a put completes when the shutter has moved (0.1 s)
- ``P SIM:BEAM_DUMP``   simulator control: put 1 to dump the beam (current 0), 0 to refill

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

from sim_iocs.registry import IocContext
from sim_iocs.world import BlockLayout, BlockWriter
from stxm_ctrl.config import RingFillConfig
from stxm_ctrl.physics.ring import topup_current_mA

__all__ = ["RING", "RingState", "StorageRing", "build"]

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


def build(context: IocContext) -> list[StorageRing]:
    """The ring IOC: one :class:`StorageRing`, publishing to the ``ring`` block."""
    world = context.world
    return [
        StorageRing(
            context.config.epics.prefixes.ring,
            fill=context.config.sim.ring,
            block=world.own(RING),
            epoch_s=world.epoch_s,
        )
    ]


_UPDATE_PERIOD_S = 0.5
_SHUTTER_MOVE_S = 0.1


class StorageRing(PVGroup):
    """Simulated storage ring and shutter (see the module docstring for its PVs).

    Parameters
    ----------
    prefix
        PV prefix, e.g. ``STXM:RING:``.
    fill
        Top-up parameters from the configuration.
    block
        The ``ring`` world block this IOC publishes to.
    epoch_s
        Monotonic time the world began (the top-up cycle starts there).
    """

    current = pvproperty(
        name="CURRENT",
        value=0.0,
        dtype=ChannelType.DOUBLE,
        read_only=True,
        units="mA",
        precision=2,
    )
    topup_countdown = pvproperty(
        name="TOPUP_COUNTDOWN",
        value=0.0,
        dtype=ChannelType.DOUBLE,
        read_only=True,
        units="s",
        precision=1,
    )
    shutter = pvproperty(
        name="SHUTTER",
        value="Open",
        dtype=ChannelType.ENUM,
        enum_strings=["Closed", "Open"],
        doc="Beamline shutter",
    )
    beam_dump = pvproperty(
        name="SIM:BEAM_DUMP",
        value=0,
        dtype=ChannelType.INT,
        doc="Simulator control: 1 dumps the beam, 0 refills",
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
        """Start publishing the ring current; run once at start."""
        await self._publish()
        self._updates = asyncio.get_running_loop().create_task(self._update_forever())

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
            shutter_open = self.shutter.value == "Open"
        self.block.write(
            current_mA=current,
            shutter_open=float(shutter_open),
            beam_dumped=float(self._dumped),
        )
        await self.current.write(current)
        since = now - self.epoch_s
        interval = self.fill.topup_interval_s
        await self.topup_countdown.write(interval - math.fmod(since, interval))

    @shutter.putter
    async def shutter(self, instance, value: str) -> str:
        if value != instance.value:
            await asyncio.sleep(_SHUTTER_MOVE_S)
        await self._publish(shutter_open=(value == "Open"))
        return value

    @beam_dump.putter
    async def beam_dump(self, instance, value: int) -> int:
        self._dumped = bool(value)
        await self._publish()
        return int(self._dumped)
