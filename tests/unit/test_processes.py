"""Child processes: readiness polling, clear start errors, stop by pid, port checks."""

from __future__ import annotations

import signal
import socket
import sys
import time

import pytest

from stxm_ctrl.processes import (
    ManagedProcess,
    ProcessStartError,
    free_tcp_port,
    free_tcp_ports,
    port_is_free,
    stop_all,
    tcp_answers,
)

LISTEN = (
    "import signal, socket, sys, time\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"  # stubborn: only TERM or KILL stop it
    "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
    "time.sleep(60)\n"
)


def test_free_port_is_free_and_a_listening_port_is_not():
    port = free_tcp_port()
    assert port_is_free("127.0.0.1", port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert not port_is_free("127.0.0.1", port)
        assert tcp_answers("127.0.0.1", port)


def test_ports_handed_out_together_are_distinct_when_the_kernel_repeats_one(monkeypatch):
    # The kernel handed the same ephemeral port out twice in a row once (a session's catalog
    # and an IOC were configured on one port, and the suite did not start).
    handed = iter([40001, 40001, 40001, 40002, 40003])

    class RepeatingSocket(socket.socket):
        def getsockname(self):
            return ("127.0.0.1", next(handed))

    monkeypatch.setattr(socket, "socket", RepeatingSocket)
    monkeypatch.setattr("stxm_ctrl.processes.port_is_free", lambda host, port: True)
    assert free_tcp_ports(3) == [40001, 40002, 40003]


def test_process_is_polled_until_ready_and_stopped_by_pid(tmp_path):
    port = free_tcp_port()
    child = ManagedProcess(
        "listener", [sys.executable, "-c", LISTEN, str(port)], tmp_path / "l.log"
    )
    child.start()
    try:
        child.wait_ready(lambda: tcp_answers("127.0.0.1", port), timeout_s=20)
        assert child.is_running()
    finally:
        child.stop(timeout_s=1.0)  # SIGINT is ignored: SIGTERM must follow
    assert not child.is_running()
    assert child.process.returncode != 0
    assert not tcp_answers("127.0.0.1", port)


def test_a_child_that_dies_while_starting_is_reported_with_its_log(tmp_path):
    code = "import sys; print('no such beamline'); sys.exit(3)"
    child = ManagedProcess("broken IOC", [sys.executable, "-c", code], tmp_path / "b.log")
    child.start()
    with pytest.raises(ProcessStartError) as info:
        child.wait_ready(lambda: False, timeout_s=20)
    message = str(info.value)
    assert "broken IOC exited with code 3 while starting" in message
    assert "no such beamline" in message


def test_a_child_that_never_answers_times_out(tmp_path):
    child = ManagedProcess(
        "silent server", [sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "s.log"
    )
    child.start()
    try:
        with pytest.raises(ProcessStartError, match="did not become ready within 1 s"):
            child.wait_ready(lambda: False, timeout_s=1.0)
    finally:
        child.stop()
    assert not child.is_running()


def test_stubborn_children_are_stopped_together_not_one_after_the_other(tmp_path):
    # Four children that ignore SIGINT: each needs the full SIGINT wait before SIGTERM.
    # One after the other that is 4 x 2 s; together it is one wait of 2 s.
    children = []
    for n in range(4):
        port = free_tcp_port()
        child = ManagedProcess(
            f"stubborn {n}", [sys.executable, "-c", LISTEN, str(port)], tmp_path / f"s{n}.log"
        )
        child.start()
        child.wait_ready(lambda port=port: tcp_answers("127.0.0.1", port), 20)
        children.append((child, port))
    started = time.monotonic()
    stop_all([child for child, _ in children], timeout_s=2.0)
    took_s = time.monotonic() - started
    assert [child.returncode for child, _ in children] == [-signal.SIGTERM] * 4
    assert all(port_is_free("127.0.0.1", port) for _, port in children)
    assert took_s < 6.0, f"stopping 4 stubborn children took {took_s:.1f} s"


def test_the_log_tail_is_this_start_not_an_earlier_run(tmp_path):
    log = tmp_path / "fleet.log"
    log.write_text("error: port 5064 in use (an earlier run, fixed since)\n")
    code = "import sys; print('IOC apd: world block missing'); sys.exit(3)"
    child = ManagedProcess("fleet", [sys.executable, "-c", code], log)
    child.start()
    with pytest.raises(ProcessStartError) as info:
        child.wait_ready(lambda: False, timeout_s=20)
    message = str(info.value)
    assert "IOC apd: world block missing" in message
    assert "port 5064 in use" not in message
    assert log.read_text().startswith("error: port 5064")  # the log itself keeps it all

    silent = ManagedProcess("fleet", [sys.executable, "-c", "raise SystemExit(5)"], log)
    silent.start()
    with pytest.raises(ProcessStartError) as info:
        silent.wait_ready(lambda: False, timeout_s=20)
    assert str(info.value) == (
        f"fleet exited with code 5 while starting\n(it wrote nothing to {log})"
    )


def test_data_on_stdin_reaches_the_child_and_not_its_environment(tmp_path):
    code = (
        "import os, sys; secret = sys.stdin.readline().strip(); "
        "print('read', len(secret), secret.encode() in open('/proc/self/environ', 'rb').read())"
    )
    child = ManagedProcess(
        "reader", [sys.executable, "-c", code], tmp_path / "r.log", stdin_data=b"s3cret-k3y\n"
    )
    child.start()
    assert child.process is not None and child.process.wait(timeout=30) == 0
    assert (tmp_path / "r.log").read_text() == "read 10 False\n"
