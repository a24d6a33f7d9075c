"""Argument checks that run before a plan moves anything.

Every message names the parameter, what was given, the allowed range and what to change.
Numbers may be Python or numpy numbers; strings and booleans are refused (a centre given as
``"0"`` is a mistake, not a number).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from stxm_ctrl.errors import UsageError

__all__ = [
    "PlanArgumentError",
    "check_bool",
    "check_counter",
    "check_distinct",
    "check_flyer",
    "check_in_range",
    "check_md",
    "check_positioner",
    "check_positive_int",
    "is_number",
    "limits_of",
]


class PlanArgumentError(UsageError):
    """A plan argument is outside what the plan or the hardware allows."""


def is_number(value: Any) -> bool:
    """True for a real number (Python or numpy), False for a bool, a string or anything else."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive_int(name: str, value: Any, maximum: int) -> int:
    """``value`` as an int in [1, maximum], or a :class:`PlanArgumentError`."""
    whole = is_number(value) and math.isfinite(float(value)) and float(value) == int(value)
    if not whole:
        raise PlanArgumentError(f"{name} must be a whole number of points, got {value!r}")
    if not 1 <= int(value) <= maximum:
        raise PlanArgumentError(
            f"{name} = {value} is out of range; allowed 1 to {maximum} points "
            f"(an image needs at least one pixel per axis)"
        )
    return int(value)


def check_in_range(
    name: str, value: Any, low: float, high: float, unit: str, fix: str = ""
) -> float:
    """``value`` as a float in [low, high], or a :class:`PlanArgumentError`."""
    if not is_number(value):
        raise PlanArgumentError(
            f"{name} must be a number in {unit}, got {value!r} ({type(value).__name__}); "
            f"give a number from {low:g} to {high:g} {unit}"
        )
    number = float(value)
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


def _describe(obj: Any) -> str:
    name = getattr(obj, "name", None)
    return f"{name!r} ({type(obj).__name__})" if name else repr(obj)


def check_positioner(name: str, obj: Any) -> None:
    """Refuse ``obj`` as the positioner ``name`` unless it can be moved and read."""
    missing = [m for m in ("set", "read", "describe") if not callable(getattr(obj, m, None))]
    if missing or not isinstance(getattr(obj, "name", None), str):
        raise PlanArgumentError(
            f"{name} = {_describe(obj)} cannot be moved (it has no "
            f"{', '.join(missing) or 'name'}); give a positioner such as a sample stage axis"
        )


def check_counter(name: str, obj: Any) -> None:
    """Refuse ``obj`` as the counter ``name`` unless it counts for a settable dwell."""
    missing = [m for m in ("trigger", "read", "describe") if not callable(getattr(obj, m, None))]
    dwell = getattr(obj, "dwell", None)
    if dwell is None or not callable(getattr(dwell, "set", None)):
        missing.append("dwell signal")
    if missing:
        raise PlanArgumentError(
            f"{name} = {_describe(obj)} is not a counter (it has no {', '.join(missing)}); "
            "give a point detector with a dwell, such as the APD counter"
        )


def check_bool(name: str, value: Any, meaning: str) -> bool:
    """``value`` as a bool; only True or False (numpy's too) are taken.

    ``bool("no")`` is True: a string, a number or None given for a yes/no choice is a
    mistake to report, not to guess at.
    """
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise PlanArgumentError(
        f"{name} = {value!r} ({type(value).__name__}): give True or False ({name} = True: "
        f"{meaning})"
    )


_FLYER_PARTS = ("kickoff", "complete", "fine_x", "fine_y", "max_line_speed_um_per_s")


def check_flyer(name: str, obj: Any) -> None:
    """Refuse ``obj`` as the fly controller ``name`` unless it is one (kickoff, piezo axes,
    a top line speed: :class:`devices.fly.LineFlyer`)."""
    missing = [part for part in _FLYER_PARTS if not hasattr(obj, part)]
    if missing:
        raise PlanArgumentError(
            f"{name} = {_describe(obj)} is not a fly controller (it has no "
            f"{', '.join(missing)}); pass the session's fly device (d.fly), or leave {name} "
            "out and scan step by step"
        )


def check_distinct(objects: Mapping[str, Any]) -> None:
    """Refuse the same device in two roles (e.g. one stage as both x and y)."""
    seen: dict[int, str] = {}
    for role, obj in objects.items():
        if id(obj) in seen:
            raise PlanArgumentError(
                f"{seen[id(obj)]} and {role} are the same device {_describe(obj)}; give each "
                "role its own device"
            )
        seen[id(obj)] = role


def check_md(md: Any, reserved: Iterable[str]) -> dict[str, Any]:
    """Extra metadata as a dict, refusing keys the plan writes itself."""
    if md is None:
        return {}
    if not isinstance(md, Mapping):
        raise PlanArgumentError(f"md must be a dict of metadata, got {type(md).__name__}")
    clash = sorted(set(md) & set(reserved))
    if clash:
        raise PlanArgumentError(
            f"md may not set {', '.join(clash)}: the plan writes these itself (reading the run "
            f"back depends on them); rename your keys. Reserved keys: "
            f"{', '.join(sorted(reserved))}"
        )
    return dict(md)
