"""Every simulated motor record behaves as an EPICS motor record, for stock clients.

Runs for every motor record any IOC of the registry serves, with pyepics ``Motor``, ophyd
``EpicsMotor``, raw pyepics puts and the caproto command-line tools (subprocesses with the
fleet's environment). Each test leaves the record as it found it.

Stages differ in travel and units (the sample stage spans +-2000 um, ZP z lies at negative
readings, the EPU gap is in mm), so each test works in the record's *frame*: positions are
``origin + unit * d`` for the distances ``d`` below, with ``origin`` the middle of the soft
limits in force (for ZP z and OSA z the interlock's range) and ``unit`` 1 for um, 0.1 for mm,
and a fifth of the travel / 100 for short travels (the fine piezo's 100 um: 0.2).
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import bluesky.plan_stubs as bps
import epics
import pytest
from bluesky import RunEngine
from bluesky.callbacks import LiveTable
from bluesky.plans import scan
from conformance_records import (  # noqa: F401 (pytest_generate_tests is a pytest hook)
    ServedRecord,
    pytest_generate_tests,
    wait_for,
)
from ophyd import EpicsMotor

from sim_iocs.motor import Msta
from stxm_ctrl.physics.motion import move_duration_s

_SAVED = ("VELO", "ACCL", "DHLM", "DLLM", "OFF", "DIR", "FOFF", "SET", "SPMG", "TWV", "JVEL")


class _Motor(epics.Motor):
    """pyepics' Motor reading fresh values (a CA get), never a monitor that may lag."""

    def get(self, attr, as_string=False, count=None, timeout=None):
        attr = self._alias.get(attr, attr)
        pv = self.PV(attr)
        return pv.get(as_string=as_string, count=count, timeout=timeout, use_monitor=False)


_SHORT_TRAVEL = 150.0  # soft limits closer than this (EGU) scale the test distances


@dataclass(frozen=True)
class _Frame:
    """Where a record's test positions lie: ``at(d)`` = origin + unit * d."""

    origin: float
    unit: float

    def at(self, d: float) -> float:
        return self.origin + self.unit * d


def _frame(motor: epics.Motor) -> _Frame:
    low, high = motor.get("DLLM"), motor.get("DHLM")
    unit = 0.1 if motor.get("EGU", as_string=True) == "mm" else 1.0
    if high - low < _SHORT_TRAVEL:  # a piezo (100 um): the distances below fit its travel
        unit = (high - low) / 500.0
    return _Frame(round(0.5 * (low + high), 1), unit)


@contextlib.contextmanager
def _restored(name: str) -> Iterator[epics.Motor]:
    """A pyepics Motor on record ``name``; its settings and position restored afterwards.

    Only settings that changed are put back (a put to DHLM/DLLM of an interlocked axis sets
    the user's own part of its limits: restoring the published value would narrow it).
    """
    motor = _Motor(name)
    as_string = ("DIR", "FOFF", "SET", "SPMG")
    saved = {f: motor.get(f, as_string=f in as_string) for f in _SAVED}
    position = motor.get("DRBV")
    try:
        yield motor
    finally:
        motor.put("STOP", 1, wait=True)
        for field, value in saved.items():
            if motor.get(field, as_string=field in as_string) != value:
                motor.put(field, value, wait=True)
        motor.put("DVAL", position, wait=True, timeout=60)


_OPHYD_MOTORS: dict[str, EpicsMotor] = {}


@contextlib.contextmanager
def _ophyd_motor(name: str) -> Iterator[EpicsMotor]:
    """A connected stock ophyd EpicsMotor on record ``name`` (one per record, kept: ophyd
    shares pyepics' PV objects, so destroying one would disconnect every client of them)."""
    if name not in _OPHYD_MOTORS:
        _OPHYD_MOTORS[name] = EpicsMotor(name, name="m")
    motor = _OPHYD_MOTORS[name]
    motor.wait_for_connection(10)
    yield motor


# Stock ophyd's EpicsMotor ends a move's status, then clears its list of pending statuses;
# a move started on another thread in between loses its status, which then never ends
# (ophyd #782/#783; devices.stages.BoundedMotor closes the race, these tests drive the
# stock class). Stock-client tests give ophyd's callback thread this long after a move
# before starting the next, as a person at a terminal always does.
_OPHYD_BOOKKEEPING_S = 0.05


def _ophyd_move(motor: EpicsMotor, target: float) -> None:
    """Move a stock ophyd motor and wait; return once ophyd has finished with the move."""
    motor.move(target, wait=True)
    time.sleep(_OPHYD_BOOKKEEPING_S)


def _move_time_s(motor: epics.Motor, distance: float) -> float:
    """Time a move of ``distance`` (EGU) takes at the record's VELO and ACCL."""
    return move_duration_s(distance, motor.get("VELO"), motor.get("ACCL"))


def _ca(*argv: str) -> str:
    """Run a caproto command-line tool with this process's (the fleet's) CA environment."""
    tool = os.path.join(os.path.dirname(sys.executable), argv[0])
    done = subprocess.run(
        [tool, *argv[1:]], capture_output=True, text=True, timeout=60, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


# -- put completion --------------------------------------------------------------------------
def test_pyepics_motor_move_with_wait_returns_at_the_end_of_the_move(
    motor_record: ServedRecord, sim_fleet
):
    with _restored(motor_record.name) as motor:
        f = _frame(motor)
        motor.move(f.at(0), wait=True)
        motor.put("VELO", f.unit * 500.0, wait=True)
        expected = _move_time_s(motor, f.unit * 100.0)
        started = time.monotonic()
        assert motor.move(f.at(100), wait=True) == 0  # pyepics: "move-with-wait finish OK"
        elapsed = time.monotonic() - started
        assert elapsed >= expected
        assert motor.get("DMOV") == 1
        assert motor.get("RBV") == pytest.approx(f.at(100), abs=motor.get("MRES"))


def test_raw_put_with_completion_completes_at_the_end_of_the_move(
    motor_record: ServedRecord, sim_fleet
):
    name = motor_record.name
    with _restored(name) as motor:
        f = _frame(motor)
        motor.move(f.at(0), wait=True)
        motor.put("VELO", f.unit * 400.0, wait=True)
        started = time.monotonic()
        epics.caput(name + ".VAL", f.at(60), wait=True, timeout=20)
        elapsed = time.monotonic() - started
        # Fresh reads (a monitor may lag under CA flow control, on any IOC).
        done = epics.caget(name + ".DMOV", use_monitor=False)
        readback = epics.caget(name + ".RBV", use_monitor=False)
        assert elapsed >= _move_time_s(motor, f.unit * 60.0)
        assert done == 1
        assert readback == pytest.approx(f.at(60), abs=1e-3)


def test_caproto_put_with_notify_completes_at_the_end_of_the_move(
    motor_record: ServedRecord, sim_fleet
):
    name = motor_record.name
    with _restored(name) as motor:
        f = _frame(motor)
        motor.move(f.at(0), wait=True)
        motor.put("VELO", f.unit * 200.0, wait=True)
        started = time.monotonic()
        _ca("caproto-put", "-c", name + ".VAL", repr(f.at(40)))
        elapsed = time.monotonic() - started
        assert elapsed >= _move_time_s(motor, f.unit * 40.0)
        out = _ca("caproto-get", "-t", name + ".RBV", name + ".DMOV")
        readback, done = (float(v.strip("[]")) for v in out.split())
        assert readback == pytest.approx(f.at(40), abs=1e-3) and done == 1


# -- coordinates and calibration -------------------------------------------------------------
def test_set_current_position_redefines_the_position_without_moving(
    motor_record: ServedRecord, sim_fleet
):
    name = motor_record.name
    with _restored(name) as pm, _ophyd_motor(name) as motor:
        f = _frame(pm)
        _ophyd_move(motor, f.at(10))  # ophyd's own move: its DMOV callbacks are all in
        dial = pm.get("DRBV")
        moved: list[int] = []
        token = motor.motor_done_move.subscribe(lambda value, **_: moved.append(value), run=False)
        try:
            motor.set_current_position(123.0)
            time.sleep(0.2)  # any motion would show in DMOV within this
        finally:
            motor.motor_done_move.unsubscribe(token)
        assert 0 not in moved  # DMOV never dropped: nothing moved
        assert pm.get("DRBV") == dial
        wait_for(lambda: motor.position == pytest.approx(123.0), 2, "RBV = 123")
        assert motor.user_setpoint.get() == pytest.approx(123.0)
        offset = 123.0 - dial
        assert motor.user_offset.get() == pytest.approx(offset)
        # The user limits moved with the offset (the dial limits stay).
        assert motor.limits == pytest.approx((pm.get("DLLM") + offset, pm.get("DHLM") + offset))


def test_dir_and_off_give_user_coordinates(motor_record: ServedRecord, sim_fleet):
    with _restored(motor_record.name) as motor:
        f = _frame(motor)
        motor.move(f.at(5), wait=True)
        motor.put("DIR", "Neg", wait=True)
        motor.put("OFF", 100.0, wait=True)
        dial_low, dial_high = motor.get("DLLM"), motor.get("DHLM")
        assert motor.get("RBV") == pytest.approx(100.0 - f.at(5))
        assert (motor.get("LLM"), motor.get("HLM")) == pytest.approx(
            (100.0 - dial_high, 100.0 - dial_low)
        )
        assert motor.move(100.0 - f.at(10), wait=True) == 0  # user 100 - x is dial x
        assert motor.get("DRBV") == pytest.approx(f.at(10), abs=1e-3)
        assert motor.get("RRBV") == round(f.at(10) / motor.get("MRES"))


# -- limits ----------------------------------------------------------------------------------
def test_target_beyond_a_soft_limit_is_refused_with_lvio(motor_record: ServedRecord, sim_fleet):
    name = motor_record.name
    with _restored(name) as motor:
        f = _frame(motor)
        motor.move(f.at(1), wait=True)
        high = motor.get("HLM")
        assert motor.move(high + f.unit * 10.0, wait=True, ignore_limits=True) == -4
        assert motor.get("LVIO") == 1
        assert motor.get("VAL") == pytest.approx(f.at(1))  # the record kept its target
        assert motor.get("RBV") == pytest.approx(f.at(1))
        assert motor.move(f.at(2), wait=True) == 0
        assert motor.get("LVIO") == 0


def test_a_move_past_the_travel_stops_on_the_limit_switch(motor_record: ServedRecord, sim_fleet):
    if motor_record.group.interlocked:
        pytest.skip("an interlocked axis always has soft limits (the interlock's range)")
    with _restored(motor_record.name) as motor:
        f = _frame(motor)
        motor.put("VELO", motor.get("VMAX"), wait=True)
        motor.put("DHLM", 0.0, wait=True)  # equal dial limits: no soft limits
        motor.put("DLLM", 0.0, wait=True)
        assert motor.move(1e6, wait=True, timeout=60, ignore_limits=True) == -3  # hard limit
        switch = motor.get("RBV")
        assert switch < 1e6
        assert motor.get("HLS") == 1 and motor.get("LLS") == 0
        assert Msta.PLUS_LS in Msta(motor.get("MSTA"))
        assert epics.caget(motor_record.name + ".STAT", as_string=True) == "HWLIMIT"
        assert epics.caget(motor_record.name + ".SEVR", as_string=True) == "MAJOR"
        # Further out stays on the switch; back off clears it and the alarm.
        # (pyepics checks HLM/LLM itself, and equal limits fail its check: ignore_limits)
        motor.move(switch + f.unit * 50.0, wait=True, ignore_limits=True)
        assert motor.get("RBV") == pytest.approx(switch)
        assert motor.move(switch - f.unit * 10.0, wait=True, ignore_limits=True) == 0
        assert motor.get("HLS") == 0
        assert epics.caget(motor_record.name + ".SEVR", as_string=True) == "NO_ALARM"


# -- stop, pause, go -------------------------------------------------------------------------
def test_spmg_stop_ends_a_move_and_blocks_new_ones(motor_record: ServedRecord, sim_fleet):
    with _restored(motor_record.name) as motor:
        f = _frame(motor)
        motor.move(f.at(0), wait=True)
        motor.put("VELO", f.unit * 100.0, wait=True)
        motor.move(f.at(200))
        wait_for(lambda: motor.get("RBV") > f.at(5), 5, "the stage moving")
        motor.put("SPMG", "Stop", wait=True)
        wait_for(lambda: motor.get("DMOV") == 1, 1, "DMOV after Stop")
        stopped = motor.get("RBV")
        assert f.at(5) < stopped < f.at(100)
        assert motor.get("VAL") == pytest.approx(stopped)  # Stop: the target is where it is
        target = stopped + f.unit * 20.0
        assert motor.move(target, wait=True, timeout=2) == 0  # accepted, no motion
        assert motor.get("RBV") == pytest.approx(stopped)
        motor.put("SPMG", "Go", wait=True)  # completes when the pending target is reached
        assert motor.get("RBV") == pytest.approx(target, abs=1e-3)


def test_spmg_pause_keeps_the_target_and_go_resumes(motor_record: ServedRecord, sim_fleet):
    with _restored(motor_record.name) as motor:
        f = _frame(motor)
        motor.move(f.at(0), wait=True)
        motor.put("VELO", f.unit * 100.0, wait=True)
        motor.move(f.at(50))
        wait_for(lambda: motor.get("RBV") > f.at(5), 5, "the stage moving")
        motor.put("SPMG", "Pause", wait=True)
        wait_for(lambda: motor.get("DMOV") == 1, 1, "DMOV after Pause")
        paused = motor.get("RBV")
        time.sleep(0.1)
        assert motor.get("RBV") == paused
        assert motor.get("VAL") == pytest.approx(f.at(50))
        motor.put("SPMG", "Go", wait=True)
        assert motor.get("RBV") == pytest.approx(f.at(50), abs=1e-3)


def test_spmg_move_at_rest_allows_one_move_then_pauses(motor_record: ServedRecord, sim_fleet):
    with _restored(motor_record.name) as motor:
        f = _frame(motor)
        motor.move(f.at(0), wait=True)
        motor.put("SPMG", "Move", wait=True)
        assert motor.get("SPMG", as_string=True) == "Move"  # armed: nothing to move yet
        assert motor.move(f.at(10), wait=True, timeout=10) == 0
        assert motor.get("RBV") == pytest.approx(f.at(10), abs=1e-3)  # the one move
        assert motor.get("SPMG", as_string=True) == "Pause"
        motor.move(f.at(20), wait=True, timeout=2)
        assert motor.get("RBV") == pytest.approx(f.at(10), abs=1e-3)  # paused: no move


def test_stop_field_ends_a_move_where_it_is(motor_record: ServedRecord, sim_fleet):
    with _restored(motor_record.name) as motor:
        f = _frame(motor)
        motor.move(f.at(0), wait=True)
        motor.put("VELO", f.unit * 100.0, wait=True)
        motor.move(f.at(100))
        wait_for(lambda: motor.get("RBV") > f.at(5), 5, "the stage moving")
        motor.put("STOP", 1, wait=True)
        wait_for(lambda: motor.get("DMOV") == 1, 1, "DMOV after STOP")
        here = motor.get("RBV")
        time.sleep(0.1)
        assert motor.get("RBV") == here < f.at(100)
        assert motor.get("VAL") == pytest.approx(here)


# -- tweak, jog, home ------------------------------------------------------------------------
def test_tweak_moves_by_twv(motor_record: ServedRecord, sim_fleet):
    with _restored(motor_record.name) as motor:
        f = _frame(motor)
        motor.move(f.at(0), wait=True)
        motor.put("TWV", f.unit * 7.5, wait=True)
        assert motor.tweak("forward", wait=True) == 0
        assert motor.get("RBV") == pytest.approx(f.at(7.5), abs=1e-3)
        assert motor.tweak("reverse", wait=True) == 0
        assert motor.get("RBV") == pytest.approx(f.at(0), abs=1e-3)


def test_jog_runs_while_held(motor_record: ServedRecord, sim_fleet):
    with _restored(motor_record.name) as motor:
        f = _frame(motor)
        motor.move(f.at(0), wait=True)
        motor.put("JVEL", f.unit * 100.0, wait=True)
        motor.put("JOGF", 1)
        wait_for(lambda: motor.get("RBV") > f.at(10), 5, "the jog moving forward")
        assert motor.get("MOVN") == 1
        motor.put("JOGF", 0, wait=True)
        wait_for(lambda: motor.get("DMOV") == 1, 1, "DMOV after the jog")
        assert motor.get("VAL") == pytest.approx(motor.get("RBV"))
        assert motor.get("JOGF") == 0


def test_ophyd_home_searches_the_home_switch_and_completes(motor_record: ServedRecord, sim_fleet):
    home = motor_record.group.stage.home_switch_um  # where the simulated switch is
    with _restored(motor_record.name) as pm, _ophyd_motor(motor_record.name) as motor:
        f = _frame(pm)
        assert pm.get("DLLM") < home - f.unit * 30.0 and home < pm.get("DHLM")
        _ophyd_move(motor, home - f.unit * 30.0)  # ophyd's own move: DMOV callbacks in
        started = time.monotonic()
        status = motor.home("forward", wait=True, timeout=60)
        assert status.success
        assert time.monotonic() - started >= f.unit * 30.0 / pm.get("HVEL")  # takes time
        assert motor.position == pytest.approx(home, abs=1e-3)
        assert pm.get("ATHM") == 1
        msta = Msta(pm.get("MSTA"))
        assert Msta.HOMED in msta and Msta.HOME in msta and Msta.DONE in msta
        assert pm.get("HOMF") == 0


# -- status, speeds, display -----------------------------------------------------------------
def test_msta_and_movn_follow_the_motion(motor_record: ServedRecord, sim_fleet):
    with _restored(motor_record.name) as motor:
        f = _frame(motor)
        motor.move(f.at(0), wait=True)
        msta = Msta(motor.get("MSTA"))
        assert Msta.DONE in msta and Msta.MOVING not in msta
        assert Msta.POSITION in msta  # CNEN enabled: closed loop
        motor.put("VELO", f.unit * 100.0, wait=True)
        motor.move(f.at(-30))
        wait_for(lambda: motor.get("MOVN") == 1, 2, "MOVN = 1")
        msta = Msta(motor.get("MSTA"))
        assert Msta.MOVING in msta and Msta.DONE not in msta
        assert Msta.DIRECTION not in msta  # towards lower positions
        wait_for(lambda: motor.get("DMOV") == 1, 5, "the end of the move")
        assert Msta.DONE in Msta(motor.get("MSTA"))


def test_speeds_are_bounded_by_vbas_and_vmax(motor_record: ServedRecord, sim_fleet):
    name = motor_record.name
    with _restored(name) as motor:
        vmax = motor.get("VMAX")
        motor.put("VELO", vmax * 10, wait=True)
        assert motor.get("VELO") == vmax
        assert motor.get("S") == pytest.approx(vmax / motor.get("UREV"))
        before = motor.get("VELO")
        out = _ca("caproto-put", "-c", name + ".VELO", "0")
        assert "ECA_PUTFAIL" in out and "must be > 0" in out
        assert motor.get("VELO") == before
        # A refused put leaves no alarm behind on the field.
        velo = epics.get_pv(name + ".VELO")
        wait_for(
            lambda: velo.get_with_metadata(use_monitor=False, form="time")["severity"] == 0,
            2,
            ".VELO out of alarm",
        )


def test_torque_disabled_refuses_moves(motor_record: ServedRecord, sim_fleet):
    name = motor_record.name
    with _restored(name) as motor:
        f = _frame(motor)
        motor.move(f.at(0), wait=True)
        motor.put("CNEN", "Disable", wait=True)
        try:
            assert Msta.POSITION not in Msta(motor.get("MSTA"))
            motor.move(f.at(10), wait=True, timeout=2)
            assert motor.get("RBV") == pytest.approx(f.at(0))
            assert Msta.PROBLEM in Msta(motor.get("MSTA"))
            assert epics.caget(name + ".SEVR", as_string=True) == "MAJOR"
        finally:
            motor.put("CNEN", "Enable", wait=True)
        assert epics.caget(name + ".SEVR", as_string=True) == "NO_ALARM"
        assert motor.move(f.at(10), wait=True) == 0


def test_clients_get_the_record_precision_and_units(motor_record: ServedRecord, sim_fleet):
    name = motor_record.name
    prec = epics.caget(name + ".PREC")
    egu = epics.caget(name + ".EGU", as_string=True)
    with _ophyd_motor(name) as motor:
        description = motor.describe()["m"]
    assert description["precision"] == prec > 0
    assert description["units"] == egu != ""
    for field in ("DRBV", "DVAL", "HLM", "DHLM", "OFF", "TWV"):
        pv = epics.get_pv(f"{name}.{field}")
        assert pv.wait_for_connection(5)
        ctrl = pv.get_ctrlvars()
        assert (ctrl["precision"], ctrl["units"]) == (prec, egu), field
    for field in ("RBV", "DRBV"):
        ctrl = epics.get_pv(f"{name}.{field}").get_ctrlvars()
        assert ctrl["lower_disp_limit"] < ctrl["upper_disp_limit"], field


def test_position_and_speed_fields_have_the_records_control_limits(
    motor_record: ServedRecord, sim_fleet
):
    """As the motor record's get_control_double: RBV the user limits, DVAL/DRBV the dial
    limits, VELO VBAS..VMAX; what bluesky descriptors carry as lower/upper_ctrl_limit."""
    name = motor_record.name
    limits = {
        f: epics.caget(f"{name}.{f}", use_monitor=False)
        for f in ("LLM", "HLM", "DLLM", "DHLM", "VBAS", "VMAX")
    }
    expected = {
        "RBV": (limits["LLM"], limits["HLM"]),
        "DVAL": (limits["DLLM"], limits["DHLM"]),
        "DRBV": (limits["DLLM"], limits["DHLM"]),
        "VELO": (limits["VBAS"], limits["VMAX"]),
    }
    for field, (low, high) in expected.items():
        ctrl = epics.get_pv(f"{name}.{field}").get_ctrlvars()
        assert ctrl is not None, field
        got = (ctrl["lower_ctrl_limit"], ctrl["upper_ctrl_limit"])
        assert got == pytest.approx((low, high)), field
    assert limits["LLM"] < limits["HLM"]
    with _ophyd_motor(name) as motor:
        description = motor.describe()["m"]
    assert (description["lower_ctrl_limit"], description["upper_ctrl_limit"]) == pytest.approx(
        expected["RBV"]
    )


def test_long_units_are_cut_to_what_dbr_ctrl_holds(sim_config, sim_fleet):
    """A 7-character EGU makes the speeds' units 9 characters: clients get the first 7, as
    from an IOC, and every DBR_CTRL read still works (one record: the units code is shared;
    a fresh ophyd process costs seconds)."""
    name = sim_config.epics.prefixes.detector + sim_config.epics.axes.detector_y
    egu = epics.caget(name + ".EGU", as_string=True, use_monitor=False)
    try:
        _ca("caproto-put", name + ".EGU", "microns")
        assert epics.caget(name + ".EGU", as_string=True, use_monitor=False) == "microns"
        out = _ca("caproto-get", "-d", "control", name + ".VELO", name + ".RBV")  # exit 0
        assert "[" in out, out
        ctrl = epics.get_pv(name + ".VELO").get_ctrlvars()
        assert ctrl is not None and ctrl["units"] == "microns"
        # A client starting now (ophyd reads every field's DBR_CTRL as it connects).
        code = (
            "import sys; from ophyd import EpicsMotor; m = EpicsMotor(sys.argv[1], name='m'); "
            "m.wait_for_connection(10); print(m.describe()['m']['units'], m.velocity.limits)"
        )
        fresh = subprocess.run(
            [sys.executable, "-c", code, name], capture_output=True, text=True, timeout=60
        )
        assert fresh.returncode == 0, fresh.stderr
        assert fresh.stdout.split()[0] == "microns", fresh.stdout
    finally:
        _ca("caproto-put", name + ".EGU", egu)
    assert epics.get_pv(name + ".RBV").get_ctrlvars()["units"] == egu


def _step_then_wait(detectors, motor, step):
    """bluesky's own step, then the pause a stock EpicsMotor needs (see _ophyd_move)."""
    yield from bps.one_1d_step(detectors, motor, step)
    yield from bps.sleep(_OPHYD_BOOKKEEPING_S)


def test_live_table_prints_readbacks_with_the_record_precision(
    motor_record: ServedRecord, sim_fleet
):
    with _restored(motor_record.name) as pm, _ophyd_motor(motor_record.name) as motor:
        prec = pm.get("PREC")
        assert prec >= 4
        origin = _frame(pm).origin
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            RunEngine({})(
                scan([], motor, origin + 0.1234, origin + 0.5678, 3, per_step=_step_then_wait),
                LiveTable([motor]),
            )
        table = out.getvalue()
        for readback in (0.1234, 0.3456, 0.5678):
            assert f" {origin + readback:.{prec}f} |" in table, table


# -- simulator faults ------------------------------------------------------------------------
def test_a_stalled_stage_neither_moves_nor_completes(
    motor_record: ServedRecord, sim_config, sim_fleet
):
    stall = f"{sim_config.sim.control_prefix}{motor_record.group.axis.upper()}:STALL"
    with _restored(motor_record.name) as motor:
        f = _frame(motor)
        motor.move(f.at(0), wait=True)
        motor.put("VELO", f.unit * 100.0, wait=True)
        motor.move(f.at(50))
        wait_for(lambda: motor.get("RBV") > f.at(5), 5, "the stage moving")
        epics.caput(stall, "Stalled", wait=True)
        try:
            stuck = motor.get("RBV")
            pv = epics.get_pv(motor_record.name + ".VAL")
            assert pv.put(f.at(60), wait=True, timeout=0.5) == -1  # no completion: timed out
            assert motor.get("RBV") == stuck and motor.get("DMOV") == 0
        finally:
            epics.caput(stall, "Free", wait=True)
        # Free again: the stage goes on to its target.
        wait_for(lambda: motor.get("DMOV") == 1, 5, "the move after the stall")
        assert motor.get("RBV") == pytest.approx(f.at(60), abs=1e-3)
