"""``sample_image``: a point-by-point raster of the sample under a fixed focused beam."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, cast

import numpy as np
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from bluesky import preprocessors as bpp
from bluesky.utils import MsgGenerator

from devices.fly import LineFlyer
from devices.sample_stage import SampleAxis, coarse_stage_of
from plans.estimates import estimate_sample_image
from plans.fly_image import check_fly_arguments, fly_raster
from plans.protocols import DwellCounter, Positioner, ReadableDevice
from plans.raster_grid import (
    FLY_MIN_X_POINTS,
    MAX_POINTS_PER_AXIS,
    choose_mode,
    line_speed_um_per_s,
    sample_image_grid,
)
from plans.validation import (
    PlanArgumentError,
    check_bool,
    check_counter,
    check_distinct,
    check_in_range,
    check_md,
    check_positioner,
    check_positive_int,
    limits_of,
)

__all__ = [
    "FLY_MIN_X_POINTS",
    "MAX_POINTS_PER_AXIS",
    "raster_image",
    "sample_image",
    "sample_image_grid",
]

STXM_SCAN_TYPE = "sample image"


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


def _count_then_read(
    triggered: Sequence[Any],
    devices: Sequence[Any],
    name: str = "primary",
    *,
    collect: list[dict[str, Any]] | None = None,
) -> MsgGenerator[None]:
    """``take_reading`` for ``one_nd_step``: trigger the counters, read everything, save.

    ``bps.trigger_and_read`` minus the trigger messages for stages, which have nothing to
    trigger; like it, a failed read drops the event instead of saving half of it. With
    ``collect``, each saved event's readings are appended to it (for plans that analyse
    their own data).
    """
    group = "sample_image_count"
    for obj in triggered:
        yield from bps.trigger(obj, group=group)
    yield from bps.wait(group=group)
    yield from bps.create(name)

    readings: dict[str, Any] = {}

    def read_all() -> MsgGenerator[None]:
        for obj in devices:
            readings.update((yield from bps.read(obj)) or {})
        if collect is not None:
            collect.append(readings)

    def drop_and_raise(exc: Exception) -> MsgGenerator[None]:
        yield from bps.drop()
        raise exc

    yield from bpp.contingency_wrapper(read_all(), except_plan=drop_and_raise, else_plan=bps.save)


def sample_image(
    counter: DwellCounter,
    x_motor: Positioner,
    x_center_um: float,
    x_range_um: float,
    x_points: int,
    y_motor: Positioner,
    y_center_um: float,
    y_range_um: float,
    y_points: int,
    dwell_s: float,
    *,
    snake: bool = False,
    mode: str = "auto",
    flyer: LineFlyer | None = None,
    readables: Sequence[ReadableDevice] = (),
    monitors: Sequence[Any] = (),
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """Image the sample, line by line on the fly or point by point (NXstxm "sample image").

    **Fly mode** (``mode="fly"``; the default, ``"auto"``, when a ``flyer`` is given and
    the image is at least :data:`FLY_MIN_X_POINTS` pixels wide): the piezo sweeps each line
    at constant speed while the fly controller counts and bins photons per pixel by the
    interferometer's position; one event per line carries the line's counts and the
    interferometer's x and y of every pixel. Positions are interferometer coordinates, so
    the image is where the sample really was. The coarse stages (``x_motor``, ``y_motor``)
    move only to re-centre the piezo: an image larger than the piezo's range is flown as
    bands of lines and columns, the coarse stage moving between them. A line that comes
    back incomplete is measured once more; a second failure, or a controller that stops
    answering, ends the run with the reason, every line measured before kept. See
    :func:`plans.fly_image.fly_raster`.

    **Step mode** (``mode="step"``):

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
    mode
        ``"fly"``, ``"step"``, or ``"auto"`` (fly when a ``flyer`` is given,
        ``x_points >= FLY_MIN_X_POINTS`` and the line speed is one the controller does).
    flyer
        The fly controller (:class:`devices.fly.LineFlyer`); needed for ``mode="fly"``.
    readables
        Further readables read at every pixel, into the primary stream (step mode only).
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
    snake = check_bool("snake", snake, "alternate rows run in opposite directions")
    chosen = choose_mode(mode, flyer, x_points, line_speed_um_per_s(x_range_um, x_points, dwell_s))
    md = _with_estimate(
        md, counter, x_motor, x_center_um, x_range_um, x_points, y_motor, y_center_um,
        y_range_um, y_points, dwell_s, snake=snake, mode=chosen, flyer=flyer,
    )  # fmt: skip
    if chosen == "step":
        return (
            yield from raster_image(
                counter, x_motor, x_center_um, x_range_um, x_points,
                y_motor, y_center_um, y_range_um, y_points, dwell_s,
                snake=snake, readables=readables, monitors=monitors, md=md,
            )
        )  # fmt: skip
    assert flyer is not None
    if readables:
        raise PlanArgumentError(
            "readables are read at every pixel of a step scan; a fly scan has no per-pixel "
            "reads: drop readables or use mode = 'step'"
        )
    check_positioner("x_motor", x_motor)
    check_positioner("y_motor", y_motor)
    check_distinct({"flyer": flyer, "x_motor": x_motor, "y_motor": y_motor})
    x_center_um, x_range_um, x_points = _check_axis(
        "x", x_motor, x_center_um, x_range_um, x_points
    )
    y_center_um, y_range_um, y_points = _check_axis(
        "y", y_motor, y_center_um, y_range_um, y_points
    )
    dwell_s = _check_dwell(flyer, dwell_s)
    xs = sample_image_grid(x_center_um, x_range_um, x_points)
    ys = sample_image_grid(y_center_um, y_range_um, y_points)
    check_fly_arguments(flyer, xs, dwell_s, flyer.max_line_speed_um_per_s)
    name = flyer.name
    _md: dict[str, Any] = {
        "plan_name": "sample_image",
        "plan_args": {
            "counter": repr(counter), "flyer": repr(flyer), "mode": "fly",
            "x_motor": repr(x_motor), "x_center_um": x_center_um, "x_range_um": x_range_um,
            "x_points": x_points, "y_motor": repr(y_motor), "y_center_um": y_center_um,
            "y_range_um": y_range_um, "y_points": y_points, "dwell_s": dwell_s,
            "snake": snake, "monitors": [repr(m) for m in monitors],
        },
        "detectors": [name],
        **_raster_md(x_motor, y_motor, xs, ys, snake, dwell_s),
        "stxm_scan_type": STXM_SCAN_TYPE,
        "scan_mode": "fly",
        "counter": name,
        "counter_field": f"{name}_counts",
        "x_field": f"{name}_x",
        "y_field": f"{name}_y",
        "row_field": f"{name}_row",
        "column_field": f"{name}_column",
        "dwell_field": f"{name}_dwell",
        **_centre_and_range_md(x_center_um, x_range_um, y_center_um, y_range_um),
        "hints": {"dimensions": [([f"{name}_row"], "primary")], "gridding": "rectilinear"},
    }  # fmt: skip
    _md |= check_md(md, _md)
    # The fly controller moves the piezo; a SampleStage axis lends it its coarse stage.
    coarse_x, coarse_y = (coarse_stage_of(m) for m in (x_motor, y_motor))
    return (
        yield from fly_raster(
            flyer, coarse_x, coarse_y, xs, ys, dwell_s, snake=snake, md=_md, monitors=monitors
        )
    )


def place_sample_stage(
    x_motor: Any, xs: np.ndarray, y_motor: Any, ys: np.ndarray
) -> MsgGenerator[None]:
    """Choose, for each :class:`devices.SampleAxis`, the stage that steps through its pixels.

    An axis whose pixels fit the piezo's travel (:meth:`devices.SampleAxis.region`) steps
    the piezo, the coarse stage first bringing the image's centre to the piezo's centre;
    a wider one steps the coarse stage with the piezo centred. Other positioners (a coarse
    stage or an optics axis given directly) are left as they are.
    """
    moves: list[Any] = []
    for axis, positions in ((x_motor, xs), (y_motor, ys)):
        if isinstance(axis, SampleAxis):
            region = axis.region(float(positions.min()), float(positions.max()))
            yield from bps.mv(axis.motion, region.motion)
            moves += [axis.coarse, region.coarse_um, axis.fine, region.fine_um]
    if moves:
        yield from bps.mv(*moves)


def _raster_md(
    x_motor: Any, y_motor: Any, xs: np.ndarray, ys: np.ndarray, snake: bool, dwell_s: float
) -> dict[str, Any]:
    """Start-document keys every raster has, flown or stepped (bluesky's grid_scan shape)."""
    x_points, y_points = len(xs), len(ys)
    return {
        "motors": [y_motor.name, x_motor.name],
        "num_points": x_points * y_points,
        "num_intervals": x_points * y_points - 1,
        "shape": [y_points, x_points],
        "extents": [[float(ys[0]), float(ys[-1])], [float(xs[0]), float(xs[-1])]],
        "snaking": [False, snake],
        "plan_pattern": "outer_product",
        "dwell_s": dwell_s,
    }


def _centre_and_range_md(
    x_center_um: float, x_range_um: float, y_center_um: float, y_range_um: float
) -> dict[str, float]:
    return {
        "x_center_um": x_center_um,
        "x_range_um": x_range_um,
        "y_center_um": y_center_um,
        "y_range_um": y_range_um,
    }


def _with_estimate(md: dict[str, Any] | None, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """``md`` plus the scan's duration estimate (``estimate``), if one can be made."""
    try:
        estimate = estimate_sample_image(*args, **kwargs)
    except Exception:  # noqa: BLE001 - an estimate is never a reason not to scan
        return dict(md or {})
    return {**(md or {}), "estimate": estimate.to_dict()}


def raster_image(
    counter: DwellCounter,
    x_motor: Positioner,
    x_center_um: float,
    x_range_um: float,
    x_points: int,
    y_motor: Positioner,
    y_center_um: float,
    y_range_um: float,
    y_points: int,
    dwell_s: float,
    *,
    snake: bool = False,
    readables: Sequence[ReadableDevice] = (),
    monitors: Sequence[Any] = (),
    md: dict[str, Any] | None = None,
    plan_name: str = "sample_image",
    scan_type: str = STXM_SCAN_TYPE,
    collect: list[dict[str, Any]] | None = None,
) -> MsgGenerator[str]:
    """A point-by-point raster of any two axes, as :func:`sample_image` describes it.

    The alignment plans use it for the detector and OSA stages; ``plan_name`` and
    ``scan_type`` go into the start document, and with ``collect`` every saved event's
    readings are appended to that list (for a plan that analyses its own data).
    """
    check_counter("counter", counter)
    check_positioner("x_motor", x_motor)
    check_positioner("y_motor", y_motor)
    for i, readable in enumerate(readables):
        if not callable(getattr(readable, "read", None)):
            raise PlanArgumentError(f"readables[{i}] = {readable!r} cannot be read")
    check_distinct(
        {"counter": counter, "x_motor": x_motor, "y_motor": y_motor}
        | {f"readables[{i}]": r for i, r in enumerate(readables)}
    )
    x_center_um, x_range_um, x_points = _check_axis(
        "x", x_motor, x_center_um, x_range_um, x_points
    )
    y_center_um, y_range_um, y_points = _check_axis(
        "y", y_motor, y_center_um, y_range_um, y_points
    )
    dwell_s = _check_dwell(counter, dwell_s)
    snake = check_bool("snake", snake, "alternate rows run in opposite directions")
    xs = sample_image_grid(x_center_um, x_range_um, x_points)
    ys = sample_image_grid(y_center_um, y_range_um, y_points)
    detectors = [counter, *readables]

    _md: dict[str, Any] = {
        "plan_name": plan_name,
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
        **_raster_md(x_motor, y_motor, xs, ys, snake, dwell_s),
        "stxm_scan_type": scan_type,
        "counter": counter.name,
        "counter_field": _hinted_field(counter),
        "x_field": _hinted_field(x_motor),
        "y_field": _hinted_field(y_motor),
        **_centre_and_range_md(x_center_um, x_range_um, y_center_um, y_range_um),
        "hints": {
            "dimensions": [([y_motor.name], "primary"), ([x_motor.name], "primary")],
            "gridding": "rectilinear",
        },
    }
    _md |= check_md(md, _md)

    # bluesky's grid scan does the raster: the snake, staging, a checkpoint at every pixel,
    # and moves of only the axes whose position changes (one_nd_step); the counters alone
    # are triggered at each pixel, and a failed read drops that pixel's event.
    take_reading = cast(bps.TakeReading, partial(_count_then_read, detectors, collect=collect))
    per_step = partial(bps.one_nd_step, take_reading=take_reading)
    grid = bp.grid_scan(
        detectors,
        y_motor,
        float(ys[0]),
        float(ys[-1]),
        y_points,
        x_motor,
        float(xs[0]),
        float(xs[-1]),
        x_points,
        snake_axes=snake,
        per_step=per_step,
        md=_md,
    )

    @bpp.monitor_during_decorator(list(monitors))  # outside the run: it hooks open_run
    def with_dwell() -> MsgGenerator[str]:
        # Set before the run opens, so the run's configuration records them.
        yield from bps.mv(counter.dwell, dwell_s)
        yield from place_sample_stage(x_motor, xs, y_motor, ys)
        return (yield from grid)

    return (yield from with_dwell())
