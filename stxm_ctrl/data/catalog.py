"""The Tiled catalog the runs go to: the embedded server, its API key, the client.

The embedded server is ``tiled serve catalog`` on a SQLite database in the data directory,
listening on loopback, run as a child process. Its single-user API key is generated on first
use and kept in ``data_dir/tiled_api_key`` (0600), and in no other file:

- it reaches the child through the environment, never on the command line (where ``ps``
  would show it);
- the child is :mod:`stxm_ctrl.data.tiled_server`, which takes the key out of its
  environment and hands it to Tiled's command line *in-process* as ``--api-key``. Given
  the key that way, Tiled does not print its start-up banner with the key (it does when the
  key comes from ``TILED_SINGLE_USER_API_KEY``), so the server log
  ``data_dir/logs/tiled.log`` never holds it.

A start waits for the server while its process is alive, up to ``[catalog]
start_timeout_s`` (importing tiled's server costs ~12 s of CPU; on a loaded machine a start
takes a minute), saying every 15 s that it is still starting. The child initialises a new
catalog all at once (a temporary file renamed into place), so a start interrupted during
the initialisation leaves nothing that stops the next one.

Everything the server creates in the data directory is owner-only: it runs with umask 077
(databases 0600, directories 0700), its log is 0600 in a 0700 directory.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stxm_ctrl.config import BeamlineConfig
from stxm_ctrl.disk import PRIVATE_FILE_MODE, make_private_dir
from stxm_ctrl.processes import (
    ManagedProcess,
    ProcessStartError,
    describe_port_holders,
    port_is_free,
    python_module_argv,
    tcp_answers,
)

__all__ = [
    "CatalogServer",
    "api_key_for",
    "catalog_uri",
    "catalog_client",
    "catalog_server_process",
    "close_catalog",
    "connect_catalog",
    "ensure_api_key",
    "start_catalog_server",
]

API_KEY_FILE = "tiled_api_key"
CATALOG_DB = "catalog.db"
STORAGE_DIR = "tiled_storage"
TABLES_DB = "tables.sqlite"
LOG_FILE = Path("logs") / "tiled.log"
# How the key reaches the child (stxm_ctrl.data.tiled_server), which removes it before Tiled
# runs; the same name as there (that module is not imported here: it is the child's).
_KEY_ENV = "TILED_SINGLE_USER_API_KEY"
_STILL_STARTING_EVERY_S = 15.0


def ensure_api_key(data_dir: Path) -> str:
    """The embedded server's API key, created (mode 0600) on first use.

    Raises
    ------
    PermissionError
        If an existing key file can be read by other users.
    """
    make_private_dir(data_dir)
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


def catalog_server_process(config: BeamlineConfig) -> ManagedProcess:
    """The embedded Tiled server for ``config`` as a child process, not started yet.

    Creates the API key and the storage directory if needed.

    Raises
    ------
    ProcessStartError
        If the port is taken (naming the process that holds it).
    """
    data_dir = config.data_dir
    host, port = config.catalog.host, config.catalog.port
    if not port_is_free(host, port):
        raise ProcessStartError(
            f"catalog port {host}:{port} is in use ({describe_port_holders(host, port)}); is "
            "`stxm serve` already running? Stop it, or set [catalog] port to a free port"
        )
    key = ensure_api_key(data_dir)
    database = data_dir / CATALOG_DB
    storage = data_dir / STORAGE_DIR
    make_private_dir(storage)
    _make_owner_only(database, storage / TABLES_DB)
    argv = python_module_argv(
        "stxm_ctrl.data.tiled_server",
        str(database),
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
    env = dict(os.environ, **{_KEY_ENV: key})
    # umask 077: the databases, their journals and the storage directories are owner-only.
    return ManagedProcess("Tiled catalog server", argv, data_dir / LOG_FILE, env, umask=0o077)


def start_catalog_server(
    config: BeamlineConfig, *, say: Callable[[str], None] | None = None
) -> CatalogServer:
    """Start the embedded Tiled server for ``config`` and wait until it answers.

    Parameters
    ----------
    config
        The configuration; ``[catalog] start_timeout_s`` bounds the wait.
    say
        Receives a line every 15 s while the server is still starting (None: silent).

    Raises
    ------
    ProcessStartError
        If the port is taken, the server exits while starting, or it does not answer
        within ``[catalog] start_timeout_s`` (message includes its log).
    """
    host, port = config.catalog.host, config.catalog.port
    process = catalog_server_process(config)
    process.start()
    try:
        process.wait_ready(
            lambda: tcp_answers(host, port),
            config.catalog.start_timeout_s,
            say=say,
            say_every_s=_STILL_STARTING_EVERY_S,
            limit="[catalog] start_timeout_s",
        )
    except BaseException:
        process.stop()
        raise
    return CatalogServer(uri=f"http://{host}:{port}", process=process)


def _make_owner_only(*paths: Path) -> None:
    # Databases made by an older version (or another umask) may be readable by others.
    for path in paths:
        try:
            if path.exists() and stat.S_IMODE(path.stat().st_mode) & 0o077:
                path.chmod(PRIVATE_FILE_MODE)
        except OSError:  # not ours: the server will say if it cannot open it
            pass


@contextlib.contextmanager
def catalog_client(config: BeamlineConfig) -> Iterator[Any]:
    """:func:`connect_catalog` as a context manager that closes the client on exit."""
    client = connect_catalog(config)
    try:
        yield client
    finally:
        close_catalog(client)


def close_catalog(client: Any) -> None:
    """Close a client of :func:`connect_catalog` (its HTTP connections)."""
    context = getattr(client, "context", None)
    if context is not None:
        context.close()


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
