"""Document subscribers: the local spool and a catalog writer that never aborts a scan.

Every run is spooled, document by document, to a JSON Lines file in ``data_dir/spool``
before anything else sees it, so a catalog that is down, full or slow never costs measured
data. The catalog writer wraps ``bluesky_tiled_plugins.TiledWriter``: a write error stops
writing *that run* to the catalog (with one clear message naming the spool file) instead of
aborting the scan, and ``stxm import-spool FILE`` puts the run in the catalog later.

A spool line is whole or absent: each document is one line written with ``os.write`` from
a single buffer, and a write cut short (a full disk) is truncated away again, so a later
write can never complete half a line into something that looks valid. A crash can still
leave a torn *last* line; :func:`read_spool_file` skips it and says so.
"""

from __future__ import annotations

import copy
import errno
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast, overload

from bluesky_tiled_plugins import TiledWriter
from bluesky_tiled_plugins.writing.tiled_writer import (
    RunNormalizer,
    _RunWriter,  # noqa: PLC2701 - built here to flush it (see _BatchFlushingTiledWriter)
)
from event_model import RunRouter

from stxm_ctrl.disk import make_private_dir, open_private_append

__all__ = [
    "SPOOL_BYTES_PER_EVENT",
    "SPOOL_BYTES_PER_RUN",
    "CatalogWriter",
    "DocumentSpool",
    "SpoolContents",
    "SpoolCorruptError",
    "SpoolImport",
    "SpoolImportError",
    "SpoolWriteError",
    "catalog_event_counts",
    "estimate_spool_bytes",
    "import_spool_file",
    "read_spool_file",
    "spool_event_counts",
    "spool_file_for",
]

log = logging.getLogger(__name__)

Callback = Callable[[str, dict], Any]

# Measured on `stxm demo` spools (sample_image, 5 data keys): 592-594 bytes per primary
# event page, ~1.5 kB start, ~2.5 kB per descriptor, ~250 bytes stop; the ring-current
# monitor adds a few percent of events. Rounded up for margin (longer metadata, more keys).
SPOOL_BYTES_PER_EVENT = 1024
SPOOL_BYTES_PER_RUN = 64 * 1024


def spool_file_for(spool_dir: Path, uid: str) -> Path:
    """The JSON Lines file that holds the run ``uid``."""
    return Path(spool_dir) / f"{uid}.jsonl"


def estimate_spool_bytes(
    num_points: int,
    bytes_per_event: int = SPOOL_BYTES_PER_EVENT,
    *,
    bytes_per_run: int = SPOOL_BYTES_PER_RUN,
) -> int:
    """Disk space the spool of a run with ``num_points`` events needs (an upper estimate).

    Parameters
    ----------
    num_points
        Events the run will emit (pixels of an image, points of a spectrum).
    bytes_per_event
        Spool bytes per event; the default is measured on ``sample_image`` with margin.
    bytes_per_run
        Start, descriptor and stop documents.

    Returns
    -------
    int
        Bytes, to hand to :func:`stxm_ctrl.disk.check_free_space`.
    """
    if num_points < 0:
        raise ValueError(f"num_points must be >= 0, got {num_points}")
    return bytes_per_run + num_points * bytes_per_event


class SpoolWriteError(OSError):
    """A document could not be spooled (disk full, quota exceeded, I/O error).

    The message says which disk, how many documents of the run are safely in which file,
    and what to do. Everything written before is readable; the file never ends in half a
    line because of it.

    Attributes
    ----------
    path
        The spool file.
    uid
        The run.
    documents
        Documents of the run safely in ``path``.
    events
        Events among them.
    """

    def __init__(
        self, message: str, err: int, *, path: Path, uid: str, documents: int, events: int
    ) -> None:
        super().__init__(err, message)
        self.path = path
        self.uid = uid
        self.documents = documents
        self.events = events

    def __str__(self) -> str:
        return self.strerror or ""


def _write_whole_line(fd: int, line: bytes, start: int) -> None:
    """Append ``line``; if that fails part-way, cut the file back to ``start`` and raise."""
    view = memoryview(line)
    done = 0
    try:
        while done < len(line):
            written = os.write(fd, view[done:])
            if written == 0:  # never for a regular file, but never loop forever either
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            done += written
    except OSError:
        if done:
            # Shrinking needs no free space; the partial line must not stay for a later
            # write to complete into garbage.
            try:
                os.ftruncate(fd, start)
            except OSError:
                log.debug("could not cut the partial line off the spool file", exc_info=True)
        raise


def _spool_failure_message(exc: OSError, path: Path, uid: str, documents: int, events: int) -> str:
    kept = f"the first {documents} documents of run {uid} ({events} events) are safely in {path}"
    import_hint = f"`stxm import-spool {path}` puts what was spooled into the catalog"
    if exc.errno == errno.ENOSPC:
        return (
            f"the disk holding {path.parent} is full: {kept}; free space on that disk (or set "
            f"[beamline] data_dir to a disk with room) before the next scan; {import_hint}"
        )
    if exc.errno == errno.EDQUOT:
        return (
            f"your disk quota on the disk holding {path.parent} is used up: {kept}; delete "
            f"files or ask for a larger quota (or set [beamline] data_dir to another disk) "
            f"before the next scan; {import_hint}"
        )
    return (
        f"writing the spool file {path} failed ({exc.strerror or exc}): {kept}; check that "
        f"disk (permissions, mount, I/O errors) before the next scan; {import_hint}"
    )


def _event_count(name: str, doc: dict) -> int:
    if name == "event":
        return 1
    if name == "event_page":
        return len(doc.get("seq_num", ()))
    return 0


class _SpoolRun:
    """One run's spool file: whole lines only; after a failure, silent until the run ends.

    The start document is written when the file is made, from the RunRouter's factory: an
    error there reaches the RunEngine as it is (the router wraps errors that callbacks raise
    on the start document in a misleading compatibility warning).
    """

    def __init__(
        self, path: Path, start_doc: dict, report: Callable[[SpoolWriteError], None]
    ) -> None:
        self.path = path
        self.uid = start_doc["uid"]
        self.documents = 0
        self.events = 0
        self._report = report
        self._fd: int | None = None
        try:
            make_private_dir(path.parent)
            self._fd = open_private_append(path)
            self._size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise self._failure(exc) from None
        self._write("start", start_doc)

    def _failure(self, exc: OSError) -> SpoolWriteError:
        error = SpoolWriteError(
            _spool_failure_message(exc, self.path, self.uid, self.documents, self.events),
            exc.errno or errno.EIO,
            path=self.path,
            uid=self.uid,
            documents=self.documents,
            events=self.events,
        )
        self._report(error)
        return error

    def __call__(self, name: str, doc: dict) -> None:
        if name != "start":  # written by __init__
            self._write(name, doc)

    def _write(self, name: str, doc: dict) -> None:
        if self._fd is None:
            # Spooling this run failed (reported once) or the run is over: the documents
            # that follow, the RunEngine's closing stop document included, are dropped
            # quietly rather than raising again while the RunEngine cleans up.
            return
        line = (json.dumps({"name": name, "doc": doc}, default=_to_json) + "\n").encode()
        try:
            _write_whole_line(self._fd, line, self._size)
        except OSError as exc:
            self._close()
            raise self._failure(exc) from None
        # No fsync per document: the line is in the kernel, so a crash of this process
        # loses nothing; fsync at the stop document covers a machine crash after the run.
        self._size += len(line)
        self.documents += 1
        self.events += _event_count(name, doc)
        if name == "stop":
            try:
                os.fsync(self._fd)
            except OSError:
                log.debug("fsync of %s failed", self.path, exc_info=True)
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _to_json(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot spool {type(value).__name__}")


class DocumentSpool:
    """Write every run to ``spool_dir/<uid>.jsonl`` as it happens.

    Directories are created 0700 and files 0600. If a document cannot be written (disk
    full), :class:`SpoolWriteError` is raised once for that run (the RunEngine then stops
    the scan) and the rest of the run is dropped quietly; every earlier document stays
    readable.

    Parameters
    ----------
    spool_dir
        Directory for the spool files.

    Attributes
    ----------
    failures
        The :class:`SpoolWriteError` of each run whose spooling failed, by run uid.
    """

    def __init__(self, spool_dir: Path) -> None:
        self.spool_dir = Path(spool_dir)
        self.failures: dict[str, SpoolWriteError] = {}
        self._router = RunRouter([self._factory])

    def _factory(self, name: str, start_doc: dict) -> tuple[list[Callback], list]:
        uid = start_doc["uid"]

        def report(error: SpoolWriteError) -> None:
            self.failures[uid] = error

        return [_SpoolRun(spool_file_for(self.spool_dir, uid), start_doc, report)], []

    def __call__(self, name: str, doc: dict) -> None:
        self._router(name, doc)


class SpoolCorruptError(ValueError):
    """A spool file has a damaged line before its end (not a torn last write)."""


class SpoolContents(Sequence[tuple[str, dict]]):
    """The (name, document) pairs of a spool file, and whether a torn last line was skipped.

    Attributes
    ----------
    path
        The file read.
    torn_offset
        Byte offset of the torn last line that was skipped, or None.
    torn_bytes
        Its length in bytes (0 if none).
    """

    def __init__(
        self,
        path: Path,
        documents: list[tuple[str, dict]],
        torn_offset: int | None = None,
        torn_bytes: int = 0,
    ) -> None:
        self.path = Path(path)
        self._documents = documents
        self.torn_offset = torn_offset
        self.torn_bytes = torn_bytes

    @property
    def torn(self) -> bool:
        """True if the file ended in a torn line (skipped)."""
        return self.torn_offset is not None

    @overload
    def __getitem__(self, index: int) -> tuple[str, dict]: ...

    @overload
    def __getitem__(self, index: slice) -> list[tuple[str, dict]]: ...

    def __getitem__(self, index):
        return self._documents[index]

    def __len__(self) -> int:
        return len(self._documents)

    def __iter__(self) -> Iterator[tuple[str, dict]]:
        return iter(self._documents)

    def __repr__(self) -> str:
        torn = f", torn line at byte {self.torn_offset} skipped" if self.torn else ""
        return f"<SpoolContents {self.path}: {len(self)} documents{torn}>"


def read_spool_file(path: Path) -> SpoolContents:
    """The (name, document) pairs of a spool file, in order.

    A last line without its newline that is not a whole document is a write cut off by a
    crash or a full disk: it is skipped with a warning naming the file and byte offset,
    and the result's ``torn`` is True. A damaged line anywhere else is not something a
    crash can leave; it raises.

    Raises
    ------
    SpoolCorruptError
        For a line before the last that is not a spooled document; the message names the
        file, line and byte offset.
    OSError
        If the file cannot be read.
    """
    path = Path(path)
    documents: list[tuple[str, dict]] = []
    torn_offset: int | None = None
    torn_bytes = 0
    offset = 0
    with open(path, "rb") as file:
        for number, raw in enumerate(file, start=1):
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
                documents.append((item["name"], item["doc"]))
            except (ValueError, KeyError, TypeError) as exc:
                if not raw.endswith(b"\n"):  # only the last line can lack its newline
                    torn_offset, torn_bytes = start, len(raw)
                    break
                raise SpoolCorruptError(
                    f"spool file {path} is damaged at line {number} (byte offset {start}): "
                    f"it is not a spooled document ({type(exc).__name__}: {exc}); the "
                    f"{len(documents)} documents before it are intact. A crash can only tear "
                    "the last line, so the file was changed after it was written; restore it "
                    f"from a copy, or keep lines 1-{number - 1} (`head -n {number - 1}`) to "
                    "import the part before the damage"
                ) from None
    if torn_offset is not None:
        log.warning(
            "%s ends in a torn line at byte offset %d (%d bytes, a write cut off by a crash "
            "or a full disk); skipped it, the %d documents before it are intact",
            path,
            torn_offset,
            torn_bytes,
            len(documents),
        )
    return SpoolContents(path, documents, torn_offset, torn_bytes)


def spool_event_counts(documents: Iterable[tuple[str, dict]]) -> dict[str, int]:
    """Events per stream name (``"primary"``, ...) in a run's documents."""
    stream_of: dict[str, str] = {}
    counts: dict[str, int] = {}
    for name, doc in documents:
        if name == "descriptor":
            stream_of[doc["uid"]] = str(doc.get("name") or "primary")
            counts.setdefault(stream_of[doc["uid"]], 0)
        elif name in ("event", "event_page"):
            descriptor = str(doc["descriptor"])
            stream = stream_of.get(descriptor, descriptor)
            counts[stream] = counts.get(stream, 0) + _event_count(name, doc)
    return counts


class _BatchFlushingTiledWriter(TiledWriter):
    """``TiledWriter`` that can push the events it holds back for a batch.

    ``TiledWriter`` writes a run's events in batches of ``batch_size`` and the last, partly
    filled batch only at the stop document; a run that never gets one (a crash, a session
    closed mid-run) would lose up to ``batch_size - 1`` events in the catalog. It has no
    public flush, so this subclass builds each run's writer itself (as
    ``TiledWriter._factory`` does, without the backup options, which are not used here) to
    keep a reference to it. Relies on ``_RunWriter`` internals of bluesky-tiled-plugins 2.0
    (``_internal_data_cache``, ``_desc_nodes``, ``_write_internal_data``,
    ``_external_data_cache``, ``_write_external_data``); the integration tests catch a change.
    """

    def __init__(self, client: Any, *, batch_size: int) -> None:
        # Arrays in events (a fly line) go to array storage whatever their size: the default
        # puts arrays of up to 16 values in the SQL table, whose SQLite backend cannot store
        # lists (a fly image 16 pixels wide or less never reached the catalog).
        super().__init__(client, batch_size=batch_size, max_array_size=0)
        self._run_writers: dict[str, _RunWriter] = {}

    # TiledWriter types its factory more narrowly; RunRouter calls it with any start doc.
    def _factory(  # pyright: ignore[reportIncompatibleMethodOverride]
        self, name: str, doc: dict
    ) -> tuple[list[Callback], list]:
        run_writer = _RunWriter(
            self.client,
            batch_size=self._batch_size,
            max_array_size=self._max_array_size,
            validate=self._validate,
            ignore_errors=self.ignore_errors,
        )
        self._run_writers[doc["uid"]] = run_writer
        normalizer = RunNormalizer(patches=self.patches, spec_to_mimetype=self.spec_to_mimetype)
        normalizer.subscribe(run_writer)
        return [normalizer], []

    def __call__(self, name: str, doc: dict) -> None:
        super().__call__(name, doc)
        if name == "stop":
            self._run_writers.pop(doc["run_start"], None)

    @property
    def open_runs(self) -> list[str]:
        """Uids of runs started and not yet stopped."""
        return list(self._run_writers)

    def push_pending(self, uid: str) -> int:
        """Write the events (and stream data) of run ``uid`` held back for a batch.

        Returns the number of events written. Later events of the run are appended as
        usual, so this is safe at any time.
        """
        run_writer = self._run_writers.get(uid)
        if run_writer is None:
            return 0
        pushed = 0
        # _RunWriter's internals (see the class docstring): it has no public flush.
        internal = run_writer._internal_data_cache  # noqa: SLF001
        external = run_writer._external_data_cache  # noqa: SLF001
        for desc_name, cache in internal.items():
            if cache:
                pushed += len(cache)
                desc_node = run_writer._desc_nodes[desc_name]  # noqa: SLF001
                run_writer._write_internal_data(cache, desc_node=desc_node)  # noqa: SLF001
                cache.clear()
        for sres_uid in list(external):
            run_writer._write_external_data(external.pop(sres_uid))  # noqa: SLF001
        return pushed


class _GuardedRun:
    def __init__(self, writer: Any, spool_dir: Path, uid: str, report: Callable) -> None:
        self.writer = writer
        self.spool_dir = spool_dir
        self.uid = uid
        self.report = report
        self.failed = False
        self.stopped = False

    def _guard(self, action: Callable[[], Any]) -> None:
        if self.failed:
            return
        try:
            action()
        except Exception as exc:  # any catalog failure: keep scanning, data is spooled
            self.failed = True
            self.report(
                f"catalog write failed for run {self.uid} ({type(exc).__name__}: {exc}); "
                f"the scan goes on and the run is kept in "
                f"{spool_file_for(self.spool_dir, self.uid)}; put it in the catalog later with "
                f"`stxm import-spool {spool_file_for(self.spool_dir, self.uid)}`"
            )

    def __call__(self, name: str, doc: dict) -> None:
        if name == "stop":
            self.stopped = True
        self._guard(lambda: self.writer(name, doc))

    def push_pending(self) -> None:
        """Write the events held back for a batch (a run not stopped yet)."""
        push = getattr(self.writer, "push_pending", None)
        if push is not None and not self.stopped:
            self._guard(lambda: push(self.uid))


_PUSH_OPEN_RUNS = object()


class CatalogWriter:
    """Write runs to a Tiled catalog from a background thread; never hold up or abort a scan.

    The RunEngine hands each document over and goes on at once; a worker thread writes it
    to the catalog. A catalog that is slow, or down while the Tiled client retries (which
    it does for over a minute), therefore costs the scan nothing. A write that fails for
    good stops writing *that run* with one message naming its spool file; the next run
    is tried afresh.

    Events reach the catalog in batches of ``batch_size``; ``flush(open_runs=True)`` and
    ``close()`` also write the partly filled batch of a run that has not stopped yet.

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
        self.writer = _BatchFlushingTiledWriter(client, batch_size=batch_size)
        self.spool_dir = Path(spool_dir)
        self.report = report or log.warning
        self.failed_runs: list[str] = []
        self._runs: dict[str, _GuardedRun] = {}
        self._router = RunRouter([self._factory])
        self._queue: queue.Queue[tuple[str, dict] | object | None] = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="catalog-writer", daemon=True)
        self._worker.start()

    def _factory(self, name: str, start_doc: dict) -> tuple[list[Callback], list]:
        uid = start_doc["uid"]

        def report(message: str) -> None:
            self.failed_runs.append(uid)
            self.report(message)

        run = self._runs[uid] = _GuardedRun(self.writer, self.spool_dir, uid, report)
        return [run], []

    def __call__(self, name: str, doc: dict) -> None:
        # A copy: the writer may normalise documents that other subscribers still read.
        self._queue.put((name, copy.deepcopy(doc)))

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if item is _PUSH_OPEN_RUNS:
                    self._push_open_runs()
                else:
                    name, doc = cast(tuple[str, dict], item)
                    self._router(name, doc)
                    if name == "stop":
                        self._runs.pop(doc["run_start"], None)
            except Exception:  # a broken document must not kill the worker
                log.exception("catalog writer: unexpected error on %r", item)
            finally:
                self._queue.task_done()

    def _push_open_runs(self) -> None:
        for run in list(self._runs.values()):
            run.push_pending()

    @property
    def pending(self) -> int:
        """Documents handed over but not yet written (or given up on)."""
        return self._queue.unfinished_tasks

    def flush(self, timeout_s: float | None = None, *, open_runs: bool = False) -> bool:
        """Wait until every document handed over so far is written; False on timeout.

        Parameters
        ----------
        timeout_s
            Longest wait (None: no limit).
        open_runs
            Also write the events of runs without a stop document that are held back for
            a batch, so the catalog has every event handed over so far.
        """
        if open_runs:
            self._queue.put(_PUSH_OPEN_RUNS)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def close(self, timeout_s: float | None = None, *, open_runs: bool = True) -> bool:
        """Flush (by default with the held-back events of open runs), then stop the worker.

        Returns False if documents were still pending after ``timeout_s``.
        """
        drained = self.flush(timeout_s, open_runs=open_runs)
        self._queue.put(None)
        if drained:
            self._worker.join(timeout_s)
        return drained


class SpoolImportError(RuntimeError):
    """A spooled run cannot be put in the catalog (the message says why and what to do)."""


@dataclass(frozen=True)
class SpoolImport:
    """What :func:`import_spool_file` did.

    Attributes
    ----------
    uid
        The run.
    documents
        Documents read from the spool and written to the catalog.
    replaced_partial_copy
        The catalog held an incomplete copy (no stop document), which was replaced.
    complete
        The spool holds the run's stop document (a run cut off by a crash has none).
    spool_events
        Events per stream in the spool.
    catalog_events
        Events per stream in the catalog after the import, read back from the catalog.
    torn_line_skipped
        The spool ended in a torn line (a write cut off), which was skipped.
    """

    uid: str
    documents: int
    replaced_partial_copy: bool
    complete: bool
    spool_events: dict[str, int] = field(default_factory=dict)
    catalog_events: dict[str, int] = field(default_factory=dict)
    torn_line_skipped: bool = False

    @property
    def all_in_catalog(self) -> bool:
        """True if the catalog now has every event of the spool, stream by stream."""
        streams = set(self.spool_events) | set(self.catalog_events)
        return all(self.spool_events.get(s, 0) == self.catalog_events.get(s, 0) for s in streams)

    def summary(self) -> str:
        """One truthful line for the user: what was imported and what the catalog has now."""
        if self.spool_events:
            counts = ", ".join(
                f"{stream} {self.catalog_events.get(stream, 0)} of {n}"
                for stream, n in sorted(self.spool_events.items())
            )
        else:
            counts = "no events"
        state = "complete run" if self.complete else "run cut off without a stop document"
        replaced = "; replaced the incomplete copy" if self.replaced_partial_copy else ""
        torn = "; skipped a torn last line of the spool" if self.torn_line_skipped else ""
        verdict = (
            "the catalog has every event of the spool"
            if self.all_in_catalog
            else "the catalog does NOT have every event of the spool"
        )
        return (
            f"imported run {self.uid} ({state}, {self.documents} documents{replaced}{torn}): "
            f"events in the catalog / in the spool: {counts}; {verdict}"
        )


def catalog_event_counts(client: Any, uid: str) -> dict[str, int]:
    """Events per stream of run ``uid`` in the catalog, read back (``seq_num`` per row).

    Read through the run's v3 view: bluesky-tiled-plugins' ``catalog.v1`` and ``.v2`` switch
    every client of the process to v2 runs, whose streams hide ``seq_num``.
    """
    run = client[uid]
    run = getattr(run, "v3", run)
    counts: dict[str, int] = {}
    for stream in run:
        node = run[stream]
        counts[stream] = len(node["seq_num"].read()) if "seq_num" in node else 0
    return counts


def _check_stop_is_last(path: Path, documents: Sequence[tuple[str, dict]]) -> None:
    """Refuse a spool whose stop document is not its last: the writer ends a run at its stop,
    so documents after it would be lost while the catalog called the run complete."""
    names = [name for name, _doc in documents]
    if "stop" not in names or names[-1] == "stop" and names.count("stop") == 1:
        return
    at = names.index("stop")
    after = len(names) - at - 1
    raise SpoolImportError(
        f"{path} has {after} document(s) after its stop document (document {at + 1} of "
        f"{len(names)}): a run ends at its stop, so the file was appended to or joined with "
        "another; nothing was imported. Keep the documents up to the stop "
        f"(`head -n {at + 1}` if each is on one line) or split the runs into files of their own"
    )


def import_spool_file(client: Any, path: Path, *, batch_size: int = 100) -> SpoolImport:
    """Put a spooled run into the catalog, with exactly the spool's events.

    A run whose catalog write failed part-way, or whose process died mid-run, has an
    incomplete copy in the catalog (no stop document, and events only up to the last full
    batch). That copy is replaced by the spool's documents, and a run without a stop
    document gets its last, partly filled batch written too. A complete copy is never
    touched. The counts in the result are read back from the catalog.

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
        What was imported, and the events per stream in the spool and in the catalog
        (``summary()`` gives a line for the user).

    Raises
    ------
    SpoolImportError
        If the file holds no run, is damaged before its last line, or the catalog already
        has the complete run.
    """
    path = Path(path)
    try:
        documents = read_spool_file(path)
    except SpoolCorruptError as exc:
        raise SpoolImportError(str(exc)) from exc
    if not documents or documents[0][0] != "start":
        raise SpoolImportError(
            f"{path} holds no run (its first document is not a start document); pass a file "
            "from data_dir/spool"
        )
    _check_stop_is_last(path, documents)
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
    writer = _BatchFlushingTiledWriter(client, batch_size=batch_size)
    for name, doc in documents:
        writer(name, doc)
    writer.push_pending(uid)  # a run without a stop document: its last, partial batch
    spool_events = spool_event_counts(documents)
    catalog_events = catalog_event_counts(client, uid)
    result = SpoolImport(
        uid=uid,
        documents=len(documents),
        replaced_partial_copy=replaced,
        complete=documents[-1][0] == "stop",
        spool_events=spool_events,
        catalog_events=catalog_events,
        torn_line_skipped=documents.torn,
    )
    if not result.all_in_catalog:
        log.warning("%s", result.summary())
    return result
