"""Start the simulated IOC fleet and the embedded catalog as child processes.

The runtime never imports ``sim_iocs``: the fleet is started as ``python -m sim_iocs.fleet``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stxm_ctrl.config import BeamlineConfig
from stxm_ctrl.processes import ManagedProcess, ProcessStartError, python_module_argv, tcp_answers

__all__ = ["FleetProcess", "sim_ports_answering", "start_sim_fleet"]

FLEET_START_TIMEOUT_S = 60.0


@dataclass
class FleetProcess:
    """The fleet launcher child and where it keeps its files."""

    process: ManagedProcess
    runtime_dir: Path
    ready_file: Path

    def wait_ready(self, timeout_s: float = FLEET_START_TIMEOUT_S) -> None:
        """Return once every IOC serves its PVs (raises ProcessStartError otherwise)."""
        self.process.wait_ready(self.ready_file.exists, timeout_s)

    def stop(self) -> None:
        """Stop the fleet (it stops its IOCs) by its pid."""
        self.process.stop(timeout_s=10.0)


def sim_ports_answering(config: BeamlineConfig) -> list[int]:
    """Which of the simulated IOCs' ports already accept connections."""
    sim = config.sim
    ports = (sim.sample_stage_port, sim.apd_port, sim.ring_port)
    return [port for port in ports if tcp_answers(sim.host, port)]


def start_sim_fleet(config: BeamlineConfig, runtime_dir: Path) -> FleetProcess:
    """Start ``python -m sim_iocs.fleet`` for ``config``; call ``wait_ready`` before use.

    Raises
    ------
    ProcessStartError
        If any of the fleet's IOC ports already answers (another fleet is running).
    """
    answering = sim_ports_answering(config)
    if answering:
        raise ProcessStartError(
            f"ports {answering} on {config.sim.host} are in use; is `stxm sim` already running? "
            "Stop it, or choose free ports in the [sim] section"
        )
    runtime_dir = Path(runtime_dir)
    runtime_dir.mkdir(parents=True, exist_ok=True)
    config_json = runtime_dir / "config.json"
    config_json.write_text(config.model_dump_json(indent=1))
    ready = runtime_dir / "fleet.ready"
    ready.unlink(missing_ok=True)
    process = ManagedProcess(
        "simulated IOC fleet",
        python_module_argv(
            "sim_iocs.fleet",
            "--config-json",
            str(config_json),
            "--runtime-dir",
            str(runtime_dir / "iocs"),
            "--ready-file",
            str(ready),
        ),
        runtime_dir / "fleet.log",
    )
    process.start()
    return FleetProcess(process=process, runtime_dir=runtime_dir, ready_file=ready)
