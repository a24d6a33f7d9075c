"""Channel Access client environment: loopback only, explicit server list."""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from stxm_ctrl.config import BeamlineConfig

__all__ = ["ca_client_environment", "apply_ca_client_environment"]


def ca_client_environment(config: BeamlineConfig) -> dict[str, str]:
    """Environment variables a CA client (pyepics, caproto) needs for this beamline.

    Searches go only to the configured servers (no broadcast, no automatic address list),
    and array transfers may be as large as ``epics.ca_max_array_bytes``. Against the
    simulated fleet (no ``ca_addr_list`` configured) clients use the fleet's CA repeater.
    """
    env = {
        "EPICS_CA_ADDR_LIST": " ".join(config.ca_addr_list()),
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_MAX_ARRAY_BYTES": str(config.epics.ca_max_array_bytes),
    }
    if not config.epics.ca_addr_list:
        env["EPICS_CA_REPEATER_PORT"] = str(config.sim.repeater_port)
    return env


def apply_ca_client_environment(
    config: BeamlineConfig, environ: MutableMapping[str, str] | None = None
) -> None:
    """Write :func:`ca_client_environment` into ``environ`` (``os.environ`` by default).

    pyepics reads these when its CA context is first created, so call this before any PV
    is connected in the process.
    """
    target = os.environ if environ is None else environ
    target.update(ca_client_environment(config))
