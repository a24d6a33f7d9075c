"""Every simulated scaler record counts as the EPICS scaler record does, for stock clients.

Runs for every scaler record any IOC of the registry serves: ophyd's stock ``ScalerCH``
counts with it; a client holding monitors sees the new counts when its put completes; bad
presets are refused where the client sees it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import epics
import numpy as np
import pytest
from conformance_records import (  # noqa: F401 (pytest_generate_tests is a pytest hook)
    ServedRecord,
    pytest_generate_tests,
    wait_for,
)
from ophyd.scaler import ScalerCH


@pytest.fixture
def preset_time(scaler_record: ServedRecord, sim_fleet):
    """Set ``.TP`` (s) for a test; restore it and the count mode afterwards."""
    tp = scaler_record.name + ".TP"
    before = epics.caget(tp, use_monitor=False)

    def set_to(seconds: float) -> None:
        epics.caput(tp, seconds, wait=True)

    yield set_to
    epics.caput(scaler_record.name + ".CONT", "OneShot", wait=True)
    epics.caput(tp, before, wait=True)


def test_ophyd_scaler_ch_counts_for_the_preset_time(scaler_record: ServedRecord, preset_time):
    # Not destroyed afterwards: ophyd shares pyepics' PV objects with every other client.
    scaler = ScalerCH(scaler_record.name, name="scaler")
    scaler.wait_for_connection(10)
    scaler.select_channels()  # the named channels
    preset_time(0.02)
    started = time.monotonic()
    scaler.trigger().wait(timeout=5)
    assert time.monotonic() - started >= 0.02
    reading = scaler.read()
    freq = scaler.freq.get()
    clock_name = scaler.channels.chan01.chname.get()
    assert reading[clock_name]["value"] == round(0.02 * freq)  # channel 1: the time base
    assert reading["scaler_time"]["value"] == pytest.approx(0.02)
    done = scaler.count.get(use_monitor=False)
    assert done == 0  # CNT back to Done


def test_counts_are_posted_before_the_count_completes(scaler_record: ServedRecord, preset_time):
    """A client holding monitors reads the new counts when its put completes."""
    preset_time(0.001)
    channels = [
        n for n in range(2, 33) if epics.caget(f"{scaler_record.name}.NM{n}", as_string=True)
    ]
    assert channels, "no named input channel"
    counts = epics.get_pv(f"{scaler_record.name}.S{channels[0]}", auto_monitor=True)
    elapsed = epics.get_pv(scaler_record.name + ".T", auto_monitor=True)
    count = epics.get_pv(scaler_record.name + ".CNT")
    assert counts.wait_for_connection(5) and count.wait_for_connection(5)
    assert elapsed.wait_for_connection(5)
    monitored, fresh = [], []
    for _ in range(100):
        count.put(1, wait=True, timeout=5)
        monitored.append(counts.get())  # the monitored value, right after completion
        fresh.append(counts.get(use_monitor=False))
    assert monitored == fresh
    assert len(set(fresh)) > 10  # each count differs: a stale read could not hide
    assert elapsed.get() == pytest.approx(0.001)


def test_preset_time_outside_the_limits_is_refused(scaler_record: ServedRecord, preset_time):
    preset_time(0.001)
    tp = epics.get_pv(scaler_record.name + ".TP")
    ctrl = tp.get_ctrlvars()
    low, high = ctrl["lower_ctrl_limit"], ctrl["upper_ctrl_limit"]
    assert 0 < low < high
    tool = os.path.join(os.path.dirname(sys.executable), "caproto-put")
    done = subprocess.run(
        [tool, "-c", scaler_record.name + ".TP", str(high * 5)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    out = done.stdout + done.stderr
    assert "ECA_PUTFAIL" in out
    assert f"{low}..{high} s" in out  # says the allowed range
    assert epics.caget(scaler_record.name + ".TP", use_monitor=False) == pytest.approx(0.001)
    # A put without completion cannot fail: the record says so, in alarm and in MESSAGE.
    name = scaler_record.name
    assert epics.caput(name + ".TP", high * 5) == 1
    wait_for(
        lambda: epics.caget(name + ".SEVR", as_string=True, use_monitor=False) == "MINOR",
        2,
        "the scaler in alarm after a refused TP",
    )
    assert epics.caget(name + ".STAT", as_string=True, use_monitor=False) == "WRITE"
    assert epics.caget(name + ".TP", use_monitor=False) == pytest.approx(0.001)
    message = epics.caget(name + ":MESSAGE", as_string=True, use_monitor=False)
    assert f"{name}.TP" in message and f"{low}..{high} s" in message, message
    preset_time(0.002)  # a good TP clears the alarm
    assert epics.caget(name + ".SEVR", as_string=True, use_monitor=False) == "NO_ALARM"


def test_cnt_0_stops_a_count_early(scaler_record: ServedRecord, preset_time):
    preset_time(5.0)
    name = scaler_record.name
    epics.caput(name + ".CNT", 1)
    wait_for(lambda: epics.caget(name + ".CNT", use_monitor=False) == 1, 2, "counting")
    time.sleep(0.2)
    started = time.monotonic()
    epics.caput(name + ".CNT", 0, wait=True, timeout=5)
    assert time.monotonic() - started < 1.0
    assert epics.caget(name + ".CNT", use_monitor=False) == 0
    assert 0.1 < epics.caget(name + ".T", use_monitor=False) < 2.0


def test_a_count_preset_on_an_input_ends_the_count(scaler_record: ServedRecord, preset_time):
    name = scaler_record.name
    channel = next(n for n in range(2, 33) if epics.caget(f"{name}.NM{n}", as_string=True))
    preset_time(2.0)
    epics.caput(f"{name}.PR{channel}", 200, wait=True)
    epics.caput(f"{name}.G{channel}", "Y", wait=True)
    try:
        epics.caput(name + ".CNT", 1, wait=True, timeout=5)
        assert epics.caget(f"{name}.S{channel}", use_monitor=False) == 200
        assert epics.caget(name + ".T", use_monitor=False) < 2.0
    finally:
        epics.caput(f"{name}.G{channel}", "N", wait=True)
        epics.caput(f"{name}.PR{channel}", 0, wait=True)


def test_autocount_counts_while_idle(scaler_record: ServedRecord, preset_time):
    name = scaler_record.name
    preset_time(0.001)
    epics.caput(name + ".TP1", 0.05, wait=True)
    channel = next(n for n in range(2, 33) if epics.caget(f"{name}.NM{n}", as_string=True))
    counts = epics.get_pv(f"{name}.S{channel}", auto_monitor=True)
    assert counts.wait_for_connection(5)
    seen: list[int] = []
    index = counts.add_callback(lambda value, **_: seen.append(value))
    try:
        epics.caput(name + ".CONT", "AutoCount", wait=True)
        wait_for(lambda: len(seen) >= 4, 5, "auto counts")
        # A one-shot count takes over; its preset time is what T reports.
        epics.caput(name + ".CNT", 1, wait=True, timeout=5)
        assert epics.caget(name + ".T", use_monitor=False) == pytest.approx(0.001)
    finally:
        counts.remove_callback(index)
        epics.caput(name + ".CONT", "OneShot", wait=True)
    assert np.std(seen) > 0


def test_a_preset_arms_its_gate_and_a_gate_gets_a_preset(scaler_record: ServedRecord, sim_fleet):
    """As the scaler record's special(): PRn > 0 sets Gn = Y; Gn = Y with PRn = 0 sets
    PRn = 1000."""
    name = scaler_record.name
    channel = next(n for n in range(2, 33) if epics.caget(f"{name}.NM{n}", as_string=True))
    gate, preset = f"{name}.G{channel}", f"{name}.PR{channel}"
    try:
        epics.caput(preset, 200, wait=True)
        assert epics.caget(gate, as_string=True, use_monitor=False) == "Y"
        epics.caput(gate, "N", wait=True)
        epics.caput(preset, 0, wait=True)
        epics.caput(gate, "Y", wait=True)
        assert epics.caget(preset, use_monitor=False) == 1000
    finally:
        epics.caput(gate, "N", wait=True)
        epics.caput(preset, 0, wait=True)


def test_val_holds_the_counting_time_after_a_count(scaler_record: ServedRecord, preset_time):
    preset_time(0.02)
    name = scaler_record.name
    epics.caput(name + ".CNT", 1, wait=True, timeout=5)
    elapsed = epics.caget(name + ".T", use_monitor=False)
    assert elapsed == pytest.approx(0.02)
    assert epics.caget(name, use_monitor=False) == elapsed


def test_version_and_output_link_fields_exist(scaler_record: ServedRecord, sim_fleet):
    name = scaler_record.name
    assert epics.caget(name + ".VERS", use_monitor=False, timeout=5) == pytest.approx(3.19)
    for link in ("COUT", "COUTP"):
        assert epics.caget(f"{name}.{link}", as_string=True, use_monitor=False, timeout=5) == ""
