"""SampleStage: one X and one Y over coarse stage + piezo, read by the interferometer."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import epics
import numpy as np
import pytest
from conftest import expected_counts, poisson_limited_correlation, wait_for

from plans import PlanArgumentError, RasterRegion, sample_image
from sim_iocs.world import CLOCK, World
from stxm_ctrl.data.writers import read_spool_file, spool_event_counts
from stxm_ctrl.physics.fly_line import interferometer_drift_um

pytestmark = pytest.mark.slow


def _record(session):
    documents: list[tuple[str, dict]] = []
    token = session.RE.subscribe(lambda name, doc: documents.append((name, doc)))
    return documents, token


def _step_image(session, x_range_um, nx, y_range_um, ny, **kw):
    d = session.devices
    sample = session.config.sim.sample
    documents, token = _record(session)
    try:
        uid = session.run(
            sample_image(
                d.apd,
                RasterRegion(
                    d.stage.x,
                    sample.center_x_um + kw.pop("x_offset_um", 0.0),
                    x_range_um,
                    nx,
                    d.stage.y,
                    sample.center_y_um,
                    y_range_um,
                    ny,
                    snake=True,
                ),
                0.001,
                mode="step",
                monitors=[d.ring.current],
                **kw,
            )
        )
    finally:
        session.RE.unsubscribe(token)
    return uid, documents


def _primary_events(documents) -> list[dict]:
    primary = next(d for n, d in documents if n == "descriptor" and d["name"] == "primary")
    return [d for n, d in documents if n == "event" and d["descriptor"] == primary["uid"]]


def _column(documents, key: str) -> np.ndarray:
    return np.array([event["data"][key] for event in _primary_events(documents)])


def _configuration(documents) -> dict:
    primary = next(d for n, d in documents if n == "descriptor" and d["name"] == "primary")
    return {k: v for c in primary["configuration"].values() for k, v in c["data"].items()}


def _ring_current(session, uid) -> float:
    current = session.catalog[uid]["ring_current_monitor"].read()["ring_current"]
    return float(np.asarray(current).mean())


def _matches_truth(session, uid) -> None:
    image = session.image(uid)
    assert image.complete
    expected = expected_counts(session.config, image, _ring_current(session, uid))
    assert np.std(image.counts) > 0 and np.std(expected) > 0, (
        image.counts.mean(),
        image.counts.std(),
        expected.mean(),
        expected.std(),
    )
    corr = float(np.corrcoef(image.counts.ravel(), expected.ravel())[0, 1])
    limit = poisson_limited_correlation(expected)
    assert limit > 0.9  # the region has contrast: the comparison means something
    assert corr > limit - 0.02, (corr, limit)


def test_a_scan_within_the_piezo_steps_the_piezo_at_interferometer_positions(session):
    d = session.devices
    uid, documents = _step_image(session, 3.9, 40, 3.9, 30, x_offset_um=2.0)
    assert documents[-1][1]["exit_status"] == "success"
    configuration = _configuration(documents)
    assert configuration["stage_x_motion"] == "fine"
    assert configuration["stage_y_motion"] == "fine"
    # The coarse stage brought the image's centre to the piezo's centre, then stood still;
    # the piezo stepped every pixel.
    coarse_x, fine_x = _column(documents, "stage_x_coarse"), _column(documents, "stage_x_fine")
    assert np.ptp(coarse_x) == 0.0
    assert coarse_x[0] == pytest.approx(session.config.sim.sample.center_x_um + 2.0, abs=0.05)
    assert np.ptp(fine_x) == pytest.approx(3.9, abs=0.05)
    assert abs(fine_x.mean()) < 0.05  # centred on the piezo
    # Positions are the interferometer's, each pixel where it was asked to be within the
    # noise of two readings (the one the move corrected by, the one recorded: 3 nm each).
    image = session.image(uid)
    assert documents[0][1]["x_field"] == "stage_x"
    for error in (
        image.x_readback_um - image.x_um[None, :],
        image.y_readback_um - image.y_um[:, None],
    ):
        assert float(np.abs(error).max()) < 0.025
        assert float(np.std(error)) < 0.007
    _matches_truth(session, uid)
    assert d.stage.x.motion.get() == "fine"


def test_the_interferometer_sees_the_drift_the_stage_readbacks_do_not(session):
    uid, documents = _step_image(session, 1.0, 20, 1.0, 10)
    x = _column(documents, "stage_x")
    stages_x = _column(documents, "stage_x_coarse") + _column(documents, "stage_x_fine")
    times = np.array([event["time"] for event in _primary_events(documents)])
    world = World(session.config.sim_dir / "world")
    assert world.path_of(CLOCK).exists()
    hours = (times - time.time() + time.monotonic() - world.epoch_s) / 3600.0
    drift_x, _ = interferometer_drift_um(hours, session.config.sim.interferometer)
    # interferometer - (coarse + piezo readbacks) is the thermal drift, within the noise
    # (3 nm per reading, 200 readings) and the readbacks' rounding to 0.1 nm.
    difference = x - stages_x
    assert float(np.mean(difference - drift_x)) == pytest.approx(0.0, abs=0.002)
    assert float(np.std(difference)) == pytest.approx(0.003, abs=0.0015)
    _matches_truth(session, uid)


def test_a_scan_wider_than_the_piezo_steps_the_coarse_stage_with_the_piezo_centred(session):
    uid, documents = _step_image(session, 150.0, 11, 3.0, 3)
    assert documents[-1][1]["exit_status"] == "success"
    configuration = _configuration(documents)
    assert configuration["stage_x_motion"] == "coarse"
    assert configuration["stage_y_motion"] == "fine"  # y fits the piezo: it steps y
    fine_x = _column(documents, "stage_x_fine")
    assert np.ptp(fine_x) == 0.0 and abs(fine_x[0]) < 1e-3
    assert np.ptp(_column(documents, "stage_x_coarse")) == pytest.approx(150.0, abs=0.1)
    image = session.image(uid)
    np.testing.assert_allclose(
        image.x_readback_um, np.broadcast_to(image.x_um, (3, 11)), atol=0.025
    )
    _matches_truth(session, uid)


def test_a_scan_beyond_the_coarse_travel_is_refused_before_anything_moves(session):
    d = session.devices
    before = (d.stage.x.coarse.position, d.stage.x.fine.position)
    with pytest.raises(PlanArgumentError) as refused:
        session.run(
            sample_image(
                d.apd,
                RasterRegion(d.stage.x, 1990.0, 40.0, 10, d.stage.y, 0.0, 1.0, 2),
                0.001,
                mode="step",
            )
        )
    message = str(refused.value)
    assert "stage_x" in message and "2000" in message
    assert (d.stage.x.coarse.position, d.stage.x.fine.position) == before


def test_a_read_of_the_interferometer_is_the_position_now(session, sim_config):
    """Stock clients: a CA get (caproto-get here) follows a piezo move at once, while the
    10 Hz monitor may still trail it."""
    d = session.devices
    fx = d.stage.x.fine.prefix
    ifx = sim_config.epics.prefixes.fly + "IFX"
    assert epics.caput(fx + ".VAL", 0.0, wait=True, timeout=10) == 1
    before = float(epics.caget(ifx, use_monitor=False))
    assert epics.caput(fx + ".VAL", 7.25, wait=True, timeout=10) == 1
    tool = Path(sys.executable).parent / "caproto-get"
    done = subprocess.run(
        [str(tool), "--format", "{response.data[0]}", ifx],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.strip()) - before == pytest.approx(7.25, abs=0.02)
    assert epics.caput(fx + ".VAL", 0.0, wait=True, timeout=10) == 1


def test_the_piezo_ioc_killed_mid_step_scan_ends_the_run_and_keeps_its_points(
    session, sim_fleet, reliability
):
    """The fly IOC serves the piezo and the interferometer: killed during a step scan on
    the piezo, the run ends with the reason within the move's bound; every point is kept."""
    primary: set[str] = set()
    killed_at: list[float] = []

    def kill_after_some_points(name, doc):
        if name == "descriptor" and doc["name"] == "primary":
            primary.add(doc["uid"])
        if name == "event" and doc["descriptor"] in primary and doc["seq_num"] == 50:
            killed_at.append(time.monotonic())
            sim_fleet.kill("fly")

    killer = session.RE.subscribe(kill_after_some_points)
    try:
        with pytest.raises(Exception) as info:
            _step_image(session, 2.0, 20, 2.0, 20)
        assert killed_at, f"the scan ended before the kill: {info.value!r}"
        ended_s = time.monotonic() - killed_at[0]
    finally:
        session.RE.unsubscribe(killer)
        sim_fleet.restart("fly")
        # The next tests need the piezo and the interferometer back.
        d = session.devices
        wait_for(lambda: d.stage.connected and d.fly.connected, 30, "the fly IOC's PVs")
    message = str(info.value)
    assert "is its IOC" in message and "running?" in message, message
    documents = _newest_spooled_run(session)
    stop = documents[-1]
    assert stop[0] == "stop" and stop[1]["exit_status"] == "fail", stop
    assert stop[1]["reason"], stop
    kept = spool_event_counts(documents)["primary"]
    assert kept >= 50
    assert session.catalog_writer.flush(60)
    run = session.catalog[documents[0][1]["uid"]]
    assert run["primary"]["stage_x"].read().shape[0] == kept
    assert ended_s < 15, ended_s
    reliability(
        fault="piezo and interferometer IOC (fly) killed (SIGKILL) during a step scan on the "
        "sample stage's piezo",
        seen=message,
        ended_s=ended_s,
        kept="every point measured before, in the spool and the catalog; run closed with "
        "exit_status fail and the reason",
    )


def _newest_spooled_run(session) -> list:
    files = sorted(session.spool.spool_dir.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    return list(read_spool_file(files[-1]))
