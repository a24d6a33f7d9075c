"""`stxm demo` stopped by Ctrl-C, SIGTERM or SIGHUP closes its run as aborted, keeps every
point (spool and catalog), stops everything it started and exits 130; a second demo on the
same data directory is refused at once, naming the first. The same when the demo was started
in the background as a nightly job starts it (`nohup stxm demo &`: SIGINT and SIGHUP
ignored)."""

from __future__ import annotations

import re
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
from stxm_ctrl.data.catalog import catalog_client, start_catalog_server
from stxm_ctrl.data.writers import catalog_event_counts, read_spool_file, spool_event_counts
from stxm_ctrl.processes import port_is_free

pytestmark = pytest.mark.slow


def _demo(children, config_file, output, *options: str, signals=TERMINAL_SIGNALS):
    """The demo in a session of its own: signals below reach the demo alone, as from a
    terminal, with the dispositions given (a terminal's, or a background job's)."""
    return children.start(
        [sys.executable, "-m", "stxm_ctrl.app.cli", "demo", "--config", str(config_file)]
        + ["--no-progress", *options],
        output=output,
        signals=signals,
    )


def _wait(condition, process: subprocess.Popen, output, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process.poll() is not None:
            pytest.fail(
                f"demo exited with {process.returncode} before {what}: {output.read_text()}"
            )
        time.sleep(0.1)
    pytest.fail(f"no {what} within {timeout_s} s: {output.read_text()}")


def _spooling(config, lines: int):
    def check():
        spool_dir = config.data_dir / "spool"
        files = list(spool_dir.glob("*.jsonl")) if spool_dir.exists() else []
        return files[0] if files and files[0].read_bytes().count(b"\n") >= lines else None

    return check


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "beamline.toml"
    path.write_text(config_toml(free_port_overrides(tmp_path / "data")))
    return path


@pytest.mark.parametrize(
    ("mode", "sig", "started"),
    [
        ("step", signal.SIGINT, "terminal"),
        ("step", signal.SIGTERM, "terminal"),
        ("step", signal.SIGHUP, "terminal"),
        ("fly", signal.SIGINT, "terminal"),
        ("step", signal.SIGTERM, "nohup-background"),
        ("fly", signal.SIGHUP, "nohup-background"),
    ],
    ids=lambda v: getattr(v, "name", v),
)
def test_a_signal_aborts_the_run_and_keeps_every_point(
    config_file, tmp_path, children, mode, sig, started, reliability
):
    config = load_config(config_file)
    output = tmp_path / "demo.out"
    signals = TERMINAL_SIGNALS if started == "terminal" else NOHUP_BACKGROUND_SIGNALS
    demo = _demo(children, config_file, output, "--points", "60", "--mode", mode, signals=signals)
    # Step: one event per pixel; fly: one per line of 60 pixels.
    spool_file = _wait(_spooling(config, 150 if mode == "step" else 25), demo, output, 300, "scan")
    demo.send_signal(sig)
    signalled = time.monotonic()
    code = demo.wait(timeout=120)
    ended_s = time.monotonic() - signalled
    out = output.read_text()
    assert code == 130, out
    assert "interrupted: scan aborted: interrupted by the user" in out, out
    assert "Traceback" not in out and "RunEngineInterrupted" not in out

    documents = read_spool_file(spool_file)
    name, stop = documents[-1]
    assert name == "stop" and stop["exit_status"] == "abort", stop
    assert "interrupted by the user" in stop["reason"]
    events = spool_event_counts(documents)["primary"]
    points = events if mode == "step" else 60 * events
    assert re.search(rf"kept {points} of 3600 points", out), out

    ports = [*ioc_ports(config), config.sim.repeater_port, config.catalog.port]
    assert all(port_is_free("127.0.0.1", port) for port in ports)  # everything stopped

    how = "" if started == "terminal" else " started as `nohup stxm demo &`"
    reliability(
        fault=f"`stxm demo`{how} ({mode} scan) sent {sig.name} mid-scan"
        + (" (Ctrl-C)" if sig == signal.SIGINT else ""),
        seen=next(line for line in out.splitlines() if line.startswith("interrupted:"))[:160]
        + "...; exit status 130",
        ended_s=ended_s,
        kept="every point measured, in the spool and the catalog; run closed with exit_status "
        "abort and the reason; every child process stopped, ports free",
    )
    if sig == signal.SIGINT:  # the catalog holds exactly the spooled points
        uid = documents[0][1]["uid"]
        with start_catalog_server(config), catalog_client(config) as client:
            assert catalog_event_counts(client, uid)["primary"] == events


def test_a_second_demo_on_the_same_data_directory_is_refused_at_once(
    config_file, tmp_path, children, reliability
):
    output = tmp_path / "first.out"
    first = _demo(children, config_file, output, "--points", "40")
    try:
        _wait(
            lambda: "starting the simulated IOCs" in output.read_text(),
            first,
            output,
            120,
            "start",
        )
        started = time.monotonic()
        second = subprocess.run(
            [sys.executable, "-m", "stxm_ctrl.app.cli", "demo", "--config", str(config_file)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"is in use by `stxm demo` (pid {first.pid}" in second.stderr, second.stderr
        assert "starting the simulated IOCs" not in second.stdout
        reliability(
            fault="a second `stxm demo` on the same data directory while one runs",
            seen=second.stderr.strip().splitlines()[-1],
            ended_s=time.monotonic() - started,
            kept="the first demo and its scan numbers, untouched; the second starts nothing",
        )
    finally:
        first.send_signal(signal.SIGINT)
        first.wait(timeout=120)
