"""The catalog dies mid-scan: the scan finishes, nothing measured is lost, import-spool recovers.

This test runs its own catalog server (the session's one stays up for the other tests) and
kills it by pid while a sample image is being acquired.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import config_toml
from tiled.client import utils as tiled_client_utils

from plans import RasterRegion, sample_image
from stxm_ctrl.app.cli import main
from stxm_ctrl.app.session import build_session
from stxm_ctrl.data.catalog import catalog_client, start_catalog_server
from stxm_ctrl.data.images import image_from_run
from stxm_ctrl.data.writers import read_spool_file, spool_file_for
from stxm_ctrl.processes import free_tcp_port

KILL_AT_POINT = 40


@pytest.fixture
def outage_config(sim_config, sim_fleet, tmp_path):
    return sim_config.with_overrides(
        {
            "beamline": {"data_dir": str(tmp_path / "data")},
            "sim": {"runtime_dir": str(sim_config.sim_dir)},  # the session's fleet
            "catalog": {"port": free_tcp_port(), "batch_size": 10},
        }
    )


def test_catalog_killed_mid_scan_loses_nothing(
    outage_config, tmp_path, caplog, capsys, monkeypatch, reliability
):
    # The Tiled client retries a dead server for about a minute (in the writer's thread,
    # so the scan does not wait); a short retry window keeps this test short.
    monkeypatch.setattr(tiled_client_utils, "TILED_RETRY_ATTEMPTS", 2)
    monkeypatch.setattr(tiled_client_utils, "TILED_RETRY_TIMEOUT", 1.0)
    server = start_catalog_server(outage_config)
    session = build_session(outage_config, progress=False)
    restarted = None
    try:

        def kill_catalog(name, doc):
            if name == "event" and doc["seq_num"] == KILL_AT_POINT:
                server.process.kill()  # as a crash or an OOM kill would

        session.RE.subscribe(kill_catalog)
        d = session.devices
        plan = sample_image(
            d.apd, RasterRegion(d.sample_x, 0, 20, 12, d.sample_y, 0, 20, 10), 0.001
        )
        with caplog.at_level(logging.WARNING):
            uid = session.run(plan)

        # The scan ran to the end and the user was told, once, where the data are.
        spool_file = spool_file_for(outage_config.data_dir / "spool", uid)
        assert session.catalog_writer.flush(timeout_s=60)
        assert session.catalog_writer.failed_runs == [uid]
        warnings = [
            r.getMessage() for r in caplog.records if "catalog write failed" in r.getMessage()
        ]
        assert len(warnings) == 1
        assert str(spool_file) in warnings[0]
        assert "stxm import-spool" in warnings[0]
        reliability(
            fault="catalog server killed (SIGKILL) mid-scan",
            seen=warnings[0].split(";")[0] + "; the scan goes on ... `stxm import-spool FILE`",
            ended_s=None,
            kept="the scan runs to its end; every point in the spool; the image is read from "
            "the spool; import-spool later replaces the partial copy in the catalog",
        )

        # The spool has every point.
        docs = list(read_spool_file(spool_file))
        assert docs[-1][0] == "stop" and docs[-1][1]["exit_status"] == "success"
        spooled_counts = [
            count
            for name, doc in docs
            if name == "event_page" and "apd_counts" in doc["data"]
            for count in doc["data"]["apd_counts"]
        ]
        assert len(spooled_counts) == 120

        # The image is there at once, from the spool.
        from_spool = session.image(uid)
        assert from_spool.complete

        # Catalog back; the partial copy it holds is replaced from the spool.
        restarted = start_catalog_server(outage_config)
        config_file = tmp_path / "beamline.toml"
        sim = outage_config.sim
        overrides = {
            "beamline": {"data_dir": str(outage_config.data_dir)},
            "sim": {
                "iocs": {name: {"port": ioc.port} for name, ioc in sim.iocs.items()},
                "repeater_port": sim.repeater_port,
            },
            "catalog": {"port": outage_config.catalog.port, "batch_size": 10},
        }
        config_file.write_text(config_toml(overrides))
        capsys.readouterr()
        assert main(["import-spool", "--config", str(config_file), str(spool_file)]) == 0
        out = capsys.readouterr().out
        assert f"imported run {uid}" in out
        assert "replaced the incomplete copy" in out

        with catalog_client(outage_config) as client:
            image = image_from_run(client[uid])
        assert image.complete and image.shape == (10, 12)
        np.testing.assert_array_equal(np.sort(image.counts.ravel()), np.sort(spooled_counts))
        np.testing.assert_array_equal(image.counts, from_spool.counts)

        # A second import is refused: the catalog copy is complete now.
        assert main(["import-spool", "--config", str(config_file), str(spool_file)]) == 2
        assert "already complete in the catalog" in capsys.readouterr().err
    finally:
        session.close()
        server.stop()
        if restarted is not None:
            restarted.stop()
