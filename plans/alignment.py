"""Alignment scans: find the beam on the detector, the OSA's hole, and the focus.

Each is a raster like :func:`plans.sample_image` (arguments checked before anything moves,
metadata, monitors) whose start document names its ``stxm_scan_type``, and each can analyse
its own data (:mod:`plans.alignment_analysis`) and move there afterwards:

- :func:`detector_image` rasters the detector stage with the OSA out of the beam: a bright
  disc where the detector's active area catches the beam; ``move_to_center``.
- :func:`osa_image` rasters the OSA across the beam: the bright disc of the hole through
  which the first order passes (with a faint ring of zero order around it);
  ``move_to_center``.
- :func:`osa_focus` steps ZP z and scans the OSA along one axis at each: the focus "X",
  whose crossing is the ZP z that focuses in the OSA plane; ``move_to_focus``.
- :func:`sample_focus` steps ZP z and scans a line across a sharp edge of the sample at
  each: the ZP z at which the edge is sharpest; ``move_to_focus`` (and, given the energy
  device, makes that the focus energy moves keep).

Each returns an :class:`AlignmentResult` (the run's uid and what was found; ``found`` is
None when the analysis failed, with the reason in ``problem``). The rastered axes go back to
where they were when the scan ends (also when it fails or is interrupted), then to what was
found if that was asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from bluesky import plan_stubs as bps
from bluesky import preprocessors as bpp
from bluesky.utils import MsgGenerator

from plans.alignment_analysis import (
    AnalysisError,
    disc_center,
    sample_focus_from_edges,
    x_focus_from_osa_scan,
)
from plans.protocols import DwellCounter, Positioner
from plans.raster_grid import RasterRegion, check_raster_axis, check_region
from plans.sample_image import raster_image
from plans.validation import PlanArgumentError, check_bool, check_in_range, check_positioner

__all__ = [
    "AlignmentResult",
    "detector_image",
    "osa_focus",
    "osa_image",
    "sample_focus",
]

log = logging.getLogger(__name__)


@dataclass
class AlignmentResult:
    """What an alignment scan found.

    Attributes
    ----------
    uid
        The run.
    found
        Axis name -> position found (e.g. ``{"osa_x": 4.0, "osa_y": -2.5}``), or None.
    moved
        True if the axes were moved there.
    problem
        Why nothing was found, if so.
    details
        Further figures of the analysis (e.g. the edge width at focus).
    """

    uid: str
    found: dict[str, float] | None = None
    moved: bool = False
    problem: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def _field(device: Any) -> str:
    fields = getattr(device, "hints", {}).get("fields") or [device.name]
    return fields[0]


def _image(
    readings: Sequence[dict[str, Any]],
    value_key: str,
    x_key: str,
    y_key: str,
    xs: np.ndarray,
    ys: np.ndarray,
) -> np.ndarray:
    """The counts of a raster on its grid (NaN where a pixel was not saved)."""
    image = np.full((ys.size, xs.size), np.nan)
    for reading in readings:
        try:
            x = float(reading[x_key]["value"])
            y = float(reading[y_key]["value"])
            value = float(reading[value_key]["value"])
        except (KeyError, TypeError, ValueError):
            continue
        image[int(np.argmin(np.abs(ys - y))), int(np.argmin(np.abs(xs - x)))] = value
    return image


def _check_targets(name: str, motor: Any, center: float, span: float) -> None:
    """Refuse, before anything moves, a scan whose ends the motor (or its interlock) refuses."""
    check = getattr(motor, "check_value", None)
    if check is None:
        return
    for target in (center - span / 2.0, center + span / 2.0):
        try:
            check(target)
        except ValueError as exc:
            raise PlanArgumentError(
                f"{name}: the scan would take {getattr(motor, 'name', name)} to {target:g}, "
                f"which is refused: {exc}"
            ) from None


def _raster_and_find(
    counter: DwellCounter,
    region: RasterRegion,
    dwell_s: float,
    *,
    plan_name: str,
    scan_type: str,
    monitors: Sequence[Any],
    md: dict[str, Any] | None,
    analyse: Any,
) -> MsgGenerator[tuple[str, dict[str, float] | None, str, dict[str, Any]]]:
    readings: list[dict[str, Any]] = []
    x_motor, y_motor = region.x_motor, region.y_motor
    # The raster leaves its axes at its last point (a detector off the beam, the OSA off
    # axis): they go back where they were, whatever happens, before any move to what the
    # analysis found.
    axes: tuple[Any, ...] = (x_motor, y_motor)  # positioners: they have a position
    starts = [(motor, float(motor.position)) for motor in axes]
    back = [item for motor, position in starts for item in (motor, position)]
    uid = yield from bpp.finalize_wrapper(
        raster_image(
            counter,
            region,
            dwell_s,
            monitors=monitors,
            md=md,
            plan_name=plan_name,
            scan_type=scan_type,
            collect=readings,
        ),
        bps.mv(*back),
    )
    xs, ys = region.x_grid_um(), region.y_grid_um()
    image = _image(readings, _field(counter), _field(x_motor), _field(y_motor), xs, ys)
    try:
        found, details = analyse(xs, ys, image)
    except AnalysisError as exc:
        log.warning("%s %s: %s", plan_name, uid, exc)
        return uid, None, str(exc), {}
    log.info("%s %s found %s", plan_name, uid, found)
    return uid, found, "", details


def detector_image(
    counter: DwellCounter,
    region: RasterRegion,
    dwell_s: float,
    *,
    osa: Any = None,
    osa_out_um: float = 1500.0,
    move_to_center: bool = False,
    monitors: Sequence[Any] = (),
    md: dict[str, Any] | None = None,
) -> MsgGenerator[AlignmentResult]:
    """Raster the detector stage across the beam, with the OSA out: where is the beam?

    Parameters
    ----------
    counter
        The APD counter.
    region
        The raster over the detector stage's axes (:class:`plans.RasterRegion` with
        ``x_motor = detector.x``, ``y_motor = detector.y``), as in :func:`plans.sample_image`.
    dwell_s
        Counting time per point, s.
    osa
        The OSA; if given, its x axis moves ``osa_out_um`` aside for the scan (so the zero
        order and the whole cone reach the detector) and back afterwards, whatever happens.
    osa_out_um
        How far aside the OSA goes, um (beyond its plate).
    move_to_center
        Move the detector to the centre of the bright disc afterwards.
    monitors, md
        As in :func:`plans.sample_image`.
    """
    region = check_region("region", region)
    x_axis, y_axis = region.x_motor, region.y_motor
    move_to_center = check_bool("move_to_center", move_to_center, "the detector goes there")
    osa_out_um = check_in_range("osa_out_um", osa_out_um, -1e5, 1e5, "um")

    def analyse(xs: np.ndarray, ys: np.ndarray, image: np.ndarray) -> Any:
        x0, y0 = disc_center(xs, ys, image)
        return {x_axis.name: x0, y_axis.name: y0}, {}

    def scan() -> MsgGenerator[Any]:
        return (
            yield from _raster_and_find(
                counter,
                region,
                dwell_s,
                plan_name="detector_image",
                scan_type="detector image",
                monitors=monitors,
                md=md,
                analyse=analyse,
            )
        )

    if osa is not None:
        check_positioner("osa.x", getattr(osa, "x", None))
        osa_x_home = float(osa.x.position)
        _check_targets("osa_out_um", osa.x, osa_x_home + osa_out_um, 0.0)

        def with_osa_out() -> MsgGenerator[Any]:
            yield from bps.mv(osa.x, osa_x_home + osa_out_um)
            return (yield from scan())

        outcome = yield from bpp.finalize_wrapper(with_osa_out(), bps.mv(osa.x, osa_x_home))
    else:
        outcome = yield from scan()
    return (
        yield from _finish(outcome, move_to_center, {x_axis.name: x_axis, y_axis.name: y_axis})
    )


def osa_image(
    counter: DwellCounter,
    region: RasterRegion,
    dwell_s: float,
    *,
    move_to_center: bool = False,
    monitors: Sequence[Any] = (),
    md: dict[str, Any] | None = None,
) -> MsgGenerator[AlignmentResult]:
    """Raster the OSA across the beam: the bright disc is its hole passing the first order.

    Best on open beam (the sample stage moved off the chip) or a bare membrane. The
    ``region`` rasters the OSA's axes (``x_motor = osa.x``, ``y_motor = osa.y``); other
    parameters as :func:`detector_image`; ``move_to_center`` puts the hole on the beam
    afterwards.
    """
    region = check_region("region", region)
    x_axis, y_axis = region.x_motor, region.y_motor
    move_to_center = check_bool("move_to_center", move_to_center, "the OSA's hole goes there")

    def analyse(xs: np.ndarray, ys: np.ndarray, image: np.ndarray) -> Any:
        x0, y0 = disc_center(xs, ys, image)
        return {x_axis.name: x0, y_axis.name: y0}, {}

    outcome = yield from _raster_and_find(
        counter,
        region,
        dwell_s,
        plan_name="osa_image",
        scan_type="osa image",
        monitors=monitors,
        md=md,
        analyse=analyse,
    )
    return (
        yield from _finish(outcome, move_to_center, {x_axis.name: x_axis, y_axis.name: y_axis})
    )


def osa_focus(
    counter: DwellCounter,
    zp_z: Positioner,
    z_center_um: float,
    z_range_um: float,
    z_points: int,
    osa_axis: Positioner,
    s_center_um: float,
    s_range_um: float,
    s_points: int,
    dwell_s: float,
    *,
    move_to_focus: bool = False,
    monitors: Sequence[Any] = (),
    md: dict[str, Any] | None = None,
) -> MsgGenerator[AlignmentResult]:
    """ZP z against one OSA axis: the focus "X" (where the focus lies in the OSA plane).

    At each ZP z the OSA scans across the beam along ``osa_axis``. The crossing of the X is
    the ZP z that focuses in the OSA plane, A0 upstream of the sample's focus (so it
    calibrates ZP z against the OSA; :func:`sample_focus` then finds the sample).
    ``move_to_focus`` moves ZP z to the crossing afterwards. Every ZP z of the scan is
    checked against the interlocks before anything moves.
    """
    check_positioner("zp_z", zp_z)
    check_positioner("osa_axis", osa_axis)
    move_to_focus = check_bool("move_to_focus", move_to_focus, "ZP z goes to the focus found")
    # Named as this plan names them (the raster underneath calls them x and y).
    # ZP z's limits and interlocks: by _check_targets, which says which one refuses.
    z_center_um, z_range_um, z_points = check_raster_axis(
        "z", None, z_center_um, z_range_um, z_points
    )
    s_center_um, s_range_um, s_points = check_raster_axis(
        "s", osa_axis, s_center_um, s_range_um, s_points
    )
    _check_targets("z_center_um/z_range_um", zp_z, z_center_um, z_range_um)

    def analyse(xs: np.ndarray, ys: np.ndarray, image: np.ndarray) -> Any:
        return {zp_z.name: x_focus_from_osa_scan(ys, xs, image)}, {}

    region = RasterRegion(
        osa_axis, s_center_um, s_range_um, s_points, zp_z, z_center_um, z_range_um, z_points
    )
    outcome = yield from _raster_and_find(
        counter,
        region,
        dwell_s,
        plan_name="osa_focus",
        scan_type="osa focus",
        monitors=monitors,
        md=md,
        analyse=analyse,
    )
    return (yield from _finish(outcome, move_to_focus, {zp_z.name: zp_z}))


def sample_focus(
    counter: DwellCounter,
    zp_z: Positioner,
    z_center_um: float,
    z_range_um: float,
    z_points: int,
    line_motor: Positioner,
    line_center_um: float,
    line_range_um: float,
    line_points: int,
    dwell_s: float,
    *,
    move_to_focus: bool = False,
    energy: Any = None,
    monitors: Sequence[Any] = (),
    md: dict[str, Any] | None = None,
) -> MsgGenerator[AlignmentResult]:
    """ZP z against a line across a sharp edge of the sample: where is the sample in focus?

    At each ZP z the sample stage scans ``line_motor`` across an edge; the fitted edge width
    is smallest in focus (:func:`plans.alignment_analysis.sample_focus_from_edges`). Give a
    range a few depths of focus wide around the expected focus (``stxm optics`` prints the
    depth of focus). ``move_to_focus`` moves ZP z there; with ``energy`` (the
    :class:`devices.energy.Energy` device) it also sets the energy's focus offset there, so
    that energy moves keep this focus.
    """
    check_positioner("zp_z", zp_z)
    check_positioner("line_motor", line_motor)
    move_to_focus = check_bool("move_to_focus", move_to_focus, "ZP z goes to the focus found")
    # Named as this plan names them (the raster underneath calls them x and y).
    # ZP z's limits and interlocks: by _check_targets, which says which one refuses.
    z_center_um, z_range_um, z_points = check_raster_axis(
        "z", None, z_center_um, z_range_um, z_points
    )
    line_center_um, line_range_um, line_points = check_raster_axis(
        "line", line_motor, line_center_um, line_range_um, line_points
    )
    _check_targets("z_center_um/z_range_um", zp_z, z_center_um, z_range_um)

    def analyse(xs: np.ndarray, ys: np.ndarray, image: np.ndarray) -> Any:
        focus = sample_focus_from_edges(ys, xs, image)
        details = {
            "edge_sigma_at_focus_um": focus.sigma_at_focus_um,
            "edge_sigma_um": [float(v) for v in focus.sigma_um],
        }
        return {zp_z.name: focus.focus_z_um}, details

    region = RasterRegion(
        line_motor, line_center_um, line_range_um, line_points,
        zp_z, z_center_um, z_range_um, z_points,
    )  # fmt: skip
    outcome = yield from _raster_and_find(
        counter,
        region,
        dwell_s,
        plan_name="sample_focus",
        scan_type="sample focus",
        monitors=monitors,
        md=md,
        analyse=analyse,
    )
    result = yield from _finish(outcome, move_to_focus, {zp_z.name: zp_z})
    if result.moved and energy is not None and result.found:
        distance = energy.z_sign * result.found[zp_z.name]
        energy_eV = yield from bps.rd(energy.mono.readback)
        offset = distance - energy.optics.focal_length_um(float(energy_eV))
        yield from bps.mv(energy.focus_offset_um, offset)
        result.details["focus_offset_um"] = offset
    return result


def _finish(
    outcome: tuple[str, dict[str, float] | None, str, dict[str, Any]],
    move: bool,
    axes: dict[str, Any],
) -> MsgGenerator[AlignmentResult]:
    uid, found, problem, details = outcome
    result = AlignmentResult(uid=uid, found=found, problem=problem, details=details)
    if move and found:
        args: list[Any] = []
        for name, position in found.items():
            args += [axes[name], position]
        yield from bps.mv(*args)
        result.moved = True
    return result
