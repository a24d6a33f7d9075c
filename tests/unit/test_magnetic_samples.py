"""Magnetic samples: the ground truth functions the simulator and the tests share."""

import numpy as np
import pytest

from stxm_ctrl.config import load_config
from stxm_ctrl.errors import UsageError
from stxm_ctrl.physics.instrument import InstrumentModel
from stxm_ctrl.physics.magnetic_samples import magnetic_sample
from stxm_ctrl.physics.spectra import absorption_per_nm, dichroism_per_nm

CONFIG = load_config()
FE_L3 = 706.8


def _sample(name, **changes):
    spec = CONFIG.sim.magnetic_samples[name].model_copy(update=changes)
    s = CONFIG.sim.sample
    return magnetic_sample(name, spec, s.reference_energy_eV, s.absorption_exponent)


def test_vortex_magnetisation_curls_with_its_circulation_and_has_a_core():
    for circulation in (1, -1):
        disc = _sample("vortex_flat", circulation=circulation, polarity=1)
        cx, cy = disc.feature_centers_um()[4]
        mx, my, mz = disc.magnetization(cx + 0.5, cy)  # right of the centre
        assert (float(mx), float(my)) == pytest.approx((0.0, circulation), abs=1e-9)
        mx, my, mz = disc.magnetization(cx, cy + 0.5)  # above it
        assert float(mx) == pytest.approx(-circulation)
        assert float(disc.magnetization(cx, cy)[2]) == pytest.approx(1.0)
    down = _sample("vortex_flat", polarity=-1)
    assert float(down.magnetization(*down.feature_centers_um()[0])[2]) == pytest.approx(-1.0)


def test_only_the_component_along_the_beam_is_seen():
    flat = _sample("vortex_flat")
    cx, cy = flat.feature_centers_um()[4]
    assert float(flat.beam_projection(cx, cy + 0.5)) == pytest.approx(0.0, abs=1e-9)
    tilted = _sample("vortex_flat", tilt_deg=30.0, circulation=1)
    cx, cy = tilted.feature_centers_um()[4]
    # m_x = -1 above the core; seen as m_x sin(30 deg).
    assert float(tilted.beam_projection(cx, cy + 0.5)) == pytest.approx(-0.5)
    assert float(tilted.beam_projection(cx, cy - 0.5)) == pytest.approx(0.5)


def test_od_and_asymmetry_follow_physics_md():
    flat = _sample("vortex_flat")
    cx, cy = flat.feature_centers_um()[4]
    bare = float(flat.optical_density(cx + 1.9, cy, FE_L3))
    on = float(flat.optical_density(cx + 0.5, cy, FE_L3))
    assert on - bare == pytest.approx(30 * float(absorption_per_nm("permalloy", FE_L3)))
    tilted = _sample("vortex_flat", tilt_deg=30.0)
    x, y = tilted.feature_centers_um()[4][0], tilted.feature_centers_um()[4][1] - 0.5
    pc = 0.9
    path = 30 / np.cos(np.radians(30))
    expected = np.tanh(pc * path * float(dichroism_per_nm("permalloy", FE_L3)) * 0.5)
    assert float(tilted.xmcd_asymmetry(x, y, FE_L3, pc)) == pytest.approx(expected)
    plus = float(tilted.optical_density(x, y, FE_L3, +pc))
    minus = float(tilted.optical_density(x, y, FE_L3, -pc))
    assert np.tanh((minus - plus) / 2) == pytest.approx(expected)


def test_maze_domains_are_up_and_down_in_about_equal_measure():
    maze = _sample("maze")
    x = maze.center_x_um + np.linspace(-5, 5, 200)
    y = maze.center_y_um + np.linspace(-5, 5, 200)
    mz = maze.magnetization(x[None, :], y[:, None])[2]
    assert abs(mz.mean()) < 0.2
    assert (abs(mz) > 0.9).mean() > 0.6  # mostly saturated domains, narrow walls


def test_pillars_alternate_in_plane_and_are_invisible_at_normal_incidence():
    pillars = _sample("pillars")
    (x0, y0), (x1, y1) = pillars.feature_centers_um()[:2]
    assert float(pillars.magnetization(x0, y0)[0]) == -float(pillars.magnetization(x1, y1)[0])
    flat = _sample("pillars", tilt_deg=0.0)
    assert float(flat.beam_projection(*flat.feature_centers_um()[0])) == 0.0
    # Cu under the pillar: its L3 white line.
    assert float(pillars.optical_density(x0, y0, 932.7)) > float(
        pillars.optical_density(x0, y0, 925.0)
    )


def test_the_instrument_sees_the_helicity_and_the_resolution_pattern_is_unchanged():
    model = InstrumentModel(CONFIG, feature_maps=False)
    optics, gap, _ = model.start_state()
    tilted = _sample("vortex_tilted")
    x, y = tilted.feature_centers_um()[4]
    rates = {
        pol: float(
            model.detected_rate_Hz(
                x, y + 0.5, optics, ring_current_mA=300.0, gap_mm=gap, polarization=pol
            )
        )
        for pol in ("Circular left", "Circular right")
    }
    assert rates["Circular left"] != pytest.approx(rates["Circular right"], rel=0.01)
    bare = model.detected_rate_Hz(
        0.0, 0.0, optics, ring_current_mA=300.0, gap_mm=gap, polarization="Circular left"
    )
    same = model.detected_rate_Hz(
        0.0, 0.0, optics, ring_current_mA=300.0, gap_mm=gap, polarization="Circular right"
    )
    assert float(bare) == float(same)  # no magnetic sample at the pattern


def test_overlapping_windows_are_refused_with_their_names():
    with pytest.raises(UsageError, match="vortex_flat.*maze.*overlap"):
        load_config(
            overrides={
                "sim": {
                    "magnetic_samples": {
                        "vortex_flat": {
                            "kind": "vortex_discs",
                            "center_x_um": 0.0,
                            "center_y_um": 300.0,
                        },
                        "maze": {
                            "kind": "maze_multilayer",
                            "center_x_um": 10.0,
                            "center_y_um": 300.0,
                        },
                    }
                }
            }
        )


def test_the_sample_in_the_beam_is_named_by_the_window_the_stage_is_in():
    sim = CONFIG.sim
    assert sim.sample_name_at(sim.sample.center_x_um + 25.0, sim.sample.center_y_um) == (
        "Resolution pattern on 100 nm SiN"
    )
    flat = sim.magnetic_samples["vortex_flat"]
    edge_um = flat.center_x_um + flat.window_size_um / 2
    assert sim.sample_name_at(edge_um, flat.center_y_um) == "vortex_flat (vortex_discs)"
    assert sim.sample_name_at(edge_um + 0.1, flat.center_y_um) == (
        "silicon frame of the chip (between its windows)"
    )
    maze = sim.magnetic_samples["maze"]
    assert sim.sample_name_at(maze.center_x_um, maze.center_y_um) == "maze (maze_multilayer)"
    assert sim.sample_name_at(sim.sample.chip_size_um, 0.0) == "open beam (off the chip)"
