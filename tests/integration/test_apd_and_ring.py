"""The simulated APD counts Poisson photons through the sample; the ring decays and dumps."""

from __future__ import annotations

import time

import epics
import numpy as np
import pytest
from conftest import expected_rate_at

# Points of the test pattern (relative to its centre): bare membrane, inside the big square.
MEMBRANE_UM = (0.0, -10.0)
FEATURE_UM = (3.0, -8.0)


def _count(devices, n: int) -> np.ndarray:
    values = []
    for _ in range(n):
        devices.apd.trigger().wait(timeout=5)
        values.append(devices.apd.counts.get())
    return np.array(values, dtype=float)


def _goto(devices, sim_config, point):
    sample = sim_config.sim.sample
    devices.sample_x.move(sample.center_x_um + point[0], wait=True)
    devices.sample_y.move(sample.center_y_um + point[1], wait=True)


def _ring_current(sim_config) -> float:
    return epics.caget(sim_config.epics.prefixes.ring + "CURRENT", use_monitor=False)


def test_counts_are_poisson_around_the_transmitted_flux(devices, sim_config):
    devices.apd.dwell.put(0.001, wait=True)
    _goto(devices, sim_config, MEMBRANE_UM)
    counts = _count(devices, 200)
    sample = sim_config.sim.sample
    expected = 0.001 * float(
        expected_rate_at(
            sim_config,
            sample.center_x_um + MEMBRANE_UM[0],
            sample.center_y_um + MEMBRANE_UM[1],
            _ring_current(sim_config),
        )
    )
    # Mean within 5 standard errors of the expectation (top-up decay is < 0.5 %).
    assert abs(counts.mean() - expected) < 5 * np.sqrt(expected / len(counts)) + 0.005 * expected
    # Poisson: variance equals the mean (Fano factor 1; 200 samples give about +-10 %).
    assert 0.7 < counts.var(ddof=1) / counts.mean() < 1.3
    assert len(np.unique(counts)) > 20  # not a fixed number


def test_features_absorb_as_the_ground_truth_says(devices, sim_config):
    devices.apd.dwell.put(0.002, wait=True)
    _goto(devices, sim_config, MEMBRANE_UM)
    membrane = _count(devices, 20).mean()
    _goto(devices, sim_config, FEATURE_UM)
    feature = _count(devices, 20).mean()
    # Transmission ratio exp(-feature_od), with a small dead-time correction.
    ratio = feature / membrane
    assert ratio == pytest.approx(np.exp(-sim_config.sim.sample.feature_od), rel=0.05)


def test_dwell_outside_the_counter_limits_is_refused_by_the_ioc(devices, sim_config):
    pv = sim_config.epics.prefixes.apd + "SCALER.TP"
    devices.apd.dwell.put(0.001, wait=True)
    epics.caput(pv, 50.0, wait=True, timeout=2)
    assert epics.caget(pv, use_monitor=False) == pytest.approx(0.001)
    assert devices.apd.dwell_limits_s == (
        sim_config.sim.apd.min_dwell_s,
        sim_config.sim.apd.max_dwell_s,
    )


def test_closed_shutter_leaves_only_dark_counts(devices, sim_config):
    devices.apd.dwell.put(0.01, wait=True)
    _goto(devices, sim_config, MEMBRANE_UM)
    devices.ring.shutter.set("Closed").wait(timeout=5)
    try:
        dark = _count(devices, 10)
    finally:
        devices.ring.shutter.set("Open").wait(timeout=5)
    open_counts = _count(devices, 3)
    dark_expected = sim_config.sim.apd.dark_count_rate_Hz * 0.01  # 0.3 counts per 10 ms
    assert dark.mean() < dark_expected + 3
    assert open_counts.min() > 1000 * dark.max() + 1000


def test_ring_current_decays_between_topups_and_drops_on_a_beam_dump(devices, sim_config):
    ring = sim_config.sim.ring
    current = _ring_current(sim_config)
    assert (
        ring.fill_current_mA * np.exp(-ring.topup_interval_s / (ring.beam_lifetime_h * 3600))
        <= current
        <= ring.fill_current_mA
    )
    dump = sim_config.sim.control_prefix + "RING:BEAM_DUMP"
    devices.apd.dwell.put(0.001, wait=True)
    epics.caput(dump, 1, wait=True)
    try:
        assert _ring_current(sim_config) == 0.0
        assert _count(devices, 5).max() < 5  # dark counts only
    finally:
        epics.caput(dump, 0, wait=True)
    time.sleep(0.05)
    assert _ring_current(sim_config) > 0.9 * ring.fill_current_mA
