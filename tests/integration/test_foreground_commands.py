"""`stxm sim` and `stxm serve` as a user runs them: up until Ctrl-C, then everything gone.

Started from a terminal (Ctrl-C), and started in the background as a script or a nightly
job starts them (`nohup stxm sim &`: SIGINT and SIGHUP ignored), where SIGTERM and SIGHUP
must still end them cleanly. Each child gets its signal dispositions explicitly, so the
tests do not depend on how pytest itself was started.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from conftest import (
    NOHUP_BACKGROUND_SIGNALS,
    TERMINAL_SIGNALS,
    config_toml,
    free_port_overrides,
    ioc_ports,
)

from stxm_ctrl.config import load_config
from stxm_ctrl.processes import port_is_free, tcp_answers

READY = "press Ctrl-C to stop"


def _start(children, command: str, config_file, output, signals) -> subprocess.Popen:
    return children.start(
        [sys.executable, "-m", "stxm_ctrl.app.cli", command, "--config", str(config_file)],
        output=output,
        signals=signals,
    )


def _wait_for_ready(process: subprocess.Popen, output, timeout_s: float) -> None:
    """Until the command says Ctrl-C stops it (a user presses it only then).

    On a loaded 2-core machine a start takes a minute or more (the commands themselves wait
    on a live start up to [sim]/[catalog] start_timeout_s); pytest-timeout bounds a test at
    300 s.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if READY in output.read_text():
            return
        if process.poll() is not None:
            pytest.fail(f"exited with {process.returncode}: {output.read_text()}")
        time.sleep(0.1)
    pytest.fail(f"not up within {timeout_s} s: {output.read_text()}")


def _signal(process: subprocess.Popen, output, sig: int) -> str:
    process.send_signal(sig)  # SIGINT: what Ctrl-C in the terminal sends
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 30 s after {signal.Signals(sig).name}: {output.read_text()}")
    return output.read_text()


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "beamline.toml"
    path.write_text(config_toml(free_port_overrides(tmp_path / "data")))
    return path


def test_stxm_sim_serves_until_ctrl_c_and_stops_every_ioc(config_file, children):
    config = load_config(config_file)
    ports = ioc_ports(config)
    output = config_file.parent / "sim.out"
    sim = _start(children, "sim", config_file, output, TERMINAL_SIGNALS)
    _wait_for_ready(sim, output, 240)
    assert all(tcp_answers("127.0.0.1", p) for p in ports)
    out = _signal(sim, output, signal.SIGINT)
    assert sim.returncode == 0, out
    assert f"EPICS_CA_ADDR_LIST='127.0.0.1:{config.sim.iocs['sample_stage'].port}" in out
    assert "stopping simulated IOC fleet" in out
    assert not [p for p in ports if tcp_answers("127.0.0.1", p)]


def test_stxm_serve_runs_the_catalog_until_ctrl_c(config_file, children):
    config = load_config(config_file)
    output = config_file.parent / "serve.out"
    serve = _start(children, "serve", config_file, output, TERMINAL_SIGNALS)
    _wait_for_ready(serve, output, 240)
    assert tcp_answers("127.0.0.1", config.catalog.port)
    key_file = config.data_dir / "tiled_api_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    out = _signal(serve, output, signal.SIGINT)
    assert serve.returncode == 0, out
    assert f"catalog at http://127.0.0.1:{config.catalog.port}" in out
    assert not tcp_answers("127.0.0.1", config.catalog.port)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_stxm_sim_started_with_nohup_in_the_background_ends_on_a_signal(
    config_file, children, sig, reliability
):
    config = load_config(config_file)
    ports = [*ioc_ports(config), config.sim.repeater_port]
    output = config_file.parent / "sim.out"
    sim = _start(children, "sim", config_file, output, NOHUP_BACKGROUND_SIGNALS)
    _wait_for_ready(sim, output, 240)
    signalled = time.monotonic()
    out = _signal(sim, output, sig)
    ended_s = time.monotonic() - signalled
    assert sim.returncode == 0, out
    assert "stopping simulated IOC fleet" in out
    assert "Traceback" not in out
    assert [p for p in ports if not port_is_free("127.0.0.1", p)] == []
    reliability(
        fault=f"`stxm sim` started as `nohup stxm sim &` (SIGINT, SIGHUP ignored), sent "
        f"{sig.name}",
        seen="stopping simulated IOC fleet ...; exit status 0",
        ended_s=ended_s,
        kept="nothing left running: every IOC and the CA repeater stopped, ports free",
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name)
def test_stxm_serve_started_with_nohup_in_the_background_ends_on_a_signal(
    config_file, children, sig, reliability
):
    config = load_config(config_file)
    output = config_file.parent / "serve.out"
    serve = _start(children, "serve", config_file, output, NOHUP_BACKGROUND_SIGNALS)
    _wait_for_ready(serve, output, 240)
    signalled = time.monotonic()
    out = _signal(serve, output, sig)
    ended_s = time.monotonic() - signalled
    assert serve.returncode == 0, out
    assert "stopping catalog server" in out
    assert "Traceback" not in out
    assert port_is_free("127.0.0.1", config.catalog.port)
    # The catalog is kept, and the next start (from a terminal) serves it.
    assert (config.data_dir / "catalog.db").stat().st_size > 0
    again = _start(children, "serve", config_file, output, TERMINAL_SIGNALS)
    _wait_for_ready(again, output, 240)
    assert _signal(again, output, signal.SIGINT) and again.returncode == 0
    reliability(
        fault=f"`stxm serve` started as `nohup stxm serve &` (SIGINT, SIGHUP ignored), sent "
        f"{sig.name}",
        seen="stopping catalog server ...; exit status 0",
        ended_s=ended_s,
        kept="the catalog database, served again by the next `stxm serve`; nothing left "
        "running, port free",
    )
