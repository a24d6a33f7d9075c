"""Storage ring in top-up operation, with the beamline shutter.

PVs (prefix ``P``, e.g. ``STXM:RING:``):

- ``P CURRENT``         ring current, mA, updated at 2 Hz: decays with the beam lifetime
  and is topped up every ``topup_interval_s``
- ``P TOPUP_COUNTDOWN`` seconds to the next injection
- ``P SHUTTER``         "Closed" / "Open"; a put completes when the shutter has moved (0.1 s)
- ``P SIM:BEAM_DUMP``   simulator control: put 1 to dump the beam (current 0), 0 to refill

The ring IOC owns the ring part of the world file; the detector reads it from there.
"""

from __future__ import annotations

import asyncio
import math
import time

from caproto import ChannelType
from caproto.server import PVGroup, pvproperty

from sim_iocs.world import RingState, World
from stxm_ctrl.config import RingConfig
from stxm_ctrl.physics.ring import topup_current_mA

__all__ = ["StorageRing"]

_UPDATE_PERIOD_S = 0.5
_SHUTTER_MOVE_S = 0.1


class StorageRing(PVGroup):
    """Simulated storage ring and shutter (see the module docstring for its PVs).

    Parameters
    ----------
    prefix
        PV prefix, e.g. ``STXM:RING:``.
    ring
        Ring parameters from the configuration.
    world
        The shared world this IOC publishes ring current and shutter state to.
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

    def __init__(self, prefix: str, *, ring: RingConfig, world: World, **kwargs):
        super().__init__(prefix, **kwargs)
        self.ring = ring
        self.world = world
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
            now_s - self.world.epoch_s,
            self.ring.fill_current_mA,
            self.ring.beam_lifetime_h,
            self.ring.topup_interval_s,
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
        self.world.write_ring(RingState(current, shutter_open, self._dumped))
        await self.current.write(current)
        since = now - self.world.epoch_s
        interval = self.ring.topup_interval_s
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
