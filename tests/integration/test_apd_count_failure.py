"""A count the counter could not make is an INVALID alarm, and never a number in a run.

The simulated APD's ``FAIL_COUNTS`` fails its next counts as a failing counter card would:
the record keeps its old counts and goes into READ/INVALID alarm, and the put that started
the count completes all the same (Channel Access cannot say a put failed).
"""

from __future__ import annotations

import subprocess
import sys
import time

import epics
import numpy as np
import pytest
from conftest import wait_for
from ophyd import EpicsSignalRO

from devices.signals import InvalidReadingError
from plans import RasterRegion, sample_image
from stxm_ctrl.data.writers import read_spool_file, spool_event_counts, spool_file_for

pytestmark = pytest.mark.ioc


def _pvs(sim_config) -> tuple[str, str]:
    return sim_config.epics.prefixes.apd + "SCALER", sim_config.sim.control_prefix + "APD:"


def _alarm(record: str) -> tuple[str, str]:
    return (
        epics.caget(record + ".STAT", as_string=True, use_monitor=False),
        epics.caget(record + ".SEVR", as_string=True, use_monitor=False),
    )


def test_a_failed_count_is_an_invalid_alarm_to_stock_clients(sim_config, sim_fleet):
    scaler, control = _pvs(sim_config)
    dwell_s = epics.caget(scaler + ".TP", use_monitor=False)
    try:
        _fail_one_count(scaler, control)
    finally:
        epics.caput(control + "FAIL_COUNTS", 0, wait=True)
        epics.caput(scaler + ".TP", dwell_s, wait=True)


def _fail_one_count(scaler: str, control: str) -> None:
    assert epics.caput(scaler + ".TP", 0.05, wait=True) == 1
    assert epics.caput(scaler + ".CNT", 1, wait=True, timeout=10) == 1
    good = epics.caget(scaler + ".S2", use_monitor=False)
    assert good > 0 and _alarm(scaler) == ("NO_ALARM", "NO_ALARM")
    assert epics.caput(control + "FAIL_COUNTS", 1, wait=True) == 1

    started = time.monotonic()
    assert epics.caput(scaler + ".CNT", 1, wait=True, timeout=10) == 1  # completes, as EPICS does
    took_s = time.monotonic() - started
    assert took_s >= 0.045  # the failed count took its time
    s2 = epics.get_pv(scaler + ".S2")
    assert s2.wait_for_connection(5)
    failed = s2.get_with_metadata(form="time", use_monitor=False)
    assert failed is not None
    assert (failed["value"], failed["severity"], failed["status"]) == (good, 3, 1)  # READ/INVALID
    assert _alarm(scaler) == ("READ", "INVALID")
    assert epics.caget(scaler + ".CNT", as_string=True, use_monitor=False) == "Done"
    assert epics.caget(control + "FAIL_COUNTS", use_monitor=False) == 0  # taken
    # ophyd's stock signal sees the alarm too (it does not act on it: our devices do).
    stock = EpicsSignalRO(scaler + ".S2", name="s2")
    stock.wait_for_connection(5)
    assert stock.get() == good and stock.alarm_severity == 3
    # The caproto command line shows it.
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "caproto.commandline.get",
            "-d",
            "time",
            "--format",
            "{response.metadata}",
            scaler + ".S2",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert "INVALID_ALARM" in shown.stdout and "READ" in shown.stdout, shown.stdout + shown.stderr

    # The next good count clears the alarm.
    assert epics.caput(scaler + ".CNT", 1, wait=True, timeout=10) == 1
    assert _alarm(scaler) == ("NO_ALARM", "NO_ALARM")
    assert s2.get_with_metadata(form="time", use_monitor=False)["severity"] == 0
    # A nonsensical number of counts is refused (the put fails; the value stays).
    epics.caput(control + "FAIL_COUNTS", -1, wait=True, timeout=5)
    assert epics.caget(control + "FAIL_COUNTS", use_monitor=False) == 0


def test_a_failed_count_mid_image_ends_the_run_and_keeps_every_point_before(
    session, sim_config, sim_fleet, reliability
):
    d = session.devices
    # The tests after this one count with the stages and the dwell where they find them.
    kept = [
        (m, float(m.user_readback.get()))
        for m in (d.sample_x, d.sample_y, d.stage.x.fine, d.stage.y.fine)
    ]
    dwell_s = float(d.apd.dwell.get())
    try:
        _fail_a_count_mid_image(session, sim_config, reliability)
    finally:
        for motor, position in kept:
            motor.move(position, wait=True)
        d.apd.dwell.put(dwell_s, wait=True)


def _fail_a_count_mid_image(session, sim_config, reliability) -> None:
    scaler, control = _pvs(sim_config)
    d = session.devices
    sample = sim_config.sim.sample
    primary: set[str] = set()
    failed_at: list[float] = []
    documents: list[tuple[str, dict]] = []

    def fail_the_count_after_twelve_points(name, doc):
        documents.append((name, doc))
        if name == "descriptor" and doc["name"] == "primary":
            primary.add(doc["uid"])
        if name == "event" and doc["descriptor"] in primary and doc["seq_num"] == 12:
            failed_at.append(time.monotonic())
            epics.caput(control + "FAIL_COUNTS", 1, wait=True)

    token = session.RE.subscribe(fail_the_count_after_twelve_points)
    try:
        with pytest.raises(InvalidReadingError) as info:
            session.run(
                sample_image(
                    d.apd,
                    RasterRegion(
                        d.stage.x,
                        sample.center_x_um,
                        2.0,
                        6,
                        d.stage.y,
                        sample.center_y_um - 8.0,
                        2.0,
                        5,
                    ),
                    0.002,
                    mode="step",
                )
            )
        ended_s = time.monotonic() - failed_at[0]
    finally:
        session.RE.unsubscribe(token)
        epics.caput(control + "FAIL_COUNTS", 0, wait=True)
    message = str(info.value)
    assert scaler + ".S2" in message and "READ/INVALID" in message, message
    assert "measure again" in message
    stop = documents[-1][1]
    assert documents[-1][0] == "stop" and stop["exit_status"] == "fail"
    assert "INVALID" in stop["reason"], stop
    uid = documents[0][1]["uid"]
    spooled = list(read_spool_file(spool_file_for(session.spool.spool_dir, uid)))
    assert spool_event_counts(spooled)["primary"] == 12  # the failed count is not among them
    image = session.image(uid)
    counts = image.counts.ravel()
    measured = counts[~np.isnan(counts)]
    assert measured.size == 12 and (measured > 0).all()
    reliability(
        fault="APD count failed (the counter card could not be read: READ/INVALID alarm, "
        "the put completed) in the 13th point of a step image",
        seen=message,
        ended_s=ended_s,
        kept="the 12 points measured before, in the spool and the image; the failed count "
        "recorded nowhere; run closed with exit_status fail and the reason",
    )
    # The next run counts again (its first good count clears the alarm).
    uid = session.run(
        sample_image(
            d.apd,
            RasterRegion(
                d.stage.x, sample.center_x_um, 1.0, 3, d.stage.y, sample.center_y_um - 8.0, 1.0, 2
            ),
            0.002,
            mode="step",
        )
    )
    assert not np.isnan(session.image(uid).counts).any()
    wait_for(lambda: _alarm(scaler) == ("NO_ALARM", "NO_ALARM"), 5, "the alarm cleared")
