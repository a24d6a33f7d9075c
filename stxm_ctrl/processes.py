"""Child processes that serve something: start, wait until ready, stop by process id.

Used for the simulated IOC fleet and the Tiled server, by the CLI and by the tests alike.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

__all__ = ["ManagedProcess", "ProcessStartError", "free_tcp_port", "port_is_free", "tcp_answers"]


class ProcessStartError(RuntimeError):
    """A child process exited or did not become ready in time."""


def tcp_answers(host: str, port: int, timeout_s: float = 0.2) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def port_is_free(host: str, port: int) -> bool:
    """True if both TCP and UDP ``port`` can be bound on ``host`` now.

    TCP is checked with SO_REUSEADDR, as servers bind: connections of a server that just
    stopped (TIME_WAIT) do not make its port busy.
    """
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            if kind == socket.SOCK_STREAM:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A port that is free for TCP and UDP on ``host`` (for tests and ad-hoc servers)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port_is_free(host, port):
            return port
    raise RuntimeError(f"no free port found on {host}")


class ManagedProcess:
    """A child process with a log file, a readiness check and a clean stop.

    Parameters
    ----------
    name
        Human name used in messages (``"apd IOC"``).
    argv
        Command line.
    log_path
        File receiving the child's stdout and stderr.
    env
        Environment for the child (defaults to this process's).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.env = dict(os.environ if env is None else env)
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return None if self.process is None else self.process.pid

    def start(self) -> None:
        """Start the child (in its own session, so Ctrl-C in a terminal reaches us first)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
            )
        finally:
            log.close()

    def is_running(self) -> bool:
        """True while the child has not exited."""
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, ready: Callable[[], bool], timeout_s: float) -> None:
        """Poll ``ready()`` until it is true; fail early if the child exits.

        Raises
        ------
        ProcessStartError
            If the child exits first or ``timeout_s`` passes; the message ends with the tail
            of the child's log.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_running():
                raise ProcessStartError(
                    f"{self.name} exited with code {self.process.returncode} while starting"
                    f"{self.log_tail()}"
                )
            if ready():
                return
            time.sleep(0.02)
        raise ProcessStartError(
            f"{self.name} did not become ready within {timeout_s:.0f} s{self.log_tail()}"
        )

    def log_tail(self, lines: int = 15) -> str:
        """Last lines of the child's log, formatted for an error message."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return f"\n--- last lines of {self.log_path} ---\n" + "\n".join(text)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the child by its pid: SIGINT, then SIGTERM, then SIGKILL."""
        if self.process is None:
            return
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self.process.poll() is not None:
                break
            try:
                os.kill(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                continue
        self.process.wait()

    def kill(self) -> None:
        """Kill the child at once (SIGKILL), as a crash would."""
        if self.is_running():
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()


def python_module_argv(module: str, *args: str) -> list[str]:
    """``python -m module args...`` with this interpreter."""
    return [sys.executable, "-m", module, *args]
