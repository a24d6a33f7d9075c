"""The Tiled catalog the runs go to: the embedded server, its API key, the client.

The embedded server is Tiled serving a SQLite database in the data directory, listening on
loopback, run as a child process (:mod:`stxm_ctrl.data.tiled_server`). Its single-user API
key is generated on first use and kept in ``data_dir/tiled_api_key`` (0600), and in no other
file: the child reads it on its standard input, so it is in neither the child's command line
(``ps``) nor its environment (``/proc/<pid>/environ``); Tiled prints no banner with it, and
the server log ``data_dir/logs/tiled.log`` shows ``api_key=[redacted]`` for a key a client
put in a URL.

The root of the catalog is bluesky-tiled-plugins' catalog of runs: :func:`connect_catalog`
returns a ``CatalogOfBlueskyRuns`` (``catalog[-1]``, ``catalog[scan_id]``, a uid prefix,
``catalog.v1`` for databroker's v1 API).

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
from stxm_ctrl.errors import UsageError
from stxm_ctrl.processes import (
    ManagedProcess,
    ProcessStartError,
    describe_port_holders,
    port_is_free,
    python_module_argv,
    tcp_answers,
)

__all__ = [
    "ApiKeyFileError",
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
# Tiled reads a key from this variable; the child gets its key on stdin, never from here.
_KEY_ENV = "TILED_SINGLE_USER_API_KEY"
_STILL_STARTING_EVERY_S = 15.0


class ApiKeyFileError(UsageError):
    """The API key file is open to other users (the message says how to fix it)."""


def ensure_api_key(data_dir: Path) -> str:
    """The embedded server's API key, created (mode 0600) on first use.

    Raises
    ------
    ApiKeyFileError
        If an existing key file can be read by other users.
    """
    make_private_dir(data_dir)
    path = data_dir / API_KEY_FILE
    if path.exists():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ApiKeyFileError(
                f"the catalog's API key file {path} is open to other users (mode {mode:04o}); "
                f"make it owner-only with `chmod 600 {path}` (and make a new key, by removing "
                "the file, if others may have read it)"
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
    # The child initialises the database when it is not a catalog yet (missing, empty, or
    # an initialisation cut short), all at once.
    argv.append("--init")
    env = {name: value for name, value in os.environ.items() if name != _KEY_ENV}
    # umask 077: the databases, their journals and the storage directories are owner-only.
    return ManagedProcess(
        "Tiled catalog server",
        argv,
        data_dir / LOG_FILE,
        env,
        umask=0o077,
        stdin_data=f"{key}\n".encode(),
    )


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
    """A client of the configured catalog: bluesky-tiled-plugins' ``CatalogOfBlueskyRuns``.

    Raises
    ------
    ConnectionError
        If the catalog does not answer, refuses the API key, or what answers is not a Tiled
        server; the message names the URI, which of these it is, and what to do.
    """
    import httpx
    from tiled.client import from_uri

    uri = catalog_uri(config)
    key = api_key_for(config)
    if config.catalog.embedded:
        # Asked first with a client closed here: Tiled's leaves its connection open when
        # the first request fails.
        problem = _embedded_catalog_problem(config, uri, key)
        if problem is not None:
            raise ConnectionError(problem)
    try:
        return from_uri(uri, api_key=key)
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise ConnectionError(_does_not_answer(config, uri, exc)) from exc
    except httpx.TimeoutException as exc:
        raise ConnectionError(_no_reply_in_time(uri, exc)) from exc
    except httpx.HTTPStatusError as exc:
        raise ConnectionError(_refusal(config, uri, exc.response)) from exc
    except Exception as exc:  # a reply that is not Tiled's (JSON it does not know, HTML...)
        raise ConnectionError(_not_tiled(config, uri, f"{type(exc).__name__}: {exc}")) from exc


def _embedded_catalog_problem(config: BeamlineConfig, uri: str, key: str | None) -> str | None:
    """Why the embedded catalog at ``uri`` cannot be used with ``key``, or None if it can."""
    import httpx

    headers = {"Authorization": f"Apikey {key}"} if key else {}
    with httpx.Client(timeout=30.0, trust_env=False) as http:
        try:
            reply = http.get(f"{uri}/api/v1/metadata/", headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            return _does_not_answer(config, uri, exc)
        except httpx.TimeoutException as exc:
            return _no_reply_in_time(uri, exc)
        except httpx.HTTPError as exc:  # it does not speak HTTP
            return _not_tiled(config, uri, f"{type(exc).__name__}: {exc}")
    if reply.status_code != 200:
        return _refusal(config, uri, reply)
    try:
        answer = reply.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or "data" not in answer:
        return _not_tiled(config, uri, f"HTTP 200 with a {reply.headers.get('content-type')}")
    return None


def _does_not_answer(config: BeamlineConfig, uri: str, exc: Exception) -> str:
    start = "`stxm serve`" if config.catalog.embedded else "the catalog server"
    return f"catalog at {uri} does not answer ({type(exc).__name__}: {exc}); start {start}"


def _no_reply_in_time(uri: str, exc: Exception) -> str:
    return (
        f"catalog at {uri} accepted the connection but did not reply in time ({exc}); if it "
        "is still starting, wait and try again"
    )


def _not_tiled(config: BeamlineConfig, uri: str, what: str) -> str:
    return (
        f"what answers at {uri} is not a Tiled catalog ({what}); {_other_server_hint(config, uri)}"
    )


def _other_server_hint(config: BeamlineConfig, uri: str) -> str:
    if config.catalog.embedded:
        host, port = config.catalog.host, config.catalog.port
        return (
            f"another program holds port {port} ({describe_port_holders(host, port)}): stop "
            "it, or set [catalog] port to a free port and start `stxm serve`"
        )
    return f"check [catalog] uri ({uri})"


def _refusal(config: BeamlineConfig, uri: str, response: Any) -> str:
    """One line for an HTTP error from the catalog's first request."""
    status = response.status_code
    if status in (401, 403):
        if config.catalog.embedded:
            return (
                f"the catalog at {uri} refused the API key of {config.data_dir / API_KEY_FILE} "
                f"(HTTP {status}): the server on port {config.catalog.port} is the `stxm serve` "
                "of another data directory; use that directory's configuration, or stop that "
                "server and start `stxm serve` for this one"
            )
        return (
            f"the catalog at {uri} refused the API key in ${config.catalog.api_key_env} "
            f"(HTTP {status}); set it to this server's key"
        )
    return _not_tiled(config, uri, f"HTTP {status}")
