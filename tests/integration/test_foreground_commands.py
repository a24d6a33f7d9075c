"""`stxm sim` and `stxm serve` as a user runs them: up until Ctrl-C, then everything gone."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from conftest import config_toml, free_port_overrides, ioc_ports

from stxm_ctrl.config import load_config
from stxm_ctrl.processes import tcp_answers

READY = "press Ctrl-C to stop"


def _start(command: str, config_file, output) -> subprocess.Popen:
    with output.open("w") as out:  # the child writes to its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "stxm_ctrl.app.cli", command, "--config", str(config_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for_ready(process: subprocess.Popen, output, timeout_s: float) -> None:
    """Until the command says Ctrl-C stops it (a user presses it only then)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if READY in output.read_text():
            return
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}: {output.read_text()}")
        time.sleep(0.1)
    process.kill()
    pytest.fail(f"not up within {timeout_s} s: {output.read_text()}")


def _ctrl_c(process: subprocess.Popen, output) -> str:
    process.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
    process.wait(timeout=30)
    return output.read_text()


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "beamline.toml"
    path.write_text(config_toml(free_port_overrides(tmp_path / "data")))
    return path


def test_stxm_sim_serves_until_ctrl_c_and_stops_every_ioc(config_file):
    config = load_config(config_file)
    ports = ioc_ports(config)
    output = config_file.parent / "sim.out"
    sim = _start("sim", config_file, output)
    try:
        _wait_for_ready(sim, output, 60)
        assert all(tcp_answers("127.0.0.1", p) for p in ports)
        out = _ctrl_c(sim, output)
    finally:
        if sim.poll() is None:
            sim.kill()
    assert sim.returncode == 0, out
    assert f"EPICS_CA_ADDR_LIST='127.0.0.1:{config.sim.iocs['sample_stage'].port}" in out
    assert "stopping simulated IOC fleet" in out
    assert not [p for p in ports if tcp_answers("127.0.0.1", p)]


def test_stxm_serve_runs_the_catalog_until_ctrl_c(config_file):
    config = load_config(config_file)
    output = config_file.parent / "serve.out"
    serve = _start("serve", config_file, output)
    try:
        _wait_for_ready(serve, output, 90)
        assert tcp_answers("127.0.0.1", config.catalog.port)
        key_file = config.data_dir / "tiled_api_key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        out = _ctrl_c(serve, output)
    finally:
        if serve.poll() is None:
            serve.kill()
    assert serve.returncode == 0, out
    assert f"catalog at http://127.0.0.1:{config.catalog.port}" in out
    assert not tcp_answers("127.0.0.1", config.catalog.port)
