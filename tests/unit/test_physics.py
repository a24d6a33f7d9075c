"""Pure physics of the simulated beamline: motion, ring, zone plate, detector."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stxm_ctrl.physics.detector import detected_rate_Hz, transmitted_rate_Hz
from stxm_ctrl.physics.motion import Move, move_duration_s
from stxm_ctrl.physics.ring import topup_current_mA
from stxm_ctrl.physics.zone_plate import (
    focal_length_um,
    rayleigh_resolution_nm,
    spot_sigma_um,
    wavelength_nm,
)


class TestMotion:
    def test_long_move_is_two_ramps_plus_cruise(self):
        # 100 um at 2000 um/s with 5 ms ramps: 2 * 5 ms + (100 - 10) / 2000 s.
        assert move_duration_s(100.0, 2000.0, 0.005) == pytest.approx(0.01 + 0.045)

    def test_short_move_never_reaches_full_speed(self):
        # Triangle profile: t = 2 sqrt(d / a), a = v / t_acc.
        a = 2000.0 / 0.005
        assert move_duration_s(2.0, 2000.0, 0.005) == pytest.approx(2 * math.sqrt(2.0 / a))
        assert move_duration_s(2.0, 2000.0, 0.005) < 0.01

    def test_direction_does_not_matter_and_zero_is_instant(self):
        assert move_duration_s(-100.0, 2000.0, 0.005) == move_duration_s(100.0, 2000.0, 0.005)
        assert move_duration_s(0.0, 2000.0, 0.005) == 0.0

    def test_no_acceleration_time_means_constant_velocity(self):
        assert move_duration_s(10.0, 100.0, 0.0) == pytest.approx(0.1)

    @pytest.mark.parametrize("distance", [0.3, 5.0, 300.0, -40.0])
    def test_profile_is_continuous_monotonic_and_ends_on_target(self, distance):
        move = Move(
            10.0, 10.0 + distance, t0_s=1.0, velocity_um_per_s=2000.0, acceleration_time_s=0.005
        )
        times = np.linspace(0.9, 1.0 + move.duration_s + 0.1, 2001)
        positions = np.array([move.position_um(t) for t in times])
        assert positions[0] == 10.0
        assert positions[-1] == 10.0 + distance
        steps = np.diff(positions) * np.sign(distance)
        assert (steps >= -1e-12).all()
        # No jumps: the largest step is what full speed covers in one time step.
        assert steps.max() <= 2000.0 * (times[1] - times[0]) * 1.0001

    def test_halfway_in_time_is_halfway_in_space(self):
        move = Move(0.0, 100.0, 0.0, 2000.0, 0.005)
        assert move.position_um(move.duration_s / 2) == pytest.approx(50.0)


class TestRing:
    def test_current_decays_with_the_lifetime_and_is_refilled(self):
        fill, lifetime_h, interval = 300.0, 8.0, 120.0
        assert topup_current_mA(0.0, fill, lifetime_h, interval) == fill
        just_before = topup_current_mA(119.999, fill, lifetime_h, interval)
        assert just_before == pytest.approx(fill * math.exp(-120.0 / (8 * 3600)), rel=1e-6)
        assert topup_current_mA(120.0, fill, lifetime_h, interval) == pytest.approx(fill)
        assert topup_current_mA(180.0, fill, lifetime_h, interval) == pytest.approx(
            topup_current_mA(60.0, fill, lifetime_h, interval)
        )

    def test_topup_keeps_the_current_within_a_fraction_of_a_percent(self):
        currents = [topup_current_mA(t, 300.0, 8.0, 120.0) for t in np.arange(0, 600, 0.5)]
        assert 300.0 * 0.995 < min(currents) <= max(currents) == 300.0


class TestZonePlate:
    def test_worked_example_of_the_physics_reference(self):
        # D = 240 um, drN = 25 nm: f = A1 * E with A1 = 4.839 um/eV; resolution 30.5 nm.
        energy = 706.8
        assert focal_length_um(energy, 240.0, 25.0) / energy == pytest.approx(4.839, abs=1e-3)
        assert rayleigh_resolution_nm(25.0) == pytest.approx(30.5)

    def test_wavelength_and_spot(self):
        assert wavelength_nm(1239.84) == pytest.approx(1.0)
        # The Rayleigh resolution is the spot's FWHM.
        assert 2.3548 * spot_sigma_um(25.0) == pytest.approx(0.0305, rel=1e-4)


class TestDetector:
    def test_beer_lambert(self):
        rates = transmitted_rate_Hz(1e6, [0.0, 1.0, 9.0])
        np.testing.assert_allclose(rates, [1e6, 1e6 / math.e, 1e6 * math.exp(-9)])

    def test_efficiency_and_dark_counts_at_low_rate(self):
        assert detected_rate_Hz(1000.0, 0.8, 30.0, 0.0) == pytest.approx(830.0)

    def test_dead_time_saturates_towards_one_over_tau(self):
        tau_ns = 6.0
        rate = detected_rate_Hz(1e12, 1.0, 0.0, tau_ns)
        assert rate < 1e9 / tau_ns
        assert rate == pytest.approx(1e9 / tau_ns, rel=1e-3)
        # At 1 MHz the loss is N * tau = 0.6 %.
        assert detected_rate_Hz(1e6, 1.0, 0.0, tau_ns) == pytest.approx(1e6 / 1.006)
