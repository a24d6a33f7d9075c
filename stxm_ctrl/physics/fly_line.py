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

Counting (:func:`simulate_sweep`, :func:`measure_line`): the controller gates pixels by
position, as a position-compare unit does: a pixel's gate opens when the interferometer
crosses its lower boundary (centre - half a step) and closes when it crosses the upper one
(:func:`gate_edges_s`, edges interpolated between position samples), so at constant speed
every pixel counts for its dwell. The sweep is sub-sampled ``samples_per_pixel`` times per
dwell for the motion within a pixel: each sub-sample has a true position (with the
vibration), and a rate from the instrument model; a pixel's count is Poisson in the rate
integrated over exactly its gate, its position the mean measured x and y during the gate, its
dwell the gate's length. Pixels are reported left to right (from ``START_X`` to ``STOP_X``)
even for lines swept backwards.
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
    "LINE_DATA_HEADER",
    "LINE_STATUSES",
    "FramePlan",
    "LineData",
    "LineTiming",
    "PublishedLine",
    "frame_time_s",
    "gate_edges_s",
    "interferometer_drift_um",
    "line_data_length",
    "line_timing",
    "measure_line",
    "pack_line",
    "simulate_sweep",
    "sweep_move",
    "sweep_sample_times_s",
    "unpack_line",
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
    t_sweep_s: float, nx: int, dwell_s: float, samples_per_pixel: int, margin_pixels: int = 1
) -> tuple[NDArray[np.float64], float]:
    """Mid-times of the sub-samples of a sweep whose first pixel edge is due at ``t_sweep_s``,
    and the duration of each.

    They cover the ``nx`` pixel dwells and ``margin_pixels`` dwells either side, so that the
    gate's edges (:func:`gate_edges_s`) fall inside them even when the sweep runs a little
    off its nominal timing (drift changes the interferometer's speed).
    """
    n = (nx + 2 * margin_pixels) * samples_per_pixel
    dt = dwell_s / samples_per_pixel
    t0 = t_sweep_s - margin_pixels * dwell_s
    return t0 + dt * (np.arange(n, dtype=np.float64) + 0.5), dt


def gate_edges_s(
    plan: FramePlan, index: int, *, times_s: NDArray[np.float64], servo_x_um: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The position-compare edges of line ``index``: when each pixel boundary is crossed.

    Pixel ``k`` is counted from edge ``k`` to edge ``k + 1`` (pixel order, START_X first; a
    reversed line crosses edge ``nx`` first). The boundaries are the pixel centres +- half a
    step in interferometer coordinates; an edge is the first time the controller's position
    (``servo_x_um`` at ``times_s``, increasing) reaches its boundary, interpolated linearly
    between the two position samples around it; NaN if the sweep never reaches it (a stall,
    an abort).

    ``servo_x_um`` is the interferometer reading the comparator sees: coarse + piezo + drift,
    through the controller's input filter, which passes the sweep but not the vibration
    (``[sim.interferometer] noise_nm``), so every pixel's gate lasts the time the sample takes
    to cross it at the line's constant speed.
    """
    boundaries = plan.start_x_um + plan.step_x_um * (np.arange(plan.nx + 1) - 0.5)
    direction = 1.0 if plan.step_x_um >= 0 else -1.0
    if plan.reversed(index):
        direction = -direction
    # How far along the sweep the sample has come (a boundary is crossed once).
    along = np.maximum.accumulate(direction * np.asarray(servo_x_um, dtype=float))
    target = direction * boundaries
    after = np.searchsorted(along, target, side="left")  # first sample at or past it
    reached = (after > 0) & (after < along.size)
    j = np.clip(after, 1, along.size - 1)
    u0, u1 = along[j - 1], along[j]
    t0, t1 = times_s[j - 1], times_s[j]
    with np.errstate(invalid="ignore", divide="ignore"):
        edges = t0 + (target - u0) / (u1 - u0) * (t1 - t0)
    # A boundary already passed before the first sample: never seen crossing.
    return np.where(reached, edges, np.nan)


@dataclass(frozen=True)
class LineData:
    """One measured line, pixels in order from START_X to STOP_X."""

    counts: NDArray[np.int32]
    x_um: NDArray[np.float64]
    y_um: NDArray[np.float64]
    dwell_s: NDArray[np.float64]

    @property
    def npix(self) -> int:
        """Pixels whose gate opened and closed."""
        return int(np.count_nonzero(self.dwell_s > 0))


def measure_line(
    plan: FramePlan,
    *,
    edges_s: NDArray[np.float64],
    sample_times_s: NDArray[np.float64],
    dt_s: float,
    measured_x_um: NDArray[np.float64],
    measured_y_um: NDArray[np.float64],
    rates_Hz: NDArray[np.float64],
    rng: np.random.Generator,
    lost_pixels: NDArray[np.bool_] | None = None,
) -> LineData:
    """Count one line's pixels between their gate edges.

    Parameters
    ----------
    plan
        The frame (pixels per line).
    edges_s
        The ``nx + 1`` gate edges in pixel order (:func:`gate_edges_s`); NaN: not reached.
    sample_times_s, dt_s
        Mid-times of the sub-samples (consecutive, ``dt_s`` long each) that cover the edges.
    measured_x_um, measured_y_um
        The interferometer reading at each sub-sample (the true position, noise included).
    rates_Hz
        Mean detected rate at each sub-sample (the rate is constant within one).
    rng
        Poisson noise.
    lost_pixels
        Pixels (in pixel order) whose triggers were missed: no counts, NaN positions, no dwell.

    Returns
    -------
    LineData
        Per pixel: a Poisson count of the photons expected in its gate (the rate integrated
        over exactly the gate's time), the mean interferometer x and y during the gate, and
        the gate's length. A pixel whose gate never closed is not measured.
    """
    bounds = sample_times_s[0] - 0.5 * dt_s + dt_s * np.arange(sample_times_s.size + 1)

    def integral(values: NDArray[np.float64]) -> NDArray[np.float64]:
        # The integral of a piecewise constant series from the first bound to each edge.
        cumulative = np.concatenate(([0.0], np.cumsum(values * dt_s)))
        return np.interp(edges_s, bounds, cumulative)

    opens, closes = edges_s[:-1], edges_s[1:]
    gate = np.abs(closes - opens)
    measured = np.isfinite(gate) & (gate > 0)
    if lost_pixels is not None:
        measured &= ~lost_pixels
    sign = np.sign(closes - opens)  # reversed lines close the lower edge last
    expected = np.maximum(sign * np.diff(integral(np.maximum(rates_Hz, 0.0))), 0.0)
    sum_x = sign * np.diff(integral(measured_x_um))
    sum_y = sign * np.diff(integral(measured_y_um))
    with np.errstate(invalid="ignore", divide="ignore"):
        counts = np.where(measured, rng.poisson(np.where(measured, expected, 0.0)), 0)
        x = np.where(measured, sum_x / gate, np.nan)
        y = np.where(measured, sum_y / gate, np.nan)
    return LineData(
        counts=counts.astype(np.int32), x_um=x, y_um=y, dwell_s=np.where(measured, gate, 0.0)
    )


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
    rate_Hz: _RateFn,
    samples_per_pixel: int,
    rng: np.random.Generator,
    valid_until_s: float = np.inf,
    lost_pixels: NDArray[np.bool_] | None = None,
) -> LineData:
    """Measure line ``index`` whose piezo sweep is ``move`` (first pixel edge due at
    ``t_sweep_s``).

    The controller's position is coarse + piezo + drift(t); the gate's edges are where it
    crosses the pixel boundaries (:func:`gate_edges_s`). The true (and measured) position
    of each sub-sample adds the vibration (``noise_um`` RMS); ``rate_Hz(x, y, t)`` gives the
    detected rate there. Edges from ``valid_until_s`` on are not reached (a stall, an abort):
    the pixels they would have closed are not measured.
    """
    from stxm_ctrl.physics.motion import positions_um

    times, dt = sweep_sample_times_s(t_sweep_s, plan.nx, plan.dwell_s, samples_per_pixel)
    # The controller's position at the sub-samples' bounds, for the edges.
    bounds = np.concatenate((times - 0.5 * dt, times[-1:] + 0.5 * dt))
    piezo_at_bounds = positions_um(
        move.start_um,
        move.end_um,
        move.t0_s,
        move.velocity_um_per_s,
        move.acceleration_time_s,
        bounds,
    )
    drift_at_bounds = drift_um(bounds)
    servo_x = coarse_xy_um[0] + piezo_at_bounds + drift_at_bounds[0]
    edges = gate_edges_s(plan, index, times_s=bounds, servo_x_um=servo_x)
    edges = np.where(edges <= valid_until_s, edges, np.nan)
    # At the sub-samples' mid-times: exact for the sweep and the (linear) drift, within
    # acceleration x dt^2 / 8 (< 0.1 nm) in the run-up.
    piezo_x = 0.5 * (piezo_at_bounds[:-1] + piezo_at_bounds[1:])
    drift_x, drift_y = (0.5 * (d[:-1] + d[1:]) for d in drift_at_bounds)
    noise = (
        rng.normal(0.0, noise_um, size=(2, times.size))
        if noise_um > 0
        else np.zeros((2, times.size))
    )
    x = coarse_xy_um[0] + piezo_x + drift_x + noise[0]
    y = coarse_xy_um[1] + piezo_y_um + drift_y + noise[1]
    return measure_line(
        plan,
        edges_s=edges,
        sample_times_s=times,
        dt_s=dt,
        measured_x_um=x,
        measured_y_um=y,
        rates_Hz=rate_Hz(x, y, times),
        rng=rng,
        lost_pixels=lost_pixels,
    )


LINE_DATA_HEADER = ("seq", "index", "status", "npix", "nx")
"""What ``LINE:DATA`` holds before its arrays, in this order (:func:`pack_line`)."""


def line_data_length(max_pixels: int) -> int:
    """Elements of ``LINE:DATA`` for lines of up to ``max_pixels`` pixels."""
    return len(LINE_DATA_HEADER) + 4 * max_pixels


@dataclass(frozen=True)
class PublishedLine:
    """One line as ``LINE:DATA`` carries it: its sequence number, index, status and data."""

    seq: int
    index: int
    status: str
    npix: int
    data: LineData


def pack_line(seq: int, index: int, status: int, line: LineData) -> NDArray[np.float64]:
    """One line in one array (``LINE:DATA``): the header of :data:`LINE_DATA_HEADER`, then
    counts, x, y and dwell of its ``nx`` pixels.

    A Channel Access monitor delivers one array whole or not at all, so a client that reads
    lines from it cannot see a line twice under a new sequence number, nor one line's counts
    with another's index (as it could assembling a line from several PVs, whose updates a
    server may drop or resend separately when the client falls behind).
    """
    nx = line.counts.size
    header = np.array([seq, index, status, line.npix, nx], dtype=np.float64)
    return np.concatenate(
        (header, line.counts.astype(np.float64), line.x_um, line.y_um, line.dwell_s)
    )


def unpack_line(values: ArrayLike) -> PublishedLine:
    """The line in a ``LINE:DATA`` array (:func:`pack_line`).

    Raises
    ------
    ValueError
        If the array is shorter than its header says (not a ``LINE:DATA`` value).
    """
    array = np.asarray(values, dtype=np.float64).ravel()
    head = len(LINE_DATA_HEADER)
    if array.size < head:
        raise ValueError(f"LINE:DATA holds {array.size} elements, fewer than its header's {head}")
    seq, index, status, npix, nx = (int(v) for v in array[:head])
    if nx < 0 or array.size < head + 4 * nx or not 0 <= status < len(LINE_STATUSES):
        raise ValueError(
            f"LINE:DATA holds {array.size} elements for a line of {nx} pixels (status {status})"
        )
    counts, x, y, dwell = array[head : head + 4 * nx].reshape(4, nx)
    data = LineData(
        counts=counts.astype(np.int32), x_um=x.copy(), y_um=y.copy(), dwell_s=dwell.copy()
    )
    return PublishedLine(seq=seq, index=index, status=LINE_STATUSES[status], npix=npix, data=data)
