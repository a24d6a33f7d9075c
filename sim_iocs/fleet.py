"""The simulated IOC fleet: one process per IOC, sharing one world file.

``python -m sim_iocs.fleet --config-json CONFIG`` (what ``stxm sim`` runs) starts the fleet in
the foreground; Ctrl-C (or SIGTERM) stops every IOC. Tests use :class:`SimFleet` directly,
which also lets them kill or restart one IOC on purpose.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from sim_iocs.server import prepare_environment
from sim_iocs.world import World
from stxm_ctrl.config import BeamlineConfig
from stxm_ctrl.physics.ring import topup_current_mA
from stxm_ctrl.processes import (
    ManagedProcess,
    ProcessStartError,
    port_is_free,
    python_module_argv,
    tcp_answers,
)

__all__ = ["IOC_NAMES", "SimFleet"]

IOC_NAMES = ("sample_stage", "apd", "ring")
_START_TIMEOUT_S = 30.0


class SimFleet:
    """Start, watch and stop the simulated IOCs of a configuration.

    Parameters
    ----------
    config
        Beamline configuration; ``[sim]`` gives host and ports.
    runtime_dir
        Where the world file, effective configuration, ready markers and IOC logs go
        (a new temporary directory if None).
    """

    def __init__(self, config: BeamlineConfig, runtime_dir: Path | None = None) -> None:
        self.config = config
        self.runtime_dir = Path(runtime_dir or tempfile.mkdtemp(prefix="stxm-sim-"))
        self.world_path = self.runtime_dir / "world.bin"
        self.config_path = self.runtime_dir / "config.json"
        self.processes: dict[str, ManagedProcess] = {}
        self.repeater: ManagedProcess | None = None

    def port(self, name: str) -> int:
        """CA port of the named IOC."""
        return getattr(self.config.sim, f"{name}_port")

    def start(self) -> SimFleet:
        """Create the world and start every IOC; return once all serve their PVs.

        Raises
        ------
        ProcessStartError
            If a port is taken or an IOC fails to start (message includes its log).
        """
        host = self.config.sim.host
        busy = [
            f"{name}: {self.port(name)}"
            for name in IOC_NAMES
            if not port_is_free(host, self.port(name))
        ]
        if busy:
            raise ProcessStartError(
                f"simulated IOC ports already in use on {host} ({', '.join(busy)}); is another "
                "`stxm sim` running? Stop it, or choose free ports in the [sim] section"
            )
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config.model_dump_json(indent=1))
        ring = self.config.ring
        World.create(
            self.world_path,
            ring_current_mA=topup_current_mA(
                0.0, ring.fill_current_mA, ring.beam_lifetime_h, ring.topup_interval_s
            ),
        )
        try:
            self._start_repeater()
            for name in IOC_NAMES:
                self._launch(name)
            for name in IOC_NAMES:
                self._wait(name)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, name: str) -> None:
        ready = self.runtime_dir / f"{name}.ready"
        ready.unlink(missing_ok=True)
        process = ManagedProcess(
            f"{name} IOC",
            python_module_argv(
                "sim_iocs",
                name,
                "--config-json",
                str(self.config_path),
                "--world",
                str(self.world_path),
                "--ready-file",
                str(ready),
            ),
            self.runtime_dir / f"{name}.log",
            env=self._ioc_environment(),
        )
        process.start()
        self.processes[name] = process

    def _start_repeater(self) -> None:
        # Clients' libca looks for a CA repeater and, finding none, tries to spawn a
        # caRepeater executable (which pyepics does not ship) and complains. The fleet runs
        # caproto's repeater on its own port; clients are pointed at it.
        env = dict(os.environ, EPICS_CA_REPEATER_PORT=str(self.config.sim.repeater_port))
        self.repeater = ManagedProcess(
            "CA repeater",
            python_module_argv("caproto.commandline.repeater", "-q"),
            self.runtime_dir / "repeater.log",
            env=env,
        )
        self.repeater.start()
        host, port = self.config.sim.host, self.config.sim.repeater_port
        self.repeater.wait_ready(lambda: not port_is_free(host, port), _START_TIMEOUT_S)

    def _ioc_environment(self) -> dict[str, str]:
        # Server tuning and loopback-only addresses, visible in the child's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_CA")}
        prepare_environment(self.config.sim.host, env)
        # Beacons to the fleet's own repeater, which tells clients of restarted IOCs.
        env["EPICS_CAS_BEACON_PORT"] = str(self.config.sim.repeater_port)
        return env

    def _wait(self, name: str) -> None:
        ready = self.runtime_dir / f"{name}.ready"
        host, port = self.config.sim.host, self.port(name)
        self.processes[name].wait_ready(
            lambda: ready.exists() and tcp_answers(host, port), _START_TIMEOUT_S
        )

    def kill(self, name: str) -> None:
        """Kill one IOC abruptly (fault injection); the others keep running."""
        self.processes[name].kill()

    def restart(self, name: str) -> None:
        """Start a killed or stopped IOC again, with the same world (stages stay put)."""
        self.processes[name].stop()
        self._launch(name)
        self._wait(name)

    def stop(self) -> None:
        """Stop every IOC, and the repeater, by its pid."""
        for process in self.processes.values():
            process.stop()
        if self.repeater is not None:
            self.repeater.stop()

    def pids(self) -> dict[str, int | None]:
        """Process id of each IOC."""
        return {name: process.pid for name, process in self.processes.items()}

    def __enter__(self) -> SimFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the fleet in the foreground until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m sim_iocs.fleet", description=__doc__)
    parser.add_argument("--config-json", type=Path, required=True)
    parser.add_argument("--runtime-dir", type=Path)
    parser.add_argument("--ready-file", type=Path, help="written once every IOC serves")
    args = parser.parse_args(argv)
    config = BeamlineConfig.model_validate_json(args.config_json.read_text())
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    fleet = SimFleet(config, args.runtime_dir)
    try:
        fleet.start()
    except ProcessStartError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        summary = {name: f"{config.sim.host}:{fleet.port(name)}" for name in IOC_NAMES}
        print(f"simulated IOCs running: {json.dumps(summary)}", flush=True)
        print(f"runtime directory (logs, world file): {fleet.runtime_dir}", flush=True)
        if args.ready_file is not None:
            args.ready_file.write_text(json.dumps({"pids": fleet.pids()}))
        while not stop.wait(0.5):
            dead = [n for n, p in fleet.processes.items() if not p.is_running()]
            if dead:
                print(
                    f"IOC(s) exited unexpectedly: {', '.join(dead)}; stopping the fleet",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
    finally:
        fleet.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
