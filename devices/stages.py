"""Motor-record axes with a bounded wait on every move, and an optional check before it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ophyd import EpicsMotor
from ophyd.status import MoveStatus
from ophyd.status import wait as status_wait
from ophyd.utils import StatusTimeoutError

from stxm_ctrl.physics.motion import move_duration_s

__all__ = ["BoundedMotor", "CoarseStage"]

_UNKNOWN_MOTION_S = 60.0  # allowed when velocity or position are not known yet


class BoundedMoveStatus(MoveStatus):
    """A :class:`MoveStatus` that says, when it times out, what was expected and what to check.

    Its text becomes the reason in the run's stop document and the message the user sees.
    """

    expected_s: float = 0.0
    allowed_s: float = 0.0

    def __repr__(self) -> str:
        if self.done and not self.success and isinstance(self.exception(), StatusTimeoutError):
            return (
                f"{self.pos.name} did not reach {self.target:g} "
                f"{getattr(self.pos, 'units', 'um')} within {self.allowed_s:.1f} s "
                f"(the move should take {self.expected_s:.2f} s at its velocity and "
                "acceleration): is its IOC running? The stage was asked to stop"
            )
        return super().__repr__()

    __str__ = __repr__


class BoundedMotor(EpicsMotor):
    """One motor-record axis (positions in its EGU, um for the stages).

    An :class:`ophyd.EpicsMotor` whose moves never wait forever: unless a caller gives a
    timeout, each move may take ``move_factor`` times the time its distance, the record's
    velocity (VELO) and acceleration time (ACCL) imply, plus ``move_margin_s``. A stage whose
    IOC dies mid-move therefore fails its move after that time; the RunEngine then ends the
    run with the reason and sends STOP to what it moved, and every point measured before is
    kept.

    Parameters
    ----------
    move_factor
        Allowed time as a multiple of the expected motion time (>= 1).
    move_margin_s
        Added to every move's allowed time, s.

    Attributes
    ----------
    target_check
        Called with the target before anything moves (and by :meth:`check_value`, so
        bluesky's checks and pseudo-positioners see it too); raises ``ValueError`` with the
        reason for a target the instrument must not go to (an interlock). None: no check
        beyond the record's limits.
    """

    target_check: Callable[[float], None] | None = None
    units: str = "um"

    def __init__(
        self, *args: Any, move_factor: float = 2.0, move_margin_s: float = 2.0, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.move_factor = move_factor
        self.move_margin_s = move_margin_s
        # Guards the list of pending move statuses between a move and its end (see
        # _done_moving); re-entrant: a status callback may start the next move.
        self._pending_lock = threading.RLock()

    def check_value(self, pos: Any) -> None:
        """Refuse a target outside the record's limits or refused by :attr:`target_check`."""
        if self.target_check is not None:
            self.target_check(float(pos))
        super().check_value(pos)

    def expected_move_time_s(self, target_um: float) -> float:
        """Time a move from the current readback to ``target_um`` takes at VELO and ACCL.

        Uses the monitored values (no Channel Access round trip).
        """
        try:
            here = float(self.user_readback.get())
            velocity = float(self.velocity.get())
            acceleration_time = max(float(self.acceleration.get()), 0.0)
        except (TypeError, ValueError):
            return _UNKNOWN_MOTION_S
        if not velocity > 0:
            return _UNKNOWN_MOTION_S
        return move_duration_s(float(target_um) - here, velocity, acceleration_time)

    def move_timeout_s(self, target_um: float) -> float:
        """How long a move to ``target_um`` may take before it fails."""
        return self.move_factor * self.expected_move_time_s(target_um) + self.move_margin_s

    def move(self, position: Any, wait: bool = True, **kwargs: Any) -> MoveStatus:
        """Move to ``position``; without an explicit ``timeout`` the move is bounded.

        Raises
        ------
        ValueError
            Before anything moves, for a target :attr:`target_check` refuses.
        """
        if self.target_check is not None:
            self.target_check(float(position))
        expected_s = self.expected_move_time_s(position)
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.move_factor * expected_s + self.move_margin_s
        with self._pending_lock:
            status = super().move(position, wait=False, **kwargs)
        # ophyd builds a plain MoveStatus; this subclass only words its failure.
        status.__class__ = BoundedMoveStatus
        assert isinstance(status, BoundedMoveStatus)
        status.expected_s, status.allowed_s = expected_s, float(kwargs["timeout"])
        if wait:
            try:
                status_wait(status)
            except KeyboardInterrupt:  # as EpicsMotor.move: Ctrl-C stops the stage
                self.stop()
                raise
        return status

    def _done_moving(
        self, success: bool = True, timestamp: float | None = None, value: Any = None, **_: Any
    ) -> None:
        """End the pending move statuses: take them off the list first, then finish them.

        ophyd finishes them, then clears the list. The RunEngine, on its own thread, starts
        the next move as soon as a status finishes; when it does so before that clear, the
        clear removes the *new* move's status, which then never finishes (ophyd issues
        #782/#783: a scan stalls at a random point on a loaded machine; seen in CI).
        """
        if success:
            self._run_subs(sub_type=self.SUB_DONE, timestamp=timestamp, value=value)
        with self._pending_lock:
            pending = list(self._callbacks[self._SUB_REQ_DONE].values())
            self._reset_sub(self._SUB_REQ_DONE)
        when = time.time() if timestamp is None else timestamp
        for callback in pending:
            callback(success=success, timestamp=when, sub_type=self._SUB_REQ_DONE, obj=self)

    def __repr__(self) -> str:
        # ophyd's Device repr walks every component (~0.25 ms) and MoveStatus builds it on
        # every move; prefix and name identify the axis just as well.
        return f"{type(self).__name__}(prefix={self.prefix!r}, name={self.name!r})"


class CoarseStage(BoundedMotor):
    """One axis of the sample's coarse stepper stage (a :class:`BoundedMotor`, um).

    Plans usually move the sample with :class:`devices.sample_stage.SampleStage`, which
    carries the piezo on this stage and reads the interferometer.
    """
