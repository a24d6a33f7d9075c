"""Line fly scans on a piezo stage locked to a laser interferometer: trajectory and binning.

The sample's true position relative to the zone plate is the coarse stage plus the piezo plus
a slow thermal drift (:func:`interferometer_drift_um`) plus position noise; the laser
interferometer reads exactly that. The fly controller is closed-loop on the interferometer:
the interferometer sweeps each line from the first pixel's centre to the last's at constant
speed ``v = |step| / dwell``, and the piezo is commanded to ``target - coarse - drift``, so
pixels land on the requested sample positions whatever the drift.

One line (:func:`line_timing`): a move to the run-up start (the y step, plus the flyback to
the line start for unidirectional lines), ``settle_s``, ``run_up_s`` of acceleration, the
sweep of ``NX x dwell`` across the pixels, ``turnaround_s`` of deceleration. The piezo's
sweep is a trapezoidal :class:`~stxm_ctrl.physics.motion.Move` with velocity ``v`` and
acceleration time ``run_up_s``, from half a pixel plus the run-up distance before the first
pixel centre to the same beyond the last.

Counting (:func:`measure_line`): the sweep is sub-sampled ``samples_per_pixel`` times per
pixel dwell; each sub-sample has a true position (with noise), a rate from the instrument
model, a Poisson count, and is binned into the pixel whose interferometer boundaries
(centres +- half a step) contain its measured x. A pixel reports its counts, the mean
measured x and y of its sub-samples and its dwell (sub-samples x their duration). Pixels are
reported left to right (from ``START_X`` to ``STOP_X``) even for lines swept backwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stxm_ctrl.physics.motion import Move

if TYPE_CHECKING:
    from stxm_ctrl.config import FlyConfig, InterferometerConfig

_Series = NDArray[np.float64]
_DriftFn = Callable[[_Series], tuple[_Series, _Series]]
_RateFn = Callable[[_Series, _Series, _Series], _Series]

__all__ = [
    "LINE_STATUSES",
    "FramePlan",
    "LineData",
    "LineTiming",
    "frame_time_s",
    "interferometer_drift_um",
    "line_timing",
    "measure_line",
    "simulate_sweep",
    "sweep_move",
    "sweep_sample_times_s",
]

LINE_STATUSES = ("Complete", "Missed triggers", "Stalled", "Aborted")
"""Status of a published line (``LINE:STATUS``), by index."""


def interferometer_drift_um(
    hours: ArrayLike, config: InterferometerConfig
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Thermal drift (x, y) of the sample relative to the zone plate, um, ``hours`` after the
    world's epoch (linear, ``[sim.interferometer] drift_*_nm_per_h``)."""
    h = np.asarray(hours, dtype=float)
    return h * config.drift_x_nm_per_h * 1e-3, h * config.drift_y_nm_per_h * 1e-3


@dataclass(frozen=True)
class FramePlan:
    """The settings of one frame, in interferometer coordinates (um) and seconds."""

    start_x_um: float
    stop_x_um: float
    nx: int
    start_y_um: float
    stop_y_um: float
    ny: int
    dwell_s: float
    snake: bool

    @property
    def step_x_um(self) -> float:
        """Signed pixel step along a line (centre to centre)."""
        return (self.stop_x_um - self.start_x_um) / (self.nx - 1)

    @property
    def line_speed_um_per_s(self) -> float:
        """Sweep speed: pixel step / dwell."""
        return abs(self.step_x_um) / self.dwell_s

    def centres_x_um(self) -> NDArray[np.float64]:
        """Pixel centres of a line, in pixel order (START_X first)."""
        return self.start_x_um + self.step_x_um * np.arange(self.nx, dtype=np.float64)

    def line_y_um(self, index: int) -> float:
        """Interferometer y of line ``index``."""
        if self.ny == 1:
            return self.start_y_um
        return self.start_y_um + (self.stop_y_um - self.start_y_um) * index / (self.ny - 1)

    def reversed(self, index: int) -> bool:
        """True if line ``index`` is swept from STOP_X to START_X (odd lines when snaking)."""
        return self.snake and index % 2 == 1

    def sweep_ends_um(self, index: int, run_up_s: float) -> tuple[float, float]:
        """Interferometer x where line ``index``'s sweep move starts (rest before the run-up)
        and ends (rest after the deceleration)."""
        margin = 0.5 * abs(self.step_x_um) + 0.5 * self.line_speed_um_per_s * run_up_s
        sign = 1.0 if self.step_x_um >= 0 else -1.0
        low = self.start_x_um - sign * margin
        high = self.stop_x_um + sign * margin
        return (high, low) if self.reversed(index) else (low, high)

    def x_extent_um(self, run_up_s: float) -> tuple[float, float]:
        """The interferometer x range the frame's sweeps cover, run-ups included."""
        a, b = self.sweep_ends_um(0, run_up_s)
        return min(a, b), max(a, b)


def sweep_move(
    plan: FramePlan, index: int, t0_s: float, offset_um: float, run_up_s: float
) -> Move:
    """The piezo x move of line ``index``'s sweep, starting at ``t0_s`` (start of the run-up).

    ``offset_um`` is piezo - interferometer (= -(coarse + drift)).
    """
    start, end = plan.sweep_ends_um(index, run_up_s)
    return Move(start + offset_um, end + offset_um, t0_s, plan.line_speed_um_per_s, run_up_s)


@dataclass(frozen=True)
class LineTiming:
    """Durations of one line's phases, s."""

    move_s: float
    settle_s: float
    run_up_s: float
    sweep_s: float
    turnaround_s: float

    @property
    def total_s(self) -> float:
        """The whole line."""
        return self.move_s + self.settle_s + self.run_up_s + self.sweep_s + self.turnaround_s

    @property
    def overhead_s(self) -> float:
        """The part of the line that is not dwell."""
        return self.total_s - self.sweep_s


def _move_s(distance_um: float, fly: FlyConfig) -> float:
    return Move(0.0, distance_um, 0.0, fly.flyback_speed_um_per_s, fly.run_up_s).duration_s


def line_timing(
    plan: FramePlan, index: int, fly: FlyConfig, from_xy_um: tuple[float, float] | None = None
) -> LineTiming:
    """The phases of line ``index``.

    The move goes to the line's run-up start from ``from_xy_um`` (interferometer x, y), by
    default from where the previous line's sweep ended (line 0: from its own start, no move);
    x and y move together at ``flyback_speed_um_per_s``.
    """
    start_x, _ = plan.sweep_ends_um(index, fly.run_up_s)
    y = plan.line_y_um(index)
    if from_xy_um is None:
        if index == 0:
            from_xy_um = (start_x, y)
        else:
            from_xy_um = (
                plan.sweep_ends_um(index - 1, fly.run_up_s)[1],
                plan.line_y_um(index - 1),
            )
    move = max(_move_s(start_x - from_xy_um[0], fly), _move_s(y - from_xy_um[1], fly))
    return LineTiming(
        move_s=move,
        settle_s=fly.settle_s,
        run_up_s=fly.run_up_s,
        sweep_s=plan.nx * plan.dwell_s,
        turnaround_s=max(fly.turnaround_s, 0.0),
    )


def frame_time_s(
    plan: FramePlan, fly: FlyConfig, from_xy_um: tuple[float, float] | None = None
) -> float:
    """Duration of the whole frame: its lines back to back (the first from ``from_xy_um``)."""
    total = line_timing(plan, 0, fly, from_xy_um).total_s
    if plan.ny > 1:  # every later line has the same phases (a step, or a step and a flyback)
        total += (plan.ny - 1) * line_timing(plan, 1, fly).total_s
    return total


def sweep_sample_times_s(
    t_sweep_s: float, nx: int, dwell_s: float, samples_per_pixel: int
) -> tuple[NDArray[np.float64], float]:
    """Mid-times of the sub-samples of a sweep starting at ``t_sweep_s`` (first pixel edge),
    and the duration of each."""
    n = nx * samples_per_pixel
    dt = dwell_s / samples_per_pixel
    return t_sweep_s + dt * (np.arange(n, dtype=np.float64) + 0.5), dt


@dataclass(frozen=True)
class LineData:
    """One measured line, pixels in order from START_X to STOP_X."""

    counts: NDArray[np.int32]
    x_um: NDArray[np.float64]
    y_um: NDArray[np.float64]
    dwell_s: NDArray[np.float64]

    @property
    def npix(self) -> int:
        """Pixels with at least one sub-sample."""
        return int(np.count_nonzero(self.dwell_s > 0))


def measure_line(
    plan: FramePlan,
    *,
    measured_x_um: NDArray[np.float64],
    measured_y_um: NDArray[np.float64],
    rates_Hz: NDArray[np.float64],
    dt_s: float,
    rng: np.random.Generator,
    valid: NDArray[np.bool_] | None = None,
    lost_pixels: NDArray[np.bool_] | None = None,
) -> LineData:
    """Count and bin one line's sub-samples.

    Parameters
    ----------
    plan
        The frame (pixel centres and step).
    measured_x_um, measured_y_um
        The interferometer reading at each sub-sample (the true position, noise included).
    rates_Hz
        Mean detected rate at each sub-sample.
    dt_s
        Duration of each sub-sample.
    rng
        Poisson noise.
    valid
        Sub-samples that were taken (False after a stall or an abort).
    lost_pixels
        Pixels (in pixel order) whose triggers were missed: no counts, NaN positions, no dwell.
    """
    nx = plan.nx
    counts = rng.poisson(np.maximum(rates_Hz, 0.0) * dt_s)
    index = np.rint((measured_x_um - plan.start_x_um) / plan.step_x_um).astype(np.int64)
    keep = (index >= 0) & (index < nx)
    if valid is not None:
        keep &= valid
    index = index[keep]
    n = np.bincount(index, minlength=nx).astype(float)
    total = np.bincount(index, weights=counts[keep], minlength=nx)
    sum_x = np.bincount(index, weights=measured_x_um[keep], minlength=nx)
    sum_y = np.bincount(index, weights=measured_y_um[keep], minlength=nx)
    if lost_pixels is not None:
        n[lost_pixels] = 0.0
        total[lost_pixels] = 0.0
    with np.errstate(invalid="ignore", divide="ignore"):
        x = np.where(n > 0, sum_x / n, np.nan)
        y = np.where(n > 0, sum_y / n, np.nan)
    return LineData(counts=total.astype(np.int32), x_um=x, y_um=y, dwell_s=n * dt_s)


def simulate_sweep(
    plan: FramePlan,
    index: int,
    *,
    move: Move,
    t_sweep_s: float,
    piezo_y_um: float,
    coarse_xy_um: tuple[float, float],
    drift_um: _DriftFn,
    noise_um: float,
    rate_Hz: Callable[
        [NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]
    ],
    samples_per_pixel: int,
    rng: np.random.Generator,
    valid_until_s: float = np.inf,
    lost_pixels: NDArray[np.bool_] | None = None,
) -> LineData:
    """Measure line ``index`` whose piezo sweep is ``move`` (first pixel edge at ``t_sweep_s``).

    The true (and measured) position of each sub-sample is coarse + piezo + drift(t) + noise;
    ``rate_Hz(x, y, t)`` gives the detected rate there. Sub-samples from ``valid_until_s`` on
    are not taken (a stall, an abort).
    """
    from stxm_ctrl.physics.motion import positions_um

    times, dt = sweep_sample_times_s(t_sweep_s, plan.nx, plan.dwell_s, samples_per_pixel)
    piezo_x = positions_um(
        move.start_um, move.end_um, move.t0_s, move.velocity_um_per_s, move.acceleration_time_s,
        times,
    )  # fmt: skip
    drift_x, drift_y = drift_um(times)
    noise = (
        rng.normal(0.0, noise_um, size=(2, times.size))
        if noise_um > 0
        else np.zeros((2, times.size))
    )
    x = coarse_xy_um[0] + piezo_x + drift_x + noise[0]
    y = coarse_xy_um[1] + piezo_y_um + drift_y + noise[1]
    rates = rate_Hz(x, y, times)
    valid = (times + 0.5 * dt) <= valid_until_s if np.isfinite(valid_until_s) else None
    return measure_line(
        plan,
        measured_x_um=x,
        measured_y_um=y,
        rates_Hz=rates,
        dt_s=dt,
        rng=rng,
        valid=valid,
        lost_pixels=lost_pixels,
    )
