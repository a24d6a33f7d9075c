"""The simulated fleet's manifest: which IOCs run, where, as what processes.

The fleet (``sim_iocs.fleet``) writes ``data_dir/sim/fleet.json`` when it starts, from the
simulator's registry of instruments and the configuration's ports, and removes it when it
stops. Clients of the simulated beamline read it for their Channel Access address list
(:func:`stxm_ctrl.epics_env.ca_client_environment`), so the runtime never needs to import
the simulator to know which IOCs it has. Each IOC process reads its own entry from it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST_FILE", "FleetManifest", "FleetNotRunningError", "running_fleet_manifest"]

MANIFEST_FILE = "fleet.json"


class FleetNotRunningError(ConnectionError):
    """No simulated fleet is running for a data directory (the message says what to do)."""


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


@dataclass
class FleetManifest:
    """What a running fleet publishes about itself.

    Attributes
    ----------
    host
        Address every IOC listens on.
    repeater_port
        The fleet's CA repeater.
    world_dir
        The world directory the IOCs share.
    fleet_pid
        Process id of the fleet.
    iocs
        Per IOC name: its registry entry as plain data plus ``port`` and, once started,
        ``pid``.
    """

    host: str
    repeater_port: int
    world_dir: str
    fleet_pid: int
    iocs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def ports(self) -> dict[str, int]:
        """Channel Access port of each IOC."""
        return {name: int(entry["port"]) for name, entry in self.iocs.items()}

    def ca_addr_list(self) -> list[str]:
        """``host:port`` of every IOC, for ``EPICS_CA_ADDR_LIST``."""
        return [f"{self.host}:{port}" for port in self.ports().values()]

    def write(self, path: Path) -> None:
        """Write atomically (readers never see half a manifest)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1))
        os.replace(tmp, path)

    @classmethod
    def read(cls, path: Path) -> FleetManifest:
        """Read a manifest file."""
        data = json.loads(Path(path).read_text())
        return cls(**data)

    @property
    def running(self) -> bool:
        """True while the fleet process that wrote it is alive."""
        return _alive(self.fleet_pid)


def running_fleet_manifest(sim_dir: Path) -> FleetManifest:
    """The manifest of the fleet running for ``sim_dir`` (``data_dir/sim``).

    Raises
    ------
    FleetNotRunningError
        If there is no manifest, or the fleet that wrote it has died.
    """
    path = Path(sim_dir) / MANIFEST_FILE
    try:
        manifest = FleetManifest.read(path)
    except FileNotFoundError:
        raise FleetNotRunningError(
            f"no simulated IOC fleet is running here (no {path}); start one with `stxm sim` "
            "(same --config, or the same [sim] runtime_dir), or set [epics] ca_addr_list to "
            "reach real IOCs"
        ) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise FleetNotRunningError(
            f"{path} is not a fleet manifest ({exc}); restart `stxm sim`"
        ) from None
    if not manifest.running:
        raise FleetNotRunningError(
            f"the simulated IOC fleet of {Path(sim_dir)} (pid {manifest.fleet_pid}, "
            f"{path}) is no longer running; start it again with `stxm sim`"
        )
    return manifest
