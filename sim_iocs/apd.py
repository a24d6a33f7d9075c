"""Avalanche-photodiode point counter that counts photons through the simulated sample.

PVs (prefix ``P``, e.g. ``STXM:APD:``):

- ``P DWELL``     counting time per point, s; puts outside [min_dwell_s, max_dwell_s] are
  refused with an error status
- ``P ACQUIRE``   put 1 to count for DWELL; the put completes when counting has finished
  (use put-completion / ``put(..., wait=True)``), then reads back 0
- ``P COUNTS``    photons counted in the last acquisition (integer)
- ``P RATE``      COUNTS / DWELL, counts per second

Counts are Poisson draws around the mean detected rate over the gate,
:func:`stxm_ctrl.physics.detector.expected_rate_Hz` of the sample's optical density under
the beam, averaged by :func:`~stxm_ctrl.physics.detector.gate_average_rate_Hz` over the
start, middle and end of the dwell (exact in step scans, a trapezoid rule while the stage
moves). The beam is where the ``sample_stage`` world block puts the stage at each instant,
plus the slow beam drift; the photons per second follow the ``ring`` block (none with the
shutter closed or the beam dumped). Both blocks are read once per count.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
from caproto import ChannelType
from caproto.server import PVGroup, pvproperty

from sim_iocs.motor import axis_positions_um
from sim_iocs.registry import IocContext
from sim_iocs.ring import RING, RingState
from sim_iocs.sample_stage import SAMPLE_STAGE
from sim_iocs.world import World
from stxm_ctrl.config import BeamlineConfig
from stxm_ctrl.physics.detector import (
    expected_rate_Hz,
    gate_average_rate_Hz,
    gate_sample_times_s,
)
from stxm_ctrl.physics.sample import FeatureMap, ResolutionPattern
from stxm_ctrl.physics.zone_plate import spot_sigma_um

__all__ = ["ApdCounter", "build"]

# asyncio sleeps wake on a millisecond grid (the selector rounds its timeout up), so the
# last part of a dwell is slept with time.sleep, blocking this IOC's loop for at most this.
_PRECISE_SLEEP_S = 0.0015


def build(context: IocContext) -> list[ApdCounter]:
    """The APD IOC: one :class:`ApdCounter` reading the stage and ring blocks."""
    return [
        ApdCounter(context.config.epics.prefixes.apd, config=context.config, world=context.world)
    ]


class ApdCounter(PVGroup):
    """Simulated APD point counter (see the module docstring for its PVs).

    Parameters
    ----------
    prefix
        PV prefix, e.g. ``STXM:APD:``.
    config
        Configuration: ``[sim]`` detector, beam, zone plate and sample.
    world
        The fleet's world (the ``sample_stage`` and ``ring`` blocks are read).
    """

    dwell = pvproperty(
        name="DWELL",
        value=0.001,
        dtype=ChannelType.DOUBLE,
        precision=5,
        units="s",
        doc="Counting time per point, s",
    )
    acquire = pvproperty(name="ACQUIRE", value=0, dtype=ChannelType.INT, doc="Put 1 to count")
    counts = pvproperty(
        name="COUNTS", value=0, dtype=ChannelType.LONG, read_only=True, units="counts"
    )
    rate = pvproperty(
        name="RATE",
        value=0.0,
        dtype=ChannelType.DOUBLE,
        read_only=True,
        units="counts/s",
        precision=1,
    )

    def __init__(self, prefix: str, *, config: BeamlineConfig, world: World, **kwargs):
        super().__init__(prefix, **kwargs)
        sim = config.sim
        self.sim = sim
        self.stage_block = world.reader(SAMPLE_STAGE)
        self.ring_block = world.reader(RING)
        self.epoch_s = world.epoch_s
        self.pattern = ResolutionPattern.from_config(sim.sample)
        self.feature_map = FeatureMap(
            self.pattern, spot_sigma_um(sim.zone_plate.outer_zone_width_nm)
        )
        self.counter_model = {
            "photon_flux_per_mA_Hz": sim.beam.photon_flux_per_mA_Hz,
            "quantum_efficiency": sim.apd.quantum_efficiency,
            "dark_count_rate_Hz": sim.apd.dark_count_rate_Hz,
            "dead_time_ns": sim.apd.dead_time_ns,
        }
        seed = sim.random_seed or None
        self.rng = np.random.default_rng(seed)

    async def initialise(self) -> None:
        """Publish the dwell limits; run once at start."""
        apd = self.sim.apd
        await self.dwell.write_metadata(
            lower_ctrl_limit=apd.min_dwell_s, upper_ctrl_limit=apd.max_dwell_s
        )

    @dwell.putter
    async def dwell(self, instance, value: float) -> float:
        apd = self.sim.apd
        if not apd.min_dwell_s <= value <= apd.max_dwell_s:
            raise ValueError(f"DWELL {value} s outside [{apd.min_dwell_s}, {apd.max_dwell_s}] s")
        return value

    @acquire.putter
    async def acquire(self, instance, value: int) -> int:
        if not value:
            return 0
        dwell_s = float(self.dwell.value)
        t0 = time.monotonic()
        t_end = t0 + dwell_s
        if dwell_s > _PRECISE_SLEEP_S:
            await asyncio.sleep(dwell_s - _PRECISE_SLEEP_S)
        time.sleep(max(t_end - time.monotonic(), 0.0))
        mean_rate = self.mean_rate_Hz(t0, t0 + dwell_s)
        counts = int(self.rng.poisson(mean_rate * dwell_s))
        await self.counts.write(counts)
        await self.rate.write(counts / dwell_s)
        return 0

    def mean_rate_Hz(self, t_start_s: float, t_end_s: float) -> float:
        """Mean detected rate over a gate from ``t_start_s`` to ``t_end_s`` (monotonic)."""
        ring = RingState.from_record(self.ring_block.read())
        stage = self.stage_block.read()
        times = gate_sample_times_s(t_start_s, t_end_s)
        hours = (times - self.epoch_s) / 3600.0
        beam = self.sim.beam
        beam_x = axis_positions_um(stage, "sample_x", times) + beam.drift_x_um_per_h * hours
        beam_y = axis_positions_um(stage, "sample_y", times) + beam.drift_y_um_per_h * hours
        od = self.feature_map.optical_density(beam_x, beam_y)
        rates = expected_rate_Hz(od, ring.current_on_sample_mA, **self.counter_model)
        return gate_average_rate_Hz(rates)
