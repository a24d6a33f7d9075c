"""The main job, `stxm demo`, end to end as a user runs it: exit code, output, PNG, catalog."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import config_toml, free_port_overrides, ioc_ports
from PyQt5.QtGui import QImage

from stxm_ctrl.config import load_config
from stxm_ctrl.processes import tcp_answers

pytestmark = pytest.mark.slow


def test_demo_acquires_the_test_pattern_into_the_catalog(tmp_path, image_matches_ground_truth):
    config_file = tmp_path / "beamline.toml"
    config_file.write_text(config_toml(free_port_overrides(tmp_path / "data")))
    config = load_config(config_file)

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stxm_ctrl.app.cli",
            "demo",
            "--config",
            str(config_file),
            "--points",
            "40",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    uid = re.search(r"^run:\s+([0-9a-f-]{36}) in the catalog", out, re.M).group(1)
    png = Path(re.search(r"^PNG:\s+(\S+)", out, re.M).group(1))
    assert "40 x 40 px over 22 um" in out

    # The PNG is a real picture of a real size.
    picture = QImage(str(png))
    assert not picture.isNull()
    assert picture.width() >= 600 and picture.height() >= 500

    # Everything was shut down: no IOC or catalog port still answers.
    ports = [*ioc_ports(config), config.catalog.port]
    assert not [p for p in ports if tcp_answers("127.0.0.1", p)]

    # The run is in the catalog and the spool, and the image is the test pattern.
    from stxm_ctrl.data.catalog import catalog_client, start_catalog_server
    from stxm_ctrl.data.images import image_from_run

    assert (config.data_dir / "spool" / f"{uid}.jsonl").exists()
    server = start_catalog_server(config)
    try:
        with catalog_client(config) as client:
            run = client[uid]
            image = image_from_run(run)
            current = np.asarray(run["ring_current_monitor"].read()["ring_current"]).mean()
    finally:
        server.stop()
    assert image.shape == (40, 40)
    image_matches_ground_truth(image, current)
