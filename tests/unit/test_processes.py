"""Child processes: readiness polling, clear start errors, stop by pid, port checks."""

from __future__ import annotations

import signal
import socket
import sys
import time
from pathlib import Path

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


def _ignored_signals(pid: int) -> int:
    """The SigIgn mask of a process (bit n-1 set: signal n ignored)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return int(line.split()[1], 16)
    raise AssertionError(f"no SigIgn in /proc/{pid}/status")


def test_a_child_of_a_background_job_still_stops_on_sigint(tmp_path):
    """A command started as `nohup stxm sim &` ignores SIGINT and SIGHUP, and ignored
    signals survive exec: its children must not inherit that, or stopping them waits for
    the SIGTERM step (seconds per child) and SIGHUP cannot end them."""
    child = ManagedProcess(
        "sleeper",
        [sys.executable, "-c", "print('up', flush=True); import time; time.sleep(60)"],
        tmp_path / "sleeper.log",
    )
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGHUP)}
    try:
        child.start()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    try:
        child.wait_ready(lambda: "up" in child.log_path.read_text(), timeout_s=30)
        ignored = _ignored_signals(child.pid)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            assert not ignored & (1 << (sig - 1)), f"{sig.name} ignored by the child"
        started = time.monotonic()
        child.stop(timeout_s=10.0)
        assert time.monotonic() - started < 5.0
        assert child.returncode == -signal.SIGINT  # KeyboardInterrupt: the first step worked
    finally:
        child.kill()


SLOW_LISTENER = (
    "import socket, sys, time\n"
    "time.sleep(float(sys.argv[2]))\n"  # a slow start: imports on a loaded machine
    "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen()\n"
    "time.sleep(60)\n"
)


def test_a_live_slow_start_is_waited_for_and_reported_while_it_lasts(tmp_path):
    port = free_tcp_port()
    child = ManagedProcess(
        "slow server", [sys.executable, "-c", SLOW_LISTENER, str(port), "2.5"], tmp_path / "s.log"
    )
    lines: list[str] = []
    child.start()
    try:
        child.wait_ready(
            lambda: tcp_answers("127.0.0.1", port),
            timeout_s=60,
            say=lines.append,
            say_every_s=0.5,
            limit="[catalog] start_timeout_s",
        )
    finally:
        child.stop()
    assert len(lines) >= 3, lines
    assert all(
        line.startswith(f"slow server still starting (pid {child.pid}, ")
        and " s of CPU so far); waiting up to 60 s ([catalog] start_timeout_s)" in line
        for line in lines
    ), lines


def test_a_start_past_its_limit_names_the_setting_to_raise(tmp_path):
    port = free_tcp_port()
    child = ManagedProcess(
        "slow server", [sys.executable, "-c", SLOW_LISTENER, str(port), "30"], tmp_path / "s.log"
    )
    child.start()
    try:
        with pytest.raises(ProcessStartError) as info:
            child.wait_ready(
                lambda: tcp_answers("127.0.0.1", port), 1.0, limit="[catalog] start_timeout_s"
            )
    finally:
        child.stop()
    assert str(info.value).startswith("slow server did not become ready within 1 s (alive, "), (
        info.value
    )
    assert "; on a loaded machine raise [catalog] start_timeout_s" in str(info.value)


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
