"""The queue server's startup module: loaded as bluesky-queueserver loads it, its plans and
devices pass the queue server's own checks, and a plan run with its RunEngine is spooled
and catalogued like a session's."""

from __future__ import annotations

import sys

import pytest
from bluesky_queueserver.manager.profile_ops import (
    existing_plans_and_devices_from_nspace,
    load_startup_module,
)
from conftest import config_toml

from plans import RasterRegion
from stxm_ctrl.data.writers import read_spool_file, spool_file_for

MODULE = "stxm_ctrl.app.queue_startup"


@pytest.fixture
def startup_namespace(sim_config, sim_fleet, catalog_server, tmp_path, monkeypatch):
    config_file = tmp_path / "beamline.toml"
    config_file.write_text(config_toml(sim_config.model_dump(mode="json")))
    monkeypatch.setenv("STXM_CONFIG", str(config_file))
    sys.modules.pop(MODULE, None)
    nspace = load_startup_module(MODULE)
    yield nspace
    nspace["data_path"].close()
    for device in nspace["devices"].all():
        device.destroy()
    sys.modules.pop(MODULE, None)


def test_startup_module_offers_the_devices_and_plans_the_queue_server_accepts(
    startup_namespace,
):
    plans, devices, _, _ = existing_plans_and_devices_from_nspace(nspace=startup_namespace)
    assert "sample_image" in plans
    parameters = {p["name"] for p in plans["sample_image"]["parameters"]}
    assert {"counter", "region", "dwell_s", "md"} <= parameters
    assert {"sample_x", "sample_y", "apd", "ring"} <= set(devices)


def test_a_plan_run_by_the_startup_runengine_is_spooled_and_catalogued(startup_namespace):
    ns = startup_namespace
    (uid,) = ns["RE"](
        ns["sample_image"](
            ns["apd"], RasterRegion(ns["sample_x"], 0, 1, 2, ns["sample_y"], 0, 1, 2), 0.001
        )
    )
    documents = list(read_spool_file(spool_file_for(ns["data_path"].spool.spool_dir, uid)))
    assert [name for name, _ in documents][0] == "start"
    assert documents[-1][1]["exit_status"] == "success"
    assert documents[0][1]["beamline_id"] == ns["config"].beamline.name
    image = ns["data_path"].image(uid)
    assert image.complete and image.shape == (2, 2)
