"""The embedded catalog server's process: Tiled serving the SQLite catalog of runs.

Run as ``python -m stxm_ctrl.data.tiled_server DATABASE --write ... --host H --port P``
by :func:`stxm_ctrl.data.catalog.start_catalog_server`. What ``tiled serve catalog`` does,
with four differences:

- a database that is not a catalog yet is initialised in this process, into a temporary
  file renamed into place once complete, so a start interrupted during the initialisation
  (Ctrl-C, a timeout, a kill) leaves no half-made ``catalog.db`` that stops the next start.
  (Tiled's ``--init`` runs ``tiled catalog init`` in a second interpreter, which imports
  tiled all over again, and writes in place.)
- the API key is read from standard input (one line), so it is in neither the command line
  nor the environment of the process (``/proc/<pid>/environ``, readable by every process
  of the same user, keeps the environment the process started with even after it removes
  a variable);
- the root of the catalog carries the spec ``CatalogOfBlueskyRuns`` (version 3, the SQL
  catalog TiledWriter writes), so ``tiled.client.from_uri`` gives bluesky-tiled-plugins'
  catalog of runs (``catalog[-1]``, ``catalog[scan_id]``, uid prefixes, ``catalog.v1``).
  Tiled keeps a root's specs in the server's configuration, not in the database: a catalog
  made by an older version gets the spec too, unchanged on disk;
- the access log shows no query-string values of ``api_key`` (a client may put the key in
  a URL: ``?api_key=...``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sqlite3
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "CATALOG_SPEC",
    "RedactApiKey",
    "catalog_initialized",
    "initialize_catalog",
    "main",
    "redact_api_key",
]

# bluesky-tiled-plugins' client for the root; version 3: runs in SQL, as TiledWriter writes.
CATALOG_SPEC = {"name": "CatalogOfBlueskyRuns", "version": "3.0"}
_PARTIAL_SUFFIX = ".init-partial"
_API_KEY_VALUE = re.compile(r"(api_key=)[^&#\s\"]*", re.IGNORECASE)


def catalog_initialized(database: Path) -> bool:
    """True if ``database`` is a Tiled catalog: an SQLite file stamped with its revision.

    A missing or empty file, or one whose initialisation was cut short (tables but no
    revision stamp), is not.
    """
    if not database.is_file() or database.stat().st_size == 0:
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as db:
            return db.execute("SELECT version_num FROM alembic_version").fetchone() is not None
    except sqlite3.Error:
        return False


def initialize_catalog(database: Path, say=print) -> None:
    """Make ``database`` a new, empty Tiled catalog, all at once.

    The catalog is built in ``<database>.init-partial`` and renamed over ``database`` when
    complete. A file already at ``database`` that is not a catalog is replaced when empty,
    and otherwise kept aside as ``<database>.not-a-catalog-<time>`` (nothing is deleted
    that might hold data).
    """
    # The function behind `tiled catalog init`: tiled has no public call that also stamps
    # the database's migration revision.
    from tiled.commandline._catalog import init  # noqa: PLC2701

    partial = database.with_name(database.name + _PARTIAL_SUFFIX)
    for leftover in (partial, partial.with_name(partial.name + "-journal")):
        leftover.unlink(missing_ok=True)  # from an initialisation that was interrupted
    with warnings.catch_warnings():
        # alembic's, about tiled's own alembic.ini: nothing a user can act on.
        warnings.filterwarnings("ignore", "No path_separator found", DeprecationWarning)
        init(database=f"sqlite:///{partial}", if_not_exists=False)
    if database.exists() and database.stat().st_size > 0:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        aside = database.with_name(f"{database.name}.not-a-catalog-{stamp}")
        database.rename(aside)
        say(f"{database} was not a Tiled catalog (an interrupted start?); kept it as {aside}")
    os.replace(partial, database)


def redact_api_key(text: str) -> str:
    """``text`` with every ``api_key=<value>`` value replaced by ``[redacted]``."""
    return _API_KEY_VALUE.sub(r"\1[redacted]", text)


class RedactApiKey(logging.Filter):
    """Drops the value of ``api_key=`` from a log record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_api_key(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_api_key(arg) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def _log_config() -> dict[str, Any]:
    """Tiled's logging configuration with :class:`RedactApiKey` on every handler."""
    import copy

    from tiled.server.logging_config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"]["redact_api_key"] = {"()": f"{__name__}.RedactApiKey"}
    for handler in config["handlers"].values():
        # First: the formatter decodes %-escapes after filters, so redact the raw path too.
        handler["filters"] = ["redact_api_key", *handler.get("filters", [])]
    return config


def _parse(args: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stxm_ctrl.data.tiled_server")
    parser.add_argument("database", type=Path, help="the catalog's SQLite file")
    parser.add_argument("--write", action="append", default=[], help="writable storage")
    parser.add_argument("--read", action="append", default=[], help="readable storage")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--init", action="store_true", help="create the catalog if missing")
    return parser.parse_args(args)


def main(args: Sequence[str]) -> None:
    """Serve the catalog; the API key is the first line of standard input."""
    options = _parse(args)
    key = sys.stdin.readline().strip()
    if not key:
        sys.exit("no API key on standard input")
    if options.init and not catalog_initialized(options.database):
        initialize_catalog(
            options.database, say=lambda line: print(line, file=sys.stderr, flush=True)
        )
    import uvicorn
    from tiled.catalog import from_uri
    from tiled.config import Authentication
    from tiled.server.app import build_app

    tree = from_uri(
        f"sqlite:///{options.database}",
        specs=[CATALOG_SPEC],
        writable_storage=options.write,
        readable_storage=options.read,
        init_if_not_exists=False,
    )
    app = build_app(tree, Authentication(single_user_api_key=key))
    print(f"serving {options.database} on http://{options.host}:{options.port}", flush=True)
    uvicorn.run(app, host=options.host, port=options.port, log_config=_log_config())


if __name__ == "__main__":
    main(sys.argv[1:])
