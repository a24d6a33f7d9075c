"""Start the simulated IOC fleet as a child process.

The runtime never imports ``sim_iocs``: the fleet is started as ``python -m sim_iocs.fleet``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from stxm_ctrl.config import BeamlineConfig
from stxm_ctrl.fleet_manifest import MANIFEST_FILE, FleetManifest
from stxm_ctrl.processes import ManagedProcess, ProcessStartError, python_module_argv

__all__ = ["FleetProcess", "start_sim_fleet"]

FLEET_START_TIMEOUT_S = 300.0  # the default of [sim] start_timeout_s


@dataclass
class FleetProcess:
    """The fleet launcher child and where it keeps its files; a context manager.

    Leaving the ``with`` block stops the fleet (it stops its IOCs).
    """

    process: ManagedProcess
    runtime_dir: Path
    ready_file: Path

    def wait_ready(
        self,
        timeout_s: float = FLEET_START_TIMEOUT_S,
        *,
        say: Callable[[str], None] | None = None,
    ) -> None:
        """Return once every IOC serves its PVs (raises ProcessStartError otherwise).

        Waits while the fleet is alive, up to ``timeout_s`` (``[sim] start_timeout_s``);
        ``say`` gets a line every 15 s while it is still starting.
        """
        self.process.wait_ready(
            self.ready_file.exists, timeout_s, say=say, limit="[sim] start_timeout_s"
        )

    def manifest(self) -> FleetManifest:
        """What the running fleet publishes (IOCs, ports, pids)."""
        return FleetManifest.read(self.runtime_dir / MANIFEST_FILE)

    def stop(self) -> None:
        """Stop the fleet (it stops its IOCs) by its pid."""
        self.process.stop(timeout_s=10.0)

    def __enter__(self) -> FleetProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_sim_fleet(config: BeamlineConfig) -> FleetProcess:
    """Start ``python -m sim_iocs.fleet`` for ``config``; call ``wait_ready`` before use.

    The fleet keeps its files in ``data_dir/sim``.

    Raises
    ------
    ProcessStartError
        If a fleet is already running for this data directory (named with its pid).
    """
    runtime_dir = config.sim_dir
    manifest_path = runtime_dir / MANIFEST_FILE
    if manifest_path.exists():
        try:
            running = FleetManifest.read(manifest_path)
        except (ValueError, TypeError):
            running = None
        if running is not None and running.running:
            raise ProcessStartError(
                f"a simulated IOC fleet is already running for {config.data_dir} (pid "
                f"{running.fleet_pid}, ports {running.ports()}); stop it (Ctrl-C in its "
                f"terminal, or `kill {running.fleet_pid}`), or use another data_dir"
            )
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
            str(runtime_dir),
            "--ready-file",
            str(ready),
        ),
        runtime_dir / "fleet.log",
    )
    process.start()
    return FleetProcess(process=process, runtime_dir=runtime_dir, ready_file=ready)
