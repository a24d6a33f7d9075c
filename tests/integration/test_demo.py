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


def test_demo_at_another_energy_keeps_the_focus(tmp_path):
    """`stxm demo --energy-eV 715`: energy moves first, the zone plate follows the focus."""
    from stxm_ctrl.physics.zone_plate import focal_length_um

    overrides = free_port_overrides(tmp_path / "data")
    config_file = tmp_path / "beamline.toml"
    config_file.write_text(config_toml(overrides))
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
            "8",
            "--energy-eV",
            "715",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "moving to 715 eV" in result.stdout
    assert "at 715.00 eV" in result.stdout
    from stxm_ctrl.data.writers import read_spool_file

    spool = Path(re.search(r"^spool:\s+(\S+)", result.stdout, re.M).group(1))
    name, start = read_spool_file(spool)[0]
    assert name == "start"
    assert start["energy_eV"] == pytest.approx(715.0, abs=0.01)
    plate = config.optics.selected_zone_plate
    focus = focal_length_um(715.0, plate.diameter_um, plate.outer_zone_width_nm)
    expected_zp_z = config.optics.z_sign * (focus + config.sim.optics.sample_z_offset_um)
    assert start["zp_z_um"] == pytest.approx(expected_zp_z, abs=0.01)
    # The run's NXstxm file, in the default layout, at the energy the run was taken at.
    import h5py

    from stxm_ctrl.data.nexus_check import check_nexus_file

    nexus = Path(re.search(r"^NeXus:\s+(\S+)", result.stdout, re.M).group(1))
    assert nexus.parent.parent.parent == config.nexus_dir
    assert nexus.parent.parent.name == "no_proposal"
    assert [p for p in check_nexus_file(nexus) if p.severity == "error"] == []
    with h5py.File(nexus, "r") as file:
        data = file["entry1"][file["entry1"].attrs["default"]]  # apd (step) or fly
        assert data["energy"][0] == pytest.approx(715.0, abs=0.01)
        assert data["data"].shape == (8, 8)


def test_demo_refuses_an_energy_the_osa_would_clip_before_starting(tmp_path):
    config_file = tmp_path / "beamline.toml"
    config_file.write_text(config_toml(free_port_overrides(tmp_path / "data")))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stxm_ctrl.app.cli",
            "demo",
            "--config",
            str(config_file),
            "--energy-eV",
            "400",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "--energy-eV = 400 eV" in result.stderr
    assert "clip the first order" in result.stderr
    assert not (tmp_path / "data" / "sim" / "fleet.json").exists()  # nothing started
