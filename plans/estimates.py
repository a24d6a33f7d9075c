"""How long a plan will take, before it runs: for the scientist, the queue and the progress bar.

An estimate adds what physics imposes (counting, stage motion at the records' velocities and
accelerations, the fly controller's line overhead) to what the control system costs, which
is measured rather than guessed: a session learns the cost per point of its step scans and
per frame of its fly scans from the runs it has made (:class:`ScanCosts`), starting from the
figures measured on the simulated beamline (benchmarks/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from devices.sample_stage import SampleAxis, coarse_stage_of, position_um
from plans.fly_image import fly_frames
from plans.raster_grid import (
    MAX_POINTS_PER_AXIS,
    choose_mode,
    line_speed_um_per_s,
    sample_image_grid,
)
from plans.validation import check_positive_int, limits_of
from stxm_ctrl.physics.fly_line import frame_time_s
from stxm_ctrl.physics.motion import move_duration_s
from stxm_ctrl.timefmt import format_duration

__all__ = [
    "CostLearner",
    "ScanCosts",
    "ScanEstimate",
    "estimate_sample_image",
    "estimate_spectromicroscopy",
    "format_duration",
]

STEP_COST_S = 0.008
"""Control-system cost per point of a step scan (trigger, reads, event, move round trips)."""
STEP_RUN_COST_S = 0.3
"""Cost per step run: opening it, the baseline readings at start and end, closing it."""
FLY_FRAME_COST_S = 0.06
"""Control-system cost per fly frame (settings, arming, the last line's arrival, collects)."""
FLY_RUN_COST_S = 0.2
"""Cost per fly run beyond its frames."""
STEP_PRIOR_POINTS = 20.0
"""What the default step cost is worth, in points measured: little (it was measured on
another day, and a machine can be half as fast again under load)."""
STEP_EVIDENCE_MAX_POINTS = 1000.0
"""At most this many points of past runs weigh against a new run: older evidence says
little about the machine's load now."""


@dataclass(frozen=True)
class ScanEstimate:
    """How long a scan will take, and of what that time is made, s.

    ``control_s`` is what the control system adds (per run, per point of a step scan, per
    frame of a fly scan), from the :class:`ScanCosts` the estimate was made with.
    """

    mode: str
    total_s: float
    counting_s: float
    motion_s: float
    control_s: float
    points: int
    frames: int = 0
    lines: int = 0

    def __str__(self) -> str:
        return (
            f"about {format_duration(self.total_s)} ({self.mode} mode: "
            f"{format_duration(self.counting_s)} counting, {format_duration(self.motion_s)} "
            f"motion and line overhead, {format_duration(self.control_s)} control)"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as the start document records it (``estimate``)."""
        return asdict(self)


@dataclass
class ScanCosts:
    """What the control system costs beyond physics, learned from the runs a session made.

    A step run costs ``step_run_s`` plus ``step_point_s`` per point; a fly run
    ``fly_run_s`` plus ``fly_frame_s`` per frame. Runs teach the per-point cost of step
    scans and the per-run cost of fly scans (the parts that vary with the machine's load).

    A step run's per-point cost is weighed by its points: a run of six points says next to
    nothing about the cost of a point (its fixed overhead, a tenth of a second either way,
    is 20 ms a point), a run of hundreds says a lot. The cost is the points-weighted mean
    of the runs, the evidence before each run halved (recent load counts most) and held to
    :data:`STEP_EVIDENCE_MAX_POINTS`; the default counts as :data:`STEP_PRIOR_POINTS`, so a
    session's first sizeable run all but replaces it. A fly run's cost per run is set by the
    mode's first run and moved half way by each later one.

    Attributes
    ----------
    step_point_s, step_run_s, fly_frame_s, fly_run_s
        The costs, s.
    step_evidence_points
        What ``step_point_s`` rests on, in points (after the last run's halving and cap).
    learned_runs
        Runs learned from.
    learned_step_runs, learned_fly_runs
        Of those, the step and the fly runs.
    """

    step_point_s: float = STEP_COST_S
    step_run_s: float = STEP_RUN_COST_S
    fly_frame_s: float = FLY_FRAME_COST_S
    fly_run_s: float = FLY_RUN_COST_S
    step_evidence_points: float = STEP_PRIOR_POINTS
    learned_runs: int = 0
    learned_step_runs: int = 0
    learned_fly_runs: int = 0

    def control_s(self, mode: str, points: int, frames: int) -> float:
        """The control system's share of a scan of ``points`` points in ``frames`` frames."""
        if mode == "step":
            return self.step_run_s + points * self.step_point_s
        return self.fly_run_s + frames * self.fly_frame_s

    def total_s(self, estimate: Mapping[str, Any] | None) -> float | None:
        """A recorded estimate (``start["estimate"]``) redone with these costs."""
        if not estimate:
            return None
        try:
            physics = float(estimate["counting_s"]) + float(estimate["motion_s"])
            return physics + self.control_s(
                str(estimate["mode"]), int(estimate["points"]), int(estimate.get("frames", 0))
            )
        except (KeyError, TypeError, ValueError):
            return None

    def learn(self, estimate: Mapping[str, Any], measured_s: float, weight: float = 0.5) -> None:
        """Move the step per-point or the fly per-run cost towards what a run measured.

        A step run weighs by its points against the evidence before it, which ``weight``
        scales first; the first fly run sets the fly cost, later ones move it by ``weight``.
        """
        physics = float(estimate["counting_s"]) + float(estimate["motion_s"])
        mode, points, frames = estimate["mode"], int(estimate["points"]), int(estimate["frames"])
        if mode == "step" and points:
            per_point = max((measured_s - physics - self.step_run_s) / points, 0.0)
            before = weight * self.step_evidence_points
            self.step_point_s = (before * self.step_point_s + points * per_point) / (
                before + points
            )
            self.step_evidence_points = min(before + points, STEP_EVIDENCE_MAX_POINTS)
            self.learned_step_runs += 1
        elif mode == "fly":
            per_run = max(measured_s - physics - frames * self.fly_frame_s, 0.0)
            fly_weight = weight if self.learned_fly_runs else 1.0
            self.fly_run_s += fly_weight * (per_run - self.fly_run_s)
            self.learned_fly_runs += 1
        self.learned_runs += 1


class CostLearner:
    """A RunEngine subscriber that teaches :class:`ScanCosts` from every successful run.

    A run whose start document has an ``estimate`` is timed from its start to its stop
    document; the difference from the estimate's physics is the control system's cost.
    """

    def __init__(self, costs: ScanCosts) -> None:
        self.costs = costs
        self._started: dict[str, tuple[float, Mapping[str, Any]]] = {}

    def __call__(self, name: str, doc: Mapping[str, Any]) -> None:
        if name == "start" and doc.get("estimate"):
            self._started[doc["uid"]] = (float(doc["time"]), doc["estimate"])
        elif name == "stop":
            started = self._started.pop(doc.get("run_start", ""), None)
            if started is not None and doc.get("exit_status") == "success":
                begun, estimate = started
                self.costs.learn(estimate, float(doc["time"]) - begun)


def _stepping(motor: Any, positions: np.ndarray) -> tuple[Any, float]:
    """The stage that steps through ``positions`` and the time to bring it to the first.

    A :class:`devices.SampleAxis` steps its piezo or its coarse stage as
    :meth:`~devices.SampleAxis.region` decides (the plan places both stages first).
    """
    if not isinstance(motor, SampleAxis):
        return motor, _motion_s(motor, float(positions[0]) - float(motor.position))
    region = motor.region(float(positions.min()), float(positions.max()))
    placing_s = max(
        _motion_s(motor.coarse, region.coarse_um - position_um(motor.coarse)),
        _motion_s(motor.fine, region.fine_um - position_um(motor.fine)),
    )
    stepper = motor.fine if region.motion == "fine" else motor.coarse
    half_span = 0.5 * abs(float(positions[-1] - positions[0]))
    return stepper, placing_s + _motion_s(stepper, half_span)


def _motion_s(motor: Any, distance_um: float) -> float:
    """Time a motor-record axis takes for ``distance_um`` at its VELO and ACCL."""
    if distance_um == 0:
        return 0.0
    try:
        velocity = float(motor.velocity.get())
        acceleration_s = max(float(motor.acceleration.get()), 0.0)
    except (AttributeError, TypeError, ValueError):
        return 0.0  # a positioner without a velocity (ophyd.sim): instant
    if not velocity > 0:
        return 0.0
    return move_duration_s(abs(distance_um), velocity, acceleration_s)


@dataclass(frozen=True)
class _Timing:
    """The fly controller's line timing, as :func:`frame_time_s` wants it."""

    settle_s: float
    run_up_s: float
    turnaround_s: float
    flyback_speed_um_per_s: float


def _controller_timing(flyer: Any) -> _Timing:
    return _Timing(
        settle_s=float(flyer.settle_time.get()),
        run_up_s=float(flyer.run_up_time.get()),
        turnaround_s=float(flyer.turnaround_time.get()),
        flyback_speed_um_per_s=float(flyer.flyback_speed.get()),
    )


def estimate_sample_image(
    counter: Any,
    x_motor: Any,
    x_center_um: float,
    x_range_um: float,
    x_points: int,
    y_motor: Any,
    y_center_um: float,
    y_range_um: float,
    y_points: int,
    dwell_s: float,
    *,
    snake: bool = False,
    mode: str = "auto",
    flyer: Any = None,
    costs: ScanCosts | None = None,
    **_ignored: Any,
) -> ScanEstimate:
    """How long ``sample_image`` with these arguments will take (nothing moves).

    Takes the plan's arguments (``readables``, ``monitors`` and ``md`` are accepted and
    ignored). Reads the stages' velocities and accelerations, and the fly controller's
    line timing, from the devices.

    Raises
    ------
    PlanArgumentError
        If ``x_points`` or ``y_points`` is not a whole number from 1 to
        :data:`plans.raster_grid.MAX_POINTS_PER_AXIS`: checked before any pixel grid is made
        (a grid of a billion points would fill the memory before the plan refused it).
    """
    x_points = check_positive_int("x_points", x_points, MAX_POINTS_PER_AXIS)
    y_points = check_positive_int("y_points", y_points, MAX_POINTS_PER_AXIS)
    costs = costs or ScanCosts()
    chosen = choose_mode(mode, flyer, x_points, line_speed_um_per_s(x_range_um, x_points, dwell_s))
    xs = sample_image_grid(x_center_um, x_range_um, x_points)
    ys = sample_image_grid(y_center_um, y_range_um, y_points)
    points = x_points * y_points
    counting_s = points * dwell_s
    if chosen == "step":
        step_x = abs(float(xs[1] - xs[0])) if x_points > 1 else 0.0
        step_y = abs(float(ys[1] - ys[0])) if y_points > 1 else 0.0
        (x_motor, x_start_s), (y_motor, y_start_s) = _stepping(x_motor, xs), _stepping(y_motor, ys)
        row_change = _motion_s(y_motor, step_y)
        if not snake:
            row_change = max(row_change, _motion_s(x_motor, abs(float(xs[-1] - xs[0]))))
        start_s = max(x_start_s, y_start_s)
        motion_s = start_s + y_points * (x_points - 1) * _motion_s(x_motor, step_x)
        motion_s += (y_points - 1) * row_change
        control_s = costs.control_s("step", points, 0)
        return ScanEstimate("step", counting_s + motion_s + control_s, counting_s, motion_s,
                            control_s, points)  # fmt: skip
    assert flyer is not None  # _chosen_mode refuses fly without one
    x_motor, y_motor = coarse_stage_of(x_motor), coarse_stage_of(y_motor)
    timing = _controller_timing(flyer)
    frames = fly_frames(
        xs, ys, dwell_s, snake=bool(snake),
        piezo_x_limits_um=limits_of(flyer.fine_x) or (-50.0, 50.0),
        piezo_y_limits_um=limits_of(flyer.fine_y) or (-50.0, 50.0),
        coarse_x_um=float(x_motor.position), coarse_y_um=float(y_motor.position),
        run_up_s=timing.run_up_s,
    )  # fmt: skip
    total_frames_s = 0.0
    coarse_s = 0.0
    here = (float(x_motor.position), float(y_motor.position))
    lines = 0
    for placed in frames:
        f = placed.frame
        to = (placed.coarse_x_um, placed.coarse_y_um)
        coarse_s += max(_motion_s(x_motor, to[0] - here[0]), _motion_s(y_motor, to[1] - here[1]))
        here = to
        total_frames_s += frame_time_s(f, timing)  # type: ignore[arg-type]
        lines += f.ny
    counted_s = sum(p.frame.nx * p.frame.ny for p in frames) * dwell_s
    motion_s = coarse_s + total_frames_s - counted_s
    control_s = costs.control_s("fly", points, len(frames))
    total = counted_s + motion_s + control_s
    return ScanEstimate(
        "fly", total, counted_s, motion_s, control_s, points, frames=len(frames), lines=lines
    )


ENERGY_MOVE_S = 1.0
"""Time of one energy move (monochromator, EPU gap and zone plate; physics.md: ~1 s)."""
HELICITY_SWITCH_S = 4.0
"""Time of one helicity switch: the EPU shifts its magnet rows (~3 s) and re-tunes its gap."""


def estimate_spectromicroscopy(
    *,
    frames: list[tuple[float, str | None]],
    pixels: int,
    dwell_s: float,
    mode: str,
    frame_estimate: ScanEstimate | None = None,
    costs: ScanCosts | None = None,
    **_ignored: Any,
) -> ScanEstimate:
    """How long a spectrum, stack or XMCD run will take: its frames plus energy moves and
    helicity switches (:data:`ENERGY_MOVE_S`, :data:`HELICITY_SWITCH_S`).

    ``frame_estimate`` is one frame's image (:func:`estimate_sample_image`); without it a
    frame is its counting and the per-point control cost (points and lines).
    """
    costs = costs or ScanCosts()
    n = len(frames)
    energy_moves = sum(1 for i, f in enumerate(frames) if i == 0 or f[0] != frames[i - 1][0])
    switches = sum(
        1 for i, f in enumerate(frames) if i > 0 and f[1] is not None and f[1] != frames[i - 1][1]
    )
    changes_s = energy_moves * ENERGY_MOVE_S + switches * HELICITY_SWITCH_S
    if frame_estimate is not None:
        counting_s = n * frame_estimate.counting_s
        motion_s = n * frame_estimate.motion_s + changes_s
        control_s = costs.control_s(mode, n * pixels, n * max(frame_estimate.frames, 1))
        lines = n * frame_estimate.lines
        fly_frames_n = n * frame_estimate.frames
    else:
        counting_s = n * pixels * dwell_s
        motion_s = changes_s
        control_s = costs.control_s(mode, n * pixels, n)
        lines, fly_frames_n = 0, 0
    total = counting_s + motion_s + control_s
    return ScanEstimate(mode, total, counting_s, motion_s, control_s, n * pixels,
                        frames=fly_frames_n, lines=lines)  # fmt: skip
