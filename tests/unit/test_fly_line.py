"""The fly-scan line maths (stxm_ctrl.physics.fly_line): timing, trajectory, counting, binning."""

from __future__ import annotations

import numpy as np
import pytest

from stxm_ctrl.config import FlyConfig, InterferometerConfig, load_config
from stxm_ctrl.physics.fly_line import (
    FramePlan,
    frame_time_s,
    interferometer_drift_um,
    line_data_length,
    line_timing,
    pack_line,
    simulate_sweep,
    sweep_move,
    unpack_line,
)
from stxm_ctrl.physics.instrument import InstrumentModel

FLY = FlyConfig()


def _plan(**kw) -> FramePlan:
    values = {
        "start_x_um": -5.0,
        "stop_x_um": 5.0,
        "nx": 21,
        "start_y_um": -10.0,
        "stop_y_um": -9.0,
        "ny": 5,
        "dwell_s": 0.001,
        "snake": False,
    }
    return FramePlan(**(values | kw))


def _line(plan, index=0, *, rate, coarse=(0.0, 0.0), drift=None, noise_um=0.0, seed=1, **kw):
    no_drift = lambda t: (np.zeros_like(t), np.zeros_like(t))  # noqa: E731
    drift = drift or no_drift
    t0 = 100.0
    mid = t0 + 0.5 * plan.nx * plan.dwell_s
    dx, dy = drift(np.array([mid]))
    offset_x = -(coarse[0] + float(dx[0]))
    move = sweep_move(plan, index, t0, offset_x, FLY.run_up_s)
    piezo_y = plan.line_y_um(index) - coarse[1] - float(dy[0])
    return simulate_sweep(
        plan,
        index,
        move=move,
        t_sweep_s=t0 + FLY.run_up_s,
        piezo_y_um=piezo_y,
        coarse_xy_um=coarse,
        drift_um=drift,
        noise_um=noise_um,
        rate_Hz=rate,
        samples_per_pixel=FLY.samples_per_pixel,
        rng=np.random.default_rng(seed),
        **kw,
    )


def test_drift_is_linear_in_time():
    dx, dy = interferometer_drift_um(np.array([0.0, 2.0]), InterferometerConfig())
    assert np.allclose(dx, [0.0, 0.06]) and np.allclose(dy, [0.0, -0.04])


def test_timing_adds_settle_run_up_dwell_turnaround_and_flyback():
    plan = _plan(nx=256, ny=256, start_x_um=0.0, stop_x_um=12.75)
    line = line_timing(plan, 1, FLY)
    assert line.sweep_s == pytest.approx(0.256)
    flyback = line.move_s
    assert flyback > 12.75 / FLY.flyback_speed_um_per_s  # the whole line back, plus ramps
    assert line.overhead_s == pytest.approx(0.006 + 0.002 + 0.002 + flyback)
    snake = line_timing(_plan(nx=256, ny=256, start_x_um=0.0, stop_x_um=12.75, snake=True), 1, FLY)
    assert snake.move_s < flyback  # a y step only
    total = frame_time_s(plan, FLY)
    assert total == pytest.approx(line_timing(plan, 0, FLY).total_s + 255 * line.total_s)


def test_counts_match_the_model_within_poisson_error():
    config = load_config()
    model = InstrumentModel(config)
    optics, gap, pol = model.start_state()
    plan = _plan(start_x_um=-1.0, stop_x_um=1.0, start_y_um=-10.0, ny=1)

    def rate(x, y, t):
        return model.detected_rate_Hz(
            x, y, optics, ring_current_mA=300.0, gap_mm=gap, polarization=pol
        )

    line = _line(plan, rate=rate, noise_um=0.003)
    expected = rate(plan.centres_x_um(), np.full(plan.nx, -10.0), None) * line.dwell_s
    assert line.npix == plan.nx
    assert np.all(line.counts > 0)
    z = (line.counts - expected) / np.sqrt(expected)
    assert abs(z.mean()) < 4 / np.sqrt(plan.nx) and z.std() < 2


def test_a_sharp_edge_is_blurred_by_the_motion_within_a_pixel():
    plan = _plan(start_x_um=-1.0, stop_x_um=1.0, nx=5, ny=1)  # 0.5 um pixels
    bright, dark = 2e7, 2e6

    def rate(x, y, t):
        return np.where(x < 0.0, bright, dark)  # the edge at the centre pixel's centre

    line = _line(plan, rate=rate)
    per_s = line.counts / line.dwell_s
    assert per_s[1] == pytest.approx(bright, rel=0.02)
    assert per_s[3] == pytest.approx(dark, rel=0.05)
    # The centre pixel spans -0.25..0.25: half of its sweep bright.
    assert per_s[2] == pytest.approx(0.5 * bright + 0.5 * dark, rel=0.05)


def test_snake_lines_are_swept_backwards_but_reported_left_to_right():
    plan = _plan(snake=True, ny=2)
    assert plan.reversed(1) and not plan.reversed(0)
    start, end = plan.sweep_ends_um(1, FLY.run_up_s)
    assert start > end
    move = sweep_move(plan, 1, 0.0, 0.0, FLY.run_up_s)
    assert move.position_um(0.0) > move.position_um(1.0)

    def rate(x, y, t):
        return 1e6 + 1e5 * x  # brighter to the right

    line = _line(plan, 1, rate=rate)
    assert np.allclose(line.x_um, plan.centres_x_um(), atol=1e-3)
    assert line.counts[-1] > line.counts[0]


def test_drift_does_not_shift_pixels_in_interferometer_coordinates():
    plan = _plan(ny=1)

    def drift(t):
        return 0.5 + 0 * t, -0.3 + 0 * t  # a large drift

    line = _line(
        plan,
        rate=lambda x, y, t: np.full(x.shape, 1e6),
        coarse=(12.0, -3.0),
        drift=drift,
        noise_um=0.003,
    )
    assert np.allclose(line.x_um, plan.centres_x_um(), atol=0.003)
    assert np.allclose(line.y_um, plan.line_y_um(0), atol=0.003)
    assert np.allclose(line.dwell_s, plan.dwell_s, rtol=0.2)


def test_stall_and_lost_pixels_leave_pixels_unmeasured():
    plan = _plan(ny=1)
    lost = np.zeros(plan.nx, bool)
    lost[[3, 7]] = True
    line = _line(plan, rate=lambda x, y, t: np.full(x.shape, 1e6), lost_pixels=lost)
    assert line.npix == plan.nx - 2
    assert np.isnan(line.x_um[3]) and line.counts[7] == 0 and line.dwell_s[3] == 0
    stalled = _line(
        plan,
        rate=lambda x, y, t: np.full(x.shape, 1e6),
        valid_until_s=100.0 + FLY.run_up_s + 10.5 * plan.dwell_s,
    )
    assert 10 <= stalled.npix <= 11
    assert np.all(np.isnan(stalled.x_um[12:]))


def _flat_lines(nx: int, lines: int, *, dwell_s: float, rate_Hz: float, snake: bool):
    """Lines over a flat sample at the default vibration (3 nm), with drift: 50 nm pixels."""
    noise_um = InterferometerConfig().noise_nm * 1e-3
    plan = _plan(
        start_x_um=0.0, stop_x_um=0.05 * (nx - 1), nx=nx, ny=lines, dwell_s=dwell_s, snake=snake
    )

    def drift(t):
        return 0.3 + 1e-5 * (t - 100.0), -0.2 - 1e-5 * (t - 100.0)  # 36 nm/h

    return [
        _line(
            plan,
            index,
            rate=lambda x, y, t: np.full(x.shape, rate_Hz),
            coarse=(7.0, 2.0),
            drift=drift,
            noise_um=noise_um,
            seed=index,
        )
        for index in range(lines)
    ]


@pytest.mark.parametrize("snake", [False, True])
@pytest.mark.parametrize("dwell_s", [0.001, 0.002])
def test_every_pixel_is_gated_for_its_dwell_within_two_percent(dwell_s, snake):
    # The gate opens and closes where the sample crosses the pixel's boundaries: at constant
    # speed each pixel takes its dwell, not a whole number of sub-samples (1.5, 2 or 2.5 ms
    # for 2 ms once, which put 25 % into the raw counts).
    lines = _flat_lines(64, 4, dwell_s=dwell_s, rate_Hz=1e6, snake=snake)
    dwell = np.array([line.dwell_s for line in lines])
    assert np.all(np.abs(dwell / dwell_s - 1.0) < 0.02), (dwell.min(), dwell.max())
    assert all(line.npix == 64 for line in lines)


def test_raw_counts_on_a_flat_sample_have_poisson_noise():
    # What analysis programs divide (MANTiS reads the counts, not counts / time): on a flat
    # sample their variance is their mean. 64 lines x 64 pixels, ~2000 counts a pixel;
    # var/mean of N Poisson counts has a standard error of sqrt(2 / N) (= 0.022 here).
    lines = _flat_lines(64, 64, dwell_s=0.002, rate_Hz=1e6, snake=True)
    counts = np.array([line.counts for line in lines], dtype=float)
    ratio = counts.var(ddof=1) / counts.mean()
    assert abs(ratio - 1.0) < 5 * np.sqrt(2.0 / counts.size), ratio
    assert counts.mean() == pytest.approx(1e6 * 0.002, rel=0.01)


def test_a_line_travels_whole_in_one_array():
    line = _flat_lines(8, 1, dwell_s=0.001, rate_Hz=1e6, snake=False)[0]
    packed = pack_line(41, 3, 1, line)
    assert packed.size <= line_data_length(8)
    published = unpack_line(packed)
    assert (published.seq, published.index, published.status) == (41, 3, "Missed triggers")
    assert published.npix == line.npix == 8
    np.testing.assert_array_equal(published.data.counts, line.counts)
    np.testing.assert_array_equal(published.data.dwell_s, line.dwell_s)
    with pytest.raises(ValueError, match="17 elements for a line of 8 pixels"):
        unpack_line(packed[:17])
