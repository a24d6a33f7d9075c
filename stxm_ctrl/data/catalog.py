"""The Tiled catalog the runs go to: the embedded server, its API key, the client.

The embedded server is ``tiled serve catalog`` on a SQLite database in the data directory,
listening on loopback, run as a child process. Its single-user API key is generated on first
use and kept in ``data_dir/tiled_api_key`` with owner-only permissions; it is handed to the
server through the environment, never on the command line (where ``ps`` would show it).
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from stxm_ctrl.config import BeamlineConfig
from stxm_ctrl.processes import (
    ManagedProcess,
    ProcessStartError,
    port_is_free,
    python_module_argv,
    tcp_answers,
)

__all__ = [
    "CatalogServer",
    "api_key_for",
    "catalog_uri",
    "connect_catalog",
    "ensure_api_key",
    "start_catalog_server",
]

API_KEY_FILE = "tiled_api_key"
CATALOG_DB = "catalog.db"
STORAGE_DIR = "tiled_storage"
TABLES_DB = "tables.sqlite"
_START_TIMEOUT_S = 60.0


def ensure_api_key(data_dir: Path) -> str:
    """The embedded server's API key, created (mode 0600) on first use.

    Raises
    ------
    PermissionError
        If an existing key file can be read by other users.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / API_KEY_FILE
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise PermissionError(
                f"{path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
            )
        return path.read_text().strip()
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(key + "\n")
    return key


def catalog_uri(config: BeamlineConfig) -> str:
    """Base URI of the catalog the configuration names (embedded or external)."""
    catalog = config.catalog
    return catalog.uri or f"http://{catalog.host}:{catalog.port}"


def api_key_for(config: BeamlineConfig) -> str | None:
    """API key for the configured catalog: the embedded server's, or from the environment."""
    if config.catalog.embedded:
        return ensure_api_key(config.data_dir)
    return os.environ.get(config.catalog.api_key_env)


@dataclass
class CatalogServer:
    """A running embedded Tiled server; a context manager that stops it on exit."""

    uri: str
    process: ManagedProcess

    def stop(self) -> None:
        """Stop the server by its pid."""
        self.process.stop()

    def __enter__(self) -> CatalogServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_catalog_server(config: BeamlineConfig) -> CatalogServer:
    """Start the embedded Tiled server for ``config`` and wait until it answers.

    Raises
    ------
    ProcessStartError
        If the port is taken or the server fails to start (message includes its log).
    """
    data_dir = config.data_dir
    host, port = config.catalog.host, config.catalog.port
    if not port_is_free(host, port):
        raise ProcessStartError(
            f"catalog port {host}:{port} is in use; is `stxm serve` already running? Stop it, "
            "or set [catalog] port to a free port"
        )
    key = ensure_api_key(data_dir)
    database = data_dir / CATALOG_DB
    storage = data_dir / STORAGE_DIR
    storage.mkdir(parents=True, exist_ok=True)
    argv = python_module_argv(
        "tiled",
        "serve",
        "catalog",
        f"sqlite:///{database}",
        # Arrays go to files under storage, event tables to a SQLite database beside it.
        "--write",
        str(storage),
        "--write",
        f"sqlite:///{storage / TABLES_DB}",
        "--host",
        host,
        "--port",
        str(port),
    )
    if not database.exists():
        argv.append("--init")
    env = dict(os.environ, TILED_SINGLE_USER_API_KEY=key)
    process = ManagedProcess("Tiled catalog server", argv, data_dir / "logs" / "tiled.log", env)
    process.start()
    try:
        process.wait_ready(lambda: tcp_answers(host, port), _START_TIMEOUT_S)
    except BaseException:
        process.stop()
        raise
    return CatalogServer(uri=f"http://{host}:{port}", process=process)


def connect_catalog(config: BeamlineConfig):
    """A Tiled client of the configured catalog.

    Raises
    ------
    ConnectionError
        If the catalog does not answer; names the URI and how to start it.
    """
    from tiled.client import from_uri

    uri = catalog_uri(config)
    try:
        return from_uri(uri, api_key=api_key_for(config))
    except Exception as exc:  # httpx raises several kinds; all mean the same to a user
        start = "`stxm serve`" if config.catalog.embedded else "the catalog server"
        raise ConnectionError(f"catalog at {uri} does not answer ({exc}); start {start}") from exc
