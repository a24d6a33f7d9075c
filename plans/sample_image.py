"""``sample_image``: a point-by-point raster of the sample under a fixed focused beam."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from bluesky import plan_stubs as bps
from bluesky import preprocessors as bpp
from bluesky.protocols import Movable, Readable
from bluesky.utils import MsgGenerator

from plans.validation import PlanArgumentError, check_in_range, check_positive_int, limits_of

__all__ = ["MAX_POINTS_PER_AXIS", "sample_image", "sample_image_grid"]

MAX_POINTS_PER_AXIS = 4096
STXM_SCAN_TYPE = "sample image"


def sample_image_grid(center_um: float, range_um: float, points: int) -> np.ndarray:
    """Pixel centres along one axis: ``points`` positions spanning ``range_um``.

    A single point sits at the centre; otherwise the first and last pixel centres are at
    ``center -/+ range/2``.
    """
    if points == 1:
        return np.array([float(center_um)])
    return np.linspace(center_um - range_um / 2.0, center_um + range_um / 2.0, points)


def _check_axis(
    label: str, motor: Any, center_um: float, range_um: float, points: int
) -> tuple[float, float, int]:
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


def _hinted_field(device: Any) -> str:
    """The data key a device's value appears under (its first hinted field)."""
    fields = getattr(device, "hints", {}).get("fields") or [device.name]
    return fields[0]


def _check_dwell(counter: Any, dwell_s: Any) -> float:
    low, high = 1e-6, 3600.0
    dwell_signal = getattr(counter, "dwell", None)
    reported = limits_of(dwell_signal) if dwell_signal is not None else None
    if reported is not None:
        low, high = reported
    return check_in_range(
        "dwell_s",
        dwell_s,
        low,
        high,
        "s",
        f"the {getattr(counter, 'name', 'counter')} counts for dwell_s at every pixel",
    )


def _count_and_read(counter: Any, readables: list[Any]) -> MsgGenerator[None]:
    """Trigger only the counter, then read everything into one primary event.

    Like ``bps.trigger_and_read``, minus trigger messages for stages and readables that
    have nothing to trigger (each message costs the RunEngine ~0.3 ms).
    """
    yield from bps.trigger(counter, wait=True)
    yield from bps.create("primary")
    for obj in readables:
        yield from bps.read(obj)
    yield from bps.save()


def sample_image(
    counter: Readable,
    x_motor: Movable,
    x_center_um: float,
    x_range_um: float,
    x_points: int,
    y_motor: Movable,
    y_center_um: float,
    y_range_um: float,
    y_points: int,
    dwell_s: float,
    *,
    snake: bool = False,
    readables: Sequence[Readable] = (),
    monitors: Sequence[Any] = (),
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """Raster the sample point by point and count at every pixel (NXstxm "sample image").

    Rows run along x at each y, from -y to +y; within a row x runs from -x to +x, or, with
    ``snake``, alternately back. At each pixel the stages move (both only when both change),
    the counter counts for ``dwell_s``, and the counter, the stage readbacks and any
    ``readables`` are read into one event of the ``primary`` stream. ``monitors`` (slowly
    varying signals such as the ring current) are recorded whenever they change, in streams
    of their own (``<name>_monitor``), at no cost per pixel.

    Parameters
    ----------
    counter
        Point detector with a ``dwell`` signal (e.g. :class:`devices.ApdPointCounter`).
    x_motor, y_motor
        Sample stage axes (positions in um).
    x_center_um, y_center_um
        Image centre, um.
    x_range_um, y_range_um
        Distance between the first and last pixel centres, um (>= 0).
    x_points, y_points
        Pixels per axis, 1 to 4096.
    dwell_s
        Counting time per pixel, s, within the counter's dwell limits.
    snake
        Scan alternate rows in opposite directions (saves the line return).
    readables
        Further readables read at every pixel, into the primary stream.
    monitors
        Signals recorded whenever they change during the run (e.g. ``ring.current``).
    md
        Extra metadata for the start document.

    Returns
    -------
    str
        The run's uid.

    Raises
    ------
    PlanArgumentError
        Before anything moves, if an argument is out of range or the raster leaves a stage's
        limits; the message names the parameter and the allowed range.
    """
    x_center_um, x_range_um, x_points = _check_axis(
        "x", x_motor, x_center_um, x_range_um, x_points
    )
    y_center_um, y_range_um, y_points = _check_axis(
        "y", y_motor, y_center_um, y_range_um, y_points
    )
    dwell_s = _check_dwell(counter, dwell_s)
    xs = sample_image_grid(x_center_um, x_range_um, x_points)
    ys = sample_image_grid(y_center_um, y_range_um, y_points)
    detectors = [counter, *readables]

    _md: dict[str, Any] = {
        "plan_name": "sample_image",
        "plan_args": {
            "counter": repr(counter),
            "x_motor": repr(x_motor),
            "x_center_um": x_center_um,
            "x_range_um": x_range_um,
            "x_points": x_points,
            "y_motor": repr(y_motor),
            "y_center_um": y_center_um,
            "y_range_um": y_range_um,
            "y_points": y_points,
            "dwell_s": dwell_s,
            "snake": snake,
            "readables": [repr(r) for r in readables],
            "monitors": [repr(m) for m in monitors],
        },
        "detectors": [d.name for d in detectors],
        "motors": [y_motor.name, x_motor.name],
        "num_points": x_points * y_points,
        "num_intervals": x_points * y_points - 1,
        "shape": [y_points, x_points],
        "extents": [[float(ys[0]), float(ys[-1])], [float(xs[0]), float(xs[-1])]],
        "snaking": [False, bool(snake)],
        "plan_pattern": "outer_product",
        "stxm_scan_type": STXM_SCAN_TYPE,
        "dwell_s": dwell_s,
        "counter": counter.name,
        "counter_field": _hinted_field(counter),
        "x_field": _hinted_field(x_motor),
        "y_field": _hinted_field(y_motor),
        "x_center_um": x_center_um,
        "x_range_um": x_range_um,
        "y_center_um": y_center_um,
        "y_range_um": y_range_um,
        "hints": {
            "dimensions": [([y_motor.name], "primary"), ([x_motor.name], "primary")],
            "gridding": "rectilinear",
        },
    }
    _md.update(md or {})

    read_each_point = [*detectors, x_motor, y_motor]

    @bpp.stage_decorator([*detectors, x_motor, y_motor])
    @bpp.monitor_during_decorator(list(monitors))  # outside the run: it hooks open_run
    @bpp.run_decorator(md=_md)
    def inner() -> MsgGenerator[None]:
        yield from bps.mv(counter.dwell, dwell_s)
        last: dict[Any, float] = {}
        for row, y in enumerate(ys):
            row_xs = xs[::-1] if (snake and row % 2) else xs
            for x in row_xs:
                yield from bps.checkpoint()
                moves: list[Any] = []
                for motor, target in ((x_motor, x), (y_motor, y)):
                    if last.get(motor) != target:
                        moves += [motor, float(target)]
                        last[motor] = target
                if moves:
                    yield from bps.mv(*moves)
                yield from _count_and_read(counter, read_each_point)

    return (yield from inner())
