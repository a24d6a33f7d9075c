"""Children die with their parent, however it dies; who holds a port is named; logs are private."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import Children

from stxm_ctrl.processes import (
    ManagedProcess,
    describe_port_holders,
    free_tcp_port,
    port_holders,
)

# A parent that starts one ManagedProcess (which may itself be such a parent, `depth`
# levels down), prints the pids of its line as JSON once all are up, then waits.
PARENT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from stxm_ctrl.processes import ManagedProcess

    depth, log_dir = int(sys.argv[1]), Path(sys.argv[2])
    argv = (
        [sys.executable, __file__, str(depth - 1), str(log_dir)]
        if depth > 1
        else [sys.executable, "-c", "import time; print('child up', flush=True); time.sleep(300)"]
    )
    child = ManagedProcess(f"level {depth}", argv, log_dir / f"level{depth}.log")
    child.start()
    marker = log_dir / f"level{depth}.log"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        text = marker.read_text() if marker.exists() else ""
        if "child up" in text or '"pids"' in text:
            break
        time.sleep(0.02)
    below = []
    for line in (marker.read_text() if depth > 1 else "").splitlines():
        if '"pids"' in line:
            below = json.loads(line)["pids"]
    print(json.dumps({"pids": [child.pid, *below]}), flush=True)
    time.sleep(300)
    """
)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for a reaper counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_gone(pids: list[int], timeout_s: float) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        left = [pid for pid in pids if _alive(pid)]
        if not left:
            return []
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


def _start_parent(
    children: Children, tmp_path: Path, depth: int
) -> tuple[subprocess.Popen, list[int]]:
    """The parent, started as from a terminal (its stop signals at their defaults, whatever
    this test process inherited)."""
    import json

    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = children.start(
        [sys.executable, str(script), str(depth), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = parent.stdout.readline()  # blocks until the whole line of children is up
    parent.stdout.close()
    assert line, "the parent exited before its children were up"
    pids = json.loads(line)["pids"]
    assert len(pids) == depth and all(_alive(pid) for pid in pids)
    return parent, pids


def _kill_leftovers(pids: list[int]) -> None:
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    "how", [signal.SIGKILL, signal.SIGTERM, signal.SIGHUP], ids=lambda sig: sig.name
)
def test_a_child_dies_when_its_parent_is_killed(tmp_path, children, how):
    parent, pids = _start_parent(children, tmp_path, depth=1)
    try:
        parent.send_signal(how)
        parent.wait(timeout=10)
        assert _wait_gone(pids, timeout_s=5) == [], f"orphaned after {how.name}: {pids}"
    finally:
        _kill_leftovers(pids)


def test_grandchildren_die_too_when_the_top_parent_is_killed(tmp_path, children):
    """Like `stxm demo` -> fleet -> IOCs: a SIGKILL at the top takes down the whole line."""
    parent, pids = _start_parent(children, tmp_path, depth=3)
    try:
        parent.kill()
        parent.wait(timeout=10)
        assert _wait_gone(pids, timeout_s=10) == [], f"left running: {pids}"
    finally:
        _kill_leftovers(pids)


def test_a_child_started_without_parent_death_survives_its_parent(tmp_path, children):
    """The opt-out does what it says (and shows the test above can see a survivor)."""
    code = (
        "import sys, time\n"
        "from stxm_ctrl.processes import ManagedProcess\n"
        "c = ManagedProcess('c', [sys.executable, '-c', 'import time; time.sleep(60)'],\n"
        f"                   __import__('pathlib').Path({str(tmp_path)!r}) / 'c.log',\n"
        "                   die_with_parent=False)\n"
        "c.start(); print(c.pid, flush=True); time.sleep(60)\n"
    )
    parent = children.start([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    parent.stdout.close()
    try:
        parent.kill()
        parent.wait(timeout=10)
        assert _wait_gone([pid], timeout_s=1.0) == [pid]
    finally:
        _kill_leftovers([pid])


def test_the_signal_follows_the_thread_that_started_the_child(tmp_path):
    """Linux sends it when the *thread* that forked exits: documented, and true."""
    import threading

    child = ManagedProcess(
        "sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "s.log"
    )
    starter = threading.Thread(target=child.start)
    starter.start()
    starter.join()
    try:
        child.process.wait(timeout=10)
        assert child.process.returncode == -signal.SIGTERM
    finally:
        child.stop()


LISTENER = (
    "import socket, sys, time\n"
    "kind = socket.SOCK_STREAM if sys.argv[2] == 'tcp' else socket.SOCK_DGRAM\n"
    "s = socket.socket(socket.AF_INET, kind); s.bind((sys.argv[3], int(sys.argv[1])))\n"
    "s.listen() if kind == socket.SOCK_STREAM else None\n"
    "print('bound', flush=True); time.sleep(60)\n"
)


@pytest.mark.parametrize(("kind", "bind_host"), [("tcp", "127.0.0.1"), ("udp", "0.0.0.0")])
def test_port_holders_names_the_process_on_a_port(tmp_path, kind, bind_host):
    port = free_tcp_port()
    child = ManagedProcess(
        "port squatter",
        [sys.executable, "-c", LISTENER, str(port), kind, bind_host],
        tmp_path / "squatter.log",
    )
    child.start()
    try:
        child.wait_ready(lambda: "bound" in child.log_path.read_text(), timeout_s=20)
        holders = port_holders("127.0.0.1", port)
        assert [pid for pid, _ in holders] == [child.pid]
        assert holders[0][1].startswith(f"{sys.executable} -c import socket")
        message = describe_port_holders("localhost", port)
        assert message.startswith(f"held by pid {child.pid} (")
        assert sys.executable in message
    finally:
        child.stop()
    assert port_holders("127.0.0.1", port) == []
    assert describe_port_holders("127.0.0.1", port) == "no process holds it now"


def test_port_holders_does_not_confuse_other_ports():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert [pid for pid, _ in port_holders("127.0.0.1", port)] == [os.getpid()]
        other = free_tcp_port()
        assert port_holders("127.0.0.1", other) == []


def test_child_logs_are_owner_only_and_the_child_has_umask_077(tmp_path):
    code = (
        "import os, sys; open(sys.argv[1] + '/made-by-child', 'w').close(); "
        "os.mkdir(sys.argv[1] + '/dir-by-child')"
    )
    log_path = tmp_path / "new" / "logs" / "child.log"
    child = ManagedProcess("child", [sys.executable, "-c", code, str(tmp_path)], log_path)
    child.start()
    assert child.process.wait(timeout=20) == 0
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log_path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "made-by-child").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "dir-by-child").stat().st_mode) == 0o700
