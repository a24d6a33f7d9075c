"""Spectra, stacks and XMCD: the NXstxm scan types that move energy and polarisation.

Every plan here is one run made of *frames*: an energy and a polarisation, then a spatial
pattern counted at it (one point, the points of a line, or an image, stepped or flown).
Before each frame's counts the plan moves the EPU's polarisation (only when it changes), then
the energy (monochromator, EPU gap and, focus following energy, the zone plate), and records
one event in the ``frames`` stream (energy, polarisation, frame index). Step-mode events of
``primary`` carry the frame index (``stack_frame``); fly-mode line events belong to the last
``frames`` event before them (:mod:`stxm_ctrl.data.stacks` reads either back as a stack).

The start document lists the frames in order (``frames``: energy_eV and polarization of
each), so a reader knows the stack's shape before the first count, and an interrupted run
says how far it got. XMCD plans take both helicities at each energy in the order +-, -+, +-,
... so that a helicity switch (seconds, on the EPU) happens once per energy and slow drift
enters both helicities equally.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from bluesky import plan_stubs as bps
from bluesky import plans as bp
from bluesky import preprocessors as bpp
from bluesky.utils import MsgGenerator
from cycler import Cycler, cycler
from ophyd import Kind, Signal

from devices.fly import LineFlyer
from devices.sample_stage import coarse_stage_of
from plans.energy_list import check_energies_reachable, energy_points
from plans.estimates import (
    estimate_sample_image,
    estimate_spectromicroscopy,
    read_estimate_inputs,
)
from plans.fly_image import (
    check_fly_arguments,
    declare_fly_streams,
    fly_frames_md,
    fly_placed_frames,
    in_fly_run,
    place_fly_frames,
)
from plans.protocols import DwellCounter, Positioner
from plans.raster_grid import (
    RasterRegion,
    check_raster_axis,
    check_region,
    choose_mode,
    line_speed_um_per_s,
)
from plans.sample_image import check_dwell, count_then_read, hinted_field, place_sample_stage
from plans.validation import (
    PlanArgumentError,
    check_counter,
    check_distinct,
    check_in_range,
    check_md,
    check_positioner,
    check_positive_int,
    limits_of,
)
from stxm_ctrl.physics.undulator import POLARIZATIONS

__all__ = [
    "image_stack",
    "line_spectrum",
    "point_spectrum",
    "xmcd_image",
    "xmcd_stack",
]

FRAMES_STREAM = "frames"
MAX_LINE_POINTS = 4096
MAX_PAIRS = 100


def _check_polarization(name: str, value: Any) -> str:
    if value not in POLARIZATIONS:
        raise PlanArgumentError(
            f"{name} = {value!r}: choose one of {', '.join(map(repr, POLARIZATIONS))}"
        )
    return str(value)


def _xmcd_pair(plus: Any, minus: Any) -> tuple[str, str]:
    plus = _check_polarization("plus_polarization", plus)
    minus = _check_polarization("minus_polarization", minus)
    if not (plus.startswith("Circular") and minus.startswith("Circular")) or plus == minus:
        raise PlanArgumentError(
            f"plus_polarization = {plus!r}, minus_polarization = {minus!r}: XMCD needs the two "
            "circular polarisations, one each ('Circular left' and 'Circular right')"
        )
    return plus, minus


def xmcd_frames(
    energies_eV: np.ndarray, plus: str, minus: str, pairs: int = 1
) -> list[tuple[float, str]]:
    """(energy, polarisation) of each frame: both helicities per energy, alternating order.

    At each energy ``pairs`` pairs are taken; the order alternates (+ -, - +, + -, ...)
    across the whole run, so the polarisation changes once per pair and consecutive pairs
    meet in the same helicity.
    """
    frames: list[tuple[float, str]] = []
    flip = False
    for e in energies_eV:
        for _ in range(pairs):
            order = (minus, plus) if flip else (plus, minus)
            frames += [(float(e), order[0]), (float(e), order[1])]
            flip = not flip
    return frames


def _frames_md(frames: Sequence[tuple[float, str | None]]) -> list[dict[str, Any]]:
    return [{"energy_eV": e, "polarization": p} for e, p in frames]


def _spatial_md(
    counter: Any, x_motor: Any, y_motor: Any, xs: np.ndarray, ys: np.ndarray, dwell_s: float
) -> dict[str, Any]:
    ny, nx = len(ys), len(xs)
    return {
        "shape": [ny, nx],
        "extents": [[float(ys[0]), float(ys[-1])], [float(xs[0]), float(xs[-1])]],
        "snaking": [False, False],
        "dwell_s": dwell_s,
        "motors": [y_motor.name, x_motor.name],
        "counter": counter.name,
        "counter_field": hinted_field(counter),
        "x_field": hinted_field(x_motor),
        "y_field": hinted_field(y_motor),
        "frame_field": "stack_frame",
    }


class _Frames:
    """Moves polarisation and energy for each frame and records it (``frames`` stream)."""

    def __init__(self, energy: Any, polarization: Any) -> None:
        self.energy = energy
        self.polarization = polarization
        self.index: Any = Signal(name="stack_frame", value=-1, kind=Kind.hinted)

    def go_to(self, k: int, energy_eV: float, polarization: str | None) -> MsgGenerator[None]:
        yield from bps.checkpoint()
        if polarization is not None and self.polarization.position != polarization:
            yield from bps.mv(self.polarization, polarization)
        yield from bps.mv(self.energy, energy_eV)
        yield from bps.mv(self.index, k)
        readables: list[Any] = [self.energy, self.polarization, self.index]
        yield from bps.trigger_and_read(readables, name=FRAMES_STREAM)

    def trajectory(self, frames: Sequence[Any], spatial: Cycler | None = None) -> Cycler:
        """The run's cycler: the frame index, slowest, times the spatial pattern."""
        frame_axis = cycler(self.index, list(range(len(frames))))
        return frame_axis if spatial is None else frame_axis * spatial

    def per_step(
        self,
        frames: Sequence[tuple[float, str | None]],
        count: Callable[[], MsgGenerator[None]],
        spatial_axes: Sequence[Any] = (),
    ) -> Callable[..., MsgGenerator[None]]:
        """``scan_nd``'s ``per_step``: a new frame's moves and ``frames`` event when the frame
        index changes, then the spatial axes that change (together), then ``count()``.

        Energy and polarisation are not cycler keys: a frame moves the polarisation first,
        then the energy (the EPU gap depends on both), and records them in ``frames``; a
        cycler key would be moved with the others at once and staged by ``scan_nd``.
        """

        def per_step(detectors: Any, step: dict[Any, Any], pos_cache: dict[Any, Any]) -> Any:
            k = int(step[self.index])
            if pos_cache[self.index] != k:
                yield from self.go_to(k, *frames[k])
                pos_cache[self.index] = k
            moves: list[Any] = []
            for axis in spatial_axes:
                target = float(step[axis])
                if pos_cache[axis] != target:
                    moves += [axis, target]
                    pos_cache[axis] = target
            if moves:
                yield from bps.mv(*moves)
            yield from count()

        return per_step


def _read_focus_policy(energy: Any) -> MsgGenerator[tuple[bool, float]]:
    """The energy device's focus policy (does ZP z follow energy, its offset), read through
    the RunEngine."""
    follows = yield from bps.rd(energy.focus_follows_energy, default_value=False)
    offset = yield from bps.rd(energy.focus_offset_um, default_value=0.0)
    return bool(follows), float(offset)


def _validate_common(
    counter: Any,
    energy: Any,
    polarization: Any,
    energies: Any,
    polarizations: Sequence[str],
    dwell_s: Any,
) -> MsgGenerator[tuple[np.ndarray, float, dict[str, Any]]]:
    """The energies and dwell checked, and the focus policy as the start document records
    it; the policy is read (``bps.rd``) after every check that needs no reading."""
    check_counter("counter", counter)
    for name, device in (("energy", energy), ("polarization", polarization)):
        if not callable(getattr(device, "set", None)):
            raise PlanArgumentError(f"{name} = {device!r} cannot be moved")
    if not all(hasattr(energy, a) for a in ("energy_range_eV", "undulator", "focus_offset_um")):
        raise PlanArgumentError(
            f"energy = {energy!r} is not the beamline's energy (devices.Energy, which moves "
            "the monochromator, EPU gap and zone plate together): pass session.devices.energy"
        )
    if not isinstance(getattr(polarization, "position", None), str):
        raise PlanArgumentError(
            f"polarization = {polarization!r} is not the EPU's polarisation "
            "(devices.Polarization): pass session.devices.polarization"
        )
    points = energy_points(energies)
    dwell = check_dwell(counter, dwell_s)
    follows, offset = yield from _read_focus_policy(energy)
    check_energies_reachable(
        energy, points, polarizations, focus_offset_um=offset if follows else None
    )
    return points, dwell, {"focus_follows_energy": follows, "focus_offset_um": offset}


def _with_estimate(md: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    try:
        return {**md, "estimate": estimate_spectromicroscopy(**kwargs).to_dict()}
    except Exception:  # noqa: BLE001 - an estimate is never a reason not to scan
        return md


def _step_run(
    counter: DwellCounter,
    x_motor: Any,
    xs: np.ndarray,
    y_motor: Any,
    ys: np.ndarray,
    dwell_s: float,
    trajectory: Cycler,
    per_step: Any,
    md: dict[str, Any],
    monitors: Sequence[Any],
) -> MsgGenerator[str]:
    """A step-mode run on ``bluesky.plans.scan_nd``: the counter staged as bluesky's scans
    stage their detectors (it counts once per trigger), its dwell set and the sample stage
    placed before the run opens (the run's configuration records the dwell)."""

    def plan() -> MsgGenerator[str]:
        yield from bps.mv(counter.dwell, dwell_s)
        yield from place_sample_stage(x_motor, xs, y_motor, ys)
        return (yield from bp.scan_nd([counter], trajectory, per_step=per_step, md=md))

    uid = yield from bpp.monitor_during_wrapper(plan(), list(monitors))
    return str(uid)


def _points_run(
    scan_type: str,
    plan_name: str,
    counter: DwellCounter,
    energy: Any,
    polarization: Any,
    x_motor: Positioner,
    y_motor: Positioner,
    xs: np.ndarray,
    ys: np.ndarray,
    frames: list[tuple[float, str | None]],
    dwell_s: float,
    *,
    plan_args: dict[str, Any],
    focus_md: dict[str, Any],
    monitors: Sequence[Any],
    md: dict[str, Any] | None,
    extra_md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """One run: at each frame, count at every (xs[i], ys[i]) point (a point or a line)."""
    framer = _Frames(energy, polarization)
    detectors = [counter, x_motor, y_motor, framer.index]
    _md: dict[str, Any] = {
        "plan_name": plan_name,
        "plan_args": plan_args,
        "detectors": [counter.name],
        "stxm_scan_type": scan_type,
        "scan_mode": "step",
        **_spatial_md(counter, x_motor, y_motor, xs, ys, dwell_s),
        "shape": [1, len(xs)],
        "frames": _frames_md(frames),
        "num_points": len(frames) * len(xs),
        **focus_md,
        **(extra_md or {}),
        "hints": {"dimensions": [(["stack_frame"], "primary")]},
    }
    _md = _with_estimate(
        _md,
        frames=frames,
        pixels=len(xs),
        dwell_s=dwell_s,
        energy=energy,
        polarization=polarization,
        mode="step",
    )
    _md |= check_md(md, _md)
    # The points of a line move x and y together: one cycler axis of both.
    line = cycler(x_motor, [float(x) for x in xs]) + cycler(y_motor, [float(y) for y in ys])
    per_step = framer.per_step(
        frames, lambda: count_then_read([counter], detectors), (x_motor, y_motor)
    )
    return (
        yield from _step_run(
            counter,
            x_motor,
            xs,
            y_motor,
            ys,
            dwell_s,
            framer.trajectory(frames, line),
            per_step,
            _md,
            monitors,
        )
    )


def point_spectrum(
    counter: DwellCounter,
    energy: Any,
    polarization: Any,
    x_motor: Positioner,
    x_um: float,
    y_motor: Positioner,
    y_um: float,
    energies: Any,
    dwell_s: float,
    *,
    polarization_name: str | None = None,
    monitors: Sequence[Any] = (),
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """An absorption spectrum at one point of the sample (NXstxm "point spectrum").

    Parameters
    ----------
    counter
        Point detector with a ``dwell`` signal.
    energy, polarization
        The :class:`devices.Energy` and :class:`devices.Polarization` devices.
    x_motor, y_motor, x_um, y_um
        The stage axes and the point, um.
    energies
        Energies and regions (:func:`plans.energy_list.energy_points`), e.g.
        ``[(695, 704, 1), (704, 712, 0.2), (712, 730, 1)]``.
    dwell_s
        Counting time per energy, s.
    polarization_name
        Take the spectrum in this polarisation (moved to first); default: as it is.
    monitors
        Signals recorded whenever they change (e.g. ``ring.current``, for I0 normalisation).
    md
        Extra start-document metadata.

    Raises
    ------
    PlanArgumentError
        Before anything moves, for a bad energy list, an energy the beamline, EPU or optics
        cannot take, a point outside the stages' limits or a dwell outside the counter's.
    """
    pol = (
        None
        if polarization_name is None
        else _check_polarization("polarization_name", polarization_name)
    )
    check_positioner("x_motor", x_motor)
    check_positioner("y_motor", y_motor)
    check_distinct({"counter": counter, "x_motor": x_motor, "y_motor": y_motor})
    x_um, _, _ = check_raster_axis("x", x_motor, x_um, 0.0, 1)
    y_um, _, _ = check_raster_axis("y", y_motor, y_um, 0.0, 1)
    points, dwell, focus_md = yield from _validate_common(
        counter, energy, polarization, energies, [pol or polarization.position], dwell_s
    )
    frames: list[tuple[float, str | None]] = [(float(e), pol) for e in points]
    args = {
        "x_um": x_um,
        "y_um": y_um,
        "energies": points.tolist(),
        "dwell_s": dwell,
        "polarization_name": pol,
    }
    return (
        yield from _points_run(
            "point spectrum",
            "point_spectrum",
            counter,
            energy,
            polarization,
            x_motor,
            y_motor,
            np.array([x_um]),
            np.array([y_um]),
            frames,
            dwell,
            plan_args=args,
            focus_md=focus_md,
            monitors=monitors,
            md=md,
            extra_md={"x_center_um": x_um, "y_center_um": y_um},
        )
    )


def line_spectrum(
    counter: DwellCounter,
    energy: Any,
    polarization: Any,
    x_motor: Positioner,
    y_motor: Positioner,
    start_um: tuple[float, float],
    stop_um: tuple[float, float],
    points: int,
    energies: Any,
    dwell_s: float,
    *,
    polarization_name: str | None = None,
    monitors: Sequence[Any] = (),
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """Spectra along a line of the sample (NXstxm "line spectrum"): energy x position.

    At each energy the stages step along the line from ``start_um`` (x, y) to ``stop_um``,
    ``points`` pixels, counting ``dwell_s`` at each. Other arguments as
    :func:`point_spectrum`.
    """
    pol = (
        None
        if polarization_name is None
        else _check_polarization("polarization_name", polarization_name)
    )
    check_positioner("x_motor", x_motor)
    check_positioner("y_motor", y_motor)
    check_distinct({"counter": counter, "x_motor": x_motor, "y_motor": y_motor})
    n = check_positive_int("points", points, MAX_LINE_POINTS)
    ends = []
    for name, value in (("start_um", start_um), ("stop_um", stop_um)):
        if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
            raise PlanArgumentError(f"{name} = {value!r}: give (x_um, y_um)")
        fix = "keep the line within the stages' limits"
        x = check_in_range(f"{name}[0] (x)", value[0], *_limits(x_motor), "um", fix)
        y = check_in_range(f"{name}[1] (y)", value[1], *_limits(y_motor), "um", fix)
        ends.append((x, y))
    if n > 1 and ends[0] == ends[1]:
        raise PlanArgumentError(
            f"start_um = stop_um = {tuple(ends[0])} with points = {n}: every point of the line "
            "would be at the same place; give a stop_um apart from start_um, or use "
            "point_spectrum for one point"
        )
    xs = np.linspace(ends[0][0], ends[1][0], n)
    ys = np.linspace(ends[0][1], ends[1][1], n)
    frames_e, dwell, focus_md = yield from _validate_common(
        counter, energy, polarization, energies, [pol or polarization.position], dwell_s
    )
    frames: list[tuple[float, str | None]] = [(float(e), pol) for e in frames_e]
    args = {
        "start_um": list(ends[0]),
        "stop_um": list(ends[1]),
        "points": n,
        "energies": frames_e.tolist(),
        "dwell_s": dwell,
        "polarization_name": pol,
    }
    return (
        yield from _points_run(
            "line spectrum",
            "line_spectrum",
            counter,
            energy,
            polarization,
            x_motor,
            y_motor,
            xs,
            ys,
            frames,
            dwell,
            plan_args=args,
            focus_md=focus_md,
            monitors=monitors,
            md=md,
            extra_md={"line_start_um": list(ends[0]), "line_stop_um": list(ends[1])},
        )
    )


def _limits(motor: Any) -> tuple[float, float]:
    return limits_of(motor) or (-float("inf"), float("inf"))


def _image_frames_run(
    scan_type: str,
    plan_name: str,
    counter: DwellCounter,
    energy: Any,
    polarization: Any,
    region: RasterRegion,
    frames: list[tuple[float, str | None]],
    dwell_s: float,
    *,
    mode: str,
    flyer: LineFlyer | None,
    plan_args: dict[str, Any],
    focus_md: dict[str, Any],
    monitors: Sequence[Any],
    md: dict[str, Any] | None,
    extra_md: dict[str, Any],
) -> MsgGenerator[str]:
    """One run: at each frame an image, stepped (``scan_nd``) or flown."""
    x_motor, y_motor = region.x_motor, region.y_motor
    x_points, y_points = region.x_points, region.y_points
    speed = line_speed_um_per_s(region.x_range_um, x_points, dwell_s)
    chosen = choose_mode(mode, flyer, x_points, speed)
    xs, ys = region.x_grid_um(), region.y_grid_um()
    framer = _Frames(energy, polarization)
    if chosen == "fly":
        assert flyer is not None
        check_distinct({"flyer": flyer, "x_motor": x_motor, "y_motor": y_motor})
        dwell_s = check_dwell(flyer, dwell_s)
        check_fly_arguments(flyer, xs, dwell_s, flyer.max_line_speed_um_per_s)
    try:
        inputs = yield from read_estimate_inputs(region, flyer if chosen == "fly" else None)
        frame_estimate = estimate_sample_image(
            counter, region, dwell_s, mode=chosen, flyer=flyer, inputs=inputs
        )
    except Exception:  # noqa: BLE001 - an estimate is never a reason not to scan
        frame_estimate = None
    _md: dict[str, Any] = {
        "plan_name": plan_name,
        "plan_args": {**plan_args, "mode": chosen},
        "stxm_scan_type": scan_type,
        "scan_mode": chosen,
        **_spatial_md(counter, x_motor, y_motor, xs, ys, dwell_s),
        **region.centre_and_range_md(),
        "frames": _frames_md(frames),
        "num_points": len(frames) * x_points * y_points,
        **focus_md,
        **extra_md,
    }
    if chosen == "step":
        detectors = [counter, x_motor, y_motor, framer.index]
        _md |= {
            "detectors": [counter.name],
            "hints": {"dimensions": [(["stack_frame"], "primary")]},
        }
        _md = _with_estimate(
            _md,
            frames=frames,
            pixels=x_points * y_points,
            dwell_s=dwell_s,
            energy=energy,
            polarization=polarization,
            mode="step",
            frame_estimate=frame_estimate,
        )
        _md |= check_md(md, _md)
        image = cycler(y_motor, [float(y) for y in ys]) * cycler(x_motor, [float(x) for x in xs])
        per_step = framer.per_step(
            frames, lambda: count_then_read([counter], detectors), (y_motor, x_motor)
        )
        return (
            yield from _step_run(
                counter,
                x_motor,
                xs,
                y_motor,
                ys,
                dwell_s,
                framer.trajectory(frames, image),
                per_step,
                _md,
                monitors,
            )
        )

    assert flyer is not None
    coarse_x, coarse_y = (coarse_stage_of(m) for m in (x_motor, y_motor))
    placed = place_fly_frames(flyer, coarse_x, coarse_y, xs, ys, dwell_s, snake=False)
    name = flyer.name
    _md |= {
        **fly_frames_md(placed),
        "detectors": [name],
        "counter": name,
        "counter_field": f"{name}_counts",
        "x_field": f"{name}_x",
        "y_field": f"{name}_y",
        "row_field": f"{name}_row",
        "column_field": f"{name}_column",
        "dwell_field": f"{name}_dwell",
        "frame_field": None,
        "hints": {"dimensions": [([f"{name}_row"], "primary")]},
    }
    _md = _with_estimate(
        _md,
        frames=frames,
        pixels=x_points * y_points,
        dwell_s=dwell_s,
        energy=energy,
        polarization=polarization,
        mode="fly",
        lines=y_points,
        flyer=flyer,
        x_range_um=region.x_range_um,
        x_points=x_points,
        frame_estimate=frame_estimate,
    )
    _md |= check_md(md, _md)

    def fly_image() -> MsgGenerator[None]:
        yield from fly_placed_frames(flyer, coarse_x, coarse_y, placed, ys)

    # The same frames and per_step as a step run, one flown image per step; the loop is
    # in_fly_run's rather than scan_nd's because scan_nd opens the run itself, and the
    # flyer's stop (a frame still running when the run ends) must run inside the run,
    # while the RunEngine still watches the frame's statuses.
    per_step = framer.per_step(frames, fly_image)

    def fly_body() -> MsgGenerator[None]:
        yield from declare_fly_streams(flyer)
        pos_cache: dict[Any, Any] = defaultdict(lambda: None)
        for step in framer.trajectory(frames):
            yield from per_step([], step, pos_cache)

    return (yield from in_fly_run(flyer, fly_body(), md=_md, monitors=monitors))


def _stack_region(region: Any) -> RasterRegion:
    region = check_region("region", region)
    if region.snake:
        raise PlanArgumentError(
            "region.snake = True: the images of a stack are not snaked (each frame's image "
            "is read back row by row); make the region with snake = False"
        )
    return region


def image_stack(
    counter: DwellCounter,
    energy: Any,
    polarization: Any,
    region: RasterRegion,
    energies: Any,
    dwell_s: float,
    *,
    polarization_name: str | None = None,
    mode: str = "auto",
    flyer: LineFlyer | None = None,
    monitors: Sequence[Any] = (),
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """An image at each energy (NXstxm "sample image stack"): energy x y x x.

    The images are flown line by line when a ``flyer`` is given (``mode`` as
    :func:`plans.sample_image`), else stepped. The zone plate follows energy (the
    :class:`devices.Energy` device's focus policy, recorded as ``focus_follows_energy`` and
    ``focus_offset_um``). ``region`` is the image (:class:`plans.RasterRegion`, not
    snaked). Other arguments as :func:`plans.sample_image` and :func:`point_spectrum`.
    """
    pol = (
        None
        if polarization_name is None
        else _check_polarization("polarization_name", polarization_name)
    )
    region = _stack_region(region)
    check_distinct({"counter": counter, "x_motor": region.x_motor, "y_motor": region.y_motor})
    points, dwell, focus_md = yield from _validate_common(
        counter, energy, polarization, energies, [pol or polarization.position], dwell_s
    )
    frames: list[tuple[float, str | None]] = [(float(e), pol) for e in points]
    args = {
        **_region_args(region),
        "energies": points.tolist(),
        "dwell_s": dwell,
        "polarization_name": pol,
    }
    return (
        yield from _image_frames_run(
            "sample image stack",
            "image_stack",
            counter,
            energy,
            polarization,
            region,
            frames,
            dwell,
            mode=mode,
            flyer=flyer,
            plan_args=args,
            focus_md=focus_md,
            monitors=monitors,
            md=md,
            extra_md={},
        )
    )


def _region_args(region: RasterRegion) -> dict[str, Any]:
    """The region's numbers, as these plans' ``plan_args`` record them."""
    return {k: v for k, v in region.plan_args().items() if not k.endswith("_motor")}


def xmcd_stack(
    counter: DwellCounter,
    energy: Any,
    polarization: Any,
    region: RasterRegion,
    energies: Any,
    dwell_s: float,
    *,
    plus_polarization: str = "Circular left",
    minus_polarization: str = "Circular right",
    pairs: int = 1,
    mode: str = "auto",
    flyer: LineFlyer | None = None,
    monitors: Sequence[Any] = (),
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """Images at both helicities at each energy (an XMCD "sample image stack").

    At each energy, ``pairs`` image pairs, in the order +-, -+, +-, ... across the run
    (:func:`xmcd_frames`): one helicity switch per pair. ``plus_polarization`` is recorded
    as the image called I+ (the beamline's convention: ``[xmcd] plus_polarization``).
    Other arguments as :func:`image_stack`.
    """
    plus, minus = _xmcd_pair(plus_polarization, minus_polarization)
    n_pairs = check_positive_int("pairs", pairs, MAX_PAIRS)
    region = _stack_region(region)
    check_distinct({"counter": counter, "x_motor": region.x_motor, "y_motor": region.y_motor})
    points, dwell, focus_md = yield from _validate_common(
        counter, energy, polarization, energies, [plus, minus], dwell_s
    )
    frames: list[tuple[float, str | None]] = list(xmcd_frames(points, plus, minus, n_pairs))
    args = {
        **_region_args(region),
        "energies": points.tolist(),
        "dwell_s": dwell,
        "plus_polarization": plus,
        "minus_polarization": minus,
        "pairs": n_pairs,
    }
    scan_type = "sample image stack" if len(points) > 1 else "sample image"
    return (
        yield from _image_frames_run(
            scan_type,
            "xmcd_stack" if len(points) > 1 else "xmcd_image",
            counter,
            energy,
            polarization,
            region,
            frames,
            dwell,
            mode=mode,
            flyer=flyer,
            plan_args=args,
            focus_md=focus_md,
            monitors=monitors,
            md=md,
            extra_md={
                "xmcd": {"plus_polarization": plus, "minus_polarization": minus, "pairs": n_pairs}
            },
        )
    )


def xmcd_image(
    counter: DwellCounter,
    energy: Any,
    polarization: Any,
    region: RasterRegion,
    energy_eV: float,
    dwell_s: float,
    *,
    plus_polarization: str = "Circular left",
    minus_polarization: str = "Circular right",
    pairs: int = 1,
    mode: str = "auto",
    flyer: LineFlyer | None = None,
    monitors: Sequence[Any] = (),
    md: dict[str, Any] | None = None,
) -> MsgGenerator[str]:
    """An XMCD image pair at one energy (e.g. the Fe L3 peak): ``pairs`` x (I+, I-).

    The pairs alternate +-, -+, ... (an ABBA sequence for ``pairs`` = 2), so slow drift of
    the beam or the sample enters both helicities alike. Arguments as :func:`xmcd_stack`,
    with one energy.
    """
    if isinstance(energy_eV, Sequence):
        raise PlanArgumentError(
            f"energy_eV = {energy_eV!r}: xmcd_image takes one energy; use xmcd_stack for several"
        )
    return (
        yield from xmcd_stack(
            counter,
            energy,
            polarization,
            region,
            [energy_eV],
            dwell_s,
            plus_polarization=plus_polarization,
            minus_polarization=minus_polarization,
            pairs=pairs,
            mode=mode,
            flyer=flyer,
            monitors=monitors,
            md=md,
        )
    )
