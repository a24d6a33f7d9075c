"""The composition root: the session, the demo, the queue-server startup and the CLI.

The only part of ``stxm_ctrl`` that imports ``devices`` and ``plans``; the rest of the core
imports neither (import-linter checks it; see docs/decisions/0005-import-layers.md).

The session's names are re-exported lazily (PEP 562): ``from stxm_ctrl.app import
build_session`` imports the session, while a command that needs none of it (``stxm config``,
``stxm optics``) starts without loading bluesky, ophyd and Tiled (seconds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name in __all__:
        from stxm_ctrl.app import session

        return getattr(session, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
