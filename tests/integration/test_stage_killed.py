"""A sample-stage IOC killed during a move: the run ends within the move's timeout, with the
reason, and every point measured before is kept (it used to hang for ever)."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import wait_for

from plans import RasterRegion, sample_image
from stxm_ctrl.data.writers import read_spool_file, spool_event_counts, spool_file_for


def test_a_stage_ioc_killed_mid_move_ends_the_run_within_its_timeout(
    session, sim_fleet, reliability
):
    d = session.devices
    d.sample_x.move(0.0, wait=True)
    d.sample_y.move(0.0, wait=True)
    # Three pixels 1500 um apart: each move takes ~0.76 s at 2000 um/s.
    plan = sample_image(d.apd, RasterRegion(d.sample_x, 0, 3000, 3, d.sample_y, 0, 0, 1), 0.001)
    killed_at: list[float] = []
    primary: set[str] = set()  # descriptor uids of the primary stream (not the baseline)

    def kill_during_the_second_move(name, doc):
        if name == "descriptor" and doc["name"] == "primary":
            primary.add(doc["uid"])
        if name == "event" and doc["descriptor"] in primary and not killed_at:
            killed_at.append(time.monotonic())
            threading.Timer(0.2, sim_fleet.kill, args=("sample_stage",)).start()

    documents: list[tuple[str, dict]] = []
    tokens = [
        session.RE.subscribe(kill_during_the_second_move),
        session.RE.subscribe(lambda name, doc: documents.append((name, doc))),
    ]
    try:
        with pytest.raises(Exception) as info:
            session.run(plan)
        assert killed_at, f"the scan ended before the kill: {info.value!r}"
        ended_after_s = time.monotonic() - killed_at[0]
    finally:
        for token in tokens:
            session.RE.unsubscribe(token)
        sim_fleet.restart("sample_stage")
    # The move's allowed time: 2 x its expected 0.76 s + 2 s margin.
    allowed_s = 2 * 0.76 + 2.0
    assert ended_after_s < allowed_s + 2.0, ended_after_s
    message = str(info.value)
    assert "sample_x did not reach 0 um within 3.5 s" in message, message
    assert "is its IOC running?" in message

    start, stop = documents[0][1], documents[-1][1]
    assert documents[-1][0] == "stop"
    assert stop["exit_status"] == "fail"
    assert "sample_x did not reach 0 um within 3.5 s" in stop["reason"], stop["reason"]
    # The pixel measured before the kill is kept, in the spool and the catalog.
    spooled = list(read_spool_file(spool_file_for(session.spool.spool_dir, start["uid"])))
    assert spool_event_counts(spooled)["primary"] == 1
    assert session.catalog_writer.flush(60)
    assert len(session.catalog[start["uid"]]["primary"].read()["apd_counts"]) == 1
    reliability(
        fault="sample-stage IOC killed (SIGKILL) during a move of a scan",
        seen=message,
        ended_s=ended_after_s,
        kept="every pixel measured before, in the spool and the catalog; run closed with "
        "exit_status fail and this reason",
    )
    # The restarted IOC serves again and the stage is usable.
    wait_for(lambda: d.sample_x.connected, 30, "sample_x did not reconnect")
    d.sample_x.move(0.0, wait=True)
