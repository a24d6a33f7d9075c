"""The line fly-scan controller: piezo lines clocked by the interferometer, one event per line.

The controller (``[epics.prefixes] fly``, ``STXM:FLY:``) stands in for the piezo controller
and the counter electronics: it is given a frame of lines (start, stop and pixels along x,
start, stop and lines along y, dwell, snake) in interferometer coordinates, armed, and it
sweeps the piezo line by line, publishing each finished line as arrays (counts, the
interferometer's x and y and the dwell of every pixel) with its row index, status and a
sequence number that grows by one per published line, all in one waveform (``LINE:DATA``)
that the flyer reads alone, so each line is taken once and whole. Decision record
[0008](../docs/decisions/0008-fly-scanning.md) says why a whole frame is armed at once.

:class:`LineFlyer` implements bluesky's flyer protocols: ``prepare`` (a :class:`FrameSpec`),
``kickoff`` (arm), ``complete`` (the frame has ended and every line it published has
arrived) and ``describe_collect``/``collect_pages`` (one event per complete line, its row in
the image and the column of its first pixel). Lines that come back incomplete (missed
triggers, a stalled piezo, an abort) are kept apart, in :attr:`LineFlyer.failed_lines`, a
collectable of their own (the ``failed_lines`` stream), for the plan to measure again.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from ophyd import Component as Cpt
from ophyd import Device, EpicsSignal, EpicsSignalRO
from ophyd import FormattedComponent as FCpt
from ophyd.status import Status, StatusBase

from devices.signals import BoundedEpicsSignal
from devices.stages import BoundedMotor
from stxm_ctrl.physics.fly_line import FramePlan, unpack_line

__all__ = ["FailedLines", "FlyControllerError", "FrameSpec", "LineFlyer", "LineRecord"]

COMPLETE = "Complete"
"""``LINE:STATUS`` of a line whose every pixel was measured."""

_ARRIVAL_GRACE_S = 2.0  # lines posted just before the frame's put completion may trail it


class FlyControllerError(RuntimeError):
    """The fly controller did not finish a frame in time (its IOC died or hung)."""


@dataclass(frozen=True)
class FrameSpec(FramePlan):
    """A frame of fly lines (a :class:`~stxm_ctrl.physics.fly_line.FramePlan`: pixel centres
    ``start_x_um``..``stop_x_um`` of ``nx`` pixels, lines ``start_y_um``..``stop_y_um``, ``ny``,
    ``dwell_s``, ``snake``, in interferometer coordinates) and where it lies in the image.

    Parameters
    ----------
    first_row
        Image row of the frame's first line (a frame may be part of a larger image).
    first_column
        Image column of every line's first pixel.
    rows
        Image rows of the frame's lines, if not ``first_row`` onwards (a re-measured line).
    """

    first_row: int = 0
    first_column: int = 0
    rows: tuple[int, ...] | None = None

    def row_of(self, line_index: int) -> int:
        """Image row of the frame's ``line_index``-th line."""
        if self.rows is not None:
            return self.rows[line_index]
        return self.first_row + line_index


@dataclass(frozen=True)
class LineRecord:
    """One line as the controller published it."""

    seq: int
    index: int
    row: int
    column: int
    status: str
    measured_pixels: int
    counts: np.ndarray
    x_um: np.ndarray
    y_um: np.ndarray
    dwell_s: np.ndarray
    timestamp: float

    @property
    def complete(self) -> bool:
        """Every pixel measured."""
        return self.status == COMPLETE


def _data_keys(prefix: str, source: str, nx: int) -> dict[str, dict[str, Any]]:
    array = {"source": source, "dtype": "array", "shape": [nx]}
    scalar = {"source": source, "shape": []}
    return {
        f"{prefix}_counts": {**array, "dtype_numpy": "<i8", "units": "counts"},
        f"{prefix}_x": {**array, "dtype_numpy": "<f8", "units": "um"},
        f"{prefix}_y": {**array, "dtype_numpy": "<f8", "units": "um"},
        f"{prefix}_dwell": {**array, "dtype_numpy": "<f8", "units": "s"},
        f"{prefix}_row": {**scalar, "dtype": "integer", "dtype_numpy": "<i8"},
        f"{prefix}_column": {**scalar, "dtype": "integer", "dtype_numpy": "<i8"},
        f"{prefix}_seq": {**scalar, "dtype": "integer", "dtype_numpy": "<i8"},
        f"{prefix}_status": {**scalar, "dtype": "string"},
    }


def _page(prefix: str, lines: list[LineRecord]) -> dict[str, Any]:
    data = {
        f"{prefix}_counts": [line.counts.tolist() for line in lines],
        f"{prefix}_x": [line.x_um.tolist() for line in lines],
        f"{prefix}_y": [line.y_um.tolist() for line in lines],
        f"{prefix}_dwell": [line.dwell_s.tolist() for line in lines],
        f"{prefix}_row": [line.row for line in lines],
        f"{prefix}_column": [line.column for line in lines],
        f"{prefix}_seq": [line.seq for line in lines],
        f"{prefix}_status": [line.status for line in lines],
    }
    stamps = [line.timestamp for line in lines]
    return {"data": data, "timestamps": dict.fromkeys(data, stamps), "time": stamps}


class FailedLines:
    """The lines of a flyer that came back incomplete: a collectable of their own.

    Their events go to a stream of their own (``failed_lines``), so that nothing measured
    is dropped while the image (``primary``) holds exactly one complete line per row.
    """

    def __init__(self, flyer: LineFlyer) -> None:
        self.flyer = flyer
        self.name = f"{flyer.name}_failed"
        self.parent = None
        self._pending: deque[LineRecord] = deque()

    def add(self, line: LineRecord) -> None:
        """Keep ``line`` for the next :meth:`collect_pages` (any thread)."""
        self._pending.append(line)

    def describe_collect(self) -> dict[str, dict[str, Any]]:
        """Data keys of a failed line (as a complete one, under ``<flyer>_failed_*``)."""
        return _data_keys(self.name, self.flyer.prefix + "LINE", self.flyer.nx_described)

    def collect_pages(self) -> Any:
        """The failed lines not yet collected, as one event page."""
        lines = _drain(self._pending)
        if lines:
            yield _page(self.name, lines)


def _drain(queue: deque[LineRecord]) -> list[LineRecord]:
    lines = []
    while True:
        try:
            lines.append(queue.popleft())
        except IndexError:
            return lines


class LineFlyer(Device):
    """The line fly-scan controller (see the module docstring).

    Components
    ----------
    start_x, stop_x, nx, start_y, stop_y, ny, dwell, snake
        The frame's settings (``START_X`` ... ``SNAKE``).
    arm
        ``ARM``: put 1 with completion starts the frame; the put completes when it ends.
    busy
        ``BUSY``: a frame is running.
    frame_time, line_overhead
        What the settings imply: the frame's duration and each line's time beyond its
        dwell, s (``FRAME_TIME``, ``LINE_OVERHEAD``).
    settle_time, run_up_time, turnaround_time, flyback_speed, max_speed
        The controller's line timing (s, um/s), from which frames are estimated.
    message
        ``MESSAGE``: what the controller did last (why it refused a frame).
    line_data
        ``LINE:DATA``: the last published line in one array, with its sequence number
        (monitored; lines are taken from it alone, each sequence number once, so no line is
        taken twice or assembled from two).
    line_index, line_status, line_npix, line_counts, line_x, line_y, line_dwell, line_seq
        The last published line PV by PV (``LINE:INDEX`` ... ``LINE:SEQ``), not monitored.
    fine_x, fine_y
        The piezo axes (``FX``, ``FY``), motor records; their limits bound a frame.
    interferometer_x, interferometer_y
        ``IFX``, ``IFY``: where the sample is (coarse + piezo + drift), um.

    Parameters
    ----------
    axes
        Record names of the piezo axes after the prefix (``[epics.axes] fine_x``,
        ``fine_y``), as ``{"x": ..., "y": ...}``.
    put_timeout_s
        A setting's put may take this before it fails.
    frame_margin_s
        A frame may take its ``FRAME_TIME`` times ``frame_factor`` plus this before the
        controller is declared dead.
    frame_factor
        See ``frame_margin_s``.
    move_factor, move_margin_s
        Bound the piezo axes' moves (see :class:`devices.stages.BoundedMotor`).
    """

    # A frame's settings are not configuration: a run's streams are declared (and the
    # configuration read) before its first frame is prepared, and a run may fly several
    # frames. The run's start document has the image's grid, dwell and frames instead.
    start_x = Cpt(BoundedEpicsSignal, "START_X", kind="omitted")
    stop_x = Cpt(BoundedEpicsSignal, "STOP_X", kind="omitted")
    nx = Cpt(BoundedEpicsSignal, "NX", kind="omitted")
    start_y = Cpt(BoundedEpicsSignal, "START_Y", kind="omitted")
    stop_y = Cpt(BoundedEpicsSignal, "STOP_Y", kind="omitted")
    ny = Cpt(BoundedEpicsSignal, "NY", kind="omitted")
    dwell = Cpt(BoundedEpicsSignal, "DWELL", kind="omitted", auto_monitor=True)
    snake = Cpt(BoundedEpicsSignal, "SNAKE", kind="omitted")
    settle_time = Cpt(EpicsSignalRO, "SETTLE_TIME", kind="config")
    run_up_time = Cpt(EpicsSignalRO, "RUN_UP_TIME", kind="config")
    turnaround_time = Cpt(EpicsSignalRO, "TURNAROUND_TIME", kind="config")
    flyback_speed = Cpt(EpicsSignalRO, "FLYBACK_SPEED", kind="config")
    max_speed = Cpt(EpicsSignalRO, "MAX_SPEED", kind="config")
    message = Cpt(EpicsSignalRO, "MESSAGE", kind="omitted", string=True)
    arm = Cpt(EpicsSignal, "ARM", put_complete=True, kind="omitted")
    busy = Cpt(EpicsSignalRO, "BUSY", kind="omitted", auto_monitor=True)
    frame_time = Cpt(EpicsSignalRO, "FRAME_TIME", kind="omitted", auto_monitor=True)
    line_overhead = Cpt(EpicsSignalRO, "LINE_OVERHEAD", kind="config", auto_monitor=True)
    # Lines are read from LINE:DATA alone (one array per line); the separate line PVs are
    # there for reading by hand and are not monitored.
    line_data = Cpt(EpicsSignalRO, "LINE:DATA", kind="omitted", auto_monitor=True)
    line_index = Cpt(EpicsSignalRO, "LINE:INDEX", kind="omitted")
    line_status = Cpt(EpicsSignalRO, "LINE:STATUS", kind="omitted", string=True)
    line_npix = Cpt(EpicsSignalRO, "LINE:NPIX", kind="omitted")
    line_counts = Cpt(EpicsSignalRO, "LINE:COUNTS", kind="omitted")
    line_x = Cpt(EpicsSignalRO, "LINE:X", kind="omitted")
    line_y = Cpt(EpicsSignalRO, "LINE:Y", kind="omitted")
    line_dwell = Cpt(EpicsSignalRO, "LINE:DWELL", kind="omitted")
    line_seq = Cpt(EpicsSignalRO, "LINE:SEQ", kind="omitted")
    fine_x = FCpt(BoundedMotor, "{prefix}{_axes[x]}", kind="omitted")
    fine_y = FCpt(BoundedMotor, "{prefix}{_axes[y]}", kind="omitted")
    interferometer_x = Cpt(EpicsSignalRO, "IFX", kind="hinted", auto_monitor=True)
    interferometer_y = Cpt(EpicsSignalRO, "IFY", kind="hinted", auto_monitor=True)

    def __init__(
        self,
        *args: Any,
        axes: dict[str, str] | None = None,
        put_timeout_s: float = 10.0,
        frame_factor: float = 1.5,
        frame_margin_s: float = 5.0,
        move_factor: float = 2.0,
        move_margin_s: float = 2.0,
        **kwargs: Any,
    ) -> None:
        self._axes = axes or {"x": "FX", "y": "FY"}  # read by the FormattedComponents
        super().__init__(*args, **kwargs)
        for signal in (self.start_x, self.stop_x, self.nx, self.start_y, self.stop_y):
            signal.timeout_s = put_timeout_s
        for signal in (self.ny, self.dwell, self.snake):
            signal.timeout_s = put_timeout_s
        for motor in (self.fine_x, self.fine_y):
            motor.move_factor, motor.move_margin_s = move_factor, move_margin_s
        self.frame_factor = frame_factor
        self.frame_margin_s = frame_margin_s
        self.failed_lines = FailedLines(self)
        self.frame: FrameSpec | None = None
        self.nx_described = 1
        self._lock = threading.Lock()
        self._complete_lines: deque[LineRecord] = deque()
        self._received: dict[int, LineRecord] = {}  # line index -> last line of this frame
        self._first_seq = 0
        self._last_seq = 0
        self._frame_status: StatusBase | None = None
        self._started_status: Status | None = None
        self._grace_timer: threading.Timer | None = None
        self._complete_status: Status | None = None
        self._subscribed = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r}, name={self.name!r})"

    @property
    def max_line_speed_um_per_s(self) -> float:
        """Fastest sweep the controller does (``MAX_SPEED``); plans check lines against it."""
        return float(self.max_speed.get())

    @property
    def run_up_s(self) -> float:
        """Acceleration time before each line's first pixel (``RUN_UP_TIME``)."""
        return float(self.run_up_time.get())

    # -- bluesky protocols -------------------------------------------------------------

    def prepare(self, value: FrameSpec) -> StatusBase:
        """Write a frame's settings (``Preparable``); done when the controller has them."""
        # A fresh read: BUSY's monitor may trail the previous frame's put completion.
        try:
            busy = self.busy.get(use_monitor=False, timeout=2.0)
        except TimeoutError as exc:
            raise FlyControllerError(self._gone_message()) from exc
        if busy in (1, "Busy"):
            raise RuntimeError(f"{self.name}: a frame is still running; wait for it or stop it")
        self.frame = value
        self.nx_described = value.nx
        statuses = [
            self.start_x.set(value.start_x_um),
            self.stop_x.set(value.stop_x_um),
            self.nx.set(value.nx),
            self.start_y.set(value.start_y_um),
            self.stop_y.set(value.stop_y_um),
            self.ny.set(value.ny),
            self.dwell.set(value.dwell_s),
            self.snake.set(int(value.snake)),
        ]
        status = statuses[0]
        for other in statuses[1:]:
            status = status & other
        return status

    def kickoff(self) -> StatusBase:
        """Arm the prepared frame; done once the controller has taken it."""
        if self.frame is None:
            raise RuntimeError(f"{self.name}: prepare a FrameSpec before kickoff")
        self._subscribe()
        # A fresh read: every line of an earlier frame has arrived (its complete waited for
        # them), and a restarted controller counts from 0 again.
        seq = int(self.line_seq.get(use_monitor=False))
        with self._lock:
            self._received = {}
            self._first_seq = self._last_seq = seq
        frame_s = float(self.frame_time.get(use_monitor=False))
        allowed_s = self.frame_factor * frame_s + self.frame_margin_s
        started = Status(obj=self)
        self._started_status = started
        self._complete_status = Status(obj=self)

        def running(value: Any = None, **_: Any) -> None:
            if value in (1, "Busy"):
                with self._lock:
                    if not started.done:
                        started.set_finished()

        self.busy.subscribe(running, run=False)
        self._frame_status = self.arm.set(1, timeout=allowed_s)
        self._frame_status.expected_s = frame_s  # type: ignore[attr-defined]
        self._frame_status.add_callback(self._frame_ended)
        started.add_callback(lambda status: self.busy.clear_sub(running))
        return started

    def complete(self) -> StatusBase:
        """Done when the frame has ended and its published lines have all arrived.

        Fails if the controller did not finish the frame in time (its IOC died or hung);
        the lines that arrived before stay collectable.
        """
        if self._complete_status is None:
            raise RuntimeError(f"{self.name}: complete() before kickoff()")
        return self._complete_status

    def describe_collect(self) -> dict[str, dict[str, Any]]:
        """Data keys of one line (``<name>_counts``, ``_x``, ``_y``, ``_dwell``, ``_row`` ...)."""
        return _data_keys(self.name, self.prefix + "LINE", self.nx_described)

    def collect_pages(self) -> Any:
        """Complete lines that arrived since the last call, as one event page."""
        lines = _drain(self._complete_lines)
        if lines:
            yield _page(self.name, lines)

    def stop(self, *, success: bool = False) -> None:
        """Abort a running frame (``ARM`` = 0) and stop the piezo axes."""
        try:
            if self.busy.get(use_monitor=False, timeout=1.0) in (1, "Busy"):
                self.arm.put(0, use_complete=False)
        except Exception:  # noqa: BLE001 - a controller that is gone runs no frame
            return
        super().stop(success=success)

    def release(self) -> None:
        """End the current frame's statuses now (its run is over: stopped, aborted, done).

        A status left pending would finish later, from the controller's put completion or
        the arrival grace timer, into a RunEngine that may have closed by then.
        """
        timer, self._grace_timer = self._grace_timer, None
        if timer is not None:
            timer.cancel()
        with self._lock:
            for pending in (self._started_status, self._complete_status):
                if pending is not None and not pending.done:
                    pending.set_finished()

    # -- what the plan asks after a frame ----------------------------------------------

    def lines_received(self) -> dict[int, LineRecord]:
        """The last line received for each line index of the current frame."""
        with self._lock:
            return dict(self._received)

    # -- internals -----------------------------------------------------------------------

    def _subscribe(self) -> None:
        if not self._subscribed:
            self.line_data.subscribe(self._line_published, run=False)
            self._subscribed = True

    def _line_published(self, value: Any = None, timestamp: float | None = None, **_: Any) -> None:
        # One LINE:DATA update is one whole line with its sequence number: a line cannot be
        # torn (one line's index with another's counts) nor taken twice (a repeated or
        # resent update carries a SEQ already taken). Assembling a line from the separate
        # PVs when SEQ changed did both under load: when the client fell behind, libca
        # turned events off, the server dropped the queued updates and later resent only
        # the PVs posted since, so a new SEQ came with the last line's index and arrays.
        frame = self.frame
        if frame is None or value is None:
            return
        try:
            published = unpack_line(value)
        except ValueError:
            return  # not a line (the record's value before the first line)
        with self._lock:
            if published.seq <= self._last_seq:
                return  # a repeat, or a line of an earlier frame
            self._last_seq = published.seq
            index, data, nx = published.index, published.data, frame.nx
            line = LineRecord(
                seq=published.seq,
                index=index,
                row=frame.row_of(index) if 0 <= index < frame.ny else -1,
                column=frame.first_column,
                status=published.status,
                measured_pixels=published.npix,
                counts=data.counts.astype(np.int64),
                x_um=data.x_um,
                y_um=data.y_um,
                dwell_s=data.dwell_s,
                timestamp=float(timestamp if timestamp is not None else time.time()),
            )
            if line.row < 0 or len(line.counts) != nx:
                line = replace(line, status="Malformed")
            self._received[index] = line
            if line.complete:
                self._complete_lines.append(line)
            else:
                self.failed_lines.add(line)
        self._maybe_finish()

    def _frame_ended(self, status: StatusBase) -> None:
        started = self._started_status
        with self._lock:
            published = self._last_seq > self._first_seq
            refused = started is not None and not started.done
            if refused and status.success and published:  # shorter than BUSY's monitor
                assert started is not None
                started.set_finished()
                refused = False
        if refused:
            # The controller refused the frame (pyepics hands a refused put's completion
            # on as a success; the controller says why in MESSAGE).
            why = self.message.get(use_monitor=False) if status.success else str(status)
            reason = FlyControllerError(
                f"the fly controller {self.prefix} did not start the frame: {why}"
            )
            with self._lock:
                for pending in (started, self._complete_status):
                    if pending is not None and not pending.done:
                        pending.set_exception(reason)
            return
        if status.success and not self.line_data.connected:
            # A put whose channel dropped completes too: the controller went away.
            complete = self._complete_status
            with self._lock:
                if complete is not None and not complete.done:
                    complete.set_exception(FlyControllerError(self._gone_message()))
            return
        if not status.success:
            complete = self._complete_status
            with self._lock:
                if complete is None or complete.done:
                    return
                frame_s = getattr(status, "expected_s", 0.0)
                complete.set_exception(
                    FlyControllerError(
                        f"the fly controller {self.prefix} did not finish its frame within "
                        f"{self.frame_factor * frame_s + self.frame_margin_s:.1f} s (it should "
                        f"take {frame_s:.1f} s): is its IOC running? "
                        f"{len(self._received)} of its {getattr(self.frame, 'ny', 0)} lines "
                        "arrived before and are kept"
                    )
                )
            return
        self._maybe_finish()
        # Bound to this frame's status: a later frame has a status of its own.
        timer = threading.Timer(
            _ARRIVAL_GRACE_S, self._finish_anyway, args=(self._complete_status,)
        )
        timer.daemon = True
        self._grace_timer = timer
        timer.start()

    def _gone_message(self) -> str:
        frame = self.frame
        return (
            f"the fly controller {self.prefix} stopped answering: is its IOC running? "
            f"{len(self._received)} of the frame's {frame.ny if frame else 0} lines arrived "
            "before and are kept"
        )

    def _maybe_finish(self) -> None:
        frame, complete, ended = self.frame, self._complete_status, self._frame_status
        if frame is None or complete is None or ended is None or not ended.done:
            return
        with self._lock:
            published = self._last_seq - self._first_seq
            if published >= frame.ny and not complete.done:
                complete.set_finished()

    def _finish_anyway(self, complete: Status | None) -> None:
        # The frame ended but fewer lines arrived than it has: the plan finds the missing
        # rows in lines_received() and measures them again.
        with self._lock:
            if complete is not None and not complete.done:
                complete.set_finished()
