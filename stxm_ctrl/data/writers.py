"""Document subscribers: the local spool and a catalog writer that never aborts a scan.

Every run is spooled, document by document, to a JSON Lines file in ``data_dir/spool``
before anything else sees it, so a catalog that is down, full or slow never costs measured
data. The catalog writer wraps ``bluesky_tiled_plugins.TiledWriter``: a write error stops
writing *that run* to the catalog (with one clear message naming the spool file) instead of
aborting the scan, and ``stxm import-spool FILE`` puts the run in the catalog later.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bluesky_tiled_plugins import TiledWriter
from event_model import RunRouter

__all__ = ["CatalogWriter", "DocumentSpool", "read_spool_file", "spool_file_for"]

log = logging.getLogger(__name__)

Callback = Callable[[str, dict], Any]


def spool_file_for(spool_dir: Path, uid: str) -> Path:
    """The JSON Lines file that holds the run ``uid``."""
    return Path(spool_dir) / f"{uid}.jsonl"


class _SpoolRun:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "a")  # noqa: SIM115 - closed at the stop document

    def __call__(self, name: str, doc: dict) -> None:
        json.dump({"name": name, "doc": doc}, self._file, default=_to_json)
        self._file.write("\n")
        # Flushed per document: a crash loses at most the document being written.
        self._file.flush()
        if name == "stop":
            self._file.close()


def _to_json(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot spool {type(value).__name__}")


class DocumentSpool:
    """Write every run to ``spool_dir/<uid>.jsonl`` as it happens.

    Parameters
    ----------
    spool_dir
        Directory for the spool files.
    """

    def __init__(self, spool_dir: Path) -> None:
        self.spool_dir = Path(spool_dir)
        self._router = RunRouter([self._factory])

    def _factory(self, name: str, start_doc: dict) -> tuple[list[Callback], list]:
        return [_SpoolRun(spool_file_for(self.spool_dir, start_doc["uid"]))], []

    def __call__(self, name: str, doc: dict) -> None:
        self._router(name, doc)


class _GuardedRun:
    def __init__(self, writer: TiledWriter, spool_dir: Path, uid: str, report: Callable) -> None:
        self.writer = writer
        self.spool_dir = spool_dir
        self.uid = uid
        self.report = report
        self.failed = False

    def __call__(self, name: str, doc: dict) -> None:
        if self.failed:
            return
        try:
            self.writer(name, doc)
        except Exception as exc:  # any catalog failure: keep scanning, data is spooled
            self.failed = True
            self.report(
                f"catalog write failed for run {self.uid} ({type(exc).__name__}: {exc}); "
                f"the scan goes on and the run is kept in "
                f"{spool_file_for(self.spool_dir, self.uid)}; put it in the catalog later with "
                f"`stxm import-spool {spool_file_for(self.spool_dir, self.uid)}`"
            )


class CatalogWriter:
    """Write runs to a Tiled catalog; on failure, warn and carry on (the spool has them).

    Parameters
    ----------
    client
        Tiled client of the catalog (with write access).
    spool_dir
        Where :class:`DocumentSpool` keeps the runs (named in failure messages).
    batch_size
        Events per table write (see ``TiledWriter``).
    report
        Called with the failure message (default: log a warning).
    """

    def __init__(
        self,
        client: Any,
        spool_dir: Path,
        *,
        batch_size: int = 100,
        report: Callable[[str], None] | None = None,
    ) -> None:
        self.writer = TiledWriter(client, batch_size=batch_size)
        self.spool_dir = Path(spool_dir)
        self.report = report or log.warning
        self.failed_runs: list[str] = []
        self._router = RunRouter([self._factory])

    def _factory(self, name: str, start_doc: dict) -> tuple[list[Callback], list]:
        uid = start_doc["uid"]

        def report(message: str) -> None:
            self.failed_runs.append(uid)
            self.report(message)

        return [_GuardedRun(self.writer, self.spool_dir, uid, report)], []

    def __call__(self, name: str, doc: dict) -> None:
        self._router(name, doc)


def read_spool_file(path: Path) -> Iterator[tuple[str, dict]]:
    """The (name, document) pairs of a spool file, in order."""
    with open(path) as file:
        for line in file:
            if line.strip():
                item = json.loads(line)
                yield item["name"], item["doc"]
