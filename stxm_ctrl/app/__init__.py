"""The composition root: the session, the demo, the queue-server startup and the CLI.

The only part of ``stxm_ctrl`` that imports ``devices`` and ``plans``; the rest of the core
imports neither (import-linter checks it; see docs/decisions/0005-import-layers.md).
"""

from stxm_ctrl.app.session import (
    DataPath,
    Session,
    build_session,
    connect_devices,
    session_metadata,
    wire_data_path,
)

__all__ = [
    "DataPath",
    "Session",
    "build_session",
    "connect_devices",
    "session_metadata",
    "wire_data_path",
]
