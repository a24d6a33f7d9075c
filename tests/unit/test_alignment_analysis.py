"""The alignment analyses find the simulator's truth in data made by the same physics.

The data here are what the simulated APD would count (the beam-path and sample models of
stxm_ctrl.physics, with Poisson noise); the integration tests run the same scans on the
simulated IOCs.
"""

from __future__ import annotations

import numpy as np
import pytest

from plans.alignment_analysis import (
    AnalysisError,
    disc_center,
    edge_width_um,
    sample_focus_from_edges,
    x_focus_from_osa_scan,
)
from stxm_ctrl.physics.beam_path import BeamPath, OpticsPositions
from stxm_ctrl.physics.sample import ResolutionPattern
from stxm_ctrl.physics.zone_plate import ZonePlate

ENERGY_EV = 706.8
A0_UM = 500.0
PHOTONS = 36_000.0  # per point with the whole first order on the detector


@pytest.fixture
def optics() -> tuple[ZonePlate, BeamPath]:
    zone_plate = ZonePlate(240.0, 25.0, 95.0)
    return zone_plate, BeamPath(zone_plate, osa_diameter_um=50.0)


def _counts(path: BeamPath, at: OpticsPositions, rng: np.random.Generator) -> int:
    first, zero = path.weights(at)
    return int(rng.poisson(PHOTONS * (first + zero) / path.first_order_efficiency))


def test_osa_image_centre_within_a_pixel(optics) -> None:
    zone_plate, path = optics
    rng = np.random.default_rng(1)
    true_x, true_y = 4.0, -2.5
    f = zone_plate.focal_length_um(ENERGY_EV)
    xs = np.linspace(-60, 60, 61)
    ys = np.linspace(-60, 60, 61)
    image = np.array(
        [
            [
                _counts(
                    path,
                    OpticsPositions(ENERGY_EV, f, A0_UM, osa_x_um=x - true_x, osa_y_um=y - true_y),
                    rng,
                )
                for x in xs
            ]
            for y in ys
        ]
    )
    x0, y0 = disc_center(xs, ys, image)
    pixel = xs[1] - xs[0]
    assert abs(x0 - true_x) < pixel and abs(y0 - true_y) < pixel


def test_detector_image_centre_within_a_pixel(optics) -> None:
    zone_plate, path = optics
    rng = np.random.default_rng(2)
    true_x, true_y = 150.0, -80.0
    f = zone_plate.focal_length_um(ENERGY_EV)
    xs = np.linspace(-1000, 1300, 47)
    ys = np.linspace(-1200, 1000, 45)
    image = np.array(
        [
            [
                _counts(
                    path,
                    OpticsPositions(
                        ENERGY_EV, f, A0_UM, detector_x_um=x - true_x, detector_y_um=y - true_y
                    ),
                    rng,
                )
                for x in xs
            ]
            for y in ys
        ]
    )
    x0, y0 = disc_center(xs, ys, image)
    assert abs(x0 - true_x) < xs[1] - xs[0] and abs(y0 - true_y) < ys[1] - ys[0]


def test_disc_cut_by_the_image_edge_is_refused() -> None:
    xs = ys = np.linspace(-10, 10, 21)
    image = np.where(np.hypot(*np.meshgrid(xs - 9, ys)) < 4, 100.0, 1.0)
    with pytest.raises(AnalysisError, match="touches the edge of the image"):
        disc_center(xs, ys, image)


def test_sample_focus_within_the_depth_of_focus(optics) -> None:
    zone_plate, path = optics
    rng = np.random.default_rng(3)
    pattern = ResolutionPattern(0.0, 0.0, 60.0, 0.18, 0.7, 9.0)
    f = zone_plate.focal_length_um(ENERGY_EV)
    sample_offset_um = 12.0  # the true focus is 12 um further than the nominal one
    z = np.linspace(f + sample_offset_um - 6, f + sample_offset_um + 6, 13)
    line = np.linspace(1.8, 3.2, 71)  # across the left edge of the square, at y = -8 um
    rows = []
    for zp_distance in z:
        sigma = path.spot_sigma_um(
            OpticsPositions(ENERGY_EV, zp_distance - sample_offset_um, A0_UM)
        )
        od = pattern.optical_density(line, np.full_like(line, -8.0), sigma)
        rows.append(rng.poisson(PHOTONS * np.exp(-od)))
    focus = sample_focus_from_edges(z, line, np.array(rows))
    assert abs(focus.focus_z_um - (f + sample_offset_um)) < zone_plate.depth_of_focus_um(ENERGY_EV)
    assert focus.sigma_at_focus_um == pytest.approx(zone_plate.focused_sigma_um, rel=0.25)


def test_sample_focus_outside_the_scan_is_refused(optics) -> None:
    zone_plate, path = optics
    pattern = ResolutionPattern(0.0, 0.0, 60.0, 0.18, 0.7, 9.0)
    f = zone_plate.focal_length_um(ENERGY_EV)
    z = np.linspace(f + 4, f + 9, 6)  # edges still measurable, the focus below them
    line = np.linspace(1.8, 3.2, 71)
    sigmas = [path.spot_sigma_um(OpticsPositions(ENERGY_EV, d, A0_UM)) for d in z]
    y = np.full_like(line, -8.0)
    rows = [PHOTONS * np.exp(-pattern.optical_density(line, y, sigma)) for sigma in sigmas]
    with pytest.raises(AnalysisError, match="outside the scan"):
        sample_focus_from_edges(z, line, np.array(rows))


def test_flat_line_has_no_edge() -> None:
    with pytest.raises(AnalysisError, match="no edge"):
        edge_width_um(np.linspace(0, 1, 50), np.full(50, 1000.0))


def test_osa_focus_x_crossing(optics) -> None:
    zone_plate, path = optics
    rng = np.random.default_rng(4)
    f = zone_plate.focal_length_um(ENERGY_EV)
    crossing = f + A0_UM  # focus in the OSA plane
    z = np.linspace(crossing - 2000, crossing + 2000, 41)
    s = np.linspace(-100, 100, 101)
    image = np.array(
        [
            [_counts(path, OpticsPositions(ENERGY_EV, d, A0_UM, osa_x_um=x), rng) for x in s]
            for d in z
        ]
    )
    # The X's arms move 0.025 um per um of ZP z: a 2 um OSA pixel resolves ~80 um of ZP z
    # per pixel, and the fit over 41 lines does far better than that.
    assert abs(x_focus_from_osa_scan(z, s, image) - crossing) < 5.0
