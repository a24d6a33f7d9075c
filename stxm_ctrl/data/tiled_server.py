"""The embedded catalog server's process: ``python -m stxm_ctrl.data.tiled_server``.

Started by :func:`stxm_ctrl.data.catalog.start_catalog_server`. It imports only what serving
needs (tiled's server; not the project's configuration models), and:

- initialises the SQLite catalog in this process when it is not a catalog yet, into a
  temporary file renamed into place once complete, so a start interrupted during the
  initialisation (Ctrl-C, a timeout, a kill) leaves no half-made ``catalog.db`` that stops
  the next start. (Tiled's ``--init`` runs ``tiled catalog init`` in a second interpreter,
  which imports tiled all over again, and writes in place.)
- takes the API key out of its environment and hands it to Tiled's command line as
  ``--api-key``, so the key is in no command line ``ps`` shows, and Tiled prints no banner
  with it (it does when the key comes from ``TILED_SINGLE_USER_API_KEY``).

Usage: ``python -m stxm_ctrl.data.tiled_server DATABASE [tiled serve catalog options]``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

__all__ = ["catalog_initialized", "initialize_catalog", "main"]

#: How the key reaches this process (removed from the environment before Tiled runs).
KEY_ENV = "TILED_SINGLE_USER_API_KEY"
_PARTIAL_SUFFIX = ".init-partial"


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
    from tiled.commandline._catalog import init

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


def main(argv: Sequence[str]) -> None:
    """Initialise the catalog if needed, then run ``tiled serve catalog``."""
    database, *options = argv
    path = Path(database)
    if not catalog_initialized(path):
        initialize_catalog(path, say=lambda line: print(line, file=sys.stderr, flush=True))
    from tiled.commandline.main import main as tiled_main

    key = os.environ.pop(KEY_ENV, None)
    extra = ["--api-key", key] if key else []
    tiled_main(args=["serve", "catalog", f"sqlite:///{path}", *options, *extra], prog_name="tiled")


if __name__ == "__main__":
    main(sys.argv[1:])
