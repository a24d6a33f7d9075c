"""Where a raster's pixels are, and whether it is flown or stepped."""

from __future__ import annotations

from typing import Any

import numpy as np

from plans.validation import PlanArgumentError, check_flyer

__all__ = [
    "FLY_MIN_X_POINTS",
    "MAX_POINTS_PER_AXIS",
    "choose_mode",
    "line_speed_um_per_s",
    "sample_image_grid",
]

FLY_MIN_X_POINTS = 8
"""Images at least this wide are flown by default (when a fly controller is given)."""
MAX_POINTS_PER_AXIS = 4096
"""Most pixels an image has along one axis."""


def sample_image_grid(center_um: float, range_um: float, points: int) -> np.ndarray:
    """Pixel centres along one axis: ``points`` positions spanning ``range_um``.

    A single point sits at the centre; otherwise the first and last pixel centres are at
    ``center -/+ range/2``.
    """
    if points == 1:
        return np.array([float(center_um)])
    return np.linspace(center_um - range_um / 2.0, center_um + range_um / 2.0, points)


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
