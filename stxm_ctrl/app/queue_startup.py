"""Startup module for bluesky-queueserver: the microscope's devices, plans and RunEngine.

Start a queue server on the configured beamline (``STXM_CONFIG`` names the configuration;
the simulated fleet and the catalog must be running, as for a session)::

    STXM_CONFIG=beamline.toml start-re-manager \\
        --startup-module stxm_ctrl.app.queue_startup --keep-re ...

The module builds exactly what :func:`stxm_ctrl.app.build_session` builds, with the same two
functions: :func:`~stxm_ctrl.app.session.connect_devices` and
:func:`~stxm_ctrl.app.session.wire_data_path`. Its namespace is the queue server's interface:
``RE``, each device under its name (the fields of :class:`devices.StxmDevices`:
``sample_x``, ``sample_y``, ``apd``, ``ring``, ...) and every plan of :mod:`plans`.
"""

from __future__ import annotations

from bluesky import RunEngine

import plans
from stxm_ctrl.app.instrument_state import record_instrument_state
from stxm_ctrl.app.session import connect_devices, session_metadata, wire_data_path
from stxm_ctrl.config import load_config

config = load_config()
devices = connect_devices(config)
RE = RunEngine(session_metadata(config))
data_path = wire_data_path(RE, config)
record_instrument_state(RE, devices, config)

# The queue server finds devices and plans by name in this namespace: every device of the
# microscope and every plan the plans package exports, so a new one needs no edit here.
globals().update(devices.by_name())
globals().update({name: getattr(plans, name) for name in plans.PLANS})
