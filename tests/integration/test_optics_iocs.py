"""The optics, detector and beamline IOCs, with stock clients on raw PVs, and the APD's counts.

Interlocks refuse colliding and leaking targets from any client before anything moves;
energy and polarisation changes take their time; the APD counts what the instrument model
(the same as the simulator's) says for focus, defocus, OSA and detector positions and a
detuned undulator. Every test puts the instrument back as it found it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import epics
import numpy as np
import pytest
from conftest import expected_rate_at, truth_model, wait_for
from ophyd import EpicsMotor
from ophyd.utils.errors import LimitError

from stxm_ctrl.physics.instrument import OPTICS_AXES
from stxm_ctrl.physics.monochromator import EnergyMove

MEMBRANE_UM = (0.0, -10.0)
SQUARE_EDGE_UM = (2.5, -7.75)  # left edge of the big square, where it is solid


# -- helpers ---------------------------------------------------------------------------------
def _pv(sim_config, axis: str) -> str:
    """Motor record of an optics or detector axis."""
    prefixes = sim_config.epics.prefixes
    prefix = prefixes.detector if axis.startswith("detector") else prefixes.optics
    return prefix + getattr(sim_config.epics.axes, axis)


def _bl(sim_config, name: str) -> str:
    return sim_config.epics.prefixes.beamline + name


def _get(name: str, **kwargs):
    return epics.caget(name, use_monitor=False, timeout=5, **kwargs)


def _move(name: str, target: float, timeout: float = 30) -> None:
    assert epics.caput(name + ".VAL", target, wait=True, timeout=timeout) == 1
    assert _get(name + ".DMOV") == 1


@contextlib.contextmanager
def _kept(sim_config, *axes: str) -> Iterator[None]:
    """Put the given axes (and energy, gap, polarisation) back where they were."""
    positions = {axis: _get(_pv(sim_config, axis) + ".DRBV") for axis in axes}
    energy = _get(_bl(sim_config, "ENERGY"))
    gap = _get(_bl(sim_config, "EPU:GAP.DRBV"))
    polarization = _get(_bl(sim_config, "EPU:POLARIZATION"), as_string=True)
    try:
        yield
    finally:
        if _get(_bl(sim_config, "EPU:POLARIZATION"), as_string=True) != polarization:
            epics.caput(_bl(sim_config, "EPU:POLARIZATION"), polarization, wait=True, timeout=20)
        if abs(_get(_bl(sim_config, "ENERGY")) - energy) > 1e-9:
            epics.caput(_bl(sim_config, "ENERGY"), energy, wait=True, timeout=30)
        _move(_bl(sim_config, "EPU:GAP"), gap)
        # The OSA first out of the way of the zone plate: towards its own start.
        for axis in sorted(positions, key=lambda a: a != "osa_z"):
            _move(_pv(sim_config, axis), positions[axis])


def _ca(*argv: str) -> str:
    """A caproto command-line tool with this process's (the fleet's) CA environment."""
    tool = os.path.join(os.path.dirname(sys.executable), argv[0])
    done = subprocess.run(
        [tool, *argv[1:]], capture_output=True, text=True, timeout=60, env=dict(os.environ)
    )
    return done.stdout + done.stderr


def _truth_Hz(sim_config, x_um, y_um) -> np.ndarray:
    """The instrument model at the optics' current readings (read over Channel Access)."""
    model = truth_model(sim_config)
    readings = {axis: _get(_pv(sim_config, axis) + ".DRBV") for axis in OPTICS_AXES}
    optics = model.optics_positions(_get(_bl(sim_config, "ENERGY:RBV")), readings)
    return expected_rate_at(
        sim_config,
        x_um,
        y_um,
        _get(sim_config.epics.prefixes.ring + "CURRENT"),
        optics=optics,
        gap_mm=_get(_bl(sim_config, "EPU:GAP.DRBV")),
        polarization=_get(_bl(sim_config, "EPU:POLARIZATION:RBV"), as_string=True),
    )


def _counts_at(devices, sim_config, point, n: int, dwell_s: float) -> np.ndarray:
    sample = sim_config.sim.sample
    devices.sample_x.move(sample.center_x_um + point[0], wait=True)
    devices.sample_y.move(sample.center_y_um + point[1], wait=True)
    devices.apd.dwell.put(dwell_s, wait=True)
    counts = []
    for _ in range(n):
        devices.apd.trigger().wait(timeout=5)
        counts.append(devices.apd.counts.get())
    return np.array(counts, dtype=float)


def _assert_counts_match(counts: np.ndarray, rate_Hz: float, dwell_s: float) -> None:
    """Mean within 5 standard errors (Poisson) plus 1 % (ring decay, drift) of the truth."""
    expected = rate_Hz * dwell_s
    tolerance = 5 * np.sqrt(expected / len(counts)) + 0.01 * expected + 0.5
    assert abs(counts.mean() - expected) < tolerance, (counts.mean(), expected)


def _point(sim_config, point) -> tuple[float, float]:
    sample = sim_config.sim.sample
    return sample.center_x_um + point[0], sample.center_y_um + point[1]


# -- start state ------------------------------------------------------------------------------
def test_the_world_starts_aligned_focused_and_tuned(sim_config, sim_fleet):
    model = truth_model(sim_config)
    start = model.start_readings()
    for axis in OPTICS_AXES:
        assert _get(_pv(sim_config, axis) + ".DRBV") == pytest.approx(start[axis], abs=1e-3)
    # Exact in a fresh world; a move back to it (by an earlier test) ends within tolerance.
    assert _get(_bl(sim_config, "ENERGY:RBV")) == pytest.approx(
        sim_config.sim.beam.energy_eV, abs=sim_config.sim.beamline.mono_tolerance_eV
    )
    assert _get(_bl(sim_config, "EPU:GAP.RBV")) == pytest.approx(
        model.tuned_gap_mm(sim_config.sim.beam.energy_eV), abs=1e-3
    )
    assert _get(_bl(sim_config, "EPU:GAP.EGU"), as_string=True) == "mm"
    assert _get(_bl(sim_config, "EPU:POLARIZATION:RBV"), as_string=True) == "Circular left"


# -- interlocks ----------------------------------------------------------------------------------
def test_zone_plate_into_the_osa_is_refused_before_anything_moves(sim_config, sim_fleet):
    zpz = _pv(sim_config, "zp_z")
    a0 = -_get(_pv(sim_config, "osa_z") + ".DRBV")
    closest = -(a0 + sim_config.optics.min_zp_osa_gap_um)  # ZP z may not exceed this
    before = _get(zpz + ".RBV")
    motor = EpicsMotor(zpz, name="zpz")
    motor.wait_for_connection(10)
    assert motor.limits[1] == pytest.approx(closest)
    with pytest.raises(LimitError):
        motor.move(closest + 50.0, wait=True)  # stock ophyd: refused client-side
    # A raw put: the record refuses it, nothing moves, the reason names the numbers.
    epics.caput(zpz + ".VAL", closest + 50.0, wait=True, timeout=5)
    assert _get(zpz + ".LVIO") == 1
    assert _get(zpz + ".RBV") == before
    text = _get(sim_config.epics.prefixes.optics + "INTERLOCK", as_string=True)
    assert f"ZP z = {closest + 50:.1f} um" in text and "at least 200 um" in text, text
    assert f"<= {closest:.1f} um" in text, text
    motor.destroy()


def test_osa_into_the_sample_is_refused_before_anything_moves(sim_config, sim_fleet):
    osaz = _pv(sim_config, "osa_z")
    before = _get(osaz + ".RBV")
    motor = EpicsMotor(osaz, name="osaz")
    motor.wait_for_connection(10)
    assert motor.limits[1] == pytest.approx(-sim_config.optics.min_a0_um)
    with pytest.raises(LimitError):
        motor.move(-50.0, wait=True)
    epics.caput(osaz + ".VAL", -50.0, wait=True, timeout=5)
    assert _get(osaz + ".LVIO") == 1
    assert _get(osaz + ".RBV") == before
    text = _get(sim_config.epics.prefixes.optics + "INTERLOCK", as_string=True)
    assert "A0 = 50.0 um" in text and "within 100 um of the sample" in text, text
    # Too far from the sample at this energy: the second order would pass the OSA.
    model = truth_model(sim_config)
    leak = model.zone_plate.a0_max_second_order_um(
        _get(_bl(sim_config, "ENERGY:RBV")), sim_config.optics.selected_osa.diameter_um
    )
    assert motor.limits[0] == pytest.approx(-leak)
    epics.caput(osaz + ".VAL", -(leak + 20), wait=True, timeout=5)
    assert _get(osaz + ".LVIO") == 1 and _get(osaz + ".RBV") == before
    text = _get(sim_config.epics.prefixes.optics + "INTERLOCK", as_string=True)
    assert "second order would pass" in text, text
    motor.destroy()


def test_limits_follow_the_other_axis_and_the_users_own_part_is_kept(sim_config, sim_fleet):
    zpz, osaz = _pv(sim_config, "zp_z"), _pv(sim_config, "osa_z")
    gap = sim_config.optics.min_zp_osa_gap_um
    with _kept(sim_config, "osa_z"):
        _move(osaz, -400.0)
        wait_for(lambda: _get(zpz + ".DHLM") == pytest.approx(-(400 + gap)), 2, "ZPZ limit")
        assert _get(zpz + ".HLM") == pytest.approx(-(400 + gap))
        # The user's own limit narrower than the interlock: it is what is published.
        own = sim_config.sim.stages.zp_z.high_limit_um
        epics.caput(zpz + ".DHLM", -2000.0, wait=True)
        try:
            assert _get(zpz + ".DHLM") == pytest.approx(-2000.0)
            # Wider than the interlock: the interlock is published; the user's part stays.
            epics.caput(zpz + ".DHLM", -100.0, wait=True)
            assert _get(zpz + ".DHLM") == pytest.approx(-(400 + gap))
        finally:
            epics.caput(zpz + ".DHLM", own, wait=True)
    wait_for(lambda: _get(zpz + ".DHLM") == pytest.approx(-(500 + gap)), 2, "ZPZ limit back")


def test_an_energy_at_which_the_osa_would_leak_is_refused(sim_config, sim_fleet):
    energy = _bl(sim_config, "ENERGY")
    before = _get(energy)
    model = truth_model(sim_config)
    a0 = -_get(_pv(sim_config, "osa_z") + ".DRBV")
    lowest = model.geometry.energy_min_for_a0_eV(a0, clip_first_order=False)
    out = _ca("caproto-put", "-c", energy, f"{lowest - 20:.1f}")
    assert "ECA_PUTFAIL" in out and "second order" in out, out
    assert _get(energy) == before and _get(energy + ":DMOV") == 1
    text = _get(_bl(sim_config, "INTERLOCK"), as_string=True)
    assert f"A0 = {a0:.1f} um" in text and f">= {lowest:.1f} eV" in text, text


def test_an_energy_beyond_the_drive_limits_is_driven_at_the_limit(sim_config, sim_fleet):
    """As an ao record: a put beyond DRVH (pyepics' caput cannot see a refusal) moves to
    DRVH, the limit clients read."""
    energy = _bl(sim_config, "ENERGY")
    high = sim_config.optics.energy_max_eV
    with _kept(sim_config):
        assert _get(energy + ".DRVH") == high
        assert epics.caput(energy, high + 200.0, wait=True, timeout=60) == 1
        assert _get(energy) == high
        assert _get(_bl(sim_config, "ENERGY:RBV")) == pytest.approx(high, abs=0.01)


# -- energy and polarisation -------------------------------------------------------------------
def test_an_energy_move_takes_its_time_and_the_readback_settles(sim_config, sim_fleet):
    bl = sim_config.sim.beamline
    rbv = epics.get_pv(_bl(sim_config, "ENERGY:RBV"), auto_monitor=True)
    assert rbv.wait_for_connection(5)
    seen: list[float] = []
    rbv.add_callback(lambda value, **_: seen.append(value))
    with _kept(sim_config):
        start = _get(_bl(sim_config, "ENERGY:RBV"))
        target = start + 10.0
        started = time.monotonic()
        assert epics.caput(_bl(sim_config, "ENERGY"), target, wait=True, timeout=30) == 1
        elapsed = time.monotonic() - started
        move = EnergyMove(
            start, target, 0.0, bl.mono_speed_eV_per_s, bl.mono_overhead_s, bl.mono_settle_s
        )
        assert elapsed == pytest.approx(move.done_s(bl.mono_tolerance_eV), abs=0.15)
        assert elapsed >= bl.mono_overhead_s + 10.0 / bl.mono_speed_eV_per_s
        assert _get(_bl(sim_config, "ENERGY:DMOV")) == 1
        assert _get(_bl(sim_config, "ENERGY:RBV")) == pytest.approx(
            target, abs=bl.mono_tolerance_eV
        )
        # The readback passed through the energies in between.
        assert any(start + 1 < e < target - 1 for e in seen), seen
    rbv.clear_callbacks()


def test_stop_halts_a_moving_monochromator_and_leaves_one_at_rest_on_its_setpoint(
    sim_config, sim_fleet
):
    energy, stop = _bl(sim_config, "ENERGY"), _bl(sim_config, "ENERGY:STOP")
    with _kept(sim_config):
        start = _get(_bl(sim_config, "ENERGY:RBV"))
        # At rest: a stop (ophyd's stop(), which the RunEngine calls on every positioner a
        # plan moved) just after the move completed, in the settle tail 5 meV off.
        target = round(start - 20.0, 3)
        assert epics.caput(energy, target, wait=True, timeout=30) == 1
        assert epics.caput(stop, 1, wait=True, timeout=5) == 1
        assert _get(energy) == pytest.approx(target, abs=1e-9)
        wait_for(
            lambda: abs(_get(_bl(sim_config, "ENERGY:RBV")) - target) < 5e-4,
            5,
            f"the readback to settle on {target} eV after a stop at rest",
        )
        # Moving: the monochromator stops where it is and the setpoint takes that energy.
        far = target + 100.0  # 2 s of slew at the default 50 eV/s
        epics.caput(energy, far, wait=False)
        wait_for(
            lambda: _get(_bl(sim_config, "ENERGY:RBV")) > target + 1.0,
            10,
            "the monochromator to start moving",
        )
        assert epics.caput(stop, 1, wait=True, timeout=5) == 1
        wait_for(lambda: _get(_bl(sim_config, "ENERGY:DMOV")) == 1, 5, "DMOV after the stop")
        stopped = _get(energy)
        assert target + 1.0 < stopped < far - 1.0
        time.sleep(1.0)
        assert _get(_bl(sim_config, "ENERGY:RBV")) == pytest.approx(stopped, abs=1e-3)


def test_a_stop_mid_move_ends_the_move_its_put_and_its_setpoint_for_good(sim_config, sim_fleet):
    """A stop during a move: the setpoint keeps the energy it stopped at (no return to the old
    target when the old move would have ended), and the first put completes at the stop."""
    bl = sim_config.sim.beamline
    energy, stop = _bl(sim_config, "ENERGY"), _bl(sim_config, "ENERGY:STOP")
    with _kept(sim_config):
        start = _get(_bl(sim_config, "ENERGY:RBV"))
        target = round(start + 30.0, 3)
        old_end_s = EnergyMove(
            start, target, 0.0, bl.mono_speed_eV_per_s, bl.mono_overhead_s, bl.mono_settle_s
        ).done_s(bl.mono_tolerance_eV)
        completed: list[float] = []
        pv = epics.get_pv(energy)
        assert pv.wait_for_connection(5)
        put_at = time.monotonic()
        pv.put(target, callback=lambda **_: completed.append(time.monotonic()))
        time.sleep(0.5)
        stopped_at = time.monotonic()
        assert epics.caput(stop, 1, wait=True, timeout=5) == 1
        wait_for(lambda: bool(completed), 2, "the first put to complete at the stop")
        assert completed[0] - stopped_at < 0.3
        stopped = _get(energy)
        assert start <= stopped < target - 1.0
        # Past the time the old move would have ended: nothing went back to the target.
        time.sleep(max(put_at + old_end_s + 0.5 - time.monotonic(), 0.0))
        assert _get(energy) == pytest.approx(stopped, abs=1e-9)
        assert _get(_bl(sim_config, "ENERGY:RBV")) == pytest.approx(stopped, abs=1e-3)
        assert _get(_bl(sim_config, "ENERGY:DMOV")) == 1


def test_a_polarisation_change_takes_its_seconds_while_busy(sim_config, sim_fleet):
    change_s = sim_config.sim.beamline.polarization_change_s
    polarization = _bl(sim_config, "EPU:POLARIZATION")
    with _kept(sim_config):
        epics.caput(polarization, "Circular right")  # no wait: watch it
        started = time.monotonic()
        wait_for(lambda: _get(_bl(sim_config, "EPU:BUSY")) == 1, 1, "BUSY = 1")
        assert _get(polarization + ":RBV", as_string=True) == "Circular left"
        wait_for(lambda: _get(_bl(sim_config, "EPU:BUSY")) == 0, change_s + 2, "BUSY = 0")
        assert time.monotonic() - started == pytest.approx(change_s, abs=0.3)
        assert _get(polarization + ":RBV", as_string=True) == "Circular right"


# -- what the APD counts -----------------------------------------------------------------------
def test_in_focus_the_counts_follow_the_model(devices, sim_config, sim_fleet):
    counts = _counts_at(devices, sim_config, MEMBRANE_UM, 50, 0.001)
    _assert_counts_match(
        counts, float(_truth_Hz(sim_config, *_point(sim_config, MEMBRANE_UM))), 0.001
    )


def test_defocus_blurs_a_sharp_edge_as_the_model_says(devices, sim_config, sim_fleet):
    zpz = _pv(sim_config, "zp_z")
    offsets = np.linspace(-1.2, 1.2, 13)
    with _kept(sim_config, "zp_z"):
        _move(zpz, _get(zpz + ".DRBV") - 15.0)  # 15 um further from the sample
        points = [(SQUARE_EDGE_UM[0] + dx, SQUARE_EDGE_UM[1]) for dx in offsets]
        measured = [_counts_at(devices, sim_config, p, 5, 0.002).mean() for p in points]
        truth = [0.002 * float(_truth_Hz(sim_config, *_point(sim_config, p))) for p in points]
    measured, truth = np.array(measured), np.array(truth)
    # Every point within 5 standard errors (5 counts of 2 ms each) and 1 %.
    assert (np.abs(measured - truth) < 5 * np.sqrt(truth / 5) + 0.01 * truth).all()
    # Blurred: the edge spreads over several of these 0.2 um steps (in focus it is one).
    falling = (truth[:-1] - truth[1:]) / (truth[0] - truth[-1])
    assert (falling > 0.05).sum() >= 4


def test_osa_off_axis_clips_the_first_order_and_leaks_a_background(devices, sim_config, sim_fleet):
    osax = _pv(sim_config, "osa_x")
    centre = sim_config.sim.optics.osa_center_x_um
    with _kept(sim_config, "osa_x"):
        on_axis = _counts_at(devices, sim_config, MEMBRANE_UM, 20, 0.001).mean()
        _move(osax, centre + 30.0)
        clipped = _counts_at(devices, sim_config, MEMBRANE_UM, 20, 0.001)
        where = _point(sim_config, MEMBRANE_UM)
        _assert_counts_match(clipped, float(_truth_Hz(sim_config, *where)), 0.001)
        assert clipped.mean() < 0.6 * on_axis
        # The focus on the frame is dark; the zero order through the hole (35 um to the
        # left of the axis) falls on the membrane: a background of zero-order light.
        _move(osax, centre - 35.0)
        frame = (35.0, 0.0)
        leak = _counts_at(devices, sim_config, frame, 10, 0.002)
        _assert_counts_match(leak, float(_truth_Hz(sim_config, *_point(sim_config, frame))), 0.002)
    dark_frame = _counts_at(devices, sim_config, frame, 10, 0.002)
    assert leak.mean() > 10 * dark_frame.mean() + 10


def test_osa_out_of_the_beam_passes_both_orders(devices, sim_config, sim_fleet):
    osax = _pv(sim_config, "osa_x")
    with _kept(sim_config, "osa_x"):
        _move(osax, sim_config.sim.optics.osa_center_x_um + 2000.0)
        counts = _counts_at(devices, sim_config, MEMBRANE_UM, 20, 0.001)
        truth = float(_truth_Hz(sim_config, *_point(sim_config, MEMBRANE_UM)))
        _assert_counts_match(counts, truth, 0.001)
        current_mA = _get(sim_config.epics.prefixes.ring + "CURRENT")
    # The same optics with the OSA in: the zero order that the OSA out lets by adds light.
    readings = {axis: _get(_pv(sim_config, axis) + ".DRBV") for axis in OPTICS_AXES}
    optics = truth_model(sim_config).optics_positions(
        _get(_bl(sim_config, "ENERGY:RBV")), readings
    )
    gap_mm = _get(_bl(sim_config, "EPU:GAP.DRBV"))
    point = _point(sim_config, MEMBRANE_UM)
    in_focus = float(
        expected_rate_at(sim_config, *point, current_mA, optics=optics, gap_mm=gap_mm)
    )
    assert truth > in_focus


def test_detector_off_the_beam_counts_only_dark_counts(devices, sim_config, sim_fleet):
    detx = _pv(sim_config, "detector_x")
    with _kept(sim_config, "detector_x"):
        _move(detx, sim_config.sim.optics.detector_center_x_um + 3000.0)
        counts = _counts_at(devices, sim_config, MEMBRANE_UM, 5, 0.1)
        dark = sim_config.sim.apd.dark_count_rate_Hz
        assert float(_truth_Hz(sim_config, *_point(sim_config, MEMBRANE_UM))) == pytest.approx(
            dark
        )
        _assert_counts_match(counts, dark, 0.1)


def test_a_detuned_undulator_gives_less_flux(devices, sim_config, sim_fleet):
    gap = _bl(sim_config, "EPU:GAP")
    with _kept(sim_config):
        tuned = _counts_at(devices, sim_config, MEMBRANE_UM, 20, 0.001).mean()
        _move(gap, _get(gap + ".DRBV") + 0.1)
        detuned = _counts_at(devices, sim_config, MEMBRANE_UM, 20, 0.001)
        truth = float(_truth_Hz(sim_config, *_point(sim_config, MEMBRANE_UM)))
        _assert_counts_match(detuned, truth, 0.001)
    assert detuned.mean() < 0.8 * tuned


# -- faults --------------------------------------------------------------------------------------
def test_killed_optics_ioc_restarts_with_its_stages_where_they_were(
    sim_config, sim_fleet, reliability
):
    osax, zpz = _pv(sim_config, "osa_x"), _pv(sim_config, "zp_z")
    with _kept(sim_config, "osa_x"):
        _move(osax, sim_config.sim.optics.osa_center_x_um + 12.5)
        zp_before = _get(zpz + ".DRBV")
        limit_before = _get(zpz + ".DHLM")
        killed = time.monotonic()
        sim_fleet.kill("optics")
        sim_fleet.restart("optics")
        wait_for(lambda: _get(osax + ".DRBV") is not None, 30, "the optics IOC back")
        restarted_s = time.monotonic() - killed
        assert _get(osax + ".DRBV") == pytest.approx(sim_config.sim.optics.osa_center_x_um + 12.5)
        assert _get(zpz + ".DRBV") == zp_before
        assert _get(zpz + ".DHLM") == pytest.approx(limit_before)  # the interlock again
    reliability(
        fault="optics IOC killed (SIGKILL), then restarted",
        seen="its PVs disconnect and come back",
        ended_s=restarted_s,
        kept="the zone plate and OSA where they were (world block), the interlocked limits",
    )
