"""Fly-scan images: piezo lines clocked by the interferometer, one event per line.

:func:`fly_frames` divides an image into frames the piezo can sweep (the coarse stage
re-centres the piezo between them); :func:`fly_raster` flies them with a
:class:`devices.fly.LineFlyer`, measures every incomplete or missing line once more, and
ends the run with the reason if a line fails twice or the controller stops answering.
``sample_image(..., mode="fly")`` calls it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from bluesky import plan_stubs as bps
from bluesky import preprocessors as bpp
from bluesky.utils import MsgGenerator, short_uid

from devices.fly import FrameSpec, LineFlyer
from plans.protocols import Positioner
from plans.validation import PlanArgumentError, limits_of

__all__ = ["FlyScanError", "PlacedFrame", "fly_frames", "fly_raster"]

PIEZO_MARGIN_UM = 1.0
"""Kept free at each end of the piezo's range (run-up, drift, the coarse stage's error)."""
FLUSH_PERIOD_S = 0.2
"""How often lines that arrived are emitted while a frame runs."""


class FlyScanError(RuntimeError):
    """A line failed twice, or the fly controller stopped answering."""


@dataclass(frozen=True)
class PlacedFrame:
    """A frame of lines and where the coarse stage stands while it is flown."""

    coarse_x_um: float
    coarse_y_um: float
    frame: FrameSpec


def _tiles(n: int, positions: np.ndarray, span_um: float, overlap: bool) -> list[tuple[int, int]]:
    """Index ranges [i0, i1) of equal tiles whose extent fits in ``span_um``."""
    if n == 1:
        return [(0, 1)]
    step = abs(float(positions[1] - positions[0]))
    per_tile = n if step == 0 else max(1, min(n, int(span_um / step) + 1))
    count = math.ceil(n / per_tile)
    if not overlap:
        size = math.ceil(n / count)
        return [(i, min(i + size, n)) for i in range(0, n, size)]
    # Columns: every tile as wide as the first (lines keep one length); the last tile
    # ends at the image's edge and overlaps its neighbour.
    starts = [min(i * per_tile, n - per_tile) for i in range(count)]
    return [(i0, i0 + per_tile) for i0 in starts]


def fly_frames(
    xs_um: np.ndarray,
    ys_um: np.ndarray,
    dwell_s: float,
    *,
    snake: bool,
    piezo_x_limits_um: tuple[float, float],
    piezo_y_limits_um: tuple[float, float],
    coarse_x_um: float,
    coarse_y_um: float,
    run_up_s: float = 0.0,
) -> list[PlacedFrame]:
    """Divide an image (pixel centres ``xs_um`` x ``ys_um``) into frames the piezo can fly.

    An image that fits the piezo's range around the coarse stage's position is one frame
    there; one that fits the range but not around the stage is one frame with the stage
    moved to the image's centre; a larger one is tiled: bands of lines along y, and
    columns along x (all columns as wide, the last overlapping its neighbour), each with
    the coarse stage at its centre. ``run_up_s`` (the controller's acceleration time) sets
    how far before the first pixel each sweep starts, which the piezo's range must hold too.
    """
    x_low, x_high = piezo_x_limits_um
    y_low, y_high = piezo_y_limits_um
    # Each sweep starts half a pixel and the run-up distance before the first pixel centre.
    step = abs(float(xs_um[1] - xs_um[0])) if len(xs_um) > 1 else 0.0
    sweep_margin = PIEZO_MARGIN_UM + 0.5 * step + 0.5 * (step / dwell_s) * run_up_s
    x_low, x_high = x_low + sweep_margin, x_high - sweep_margin
    y_low, y_high = y_low + PIEZO_MARGIN_UM, y_high - PIEZO_MARGIN_UM
    span_x = x_high - x_low
    span_y = y_high - y_low
    columns = _tiles(len(xs_um), xs_um, span_x, overlap=True)
    bands = _tiles(len(ys_um), ys_um, span_y, overlap=False)
    placed = []
    for r0, r1 in bands:
        for c0, c1 in columns:
            x0, x1 = float(xs_um[c0]), float(xs_um[c1 - 1])
            y0, y1 = float(ys_um[r0]), float(ys_um[r1 - 1])
            fits_here = (
                coarse_x_um + x_low <= min(x0, x1)
                and max(x0, x1) <= coarse_x_um + x_high
                and coarse_y_um + y_low <= min(y0, y1)
                and max(y0, y1) <= coarse_y_um + y_high
            )
            cx, cy = (
                (coarse_x_um, coarse_y_um)
                if fits_here
                else ((x0 + x1) / 2 - (x_low + x_high) / 2, (y0 + y1) / 2 - (y_low + y_high) / 2)
            )
            frame = FrameSpec(
                start_x_um=x0,
                stop_x_um=x1,
                nx=c1 - c0,
                start_y_um=y0,
                stop_y_um=y1,
                ny=r1 - r0,
                dwell_s=dwell_s,
                snake=snake,
                first_row=r0,
                first_column=c0,
            )
            placed.append(PlacedFrame(cx, cy, frame))
    return placed


def check_fly_arguments(
    flyer: LineFlyer, xs_um: np.ndarray, dwell_s: float, max_line_speed_um_per_s: float
) -> None:
    """Refuse, before anything moves, a line speed or pixel count the controller cannot do."""
    if len(xs_um) < 2:
        raise PlanArgumentError(
            "mode = 'fly' needs x_points >= 2 (a line of one pixel has no speed); use "
            "mode = 'step' for a single column"
        )
    step = abs(float(xs_um[1] - xs_um[0]))
    speed = step / dwell_s
    if speed > max_line_speed_um_per_s:
        raise PlanArgumentError(
            f"x_range_um / (x_points - 1) / dwell_s = {step:g} um / {dwell_s:g} s = "
            f"{speed:g} um/s: the fly controller sweeps at most {max_line_speed_um_per_s:g} "
            f"um/s; lengthen dwell_s to at least {step / max_line_speed_um_per_s:g} s, add "
            "x_points, or use mode = 'step'"
        )


def fly_raster(
    flyer: LineFlyer,
    x_motor: Positioner,
    y_motor: Positioner,
    xs_um: np.ndarray,
    ys_um: np.ndarray,
    dwell_s: float,
    *,
    snake: bool,
    md: dict[str, Any],
    monitors: Sequence[Any] = (),
) -> MsgGenerator[str]:
    """Fly an image of pixel centres ``xs_um`` x ``ys_um`` (interferometer coordinates).

    ``x_motor`` and ``y_motor`` are the coarse stage; they move only between frames (and
    stay at the last frame's place); the piezo returns to where it was when the run ends. One
    event per complete line goes to ``primary``; lines that come back incomplete go to
    ``failed_lines`` and are measured once more; a second failure, or a controller that
    stops answering, ends the run with the reason (every line measured before is kept).
    """
    frames = place_fly_frames(flyer, x_motor, y_motor, xs_um, ys_um, dwell_s, snake=snake)
    md = {**md, **fly_frames_md(frames)}

    def frames_plan() -> MsgGenerator[None]:
        yield from declare_fly_streams(flyer)
        yield from fly_placed_frames(flyer, x_motor, y_motor, frames, ys_um)

    uid = yield from in_fly_run(flyer, frames_plan(), md=md, monitors=monitors)
    return str(uid)


def place_fly_frames(
    flyer: LineFlyer,
    x_motor: Positioner,
    y_motor: Positioner,
    xs_um: np.ndarray,
    ys_um: np.ndarray,
    dwell_s: float,
    *,
    snake: bool,
) -> list[PlacedFrame]:
    """The frames (piezo tiles and coarse-stage places) that fly ``xs_um`` x ``ys_um``."""
    piezo_x = limits_of(flyer.fine_x) or (-50.0, 50.0)
    piezo_y = limits_of(flyer.fine_y) or (-50.0, 50.0)
    frames = fly_frames(
        xs_um,
        ys_um,
        dwell_s,
        snake=snake,
        piezo_x_limits_um=piezo_x,
        piezo_y_limits_um=piezo_y,
        coarse_x_um=float(x_motor.position),  # type: ignore[attr-defined]
        coarse_y_um=float(y_motor.position),  # type: ignore[attr-defined]
        run_up_s=flyer.run_up_s,
    )
    flyer.nx_described = frames[0].frame.nx
    return frames


def fly_frames_md(frames: Sequence[PlacedFrame]) -> dict[str, Any]:
    """Start-document keys of a flown image: its lines, frames and frame width."""
    return {
        "num_lines": sum(placed.frame.ny for placed in frames),
        "fly_frames": len(frames),
        "fly_frame_columns": frames[0].frame.nx,
    }


def declare_fly_streams(flyer: LineFlyer) -> MsgGenerator[None]:
    """Declare the flyer's ``primary`` (lines) and ``failed_lines`` streams (once per run)."""
    device: Any = flyer
    failed_lines: Any = flyer.failed_lines
    yield from bps.declare_stream(device, name="primary", collect=True)
    yield from bps.declare_stream(failed_lines, name="failed_lines", collect=True)


def in_fly_run(
    flyer: LineFlyer, plan: MsgGenerator[None], *, md: dict[str, Any], monitors: Sequence[Any]
) -> MsgGenerator[str]:
    """Run ``plan`` in a run that stops the flyer and puts the piezo back however it ends."""
    piezo_at = (float(flyer.fine_x.position or 0.0), float(flyer.fine_y.position or 0.0))
    run = bpp.run_wrapper(bpp.finalize_wrapper(plan, _stop_flyer(flyer, piezo_at)), md=md)
    uid = yield from bpp.monitor_during_wrapper(run, list(monitors))
    return str(uid)


def fly_placed_frames(
    flyer: LineFlyer,
    x_motor: Positioner,
    y_motor: Positioner,
    frames: Sequence[PlacedFrame],
    ys_um: np.ndarray,
) -> MsgGenerator[None]:
    """Fly every frame (inside a run whose streams :func:`declare_fly_streams` declared).

    The coarse stage moves only where a frame needs another place; a line that comes back
    incomplete is measured once more, a second failure raises :class:`FlyScanError`.
    """
    device: Any = flyer

    def one_frame(frame: FrameSpec) -> MsgGenerator[None]:
        yield from bps.prepare(device, frame, wait=True)
        yield from bps.kickoff(device, wait=True)
        group = short_uid("fly_frame")
        yield from bps.complete(device, group=group, wait=False)
        done = False
        try:
            while not done:
                done = yield from bps.wait(
                    group=group, timeout=FLUSH_PERIOD_S, error_on_timeout=False
                )
                yield from _collect_lines(flyer)
                # Ctrl-C pauses here, within FLUSH_PERIOD_S, not at the frame's end (a
                # frame can last minutes). The controller runs on while paused; its lines
                # wait in the flyer and are collected on resume.
                yield from bps.checkpoint()
        except Exception as exc:
            yield from _collect_lines(flyer)  # keep what arrived before the failure
            # The RunEngine wraps a failed status (its text is the status' repr); the
            # flyer's own exception says what happened.
            status: Any = exc.args[0] if exc.args else None
            cause = status.exception() if callable(getattr(status, "exception", None)) else None
            if isinstance(cause, Exception):
                raise cause from exc
            raise

    def failed_rows(frame: FrameSpec) -> dict[int, str]:
        received = flyer.lines_received()
        failed = {}
        for index in range(frame.ny):
            line = received.get(index)
            if line is None or not line.complete:
                failed[frame.row_of(index)] = "never arrived" if line is None else line.status
        return failed

    where: tuple[float, float] | None = None
    for placed in frames:
        yield from bps.checkpoint()
        if where != (placed.coarse_x_um, placed.coarse_y_um):
            yield from bps.mv(x_motor, placed.coarse_x_um, y_motor, placed.coarse_y_um)
            where = (placed.coarse_x_um, placed.coarse_y_um)
        frame = placed.frame
        yield from one_frame(frame)
        for row, status in failed_rows(frame).items():
            y = float(ys_um[row])
            again = replace(frame, start_y_um=y, stop_y_um=y, ny=1, rows=(row,))
            yield from one_frame(again)
            second = failed_rows(again)
            if second:
                raise FlyScanError(
                    f"line {row} (y = {y:g} um) failed twice ({status}, then "
                    f"{second[row]}); the run ends here with every line measured before "
                    "it kept. Check the fly controller (its log, the piezo) and scan again"
                )


def _collect_lines(flyer: LineFlyer) -> MsgGenerator[None]:
    device: Any = flyer
    failed_lines: Any = flyer.failed_lines
    yield from bps.collect(device, name="primary")
    yield from bps.collect(failed_lines, name="failed_lines")


def _stop_flyer(flyer: LineFlyer, piezo_at: tuple[float, float]) -> MsgGenerator[None]:
    # A frame still running when the run ends (an abort, Ctrl-C, a failure) is stopped,
    # and the piezo goes back where it was: step scans count at coarse + piezo.
    device: Any = flyer
    # A direct CA read, bounded to 1 s, rather than bps.rd: this is the run's cleanup, also
    # after a failure, when the controller may be gone (the read must fail fast and quietly,
    # not raise into the cleanup), and it must see BUSY now, not the last monitor update.
    try:
        busy = flyer.busy.get(use_monitor=False, timeout=1.0)
    except Exception:  # noqa: BLE001 - the controller is gone: nothing to stop or move
        flyer.release()
        return
    try:
        if busy in (1, "Busy"):
            yield from bps.stop(device)
        flyer.release()  # while the RunEngine still listens to the frame's statuses
        yield from bps.mv(flyer.fine_x, piezo_at[0], flyer.fine_y, piezo_at[1])
    except Exception:  # noqa: BLE001 - the run's own outcome is what the user must see
        pass
