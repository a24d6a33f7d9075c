"""`stxm demo` killed mid-scan: nothing it started survives, and the spool completes the run.

A SIGKILL gives the command no chance to stop its children; the parent-death signal must.
Afterwards every port is free, and import-spool puts exactly the spooled points into the
catalog (which had only whole batches of them).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from conftest import config_toml, free_port_overrides, ioc_ports

from stxm_ctrl.config import load_config
from stxm_ctrl.data.catalog import catalog_client, start_catalog_server
from stxm_ctrl.data.nexus_check import check_nexus_file
from stxm_ctrl.data.writers import import_spool_file, read_spool_file, spool_event_counts
from stxm_ctrl.processes import port_holders, port_is_free

pytestmark = pytest.mark.slow

KILL_AFTER_LINES = 300  # spool lines: well into the scan, past a few catalog batches


def _wait_for_spool(process: subprocess.Popen, spool_dir, lines: int, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        files = list(spool_dir.glob("*.jsonl")) if spool_dir.exists() else []
        if files and files[0].read_bytes().count(b"\n") >= lines:
            return files[0]
        if process.poll() is not None:
            pytest.fail(f"demo exited with {process.returncode} before it was killed")
        time.sleep(0.1)
    pytest.fail(f"the scan did not spool {lines} documents within {timeout_s} s")


def test_demo_killed_mid_scan_leaves_no_process_and_the_spool_completes_the_run(
    tmp_path, children, reliability
):
    config_file = tmp_path / "beamline.toml"
    config_file.write_text(config_toml(free_port_overrides(tmp_path / "data")))
    config = load_config(config_file)
    sim = config.sim
    ports = [*ioc_ports(config), sim.repeater_port, config.catalog.port]
    demo = children.start(
        [sys.executable, "-m", "stxm_ctrl.app.cli", "demo", "--config", str(config_file)]
        + ["--points", "80", "--mode", "step", "--no-progress"],
        output=tmp_path / "demo.out",
    )
    spool_file = _wait_for_spool(demo, config.data_dir / "spool", KILL_AFTER_LINES, 300)
    demo.kill()
    demo.wait(timeout=10)

    # The fleet, its IOCs and repeater, and the catalog server all die with the demo.
    killed = time.monotonic()
    deadline = killed + 15
    while time.monotonic() < deadline and not all(port_is_free("127.0.0.1", p) for p in ports):
        time.sleep(0.1)
    held = {p: port_holders("127.0.0.1", p) for p in ports if not port_is_free("127.0.0.1", p)}
    for pid in {pid for holders in held.values() for pid, _ in holders}:
        os.kill(pid, signal.SIGKILL)  # orphans of the demo started here: leave none behind
    fleet_log = config.sim_dir / "fleet.log"
    assert held == {}, (
        f"still held {time.monotonic() - killed:.1f} s after the demo was killed: {held}\n"
        f"fleet log:\n{fleet_log.read_text() if fleet_log.exists() else '(none)'}"
    )
    freed_s = time.monotonic() - killed

    # The run was cut off: no stop document. Import puts exactly its points in the catalog.
    documents = read_spool_file(spool_file)
    assert documents[-1][0] != "stop" and not documents.torn
    spooled = spool_event_counts(documents)
    assert spooled["primary"] >= KILL_AFTER_LINES // 2  # the rest: start, descriptors, monitor
    server = start_catalog_server(config)
    try:
        with catalog_client(config) as client:
            uid = documents[0][1]["uid"]
            before = client[uid]["primary"].read().sizes["time"] if uid in client else 0
            assert before <= spooled["primary"]
            batch_size = config.catalog.batch_size
            result = import_spool_file(client, spool_file, batch_size=batch_size)
            assert result.catalog_events == spooled
            assert client[uid]["primary"].read().sizes["time"] == spooled["primary"]
    finally:
        server.stop()
    # No NXstxm file was written (the run never ended); `stxm export` writes it from the
    # spool: the measured pixels, NaN for the rest, conformant.
    assert not (config.nexus_dir.exists() and list(config.nexus_dir.rglob("*.nxs")))
    export = subprocess.run(
        [
            sys.executable,
            "-m",
            "stxm_ctrl.app.cli",
            "export",
            str(spool_file),
            "--from-spool",
            "--config",
            str(config_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert export.returncode == 0, export.stderr
    (nexus_file,) = config.nexus_dir.rglob("*.nxs")
    assert str(nexus_file) in export.stdout
    assert [p for p in check_nexus_file(nexus_file) if p.severity == "error"] == []
    with h5py.File(nexus_file, "r") as file:
        entry = file["entry1"]
        data = entry["apd/data"][()]
        assert data.shape == (80, 80)
        assert np.isfinite(data).sum() == spooled["primary"]
        assert len(entry["instrument/apd/data"]) == spooled["primary"]
        assert entry["collection/exit_status"][()].decode() == "incomplete"
    reliability(
        fault="`stxm demo` killed with SIGKILL mid-scan (no chance to clean up)",
        seen="nothing from the demo; every child (fleet, IOCs, repeater, catalog) ends by the "
        "parent-death signal, every port is free again",
        ended_s=freed_s,
        kept="every spooled point; `stxm import-spool FILE` puts exactly those points in the "
        "catalog (the run has no stop document); `stxm export FILE` writes its NXstxm file "
        "(measured pixels, NaN for the rest)",
    )
