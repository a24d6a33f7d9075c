"""Channel Access client environment: loopback only, explicit server list."""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from stxm_ctrl.config import BeamlineConfig
from stxm_ctrl.fleet_manifest import running_fleet_manifest

__all__ = ["apply_ca_client_environment", "ca_addr_list", "ca_client_environment"]


def ca_addr_list(config: BeamlineConfig) -> list[str]:
    """Channel Access servers to search: ``[epics] ca_addr_list``, or the simulated fleet's.

    Raises
    ------
    FleetNotRunningError
        If no address list is configured and no simulated fleet runs for the data directory.
    """
    if config.epics.ca_addr_list:
        return list(config.epics.ca_addr_list)
    return running_fleet_manifest(config.sim_dir).ca_addr_list()


def ca_client_environment(config: BeamlineConfig) -> dict[str, str]:
    """Environment variables a CA client (pyepics, caproto) needs for this beamline.

    Searches go only to the configured servers (no broadcast, no automatic address list),
    and array transfers may be as large as ``epics.ca_max_array_bytes``. Against the
    simulated fleet (no ``ca_addr_list`` configured) the servers and the CA repeater are
    the ones the running fleet's manifest names.

    Raises
    ------
    FleetNotRunningError
        If no address list is configured and no simulated fleet runs for the data directory.
    """
    env = {
        "EPICS_CA_ADDR_LIST": " ".join(ca_addr_list(config)),
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_MAX_ARRAY_BYTES": str(config.epics.ca_max_array_bytes),
    }
    if config.simulated:
        env["EPICS_CA_REPEATER_PORT"] = str(running_fleet_manifest(config.sim_dir).repeater_port)
    return env


def apply_ca_client_environment(
    config: BeamlineConfig, environ: MutableMapping[str, str] | None = None
) -> None:
    """Write :func:`ca_client_environment` into ``environ`` (``os.environ`` by default).

    pyepics reads its settings only from the environment, once, when its CA context is
    first created; so the session (the composition root) calls this before any PV is
    connected in the process. Library code never calls it.
    """
    target = os.environ if environ is None else environ
    target.update(ca_client_environment(config))
