"""The simulated IOC fleet: one process per registered instrument, sharing one world.

``python -m sim_iocs.fleet --config-json CONFIG`` (what ``stxm sim`` runs) starts the fleet in
the foreground; Ctrl-C (or SIGTERM) stops every IOC. Tests use :class:`SimFleet` directly,
which also lets them kill or restart one IOC on purpose, or add an instrument of their own.

The fleet takes its IOCs from :data:`sim_iocs.registry.INSTRUMENTS` and their ports from
``[sim.iocs.<name>] port`` (default: the entry's own). It writes the manifest
(:mod:`stxm_ctrl.fleet_manifest`) that clients and the IOCs read, and removes it on stop.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import signal
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sim_iocs.registry import (
    INSTRUMENTS,
    RegistryError,
    SimInstrument,
    check_configuration,
    check_instruments,
)
from sim_iocs.server import prepare_environment
from sim_iocs.world import World
from stxm_ctrl.config import BeamlineConfig
from stxm_ctrl.fleet_manifest import MANIFEST_FILE, FleetManifest
from stxm_ctrl.processes import (
    ManagedProcess,
    ProcessStartError,
    describe_port_holders,
    free_tcp_ports,
    port_is_free,
    python_module_argv,
    stop_all,
    tcp_answers,
)

__all__ = ["SimFleet", "free_port_overrides", "resolve_ports"]


def free_port_overrides(
    data_dir: str | Path, instruments: Iterable[SimInstrument] | None = None
) -> dict[str, Any]:
    """Configuration overrides for a private beamline: ``data_dir``, and every simulated IOC
    (of the registry or ``instruments``), the CA repeater and the catalog on distinct free
    loopback ports (for tests and benchmarks that run beside another fleet).
    """
    names = [i.name for i in (INSTRUMENTS if instruments is None else instruments)]
    *ioc_ports, repeater_port, catalog_port = free_tcp_ports(len(names) + 2)
    return {
        "beamline": {"data_dir": str(data_dir)},
        "sim": {
            "iocs": {name: {"port": port} for name, port in zip(names, ioc_ports, strict=True)},
            "repeater_port": repeater_port,
        },
        "catalog": {"port": catalog_port},
    }


def resolve_ports(config: BeamlineConfig, instruments: Iterable[SimInstrument]) -> dict[str, int]:
    """Port of each IOC: ``[sim.iocs.<name>] port`` or the entry's default.

    Raises
    ------
    RegistryError
        If the configuration names an IOC the fleet does not have, or two ports clash.
    """
    table = {i.name: i for i in instruments}
    unknown = sorted(set(config.sim.iocs) - set(table))
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, list(table), n=1)
            hints.append(
                f"[sim.iocs.{name}]" + (f" (did you mean {close[0]!r}?)" if close else "")
            )
        raise RegistryError(
            f"the configuration sets {', '.join(hints)} but the simulator has no such IOC; "
            f"its IOCs are: {', '.join(table)}"
        )
    configured = {name: ioc.port for name, ioc in config.sim.iocs.items()}
    ports = {
        name: configured.get(name) or instrument.default_port for name, instrument in table.items()
    }
    taken = {"[sim] repeater_port": config.sim.repeater_port}
    if config.catalog.embedded and config.catalog.host == config.sim.host:
        taken["[catalog] port"] = config.catalog.port
    for name, port in ports.items():
        clash = [key for key, other in taken.items() if other == port]
        if clash:
            raise RegistryError(
                f"simulated IOC {name!r} would listen on port {port}, which is also "
                f"{clash[0]}; set [sim.iocs.{name}] port to a port of its own"
            )
        taken[f"[sim.iocs.{name}] port"] = port
    return ports


class SimFleet:
    """Start, watch and stop the simulated IOCs of a configuration.

    Parameters
    ----------
    config
        Configuration; ``[sim]`` gives host, ports and physics, ``[epics]`` the PV names.
    runtime_dir
        Where the world, manifest, effective configuration, ready markers and IOC logs go
        (default ``data_dir/sim``, where clients look for the manifest).
    instruments
        The IOCs to run (default: the registry's).
    """

    def __init__(
        self,
        config: BeamlineConfig,
        runtime_dir: Path | None = None,
        instruments: Iterable[SimInstrument] = INSTRUMENTS,
    ) -> None:
        self.config = config
        self.instruments = {i.name: i for i in check_instruments(instruments)}
        self.ports = resolve_ports(config, self.instruments.values())
        check_configuration(config, self.instruments.values())
        self.runtime_dir = Path(runtime_dir) if runtime_dir is not None else config.sim_dir
        self.world_dir = self.runtime_dir / "world"
        self.config_path = self.runtime_dir / "config.json"
        self.manifest_path = self.runtime_dir / MANIFEST_FILE
        self.processes: dict[str, ManagedProcess] = {}
        self.repeater: ManagedProcess | None = None

    def port(self, name: str) -> int:
        """CA port of the named IOC."""
        return self.ports[name]

    def ca_addr_list(self) -> list[str]:
        """``host:port`` of every IOC."""
        return [f"{self.config.sim.host}:{port}" for port in self.ports.values()]

    def manifest(self) -> FleetManifest:
        """What this fleet publishes to its clients and IOCs."""
        return FleetManifest(
            host=self.config.sim.host,
            repeater_port=self.config.sim.repeater_port,
            world_dir=str(self.world_dir),
            fleet_pid=os.getpid(),
            iocs={
                name: {
                    **instrument.to_json(),
                    "port": self.ports[name],
                    "pid": self.processes[name].pid if name in self.processes else None,
                }
                for name, instrument in self.instruments.items()
            },
        )

    def start(self) -> SimFleet:
        """Create the world and start every IOC; return once all serve their PVs.

        Raises
        ------
        ProcessStartError
            If a port is taken or an IOC fails to start (message includes its log).
        """
        host = self.config.sim.host
        wanted = {**self.ports, "repeater": self.config.sim.repeater_port}
        busy = [
            f"{name} port {port}, {describe_port_holders(host, port)}"
            for name, port in wanted.items()
            if not port_is_free(host, port)
        ]
        if busy:
            raise ProcessStartError(
                f"simulated IOC ports already in use on {host} ({'; '.join(busy)}); is another "
                "`stxm sim` running? Stop it, or choose free ports ([sim.iocs.<name>] port, "
                "[sim] repeater_port)"
            )
        self.runtime_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config.model_dump_json(indent=1))
        World.create(self.world_dir)
        self.manifest().write(self.manifest_path)
        try:
            self._start_repeater()
            for name in self.instruments:
                self._launch(name)
            for name in self.instruments:
                self._wait(name)
            self.manifest().write(self.manifest_path)
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
                "--manifest",
                str(self.manifest_path),
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
            python_module_argv("sim_iocs.repeater", "--host", self.config.sim.host),
            self.runtime_dir / "repeater.log",
            env=env,
        )
        self.repeater.start()
        host, port = self.config.sim.host, self.config.sim.repeater_port
        self.repeater.wait_ready(
            lambda: not port_is_free(host, port), self.config.sim.start_timeout_s
        )

    def _ioc_environment(self) -> dict[str, str]:
        # Server tuning and loopback-only addresses, visible in the child's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_CA")}
        prepare_environment(self.config.sim.host, env)
        # Beacons to the fleet's own repeater, which tells clients of restarted IOCs.
        env["EPICS_CAS_BEACON_PORT"] = str(self.config.sim.repeater_port)
        return env

    def _wait(self, name: str) -> None:
        ready = self.runtime_dir / f"{name}.ready"
        host, port = self.config.sim.host, self.ports[name]
        self.processes[name].wait_ready(
            lambda: ready.exists() and tcp_answers(host, port), self.config.sim.start_timeout_s
        )

    def kill(self, name: str) -> None:
        """Kill one IOC abruptly (fault injection); the others keep running."""
        self.processes[name].kill()

    def restart(self, name: str) -> None:
        """Start a killed or stopped IOC again, with the same world (stages stay put)."""
        self.processes[name].stop()
        self._launch(name)
        self._wait(name)
        self.manifest().write(self.manifest_path)

    def stop(self) -> None:
        """Stop every IOC, and the repeater, by its pid, all at once; withdraw the manifest."""
        stop_all(list(self.processes.values()))
        if self.repeater is not None:  # last: IOCs may still send it beacons while stopping
            self.repeater.stop()
        try:
            if FleetManifest.read(self.manifest_path).fleet_pid == os.getpid():
                self.manifest_path.unlink()
        except (OSError, ValueError, TypeError):
            pass

    def pids(self) -> dict[str, int | None]:
        """Process id of each IOC."""
        return {name: process.pid for name, process in self.processes.items()}

    def __enter__(self) -> SimFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the fleet in the foreground until SIGINT, SIGTERM or SIGHUP."""
    parser = argparse.ArgumentParser(prog="python -m sim_iocs.fleet", description=__doc__)
    parser.add_argument("--config-json", type=Path, required=True)
    parser.add_argument("--runtime-dir", type=Path)
    parser.add_argument("--ready-file", type=Path, help="written once every IOC serves")
    parser.add_argument(
        "--check",
        action="store_true",
        help="only check the configuration's [sim.iocs] and [epics.prefixes] against the "
        "registry (exit 2 if bad)",
    )
    args = parser.parse_args(argv)
    config = BeamlineConfig.model_validate_json(args.config_json.read_text())
    if args.check:
        try:
            instruments = check_instruments(INSTRUMENTS)
            resolve_ports(config, instruments)
            check_configuration(config, instruments)
        except RegistryError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 2
        return 0
    # The handler only records the signal: it runs in the main thread between two bytecodes,
    # possibly while that thread holds a lock (setting a threading.Event from it deadlocked
    # the fleet when SIGTERM landed inside Event.wait, and its IOCs kept their ports).
    signals: list[int] = []
    # Installed whatever the fleet inherited (ignored, in a background job's line).
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: signals.append(signum))
    try:
        fleet = SimFleet(config, args.runtime_dir)
        fleet.start()
    except (ProcessStartError, RegistryError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        summary = {name: f"{config.sim.host}:{port}" for name, port in fleet.ports.items()}
        print(f"simulated IOCs running: {json.dumps(summary)}", flush=True)
        print(f"runtime directory (logs, world): {fleet.runtime_dir}", flush=True)
        if args.ready_file is not None:
            args.ready_file.write_text(json.dumps({"pids": fleet.pids()}))
        while not signals:
            dead = [n for n, p in fleet.processes.items() if not p.is_running()]
            if dead:
                print(
                    f"IOC(s) exited unexpectedly: {', '.join(dead)}; stopping the fleet",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
            time.sleep(0.5)  # a recorded signal is seen within half a second
    finally:
        started = time.monotonic()
        print(f"stopping {len(fleet.processes)} IOCs and the CA repeater", flush=True)
        fleet.stop()
        print(f"stopped in {time.monotonic() - started:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
