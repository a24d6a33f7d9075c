"""Where a raster's pixels are (:class:`RasterRegion`), and whether it is flown or stepped."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from plans.protocols import Positioner
from plans.validation import (
    PlanArgumentError,
    check_bool,
    check_distinct,
    check_flyer,
    check_in_range,
    check_positioner,
    check_positive_int,
    limits_of,
)

__all__ = [
    "FLY_MIN_X_POINTS",
    "MAX_POINTS_PER_AXIS",
    "RasterRegion",
    "check_raster_axis",
    "check_region",
    "choose_mode",
    "line_speed_um_per_s",
    "sample_image_grid",
]

MAX_POINTS_PER_AXIS = 4096
"""Most pixels along one axis of a raster."""

FLY_MIN_X_POINTS = 8
"""Images at least this wide are flown by default (when a fly controller is given)."""


def sample_image_grid(center_um: float, range_um: float, points: int) -> np.ndarray:
    """Pixel centres along one axis: ``points`` positions spanning ``range_um``.

    A single point sits at the centre; otherwise the first and last pixel centres are at
    ``center -/+ range/2``.
    """
    if points == 1:
        return np.array([float(center_um)])
    return np.linspace(center_um - range_um / 2.0, center_um + range_um / 2.0, points)


def check_raster_axis(
    label: str, motor: Any, center_um: Any, range_um: Any, points: Any
) -> tuple[float, float, int]:
    """One raster axis checked: ``(center_um, range_um, points)`` as float, float, int.

    ``label`` names the axis as the plan does (``"x"``, ``"z"``, ``"line"``); the errors
    name ``{label}_points``, ``{label}_range_um`` and ``{label}_center_um``.

    Raises
    ------
    PlanArgumentError
        For a value out of range, a range of 0 over several points, or a scan that leaves
        the limits ``motor`` reports.
    """
    points = check_positive_int(f"{label}_points", points, MAX_POINTS_PER_AXIS)
    range_um = check_in_range(
        f"{label}_range_um", range_um, 0.0, 1e6, "um", "give the full width of the image"
    )
    center_um = check_in_range(f"{label}_center_um", center_um, -1e6, 1e6, "um")
    if points > 1 and range_um == 0.0:
        raise PlanArgumentError(
            f"{label}_range_um = 0 um with {label}_points = {points}: every pixel would be at "
            f"the same place; give a range > 0 or use {label}_points = 1"
        )
    limits = limits_of(motor)
    if limits is not None:
        low, high = limits
        first, last = center_um - range_um / 2.0, center_um + range_um / 2.0
        if first < low or last > high:
            span = high - low
            raise PlanArgumentError(
                f"{label}_center_um = {center_um:g}, {label}_range_um = {range_um:g}: the scan "
                f"from {first:g} to {last:g} um leaves the limits of "
                f"{getattr(motor, 'name', label)} ({low:g} to {high:g} um); move "
                f"{label}_center_um or shrink {label}_range_um (at most {span:g} um)"
            )
    return center_um, range_um, points


@dataclass(frozen=True)
class RasterRegion:
    """The region a raster covers: for x and y, the stage, the centre, the range and the
    number of pixels, and whether rows alternate direction.

    Checked when made: a value out of range, a range of 0 over several pixels, a scan past a
    stage's limits or one stage for both axes raises :class:`PlanArgumentError` naming the
    parameter, the allowed range and the fix, before any plan is built. Numbers are kept as
    plain ``float``/``int`` (numpy numbers are converted).

    Parameters
    ----------
    x_motor, y_motor
        The stage axes (positions in um); x is the fast axis.
    x_center_um, y_center_um
        The image centre, um.
    x_range_um, y_range_um
        Distance between the first and last pixel centres, um (>= 0).
    x_points, y_points
        Pixels per axis, 1 to :data:`MAX_POINTS_PER_AXIS`.
    snake
        Alternate rows run in opposite directions (saves the line return).

    Examples
    --------
    >>> region = RasterRegion(d.stage.x, 0, 20, 64, d.stage.y, 0, 20, 64)  # doctest: +SKIP
    >>> s.run(sample_image(d.apd, region, dwell_s=0.001))  # doctest: +SKIP
    """

    x_motor: Positioner
    x_center_um: float
    x_range_um: float
    x_points: int
    y_motor: Positioner
    y_center_um: float
    y_range_um: float
    y_points: int
    snake: bool = False

    def __post_init__(self) -> None:
        check_positioner("x_motor", self.x_motor)
        check_positioner("y_motor", self.y_motor)
        check_distinct({"x_motor": self.x_motor, "y_motor": self.y_motor})
        x = check_raster_axis("x", self.x_motor, self.x_center_um, self.x_range_um, self.x_points)
        y = check_raster_axis("y", self.y_motor, self.y_center_um, self.y_range_um, self.y_points)
        snake = check_bool("snake", self.snake, "alternate rows run in opposite directions")
        for name, value in zip(
            ("x_center_um", "x_range_um", "x_points", "y_center_um", "y_range_um", "y_points"),
            (*x, *y),
            strict=True,
        ):
            object.__setattr__(self, name, value)
        object.__setattr__(self, "snake", snake)

    def x_grid_um(self) -> np.ndarray:
        """Pixel centres along x, um (:func:`sample_image_grid`)."""
        return sample_image_grid(self.x_center_um, self.x_range_um, self.x_points)

    def y_grid_um(self) -> np.ndarray:
        """Pixel centres along y, um (:func:`sample_image_grid`)."""
        return sample_image_grid(self.y_center_um, self.y_range_um, self.y_points)

    @property
    def points(self) -> int:
        """Pixels in the image."""
        return self.x_points * self.y_points

    def plan_args(self) -> dict[str, Any]:
        """The region as a start document's ``plan_args`` records it (motors by repr)."""
        return {
            "x_motor": repr(self.x_motor),
            "x_center_um": self.x_center_um,
            "x_range_um": self.x_range_um,
            "x_points": self.x_points,
            "y_motor": repr(self.y_motor),
            "y_center_um": self.y_center_um,
            "y_range_um": self.y_range_um,
            "y_points": self.y_points,
        }

    def centre_and_range_md(self) -> dict[str, float]:
        """The start document's ``x_center_um``, ``x_range_um``, ``y_center_um``,
        ``y_range_um``."""
        return {
            "x_center_um": self.x_center_um,
            "x_range_um": self.x_range_um,
            "y_center_um": self.y_center_um,
            "y_range_um": self.y_range_um,
        }


def check_region(name: str, region: Any) -> RasterRegion:
    """Refuse anything but a :class:`RasterRegion` as the plan argument ``name``."""
    if not isinstance(region, RasterRegion):
        raise PlanArgumentError(
            f"{name} = {region!r} ({type(region).__name__}) is not a raster region; give "
            "plans.RasterRegion(x_motor, x_center_um, x_range_um, x_points, y_motor, "
            "y_center_um, y_range_um, y_points)"
        )
    return region


def choose_mode(
    mode: Any, flyer: Any, x_points: Any, line_speed_um_per_s: float | None = None
) -> str:
    """``"fly"`` or ``"step"``: what ``sample_image`` does with ``mode`` and ``flyer``.

    ``"auto"`` flies when a fly controller is given, the image is at least
    :data:`FLY_MIN_X_POINTS` wide and its line speed (``line_speed_um_per_s``, if known) is
    one the controller does; otherwise it steps.

    Raises
    ------
    PlanArgumentError
        For an unknown mode, ``"fly"`` without a fly controller, or a ``flyer`` that is not
        one.
    """
    if flyer is not None:
        check_flyer("flyer", flyer)
    if mode not in ("auto", "fly", "step"):
        raise PlanArgumentError(
            f"mode = {mode!r}: give 'fly' (line by line on the fly), 'step' (point by "
            "point) or 'auto' (fly when a flyer is given and the image is wide enough)"
        )
    if mode == "fly" and flyer is None:
        raise PlanArgumentError(
            "mode = 'fly' needs the fly controller: pass flyer = the session's fly device "
            "(d.fly), or use mode = 'step'"
        )
    if mode == "auto":
        wide = isinstance(x_points, int) and x_points >= FLY_MIN_X_POINTS
        if flyer is None or not wide:
            return "step"
        if line_speed_um_per_s is not None:
            try:
                fastest = float(flyer.max_line_speed_um_per_s)
            except Exception:  # noqa: BLE001 - unknown: let the fly checks speak
                return "fly"
            if line_speed_um_per_s > fastest:
                return "step"
        return "fly"
    return mode


def line_speed_um_per_s(x_range_um: Any, x_points: Any, dwell_s: Any) -> float | None:
    """A fly line's sweep speed (pixel step / dwell); None if the arguments are not yet
    valid numbers (the plan's checks say what is wrong with them)."""
    try:
        return abs(float(x_range_um)) / (int(x_points) - 1) / float(dwell_s)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
