"""BoundedMotor keeps a move started just as the previous one ends (ophyd #782/#783)."""

from __future__ import annotations

import pytest
from ophyd import EpicsMotor
from ophyd.sim import make_fake_device

from devices.stages import BoundedMotor


def _fake(cls: type[EpicsMotor]) -> EpicsMotor:
    motor = make_fake_device(cls)("SIM:M", name="m")
    motor.user_setpoint.sim_set_limits((-10.0, 10.0))
    motor.user_readback.sim_put(0.0)
    motor.velocity.sim_put(100.0)
    motor.acceleration.sim_put(0.1)
    return motor


def _move_ends(motor: EpicsMotor) -> None:
    """What ophyd runs when the record's DMOV goes from 0 back to 1 (its own callback: the
    race is inside ophyd, reached through no public call)."""
    motor._done_moving(success=True, timestamp=None, value=1)  # noqa: SLF001


def _next_move_as_the_first_ends(motor: EpicsMotor) -> dict:
    """Start a second move from the first move's end, before ophyd has cleaned up after it
    (the RunEngine does so on its own thread; here it is made to happen every time)."""
    started: dict = {}
    first = motor.move(1.0, wait=False)

    def next_move(**_: object) -> None:
        if "second" not in started:
            started["second"] = motor.move(2.0, wait=False)

    # ophyd's request-done event, which runs its move's cleanup.
    motor.subscribe(next_move, event_type=motor._SUB_REQ_DONE, run=False)  # noqa: SLF001
    _move_ends(motor)
    first.wait(2)
    return started


def test_a_move_started_as_the_previous_one_ends_completes():
    motor = _fake(BoundedMotor)
    second = _next_move_as_the_first_ends(motor)["second"]
    assert not second.done
    _move_ends(motor)
    second.wait(2)
    assert second.success


def test_stock_ophyd_loses_that_move():
    # What the override mends: the same sequence on a stock EpicsMotor leaves the second
    # move's status waiting for ever (a scan that hangs).
    motor = _fake(EpicsMotor)
    second = _next_move_as_the_first_ends(motor)["second"]
    _move_ends(motor)
    with pytest.raises(Exception):  # noqa: B017, PT011 - ophyd's WaitTimeoutError
        second.wait(0.5)
    assert not second.done
