"""The fly IOC (piezo, interferometer, line fly scans) driven by stock clients on raw PVs.

pyepics (caget/caput, PVs with monitors) and the caproto command-line tools, not project
devices: frames publish consistent lines (SEQ last), pixels at the requested interferometer
positions, counts as the instrument model says, FRAME_TIME as long as the frame takes; arms
that cannot run are refused with the reason; aborts, missed triggers and stalls publish the
lines they say.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import epics
import numpy as np
import pytest
from conftest import expected_rate_at, lasting_pv, wait_for

from stxm_ctrl.physics.fly_line import interferometer_drift_um, unpack_line

LINE = ("DATA", "INDEX", "STATUS", "NPIX", "COUNTS", "X", "Y", "DWELL", "SEQ")


def _p(sim_config, name: str) -> str:
    return sim_config.epics.prefixes.fly + name


def _get(name: str, **kwargs):
    return epics.caget(name, use_monitor=False, timeout=5, **kwargs)


def _ca(*argv: str) -> str:
    tool = os.path.join(os.path.dirname(sys.executable), argv[0])
    done = subprocess.run(
        [tool, *argv[1:]], capture_output=True, text=True, timeout=60, env=dict(os.environ)
    )
    return done.stdout + done.stderr


class Lines:
    """Monitors on every LINE PV; a line is taken when SEQ changes."""

    def __init__(self, sim_config) -> None:
        self.lock = threading.Lock()
        self.latest: dict[str, object] = {}
        self.lines: list[dict[str, object]] = []
        self.pvs = []
        self.seq0 = int(_get(_p(sim_config, "LINE:SEQ")))  # lines after this one are new
        for name in LINE:
            pv = lasting_pv(_p(sim_config, "LINE:" + name), auto_monitor=True, callback=self._cb)
            self.pvs.append(pv)
        for pv in self.pvs:
            assert pv.wait_for_connection(10)
        wait_for(lambda: len(self.latest) == len(LINE), 10, "every LINE PV's first value")

    def _cb(self, pvname: str, value, **kwargs) -> None:
        name = pvname.rsplit(":", 1)[1]
        with self.lock:
            self.latest[name] = np.array(value, copy=True) if np.ndim(value) else value
            if name == "SEQ" and value > self.seq0:  # not a subscription's first value
                self.lines.append(dict(self.latest))

    def close(self) -> None:
        # Callbacks off; the PVs live on (see conftest.lasting_pv).
        for pv in self.pvs:
            pv.clear_callbacks()


@pytest.fixture
def fly(sim_config, sim_fleet):
    """Coarse stage on the membrane, piezo at 0, no faults; all put back afterwards."""
    smp = sim_config.epics.prefixes.sample_stage
    coarse = {axis: _get(smp + axis + ".VAL") for axis in ("X", "Y")}
    for axis, pos in (("X", 0.0), ("Y", -10.0)):
        assert epics.caput(smp + axis + ".VAL", pos, wait=True, timeout=30) == 1
    for axis in ("FX", "FY"):
        assert epics.caput(_p(sim_config, axis + ".VAL"), 0.0, wait=True, timeout=30) == 1
    lines = Lines(sim_config)
    yield lines
    lines.close()
    epics.caput(_p(sim_config, "ARM"), 0, wait=True, timeout=30)
    control = sim_config.sim.control_prefix + "FLY:"
    epics.caput(control + "MISS_TRIGGERS", 0, wait=True)
    epics.caput(control + "STALL", 0, wait=True)
    for axis in ("FX", "FY"):  # the APD counts where the piezo is
        assert epics.caput(_p(sim_config, axis + ".VAL"), 0.0, wait=True, timeout=30) == 1
    for axis, pos in coarse.items():
        assert epics.caput(smp + axis + ".VAL", pos, wait=True, timeout=30) == 1


def _settings(sim_config, **values) -> None:
    for name, value in values.items():
        assert epics.caput(_p(sim_config, name.upper()), value, wait=True, timeout=5) == 1


def _frame(sim_config, timeout: float = 60.0) -> float:
    """Run a frame (put with completion); its duration as the client sees it."""
    _get(_p(sim_config, "ARM"))  # connected before the clock starts
    t0 = time.monotonic()
    assert epics.caput(_p(sim_config, "ARM"), 1, wait=True, timeout=timeout) == 1
    return time.monotonic() - t0


def _ioc_frame_s(sim_config) -> float:
    """Run a frame; its duration in the IOC's time, from BUSY's timestamps (a loaded machine
    can delay the client's view of the put completion by tens of ms)."""
    edges: list[tuple[int, float]] = []
    busy = lasting_pv(_p(sim_config, "BUSY"), form="time", auto_monitor=True)
    assert busy.wait_for_connection(5)
    wait_for(lambda: busy.get() == 0, 5, "BUSY's first value")
    busy.add_callback(lambda value, timestamp, **kw: edges.append((value, timestamp)))
    try:
        _frame(sim_config)
        wait_for(lambda: [v for v, _ in edges] == [1, 0], 5, "BUSY 1 then 0")
    finally:
        busy.clear_callbacks()
    return edges[1][1] - edges[0][1]


def _wait_lines(lines: Lines, n: int) -> list[dict]:
    wait_for(lambda: len(lines.lines) >= n, 10, f"{n} lines published")
    with lines.lock:
        return list(lines.lines)


def test_frame_publishes_consistent_lines_at_the_requested_positions(sim_config, fly):
    _settings(
        sim_config,
        start_x=-2.0,
        stop_x=2.0,
        nx=20,
        start_y=-10.5,
        stop_y=-9.5,
        ny=5,
        dwell=0.004,
        snake=0,
    )
    frame_time = _get(_p(sim_config, "FRAME_TIME"))
    assert _get(_p(sim_config, "BUSY"), as_string=True) == "Idle"
    seq0 = _get(_p(sim_config, "LINE:SEQ"))
    took = _ioc_frame_s(sim_config)
    assert _get(_p(sim_config, "ARM"), as_string=True) == "Idle"
    lines = _wait_lines(fly, 5)
    assert [line["SEQ"] for line in lines] == list(range(seq0 + 1, seq0 + 6))
    assert [line["INDEX"] for line in lines] == list(range(5))
    centres = np.linspace(-2.0, 2.0, 20)
    current = _get(sim_config.epics.prefixes.ring + "CURRENT")
    noise = 5 * sim_config.sim.interferometer.noise_nm * 1e-3 + 1e-3
    for i, line in enumerate(lines):
        assert line["STATUS"] == 0 and line["NPIX"] == 20
        counts, x, y, dwell = (np.asarray(line[k])[:20] for k in ("COUNTS", "X", "Y", "DWELL"))
        assert np.all(counts > 0)
        assert np.allclose(x, centres, atol=noise), x - centres
        assert np.allclose(y, np.linspace(-10.5, -9.5, 5)[i], atol=noise)
        # Gated by position at constant speed: every pixel counts for its dwell.
        assert np.allclose(dwell, 0.004, rtol=0.02), dwell
        # LINE:DATA (posted first) carries the same line whole, with its SEQ.
        whole = unpack_line(line["DATA"])
        assert (whole.seq, whole.index, whole.status) == (line["SEQ"], i, "Complete")
        np.testing.assert_array_equal(whole.data.counts, counts)
        np.testing.assert_array_equal(whole.data.dwell_s, dwell)
        # The interferometer reads the sample's position (the coarse stage at (0, -10) is in
        # it); the counts are the model's there, within Poisson error.
        expected = expected_rate_at(sim_config, x, y, current) * dwell
        z = (counts.sum() - expected.sum()) / np.sqrt(expected.sum())
        assert abs(z) < 5, (counts, expected)
    assert took == pytest.approx(frame_time, rel=0.05), (took, frame_time)


def test_snake_lines_are_reported_left_to_right(sim_config, fly):
    _settings(
        sim_config,
        start_x=-1.0,
        stop_x=1.0,
        nx=11,
        start_y=0.0,
        stop_y=0.2,
        ny=2,
        dwell=0.001,
        snake=1,
    )
    _frame(sim_config)
    lines = _wait_lines(fly, 2)
    for line in lines:
        x = np.asarray(line["X"])[:11]
        assert np.all(np.diff(x) > 0)  # pixel order left to right, also for the reversed line
    _settings(sim_config, snake=0)


def test_piezo_readback_follows_during_a_frame_and_moves_are_refused(sim_config, fly):
    _settings(
        sim_config,
        start_x=-20.0,
        stop_x=20.0,
        nx=100,
        start_y=0.0,
        stop_y=1.0,
        ny=5,
        dwell=0.002,
    )
    seen = []
    rbv = lasting_pv(_p(sim_config, "FX.RBV"), auto_monitor=True)
    dmov = lasting_pv(_p(sim_config, "FX.DMOV"), auto_monitor=True)
    rbv.add_callback(lambda value, **kw: seen.append(value))
    assert rbv.wait_for_connection(5) and dmov.wait_for_connection(5)
    epics.caput(_p(sim_config, "ARM"), 1, wait=False)
    wait_for(lambda: _get(_p(sim_config, "BUSY")) == 1, 5, "BUSY")
    time.sleep(0.2)
    assert dmov.get() == 0
    out = _ca("caproto-put", _p(sim_config, "FX.VAL"), "3.0")
    assert "frame is running" in out, out
    wait_for(lambda: _get(_p(sim_config, "BUSY")) == 0, 10, "the frame's end")
    assert dmov.get(use_monitor=False) == 1
    assert max(seen) > 10 and min(seen) < -10  # sweeps from -20 to 20 seen on RBV
    rbv.clear_callbacks()


def test_interferometer_reads_coarse_plus_piezo_plus_drift(sim_config, fly):
    assert epics.caput(_p(sim_config, "FX.VAL"), 7.5, wait=True, timeout=10) == 1
    assert epics.caput(_p(sim_config, "FY.VAL"), -3.25, wait=True, timeout=10) == 1
    time.sleep(0.25)
    manifest_epoch = None
    ifx, ify = _get(_p(sim_config, "IFX")), _get(_p(sim_config, "IFY"))
    out = _ca("caproto-get", _p(sim_config, "IFX"))
    assert _p(sim_config, "IFX") in out
    from sim_iocs.world import World

    manifest_epoch = World(sim_config.sim_dir / "world").epoch_s
    hours = (time.monotonic() - manifest_epoch) / 3600
    dx, dy = interferometer_drift_um(hours, sim_config.sim.interferometer)
    noise = 5 * sim_config.sim.interferometer.noise_nm * 1e-3
    assert ifx == pytest.approx(0.0 + 7.5 + float(dx), abs=noise)
    assert ify == pytest.approx(-10.0 - 3.25 + float(dy), abs=noise)


def test_arms_that_cannot_run_are_refused(sim_config, fly):
    arm = _p(sim_config, "ARM")
    _settings(sim_config, start_x=-2.0, stop_x=2.0, nx=5, ny=2, start_y=0, stop_y=1)
    _settings(sim_config, dwell=0.0001)  # 1 um / 0.1 ms = 10 mm/s
    out = _ca("caproto-put", "-c", arm, "1")
    assert "line speed" in out and "max_line_speed_um_per_s" in out and "DWELL" in out, out
    assert _get(arm, as_string=True) == "Idle"
    _settings(sim_config, dwell=0.001, nx=100, start_x=30.0, stop_x=49.9)
    out = _ca("caproto-put", "-c", arm, "1")
    assert "soft limits" in out and "fine_x" in out, out
    assert _get(arm, as_string=True) == "Idle" and _get(_p(sim_config, "BUSY")) == 0


def test_settings_beyond_their_drive_limits_are_driven_at_the_limit(sim_config, fly):
    """As an ao/longout record: clamped to DRVL..DRVH (pyepics' caput cannot see a
    refusal), and MESSAGE says so."""
    apd = sim_config.sim.apd
    try:
        out = _ca("caproto-put", _p(sim_config, "NX"), "1")
        assert _get(_p(sim_config, "NX")) == 2, out
        assert epics.caput(_p(sim_config, "DWELL"), 50.0, wait=True) == 1
        assert _get(_p(sim_config, "DWELL")) == pytest.approx(apd.max_dwell_s)
        message = _get(_p(sim_config, "MESSAGE"), as_string=True)
        assert f"DWELL 50 is outside DRVL..DRVH {apd.min_dwell_s:g}..{apd.max_dwell_s:g}" in (
            message
        ), message
    finally:
        _settings(sim_config, nx=100, dwell=0.001)


def test_abort_publishes_the_line_in_progress_as_aborted(sim_config, fly):
    _settings(
        sim_config,
        start_x=-5.0,
        stop_x=5.0,
        nx=100,
        start_y=0,
        stop_y=1,
        ny=50,
        dwell=0.002,
        snake=0,
    )
    epics.caput(_p(sim_config, "ARM"), 1, wait=False)
    time.sleep(0.5)
    assert epics.caput(_p(sim_config, "ARM"), 0, wait=True, timeout=10) == 1
    assert _get(_p(sim_config, "BUSY")) == 0
    time.sleep(0.2)
    with fly.lock:
        lines = list(fly.lines)
    assert 1 <= len(lines) < 50
    assert lines[-1]["STATUS"] == 3
    assert all(line["STATUS"] == 0 for line in lines[:-1])
    assert _get(_p(sim_config, "FX.DMOV")) == 1


def test_missed_triggers_and_stalls_are_published(sim_config, fly):
    control = sim_config.sim.control_prefix + "FLY:"
    _settings(
        sim_config,
        start_x=-5.0,
        stop_x=5.0,
        nx=100,
        start_y=0,
        stop_y=1,
        ny=4,
        dwell=0.001,
        snake=0,
    )
    assert epics.caput(control + "MISS_TRIGGERS", 1, wait=True) == 1
    assert epics.caput(control + "STALL", 1, wait=True) == 1
    took = _ioc_frame_s(sim_config)
    lines = _wait_lines(fly, 4)
    # Line 0 has both faults: the stall wins the status; later lines are clean.
    assert lines[0]["STATUS"] == 2
    assert lines[0]["NPIX"] < 100
    assert np.isnan(np.asarray(lines[0]["X"])[99])
    assert [line["STATUS"] for line in lines[1:]] == [0, 0, 0]
    assert _get(control + "MISS_TRIGGERS") == 0 and _get(control + "STALL") == 0
    assert took == pytest.approx(_get(_p(sim_config, "FRAME_TIME")), rel=0.05)
    assert epics.caput(control + "MISS_TRIGGERS", 1, wait=True) == 1
    fly.lines.clear()
    _frame(sim_config)
    lines = _wait_lines(fly, 4)
    assert lines[0]["STATUS"] == 1
    missing = np.isnan(np.asarray(lines[0]["X"])[:100])
    assert 1 <= missing.sum() == 100 - lines[0]["NPIX"]
    assert np.all(np.asarray(lines[0]["COUNTS"])[:100][missing] == 0)


def test_apd_step_counts_see_coarse_plus_piezo(sim_config, fly):
    """The APD counts where the sample is: coarse stage + piezo (+ drift, nm here)."""
    scaler = sim_config.epics.prefixes.apd + "SCALER"
    assert epics.caput(scaler + ".TP", 0.01, wait=True, timeout=5) == 1
    current = _get(sim_config.epics.prefixes.ring + "CURRENT")

    def count() -> float:
        assert epics.caput(scaler + ".CNT", 1, wait=True, timeout=10) == 1
        return float(_get(scaler + ".S2"))

    membrane = count()  # coarse (0, -10), piezo at 0: the bare membrane
    assert epics.caput(_p(sim_config, "FX.VAL"), 5.0, wait=True, timeout=10) == 1
    assert epics.caput(_p(sim_config, "FY.VAL"), 2.0, wait=True, timeout=10) == 1
    moved = count()
    for x, y, counts in ((0.0, -10.0, membrane), (5.0, -8.0, moved)):
        expected = 0.01 * float(expected_rate_at(sim_config, x, y, current))
        assert abs(counts - expected) < 5 * np.sqrt(expected) + 0.01 * expected, (x, y)
    assert abs(moved - membrane) > 10 * np.sqrt(membrane)  # the piezo moved the sample
