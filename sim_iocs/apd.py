"""Avalanche-photodiode point counter that counts photons through the simulated sample.

PVs (prefix ``P``, e.g. ``STXM:APD:``):

- ``P DWELL``     counting time per point, s; puts outside [min_dwell_s, max_dwell_s] are
  refused with an error status
- ``P ACQUIRE``   put 1 to count for DWELL; the put completes when counting has finished
  (use put-completion / ``put(..., wait=True)``), then reads back 0
- ``P COUNTS``    photons counted in the last acquisition (integer)
- ``P RATE``      COUNTS / DWELL, counts per second

Counts are Poisson draws around the detected rate
``QE * I0 * exp(-OD(x, y)) + dark``, reduced by the counter's dead time, where I0 is the
photon flux per mA times the ring current (zero with the shutter closed or the beam
dumped) and OD is the sample's optical density under the beam: the stage position from
the world file plus the slow beam drift, averaged over the start, middle and end of the
dwell (exact in step scans, a trapezoid rule while the stage moves).
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
from caproto import ChannelType
from caproto.server import PVGroup, pvproperty

from sim_iocs.world import World
from stxm_ctrl.config import BeamlineConfig
from stxm_ctrl.physics.detector import detected_rate_Hz, transmitted_rate_Hz
from stxm_ctrl.physics.sample import FeatureMap, ResolutionPattern
from stxm_ctrl.physics.zone_plate import spot_sigma_um

__all__ = ["ApdCounter", "expected_rate_Hz", "rate_through_Hz"]

# asyncio sleeps wake on a millisecond grid (the selector rounds its timeout up), so the
# last part of a dwell is slept with time.sleep, blocking this IOC's loop for at most this.
_PRECISE_SLEEP_S = 0.0015


def expected_rate_Hz(
    config: BeamlineConfig,
    pattern: ResolutionPattern,
    beam_x_um: np.ndarray | float,
    beam_y_um: np.ndarray | float,
    ring_current_mA: float,
) -> np.ndarray:
    """Mean detected count rate with the beam at (x, y) on the sample, shutter open.

    This is the ground truth the simulated counter draws from; tests compare images with
    it.
    """
    sigma = spot_sigma_um(config.zone_plate.outer_zone_width_nm)
    od = pattern.optical_density(beam_x_um, beam_y_um, sigma)
    return rate_through_Hz(config, od, ring_current_mA)


def rate_through_Hz(
    config: BeamlineConfig, optical_density: np.ndarray, ring_current_mA: float
) -> np.ndarray:
    """Mean detected count rate through a sample of ``optical_density``, shutter open."""
    od = optical_density
    incident = config.beam.photon_flux_per_mA_Hz * ring_current_mA
    return detected_rate_Hz(
        transmitted_rate_Hz(incident, od),
        config.apd.quantum_efficiency,
        config.apd.dark_count_rate_Hz,
        config.apd.dead_time_ns,
    )


class ApdCounter(PVGroup):
    """Simulated APD point counter (see the module docstring for its PVs).

    Parameters
    ----------
    prefix
        PV prefix, e.g. ``STXM:APD:``.
    config
        Beamline configuration: detector, beam, zone plate and sample.
    world
        The shared world (stage positions, ring current, shutter).
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
        self.config = config
        self.world = world
        self.pattern = ResolutionPattern.from_config(config.sample)
        self.feature_map = FeatureMap(
            self.pattern, spot_sigma_um(config.zone_plate.outer_zone_width_nm)
        )
        seed = config.sim.random_seed or None
        self.rng = np.random.default_rng(seed)

    async def initialise(self) -> None:
        """Publish the dwell limits; run once at start."""
        apd = self.config.apd
        await self.dwell.write_metadata(
            lower_ctrl_limit=apd.min_dwell_s, upper_ctrl_limit=apd.max_dwell_s
        )

    @dwell.putter
    async def dwell(self, instance, value: float) -> float:
        apd = self.config.apd
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
        ring = self.world.ring()
        current = 0.0 if (not ring.shutter_open or ring.beam_dumped) else ring.current_mA
        times = np.array([t_start_s, 0.5 * (t_start_s + t_end_s), t_end_s])
        xs, ys = zip(*(self.world.stage_position_um(t) for t in times), strict=True)
        hours = (times - self.world.epoch_s) / 3600.0
        beam_x = np.array(xs) + self.config.beam.drift_x_um_per_h * hours
        beam_y = np.array(ys) + self.config.beam.drift_y_um_per_h * hours
        rates = rate_through_Hz(
            self.config, self.feature_map.optical_density(beam_x, beam_y), current
        )
        return float(0.25 * rates[0] + 0.5 * rates[1] + 0.25 * rates[2])
