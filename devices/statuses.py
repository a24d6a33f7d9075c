"""Moves that say how they ended: a failed or timed-out axis fails the move, named.

ophyd's :class:`~ophyd.PseudoPositioner` finishes its move once every real axis has
called back, whether the axis succeeded or not (only a log line tells), and a status that
chains another must not pass on the inner one's :class:`~ophyd.utils.StatusTimeoutError`
(``set_exception`` refuses it with a ``ValueError``, and the outer status then never
finishes). Here:

- :class:`CheckedPseudoPositioner` fails its move as soon as one real axis's move fails or
  times out, with :class:`AxisFailedError` naming the axis, its record and what went wrong;
  the move's other axes are stopped (ophyd's ``MoveStatus`` stops the positioner when it
  fails). It also refuses, before anything moves, a position that is not a number.
- :func:`failure_of` words a finished status's failure (a timeout included) as an ordinary
  exception another status can carry.
- :class:`ExplainedStatus` and :class:`ExplainedMoveStatus` read, once failed, as their
  failure: bluesky puts a failed status's text into the run's stop reason and the error the
  user sees.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any

from ophyd import PseudoPositioner
from ophyd.status import DeviceStatus, MoveStatus, StatusBase
from ophyd.utils import InvalidState, StatusTimeoutError

__all__ = [
    "AxisFailedError",
    "AxisTimeoutError",
    "CheckedPseudoPositioner",
    "ExplainedMoveStatus",
    "ExplainedStatus",
    "failure_of",
    "finish_with",
]


class AxisFailedError(RuntimeError):
    """A move failed because one of the axes it moves failed (the message names it)."""


class AxisTimeoutError(AxisFailedError, TimeoutError):
    """An axis did not finish its move (or put) within the time it is allowed."""


def _says_why(status: StatusBase) -> str | None:
    if status.done and not status.success:
        exc = status.exception()
        if isinstance(exc, AxisFailedError):
            return str(exc)
    return None


class ExplainedStatus(DeviceStatus):
    """A :class:`~ophyd.status.DeviceStatus` whose text, once it failed, is the reason."""

    def __str__(self) -> str:
        return _says_why(self) or super().__str__()

    __repr__ = __str__


class ExplainedMoveStatus(MoveStatus):
    """A :class:`~ophyd.status.MoveStatus` whose text, once it failed, is the reason."""

    def __str__(self) -> str:
        return _says_why(self) or super().__str__()

    __repr__ = __str__


def _record_of(obj: Any) -> str:
    """The EPICS record behind a positioner or signal, for messages ("" if none)."""
    for attribute in ("prefix", "pvname"):
        value = getattr(obj, attribute, None)
        if isinstance(value, str) and value:
            return value
    setpoint = getattr(obj, "setpoint", None)
    return str(getattr(setpoint, "pvname", "") or "")


def failure_of(status: StatusBase, what: str) -> AxisFailedError:
    """The failure of a finished ``status`` of ``what`` (e.g. "the EPU gap"), as an error.

    A timeout becomes :class:`AxisTimeoutError` (a plain ``TimeoutError``, which another
    status may carry) saying how long was allowed; the status's own words are kept when it
    has some (:class:`devices.stages.BoundedMotor`'s say what the move should have taken).
    """
    exc = status.exception()
    obj = getattr(status, "pos", None) or getattr(status, "device", None)
    name = getattr(obj, "name", None) or what
    record = _record_of(obj)
    label = f"{what} ({name}{', ' + record if record else ''})"
    if isinstance(exc, StatusTimeoutError):
        worded = str(status)
        if worded.startswith(f"{name} did not"):  # a BoundedMoveStatus explains itself
            return AxisTimeoutError(f"{label}: {worded}")
        allowed = status.timeout
        within = f" within {allowed:.1f} s" if allowed is not None else ""
        return AxisTimeoutError(
            f"{label} did not finish{within}: is its IOC running and answering?"
        )
    if isinstance(exc, AxisFailedError):
        return AxisFailedError(f"{label}: {exc}")
    return AxisFailedError(f"{label} failed: {exc!r}")


def finish_with(status: StatusBase, exc: BaseException | None = None) -> None:
    """Finish ``status`` (failed with ``exc`` if given) unless it has finished already.

    A status that timed out or was finished by another thread meanwhile stays as it is.
    """
    try:
        if exc is None:
            status.set_finished()
        else:
            status.set_exception(exc)
    except InvalidState:
        pass


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


class CheckedPseudoPositioner(PseudoPositioner):
    """A :class:`~ophyd.PseudoPositioner` whose move fails when a real axis's move fails.

    The move's status (an :class:`ExplainedMoveStatus`) fails at the first real axis that
    fails or times out, with an :class:`AxisFailedError` naming it (``axis_roles`` gives
    each real axis's role in words); ophyd then stops the positioner, which stops the other
    axes. Positions that are not finite numbers are refused before anything moves.

    Attributes
    ----------
    axis_roles
        Real component name -> words for messages (e.g. ``{"mono": "the monochromator"}``).
    pseudo_units
        Units of the pseudo axes, for messages.
    """

    axis_roles: dict[str, str] = {}
    pseudo_units: str = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._current_move: MoveStatus | None = None
        super().__init__(*args, **kwargs)

    # -- positions --------------------------------------------------------------------
    def position_hint(self) -> str:
        """Words on the positions this positioner takes (for the error on a bad one)."""
        return f"a number in {self.pseudo_units}" if self.pseudo_units else "a number"

    def _refuse(self, given: Any) -> ValueError:
        example = f"mv({self.name}, <number>)"
        return ValueError(
            f"{self.name} = {given!r} is not a position: give {self.position_hint()} "
            f"({example}); nothing moved"
        )

    def to_pseudo_tuple(self, *args: Any, **kwargs: Any) -> Any:
        """As ophyd's, refusing (with the parameter and the fix) what is not a number."""
        given = args[0] if len(args) == 1 and not kwargs else (args or kwargs)
        if isinstance(given, str | bytes):  # ophyd would read "abc" as three positions
            raise self._refuse(given)
        try:
            position, rest = super().to_pseudo_tuple(*args, **kwargs)
        except (TypeError, ValueError):
            raise self._refuse(given) from None
        if not all(_is_number(value) for value in position):
            raise self._refuse(given)
        return position, rest

    # -- moves ------------------------------------------------------------------------
    def _setup_move(self, position: Any, status: Any) -> None:
        # ophyd built a plain MoveStatus; this subclass only words its failure.
        status.__class__ = ExplainedMoveStatus
        self._current_move = status
        super()._setup_move(position, status)

    def _concurrent_move(self, real_pos: Any, **kwargs: Any) -> None:
        move = self._current_move
        assert move is not None
        self._real_waiting.extend(self._real)
        for real, value in zip(self._real, real_pos, strict=True):
            done = functools.partial(self._real_axis_done, move)
            real.move(value, wait=False, moved_cb=done, **kwargs)

    def _real_axis_done(self, move: MoveStatus, status: Any, *, obj: Any) -> None:
        """A real axis's move ended: on success as ophyd; on failure, fail the whole move."""
        if move is not self._current_move or move.done:
            return  # an axis of an earlier move, superseded or already failed
        if status.success:
            self._real_finished(status, obj=obj)
            return
        role = self.axis_roles.get(getattr(obj, "attr_name", ""), getattr(obj, "name", "axis"))
        cause = failure_of(status, role)
        error_class = AxisTimeoutError if isinstance(cause, TimeoutError) else AxisFailedError
        wanted = _words_for(move.target)
        units = f" {self.pseudo_units}" if self.pseudo_units else ""
        with self._finished_lock:
            del self._real_waiting[:]
            # This move ends here, failed; ophyd's end-of-move callback must not end it again.
            self._reset_sub(self._SUB_REQ_DONE)
        finish_with(
            move,
            error_class(
                f"{self.name} did not reach {wanted}{units}: {cause}; every axis of "
                f"{self.name} was asked to stop"
            ),
        )


def _words_for(target: Any) -> str:
    """A move's target (a number or a position tuple) in words."""
    values = list(target) if isinstance(target, tuple) else [target]
    return ", ".join(f"{float(v):g}" if _is_number(v) else repr(v) for v in values)
