"""sample_image on the simulated beamline: documents, catalog, image, validation."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from plans import PlanArgumentError, RasterRegion, sample_image
from stxm_ctrl.data.catalog import api_key_for, catalog_uri


def _image_plan(session, **overrides):
    devices = session.devices
    sample = session.config.sim.sample
    args = {
        "x_center_um": sample.center_x_um,
        "x_range_um": 22.0,
        "x_points": 36,
        "y_center_um": sample.center_y_um,
        "y_range_um": 22.0,
        "y_points": 30,
        "dwell_s": 0.001,
        "snake": True,
    }
    args.update(overrides)
    return sample_image(
        devices.apd,
        RasterRegion(
            devices.sample_x,
            args["x_center_um"],
            args["x_range_um"],
            args["x_points"],
            devices.sample_y,
            args["y_center_um"],
            args["y_range_um"],
            args["y_points"],
            snake=args["snake"],
        ),
        args["dwell_s"],
        monitors=[devices.ring.current],
    )


def test_image_in_the_catalog_matches_the_sample(session, image_matches_ground_truth):
    documents = []
    token = session.RE.subscribe(lambda name, doc: documents.append((name, doc)))
    try:
        uid = session.run(_image_plan(session))
    finally:
        session.RE.unsubscribe(token)

    start = documents[0][1]
    assert start["stxm_scan_type"] == "sample image"
    assert start["plan_name"] == "sample_image"
    assert start["shape"] == [30, 36]
    assert start["dwell_s"] == 0.001
    assert start["energy_eV"] == pytest.approx(session.config.sim.beam.energy_eV, abs=0.01)
    assert documents[-1][1]["exit_status"] == "success"
    assert documents[-1][1]["num_events"]["primary"] == 30 * 36

    image = session.image(uid)
    assert image.shape == (30, 36)
    np.testing.assert_allclose(image.x_um[[0, -1]], [-11.0, 11.0])
    np.testing.assert_allclose(image.y_um[[0, -1]], [-11.0, 11.0])
    # Snake undone: every row's readbacks increase along x.
    assert (np.diff(image.x_readback_um, axis=1) > 0).all()
    np.testing.assert_allclose(
        image.x_readback_um, np.broadcast_to(image.x_um, (30, 36)), atol=1e-3
    )
    # The ring current is monitored during the run, in its own stream.
    current = np.asarray(session.catalog[uid]["ring_current_monitor"].read()["ring_current"])
    assert current.size >= 1
    current = current.mean()
    image_matches_ground_truth(image, current)

    # Analysis scripts written against databroker's v1 API read the same run (this is what
    # the databroker dependency is for; see docs/decisions/0006). In a process of its own,
    # as such a script runs: databroker's v1 reader leaves state behind in the process
    # that later imports into the same catalog trip over.
    script = (
        "import sys, json; from tiled.client import from_uri; from databroker.v1 import Broker\n"
        "table = Broker(from_uri(sys.argv[1], api_key=sys.argv[2]))[sys.argv[3]].table()\n"
        "print(json.dumps(sorted(int(c) for c in table['apd_counts'])))"
    )
    key = api_key_for(session.config)
    result = subprocess.run(
        [sys.executable, "-c", script, catalog_uri(session.config), str(key), uid],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts == sorted(int(c) for c in image.counts.ravel())


def test_bad_arguments_are_refused_before_anything_moves(session):
    x_before = session.devices.sample_x.position
    runs_before = len(session.catalog)
    with pytest.raises(
        PlanArgumentError, match=r"x_range_um = 40.*leaves the limits.*-2000 to 2000"
    ):
        session.RE(_image_plan(session, x_center_um=1990.0, x_range_um=40.0))
    with pytest.raises(PlanArgumentError, match=r"dwell_s = 0 s is out of range; allowed 0.0001"):
        session.RE(_image_plan(session, dwell_s=0))
    with pytest.raises(PlanArgumentError, match=r"y_points = 0 is out of range; allowed 1 to"):
        session.RE(_image_plan(session, y_points=0))
    assert session.devices.sample_x.position == x_before
    assert len(session.catalog) == runs_before
