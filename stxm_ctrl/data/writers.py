"""Document subscribers: the local spool and a catalog writer that never aborts a scan.

Every run is spooled, document by document, to a JSON Lines file in ``data_dir/spool``
before anything else sees it, so a catalog that is down, full or slow never costs measured
data. The catalog writer wraps ``bluesky_tiled_plugins.TiledWriter``: a write error stops
writing *that run* to the catalog (with one clear message naming the spool file) instead of
aborting the scan, and ``stxm import-spool FILE`` puts the run in the catalog later.
"""

from __future__ import annotations

import copy
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bluesky_tiled_plugins import TiledWriter
from event_model import RunRouter

__all__ = [
    "CatalogWriter",
    "DocumentSpool",
    "SpoolImportError",
    "import_spool_file",
    "read_spool_file",
    "spool_file_for",
]

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
    """Write runs to a Tiled catalog from a background thread; never hold up or abort a scan.

    The RunEngine hands each document over and goes on at once; a worker thread writes it
    to the catalog. A catalog that is slow, or down while the Tiled client retries (which
    it does for over a minute), therefore costs the scan nothing. A write that fails for
    good stops writing *that run* with one message naming its spool file; the next run
    is tried afresh.

    Parameters
    ----------
    client
        Tiled client of the catalog (with write access).
    spool_dir
        Where :class:`DocumentSpool` keeps the runs (named in failure messages).
    batch_size
        Events per table write (see ``TiledWriter``).
    report
        Called with the failure message, from the worker thread (default: log a warning).
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
        self._queue: queue.Queue[tuple[str, dict] | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="catalog-writer", daemon=True)
        self._worker.start()

    def _factory(self, name: str, start_doc: dict) -> tuple[list[Callback], list]:
        uid = start_doc["uid"]

        def report(message: str) -> None:
            self.failed_runs.append(uid)
            self.report(message)

        return [_GuardedRun(self.writer, self.spool_dir, uid, report)], []

    def __call__(self, name: str, doc: dict) -> None:
        # A copy: the writer may normalise documents that other subscribers still read.
        self._queue.put((name, copy.deepcopy(doc)))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._router(*item)
            except Exception:  # a broken document must not kill the worker
                log.exception("catalog writer: unexpected error on a %s document", item[0])
            finally:
                self._queue.task_done()

    @property
    def pending(self) -> int:
        """Documents handed over but not yet written (or given up on)."""
        return self._queue.unfinished_tasks

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every document handed over so far is written; False on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def close(self, timeout_s: float | None = None) -> bool:
        """Flush, then stop the worker. Returns False if documents were still pending."""
        drained = self.flush(timeout_s)
        self._queue.put(None)
        if drained:
            self._worker.join(timeout_s)
        return drained


def read_spool_file(path: Path) -> Iterator[tuple[str, dict]]:
    """The (name, document) pairs of a spool file, in order."""
    with open(path) as file:
        for line in file:
            if line.strip():
                item = json.loads(line)
                yield item["name"], item["doc"]


class SpoolImportError(RuntimeError):
    """A spooled run cannot be put in the catalog (the message says why and what to do)."""


@dataclass(frozen=True)
class SpoolImport:
    """What :func:`import_spool_file` did."""

    uid: str
    documents: int
    replaced_partial_copy: bool
    complete: bool


def import_spool_file(client: Any, path: Path, *, batch_size: int = 100) -> SpoolImport:
    """Put a spooled run into the catalog.

    A run whose catalog write failed part-way has an incomplete copy in the catalog (the
    documents written before the failure, no stop document). That copy is replaced by the
    spool's, which holds every document. A complete copy is never touched.

    Parameters
    ----------
    client
        Tiled client of the catalog (with write access).
    path
        Spool file (``data_dir/spool/<uid>.jsonl``).
    batch_size
        Events per table write.

    Returns
    -------
    SpoolImport
        The run's uid, documents written, whether a partial copy was replaced, and whether
        the spool holds a stop document (a run cut off by a crash has none).

    Raises
    ------
    SpoolImportError
        If the file holds no run or the catalog already has the complete run.
    """
    path = Path(path)
    documents = list(read_spool_file(path))
    if not documents or documents[0][0] != "start":
        raise SpoolImportError(f"{path} holds no run (its first document is not a start document)")
    uid = documents[0][1]["uid"]
    replaced = False
    if uid in client:
        if client[uid].metadata.get("stop"):
            raise SpoolImportError(
                f"run {uid} is already complete in the catalog; nothing to import from {path}"
            )
        # Documents written before the failure; the spool has them all.
        client.delete_contents(uid, recursive=True, external_only=False)
        replaced = True
    writer = TiledWriter(client, batch_size=batch_size)
    for name, doc in documents:
        writer(name, doc)
    complete = documents[-1][0] == "stop"
    return SpoolImport(uid, len(documents), replaced, complete)
