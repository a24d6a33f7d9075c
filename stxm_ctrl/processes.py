"""Child processes that serve something: start, wait until ready, stop by process id.

Used for the simulated IOC fleet and the Tiled server, by the CLI and by the tests alike.

Children die with their parent: each gets the Linux parent-death signal (SIGTERM), so a
``stxm demo`` killed by SIGKILL, SIGTERM or SIGHUP leaves no IOC, fleet, CA repeater or
Tiled server behind holding ports. A child that is itself a parent of managed processes
(the fleet) passes this on: when it dies, its children get SIGTERM in turn.

Which process holds a port can be looked up in ``/proc`` (:func:`port_holders`), so a
"port in use" refusal can name it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path

from stxm_ctrl.disk import make_private_dir, open_private_append

__all__ = [
    "ManagedProcess",
    "ProcessStartError",
    "describe_port_holders",
    "free_tcp_port",
    "port_holders",
    "port_is_free",
    "stop_all",
    "tcp_answers",
]

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


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


def free_tcp_port(host: str = "127.0.0.1", exclude: Collection[int] = ()) -> int:
    """A port that is free for TCP and UDP on ``host`` (for tests and ad-hoc servers).

    Ports in ``exclude`` are never returned: the kernel can hand the same free port out
    twice in a row, so servers configured together but started later take their ports
    from one :func:`free_tcp_ports`.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in exclude and port_is_free(host, port):
            return port
    raise RuntimeError(f"no free port found on {host}")


def free_tcp_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free for TCP and UDP on ``host``."""
    ports: list[int] = []
    for _ in range(count):
        ports.append(free_tcp_port(host, exclude=ports))
    return ports


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
    umask
        File-mode creation mask of the child (default 0o077: whatever it creates in the
        data directory is owner-only); None keeps this process's.
    die_with_parent
        Give the child the parent-death signal SIGTERM (default). Linux sends it when the
        *thread* that called :meth:`start` exits, not only the whole process: start
        children from the main thread, or from a thread that lives as long as they should.
    stdin_data
        Bytes the child reads on its standard input, which then ends (a secret passed this
        way is in neither its command line nor its environment, which other processes of
        the same user can read in ``/proc``); None: stdin is ``/dev/null``.

    Notes
    -----
    The child runs in its own session, so a Ctrl-C in the terminal reaches only this
    process, which then stops its children in order. It starts with SIGINT, SIGTERM and
    SIGHUP at their defaults even if this process inherited them ignored (started as
    ``nohup stxm demo &``), so :meth:`stop` works the same in the background. The log file
    is created 0600 in a directory created 0700.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        *,
        umask: int | None = 0o077,
        die_with_parent: bool = True,
        stdin_data: bytes | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.env = dict(os.environ if env is None else env)
        self.umask = umask
        self.die_with_parent = die_with_parent
        self.stdin_data = stdin_data
        self.process: subprocess.Popen | None = None
        # Where this start's lines begin in the log: earlier runs' lines are not its story.
        self.log_offset = 0

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return None if self.process is None else self.process.pid

    def start(self) -> None:
        """Start the child in its own session; it dies with this thread (``die_with_parent``)."""
        make_private_dir(self.log_path.parent)
        log = open_private_append(self.log_path)
        self.log_offset = os.fstat(log).st_size
        preexec = _child_preexec(signal.SIGTERM if self.die_with_parent else None)
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL if self.stdin_data is None else subprocess.PIPE,
                env=self.env,
                start_new_session=True,
                preexec_fn=preexec,
                umask=-1 if self.umask is None else self.umask,
            )
        finally:
            os.close(log)
        stdin = self.process.stdin
        if stdin is not None:
            # Small enough for the pipe's buffer: this never waits on the child.
            with contextlib.suppress(BrokenPipeError):  # it died at once: wait_ready says so
                try:
                    stdin.write(self.stdin_data or b"")
                finally:
                    stdin.close()

    @property
    def returncode(self) -> int | None:
        """Exit status once the child has exited (negative: killed by that signal)."""
        return None if self.process is None else self.process.poll()

    def is_running(self) -> bool:
        """True while the child has not exited."""
        return self.process is not None and self.process.poll() is None

    def wait_ready(
        self,
        ready: Callable[[], bool],
        timeout_s: float,
        *,
        say: Callable[[str], None] | None = None,
        say_every_s: float = 15.0,
        limit: str | None = None,
    ) -> None:
        """Poll ``ready()`` until it is true while the child lives; fail early if it exits.

        Parameters
        ----------
        ready
            The readiness check, polled every 20 ms.
        timeout_s
            The longest a live child may take.
        say
            Receives a line every ``say_every_s`` while the child is alive and not ready yet
            (how long so far, the CPU time it used, the limit), so a slow start on a loaded
            machine is seen to progress.
        say_every_s
            Seconds between those lines.
        limit
            Where ``timeout_s`` is configured (``"[catalog] start_timeout_s"``), named in
            the messages.

        Raises
        ------
        ProcessStartError
            If the child exits first or ``timeout_s`` passes; the message ends with the tail
            of the child's log.
        """
        started = time.monotonic()
        deadline = started + timeout_s
        next_say = started + say_every_s
        where = f" ({limit})" if limit else ""
        while time.monotonic() < deadline:
            if not self.is_running():
                raise ProcessStartError(
                    f"{self.name} exited with code {self.returncode} while starting"
                    f"{self.log_tail()}"
                )
            if ready():
                return
            now = time.monotonic()
            if say is not None and now >= next_say:
                say(
                    f"{self.name} still starting (pid {self.pid}, {now - started:.0f} s, "
                    f"{self.cpu_time_s():.1f} s of CPU so far); waiting up to "
                    f"{timeout_s:.0f} s{where}"
                )
                next_say = now + say_every_s
            time.sleep(0.02)
        raise ProcessStartError(
            f"{self.name} did not become ready within {timeout_s:.0f} s (alive, "
            f"{self.cpu_time_s():.1f} s of CPU used)"
            + (f"; on a loaded machine raise {limit}" if limit else "")
            + self.log_tail()
        )

    def cpu_time_s(self) -> float:
        """CPU time (user + system) the child has used so far, with its reaped children."""
        pid = self.pid
        if pid is None:
            return 0.0
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        # Fields 14-17 of proc(5): utime, stime, cutime, cstime (clock ticks); here 11-14.
        ticks = sum(int(value) for value in fields[11:15])
        return ticks / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 15) -> str:
        """Last lines this start of the child wrote to its log, for an error message.

        Lines of earlier runs in the same log are left out; if this start wrote nothing,
        the message says so rather than show an earlier run's lines as the cause.
        """
        try:
            with self.log_path.open("rb") as file:
                file.seek(self.log_offset)
                text = file.read().decode(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        if not any(line.strip() for line in text):
            return f"\n(it wrote nothing to {self.log_path})"
        return f"\n--- last lines of {self.log_path} ---\n" + "\n".join(text)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the child by its pid: SIGINT, then SIGTERM, then SIGKILL."""
        stop_all([self], timeout_s)

    def kill(self) -> None:
        """Kill the child at once (SIGKILL), as a crash would."""
        process = self.process
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def stop_all(processes: Sequence[ManagedProcess], timeout_s: float = 5.0) -> None:
    """Stop several children together: SIGINT to all, then SIGTERM, then SIGKILL to the rest.

    Each step waits at most ``timeout_s`` for all of them at once, so stopping six IOCs that
    are slow to shut down takes no longer than stopping one (one after the other, a parent
    killed mid-scan left its fleet holding ports for tens of seconds on a loaded machine).

    Parameters
    ----------
    processes
        Children to stop; ones never started or already exited are skipped.
    timeout_s
        How long to wait after each signal before escalating to the next.
    """
    running = [p.process for p in processes if p.process is not None]
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        running = [process for process in running if process.poll() is None]
        if not running:
            break
        for process in running:
            try:
                os.kill(process.pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout_s
        for process in running:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.0))
            except subprocess.TimeoutExpired:
                pass
    for process in running:
        process.wait()


def python_module_argv(module: str, *args: str) -> list[str]:
    """``python -m module args...`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, resolved once in the parent (the forked child only calls it)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# Signals a child must act on however this process was started: a shell starts background
# jobs with SIGINT ignored and nohup with SIGHUP ignored, and ignored signals survive exec.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@functools.cache
def _libc_signal() -> Callable[..., int] | None:
    """libc's ``signal``, resolved once in the parent (the forked child only calls it)."""
    try:
        function = ctypes.CDLL(None, use_errno=True).signal
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_void_p
    function.argtypes = (ctypes.c_int, ctypes.c_void_p)
    return function


def _child_preexec(parent_death: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that gives the child default stop signals and the parent-death signal.

    Runs in the child between fork and exec. SIGINT, SIGTERM and SIGHUP get their default
    disposition, so the child stops on them (and a Python child turns SIGINT into
    KeyboardInterrupt) even when this process inherited them ignored. With ``parent_death``
    the child receives that signal when its parent dies, and it survives exec; if the parent
    has already died by then (the child was re-parented), the signal would never come, so
    the child exits at once instead.
    """
    reset = _libc_signal()
    prctl = _prctl() if parent_death is not None else None
    if reset is None and prctl is None:
        return None
    parent = os.getpid()
    death = int(parent_death or 0)

    def preexec() -> None:
        if reset is not None:
            for signum in _STOP_SIGNALS:
                reset(int(signum), int(signal.SIG_DFL))
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, death, 0, 0, 0)
            if os.getppid() != parent:
                os._exit(1)

    return preexec


_PROC_NET_TABLES = ("tcp", "tcp6", "udp", "udp6")


def _proc_net_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # /proc/net/* prints each 32-bit word of the address in host byte order.
    raw = bytes.fromhex(text)
    words = [raw[i : i + 4] for i in range(0, len(raw), 4)]
    if sys.byteorder == "little":
        words = [word[::-1] for word in words]
    return ipaddress.ip_address(b"".join(words))


def _host_matches(
    bound: ipaddress.IPv4Address | ipaddress.IPv6Address,
    wanted: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> bool:
    if bound.is_unspecified or wanted.is_unspecified or bound == wanted:
        return True
    mapped = getattr(bound, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on a dual-stack socket
    return mapped is not None and mapped == wanted


def _socket_inodes(host: str, port: int) -> set[int]:
    """Inodes of the TCP/UDP sockets bound to ``port`` on ``host`` (or on every address)."""
    wanted = ipaddress.ip_address(socket.gethostbyname(host))
    inodes: set[int] = set()
    for table in _PROC_NET_TABLES:
        try:
            lines = Path("/proc/net", table).read_text().splitlines()[1:]
        except OSError:  # no IPv6, or not Linux
            continue
        for line in lines:
            fields = line.split()
            address, _, local_port = fields[1].partition(":")
            inode = int(fields[9])
            if inode and int(local_port, 16) == port:
                if _host_matches(_proc_net_address(address), wanted):
                    inodes.add(inode)
    return inodes


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    if raw:
        return " ".join(part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0"))
    try:  # a zombie or kernel thread has no command line; its name still helps
        return "[" + Path(f"/proc/{pid}/comm").read_text().strip() + "]"
    except OSError:
        return "?"


def _holders_and_unmatched(host: str, port: int) -> tuple[list[tuple[int, str]], set[int]]:
    inodes = _socket_inodes(host, port)
    holders: dict[int, str] = {}
    unmatched = set(inodes)
    if not inodes:
        return [], unmatched
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # exited meanwhile, or another user's process
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                holders.setdefault(pid, _cmdline(pid))
                unmatched.discard(int(target[8:-1]))
    return sorted(holders.items()), unmatched


def port_holders(host: str, port: int) -> list[tuple[int, str]]:
    """Processes holding a TCP or UDP socket bound to ``port`` on ``host``.

    Read from ``/proc/net/{tcp,tcp6,udp,udp6}`` and the socket links in ``/proc/<pid>/fd``.
    Sockets bound to every address (0.0.0.0, ::) count, as they block ``host`` too.

    Parameters
    ----------
    host
        Address or name (``"127.0.0.1"``, ``"localhost"``).
    port
        Port number.

    Returns
    -------
    list of (pid, command line)
        Sorted by pid. Processes of other users are missing unless we run as root: their
        ``/proc/<pid>/fd`` is not readable (:func:`describe_port_holders` says so).
    """
    return _holders_and_unmatched(host, port)[0]


def describe_port_holders(host: str, port: int) -> str:
    """Who holds ``host:port``, for a "port in use" message.

    Returns
    -------
    str
        ``"held by pid 1234 (python -m tiled serve ...)"``; or that the holder belongs to
        another user and cannot be inspected; or ``"no process holds it now"``.
    """
    holders, unmatched = _holders_and_unmatched(host, port)
    parts = [f"pid {pid} ({cmdline})" for pid, cmdline in holders]
    if unmatched:
        parts.append(
            "a process this user may not inspect (another user's; `sudo ss -tulpn` names it)"
        )
    if not parts:
        return "no process holds it now"
    return "held by " + ", ".join(parts)
