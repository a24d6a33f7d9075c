"""Argument checks that run before a plan moves anything.

Every message names the parameter, what was given, the allowed range and what to change.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["PlanArgumentError", "check_in_range", "check_positive_int", "limits_of"]


class PlanArgumentError(ValueError):
    """A plan argument is outside what the plan or the hardware allows."""


def check_positive_int(name: str, value: Any, maximum: int) -> int:
    """``value`` as an int in [1, maximum], or a :class:`PlanArgumentError`."""
    whole = isinstance(value, int | float) and math.isfinite(value) and value == int(value)
    if isinstance(value, bool) or not whole:
        raise PlanArgumentError(f"{name} must be a whole number of points, got {value!r}")
    if not 1 <= value <= maximum:
        raise PlanArgumentError(
            f"{name} = {value} is out of range; allowed 1 to {maximum} points "
            f"(an image needs at least one pixel per axis)"
        )
    return int(value)


def check_in_range(
    name: str, value: Any, low: float, high: float, unit: str, fix: str = ""
) -> float:
    """``value`` as a float in [low, high], or a :class:`PlanArgumentError`."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PlanArgumentError(f"{name} must be a number in {unit}, got {value!r}") from None
    if not math.isfinite(number) or not low <= number <= high:
        hint = f"; {fix}" if fix else ""
        raise PlanArgumentError(
            f"{name} = {value!r} {unit} is out of range; allowed {low:g} to {high:g} {unit}{hint}"
        )
    return number


def limits_of(movable: Any) -> tuple[float, float] | None:
    """Soft limits ``(low, high)`` a positioner reports, or None where it has none."""
    limits = getattr(movable, "limits", None)
    if limits is None:
        return None
    low, high = (float(v) for v in limits)
    if low == high:  # EPICS convention: equal control limits mean "no limits"
        return None
    return low, high
