"""The embedded catalog server's process: Tiled serving the SQLite catalog of runs.

Run as ``python -m stxm_ctrl.data.tiled_server DATABASE --write ... --host H --port P``
by :func:`stxm_ctrl.data.catalog.start_catalog_server`. What ``tiled serve catalog`` does,
with three differences:

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
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["CATALOG_SPEC", "RedactApiKey", "main", "redact_api_key"]

# bluesky-tiled-plugins' client for the root; version 3: runs in SQL, as TiledWriter writes.
CATALOG_SPEC = {"name": "CatalogOfBlueskyRuns", "version": "3.0"}
_API_KEY_VALUE = re.compile(r"(api_key=)[^&#\s\"]*", re.IGNORECASE)


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
    import uvicorn
    from tiled.catalog import from_uri
    from tiled.config import Authentication
    from tiled.server.app import build_app

    tree = from_uri(
        f"sqlite:///{options.database}",
        specs=[CATALOG_SPEC],
        writable_storage=options.write,
        readable_storage=options.read,
        init_if_not_exists=options.init,
    )
    app = build_app(tree, Authentication(single_user_api_key=key))
    print(f"serving {options.database} on http://{options.host}:{options.port}", flush=True)
    uvicorn.run(app, host=options.host, port=options.port, log_config=_log_config())


if __name__ == "__main__":
    main(sys.argv[1:])
