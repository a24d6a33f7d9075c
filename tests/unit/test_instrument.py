"""The instrument model: what the APD sees for any state of the optics (pure, no IOCs)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from stxm_ctrl.config import load_config
from stxm_ctrl.physics.detector import detected_rate_Hz
from stxm_ctrl.physics.instrument import InstrumentModel
from stxm_ctrl.physics.monochromator import EnergyMove
from stxm_ctrl.physics.sample import ResolutionPattern

# Points of the test pattern (relative to its centre).
MEMBRANE = (0.0, -10.0)
FRAME = (40.0, 0.0)  # outside the 60 um window, on the chip
SQUARE_EDGE_X = 2.5  # the big square's left edge, at y = -8 .. -7.5 it is solid


@pytest.fixture(scope="module")
def config():
    return load_config()


@pytest.fixture(scope="module")
def model(config):
    return InstrumentModel(config)


@pytest.fixture(scope="module")
def exact(config):
    return InstrumentModel(config, feature_maps=False)


def _rate(model, x, y, optics=None, *, gap=None, polarization="Circular left", mA=300.0):
    start, start_gap, _ = model.start_state()
    return model.detected_rate_Hz(
        x,
        y,
        optics or start,
        ring_current_mA=mA,
        gap_mm=start_gap if gap is None else gap,
        polarization=polarization,
    )


def test_the_simulator_starts_aligned_focused_and_tuned(model, config):
    optics, gap, polarization = model.start_state()
    readings = model.start_readings()
    f = model.zone_plate.focal_length_um(config.sim.beam.energy_eV)
    assert readings["zp_z"] == pytest.approx(-(f + config.sim.optics.sample_z_offset_um))
    assert readings["osa_z"] == pytest.approx(-config.optics.a0_um)
    assert (readings["osa_x"], readings["osa_y"]) == (
        config.sim.optics.osa_center_x_um,
        config.sim.optics.osa_center_y_um,
    )
    assert optics.zp_distance_um == pytest.approx(f)  # in focus on the real sample
    assert (optics.osa_x_um, optics.osa_y_um, optics.detector_x_um) == (0.0, 0.0, 0.0)
    assert float(model.undulator.energy_eV(gap, polarization)) == pytest.approx(
        config.sim.beam.energy_eV
    )


def test_a_sample_offset_moves_the_focus_and_the_distances(config):
    shifted = InstrumentModel(
        config.with_overrides({"sim": {"optics": {"sample_z_offset_um": 30}}})
    )
    readings = shifted.start_readings()
    optics = shifted.optics_positions(706.8, readings)
    assert optics.zp_distance_um == pytest.approx(shifted.zone_plate.focal_length_um(706.8))
    assert readings["zp_z"] == pytest.approx(-(shifted.zone_plate.focal_length_um(706.8) + 30))


def test_in_focus_membrane_rate_is_the_flux_through_the_membrane(model, config):
    sim = config.sim
    spec = config.optics.selected_zone_plate
    incident = sim.beam.photon_flux_per_mA_Hz * spec.first_order_efficiency * 300.0
    expected = detected_rate_Hz(
        incident * math.exp(-sim.sample.membrane_od),
        sim.apd.quantum_efficiency,
        sim.apd.dark_count_rate_Hz,
        sim.apd.dead_time_ns,
    )
    assert _rate(model, *MEMBRANE) == pytest.approx(expected, rel=1e-6)
    # A dark frame and a bright membrane: the image has contrast.
    assert _rate(model, *FRAME) < 1e-3 * expected


def test_grids_agree_with_the_exact_pattern(model, exact):
    xs = np.linspace(-11, 11, 67)
    x, y = np.meshgrid(xs, xs)
    fast, slow = _rate(model, x, y), _rate(exact, x, y)
    error = np.abs(fast / slow - 1)
    assert np.quantile(error, 0.99) < 5e-3
    # Where two shapes overlap exactly on an edge (the L marker's corner) the grid clips
    # the summed coverage per pixel, the exact pattern per position: a few % there.
    assert error.max() < 0.06


def test_culling_gives_the_same_od_as_every_shape(config):
    pattern = ResolutionPattern.from_config(config.sim.sample)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-12, 12, 200), rng.uniform(-12, 12, 200)
    for sigma in (0.013, 0.3, 3.0):
        culled = pattern.optical_density(x, y, sigma)
        features = sum(shape.coverage(x, y, sigma) for shape in pattern.features())
        features = np.clip(features, 0, 1)
        half = pattern.window_size_um / 2
        window = np.asarray(_box(x, y, half, sigma))
        full = (
            window * (pattern.membrane_od + pattern.feature_od * features)
            + (1 - window) * pattern.frame_od
        )
        np.testing.assert_allclose(culled, full, atol=1e-8)


def _box(x, y, half, sigma):
    from stxm_ctrl.physics.sample import Rect

    return Rect(-half, half, -half, half).coverage(x, y, sigma)


def test_defocus_blurs_a_sharp_edge_as_the_spot_size_says(model):
    optics, _, _ = model.start_state()
    x = SQUARE_EDGE_X + np.linspace(-1.0, 1.0, 401)
    y = np.full_like(x, -7.75)

    def width_10_90(rates):
        r = (rates - rates.min()) / (rates.max() - rates.min())  # falls across the edge
        return x[np.argmax(r < 0.1)] - x[np.argmax(r < 0.9)]

    focused = width_10_90(_rate(model, x, y, optics))
    defocus = 15.0
    blurred_optics = replace(optics, zp_distance_um=optics.zp_distance_um + defocus)
    blurred = width_10_90(_rate(model, x, y, blurred_optics))
    sigma = model.beam_path.spot_sigma_um(blurred_optics)
    assert sigma > 5 * model.zone_plate.focused_sigma_um
    # A Gaussian edge's 10-90 % width is 2.563 sigma (in OD; exp() barely changes it).
    assert blurred == pytest.approx(2.563 * sigma, rel=0.1)
    assert focused < blurred / 5


def test_osa_off_axis_clips_the_first_order_and_leaks_the_zero_order(model):
    optics, _, _ = model.start_state()
    on_axis = _rate(model, *MEMBRANE, optics)
    off = replace(optics, osa_x_um=30.0)  # hole (25 um radius) off the cone
    first, zero = model.beam_path.weights(off)
    assert 0 < first < model.beam_path.first_order_efficiency
    assert zero > 0  # the zero order now passes the hole
    assert _rate(model, *MEMBRANE, off) < on_axis
    # With the focus on the frame the image is dark, but the zero-order patch (12.5 um
    # sigma, where the hole is: 35 um to the left) lies on the membrane: a background.
    leaking = replace(optics, osa_x_um=-35.0)
    on_frame = (35.0, 0.0)
    assert _rate(model, *on_frame, leaking) > 30 * _rate(model, *on_frame, optics)


def test_osa_out_lets_the_whole_zero_order_through(model):
    optics, _, _ = model.start_state()
    out = replace(optics, osa_x_um=2000.0)
    first, zero = model.beam_path.weights(out)
    assert first == pytest.approx(model.beam_path.first_order_efficiency)
    assert zero == pytest.approx(model.beam_path.zero_order_efficiency)
    assert _rate(model, *MEMBRANE, out) > _rate(model, *MEMBRANE, optics)


def test_detector_off_the_beam_counts_dark_counts(model, config):
    optics, _, _ = model.start_state()
    away = replace(optics, detector_x_um=3000.0)
    assert _rate(model, *MEMBRANE, away) == pytest.approx(config.sim.apd.dark_count_rate_Hz)


def test_a_detuned_gap_loses_flux_as_the_harmonic_line_says(model):
    optics, gap, polarization = model.start_state()
    tuned = _rate(model, *MEMBRANE, optics, gap=gap)
    detuned = _rate(model, *MEMBRANE, optics, gap=gap + 0.1)
    photons = lambda g: model.photon_rate_Hz(  # noqa: E731
        *MEMBRANE, optics, ring_current_mA=300.0, gap_mm=g, polarization=polarization
    )
    ratio = float(photons(gap + 0.1) / photons(gap))
    assert ratio == pytest.approx(
        float(model.undulator.relative_flux(optics.energy_eV, gap + 0.1, polarization)), rel=1e-3
    )
    assert ratio < 0.8
    assert detuned < tuned


def test_ods_fall_with_energy_and_there_is_no_sample_beyond_the_chip(model, config):
    energy = 850.0
    optics = model.optics_positions(energy, model.start_readings(energy))
    gap = model.tuned_gap_mm(energy)
    photons = model.photon_rate_Hz(
        *MEMBRANE, optics, ring_current_mA=300.0, gap_mm=gap, polarization="Circular left"
    )
    open_beam = model.photon_rate_Hz(
        config.sim.sample.chip_size_um,
        0.0,
        optics,
        ring_current_mA=300.0,
        gap_mm=gap,
        polarization="Circular left",
    )
    od = float(-np.log(photons / open_beam))
    expected = config.sim.sample.membrane_od * (
        energy / config.sim.sample.reference_energy_eV
    ) ** (-config.sim.sample.absorption_exponent)
    assert od == pytest.approx(expected, rel=1e-3)


def test_no_current_no_photons(model, config):
    assert _rate(model, *MEMBRANE, mA=0.0) == pytest.approx(config.sim.apd.dark_count_rate_Hz)


class TestEnergyMove:
    def test_waits_slews_and_settles_onto_the_target(self):
        move = EnergyMove(700.0, 710.0, 1.0, 50.0, 0.3, 0.15)
        assert move.energy_eV(1.0 + 0.29) == 700.0  # dead time
        times = np.linspace(1.0, 5.0, 4001)
        energies = move.energies_eV(times)
        assert (np.diff(energies) >= -1e-12).all()  # monotonic, no overshoot
        assert energies[-1] == pytest.approx(710.0, abs=1e-6)
        done = move.done_s(0.005)
        assert done >= 1.0 + 0.3 + 10.0 / 50.0
        assert abs(move.energy_eV(done) - 710.0) == pytest.approx(0.005, rel=1e-6)
        assert abs(move.energy_eV(done - 0.01) - 710.0) > 0.005

    def test_without_a_lag_the_energy_follows_the_ramp(self):
        move = EnergyMove(710.0, 700.0, 0.0, 50.0, 0.1, 0.0)
        assert move.energy_eV(0.2) == pytest.approx(705.0)
        assert move.done_s(0.005) == pytest.approx(0.3)

    def test_at_rest_stays(self):
        assert EnergyMove.at_rest(706.8).energy_eV(123.0) == 706.8
