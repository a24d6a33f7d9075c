"""The simulated test sample: known OD of membrane, features and frame; fast look-up map."""

from __future__ import annotations

import numpy as np
import pytest

from stxm_ctrl.config import load_config
from stxm_ctrl.physics.sample import FeatureMap, ResolutionPattern
from stxm_ctrl.physics.zone_plate import spot_sigma_um


@pytest.fixture(scope="module")
def pattern() -> ResolutionPattern:
    return ResolutionPattern.from_config(load_config().sim.sample)


@pytest.fixture(scope="module")
def feature_map(pattern) -> FeatureMap:
    return FeatureMap(pattern, spot_sigma_um(25.0))


def test_od_levels_are_membrane_feature_and_frame(pattern):
    xs = np.linspace(-25, 25, 501)
    od = pattern.optical_density(xs[None, :], xs[:, None])
    # Nowhere below the bare membrane, nowhere above the frame.
    assert od.min() == pytest.approx(pattern.membrane_od, abs=1e-6)
    assert od.max() <= pattern.frame_od
    # Features reach membrane + feature OD (a filled feature, not only edges).
    assert od[np.abs(xs) < 12][:, np.abs(xs) < 12].max() == pytest.approx(
        pattern.membrane_od + pattern.feature_od, abs=1e-3
    )
    # Outside the window: the silicon frame.
    assert pattern.optical_density(35.0, 0.0) == pytest.approx(pattern.frame_od)


def test_pattern_has_structure_at_several_scales(pattern):
    assert len(pattern.features()) > 10
    xs = np.linspace(-11, 11, 221)
    od = pattern.optical_density(xs[None, :], xs[:, None])
    covered = (od > pattern.membrane_od + pattern.feature_od / 2).mean()
    assert 0.02 < covered < 0.5  # features on open membrane, neither empty nor filled


def test_pattern_is_not_symmetric_so_flips_are_visible(pattern):
    xs = np.linspace(-11, 11, 111)
    od = pattern.optical_density(xs[None, :], xs[:, None])
    assert not np.allclose(od, od[:, ::-1], atol=0.05)
    assert not np.allclose(od, od[::-1, :], atol=0.05)


def test_pattern_moves_with_its_centre(pattern):
    from dataclasses import replace

    shifted = replace(pattern, center_x_um=3.0, center_y_um=-2.0)
    xs = np.linspace(-8, 8, 41)
    np.testing.assert_allclose(
        shifted.optical_density(xs + 3.0, xs - 2.0), pattern.optical_density(xs, xs)
    )


def test_feature_map_agrees_with_the_analytic_pattern(pattern, feature_map):
    rng = np.random.default_rng(1)
    x = rng.uniform(-30, 30, 4000)
    y = rng.uniform(-30, 30, 4000)
    exact = pattern.optical_density(x, y, spot_sigma_um(25.0))
    fast = feature_map.optical_density(x, y)
    assert np.abs(fast - exact).max() < 5e-3


def test_feature_map_resolves_edges_at_the_spot_size(pattern, feature_map):
    # Across a feature edge the OD rises over a few spot sigmas, not a grid-smeared width.
    sigma = spot_sigma_um(25.0)
    # Find an edge: scan a line through the pattern and take the steepest step.
    x = np.linspace(-11, 11, 22001)  # 1 nm steps
    od = feature_map.optical_density(x, np.full_like(x, 0.5))
    i = int(np.argmax(np.abs(np.diff(od))))
    window = np.abs(x - x[i]) < 6 * sigma
    segment = od[window]
    rise = (segment > segment.min() + 0.1 * np.ptp(segment)) & (
        segment < segment.min() + 0.9 * np.ptp(segment)
    )
    width_um = rise.sum() * 0.001
    # 10-90 % width of an error-function edge is 2.56 sigma.
    assert width_um == pytest.approx(2.56 * sigma, rel=0.25)
