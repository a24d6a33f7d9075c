"""Stock ophyd EpicsMotor against the simulated motor records: timing, limits, stop."""

from __future__ import annotations

import contextlib
import threading
import time

import epics
import pytest
from ophyd.utils import LimitError

from stxm_ctrl.physics.motion import move_duration_s


def test_move_takes_the_time_velocity_and_acceleration_imply(devices):
    motor = devices.sample_x
    motor.move(0.0, wait=True)
    motor.velocity.put(500.0, wait=True)
    try:
        expected = move_duration_s(200.0, 500.0, motor.acceleration.get(use_monitor=False))
        started = time.monotonic()
        motor.move(200.0, wait=True)
        elapsed = time.monotonic() - started
    finally:
        motor.velocity.put(2000.0, wait=True)
    assert motor.position == pytest.approx(200.0, abs=1e-6)
    assert expected == pytest.approx(0.405, abs=1e-3)  # 200 um at 500 um/s + 5 ms ramps
    assert elapsed >= expected
    assert elapsed < expected + 0.5


def test_readback_moves_through_intermediate_positions(devices):
    motor = devices.sample_x
    motor.move(0.0, wait=True)
    motor.velocity.put(400.0, wait=True)
    seen: list[float] = []
    token = motor.user_readback.subscribe(lambda value, **kw: seen.append(value), run=False)
    try:
        motor.move(100.0, wait=True)
    finally:
        motor.user_readback.unsubscribe(token)
        motor.velocity.put(2000.0, wait=True)
    intermediate = [v for v in seen if 1.0 < v < 99.0]
    assert len(intermediate) >= 5, seen
    assert intermediate == sorted(intermediate)


def test_ophyd_refuses_a_move_past_the_limits(devices):
    motor = devices.sample_y
    low, high = motor.limits
    assert (low, high) == (-2000.0, 2000.0)
    before = motor.position
    with pytest.raises(LimitError, match="outside of range"):
        motor.move(high + 10.0, wait=True)
    assert motor.position == before


def test_ioc_enforces_limits_against_raw_puts(devices, sim_config):
    pv = sim_config.epics.prefixes.sample_stage + sim_config.epics.axes.sample_y
    before = epics.caget(pv + ".RBV", use_monitor=False)
    # A raw put outside HLM: the record keeps its target, flags LVIO and nothing moves.
    epics.caput(pv + ".VAL", 5000.0, wait=True, timeout=2)
    assert epics.caget(pv + ".LVIO", use_monitor=False) == 1
    assert epics.caget(pv + ".RBV", use_monitor=False) == pytest.approx(before)
    assert epics.caget(pv + ".VAL", use_monitor=False) == pytest.approx(before)
    assert epics.caget(pv + ".DMOV", use_monitor=False) == 1


def test_changing_hlm_changes_the_limits_ophyd_sees(devices):
    motor = devices.sample_x
    motor.high_limit_travel.put(50.0, wait=True)
    try:
        _wait_for_limits(motor, (-2000.0, 50.0))
        assert motor.limits == (-2000.0, 50.0)
        with pytest.raises(LimitError):
            motor.move(60.0)
    finally:
        motor.high_limit_travel.put(2000.0, wait=True)
        # The setpoint's control limits reach ophyd by their own monitor, after the put's
        # completion; the next test must not start before they are back.
        _wait_for_limits(motor, (-2000.0, 2000.0))


def _wait_for_limits(motor, limits: tuple[float, float], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while motor.limits != limits and time.monotonic() < deadline:
        time.sleep(0.02)


def test_stop_halts_a_move_where_it_is(devices):
    motor = devices.sample_x
    motor.move(0.0, wait=True)
    motor.velocity.put(200.0, wait=True)
    try:
        status = motor.move(1000.0, wait=False)
        threading.Event().wait(0.3)
        motor.stop()
        with contextlib.suppress(Exception):  # ophyd reports a stopped move as failed
            status.wait(timeout=5)
        stopped_at = motor.position
        assert 20.0 < stopped_at < 200.0  # ~60 um after 0.3 s at 200 um/s
        time.sleep(0.2)
        assert motor.position == pytest.approx(stopped_at, abs=1e-6)
        assert motor.motor_done_move.get() == 1
    finally:
        motor.velocity.put(2000.0, wait=True)
        motor.move(0.0, wait=True)


def test_zero_length_move_completes(devices):
    motor = devices.sample_x
    motor.move(1.0, wait=True)
    status = motor.move(1.0, wait=False)
    status.wait(timeout=2)
    assert status.success
