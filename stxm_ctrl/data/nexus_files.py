"""Where NXstxm files go, the callback that writes one when each run ends, and the export.

- :class:`NexusFileWriter` subscribes to a RunEngine beside the spool: when a run's stop
  document arrives it reads the run back from its spool file (complete and on disk by then)
  and writes the file under ``[nexus] directory`` with ``[nexus] file_template``. A file that
  cannot be written (disk full, a bug) is logged with the fix and never disturbs the run:
  the spool holds every document, and ``stxm export`` writes the file later.
- :func:`export_runs` writes files for runs named by scan id, uid (or its first
  characters) or spool file, from the catalog or else the spool (``stxm export``).

Decision 0010 records why files are written when the run ends rather than as it goes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from stxm_ctrl.data.nexus_writer import NXSTXM_SCAN_TYPES, nexus_relative_path, write_nxstxm
from stxm_ctrl.data.writers import SpoolCorruptError, read_spool_file, spool_file_for
from stxm_ctrl.disk import format_bytes

__all__ = [
    "AmbiguousRunError",
    "ExportError",
    "ExportResult",
    "NexusFileWriter",
    "catalog_run_documents",
    "export_runs",
    "nexus_path_for",
    "spool_documents_for",
]

log = logging.getLogger(__name__)


def _file_uid(path: Path) -> str | None:
    """The run uid an existing NXstxm file holds (None if unreadable)."""
    try:
        with h5py.File(path, "r") as file:
            for entry in file.values():
                if "entry_identifier" in entry:
                    value = entry["entry_identifier"][()]
                    return value.decode() if isinstance(value, bytes) else str(value)
    except (OSError, KeyError, AttributeError):
        return None
    return None


def nexus_path_for(start: dict[str, Any], directory: Path, template: str) -> Path:
    """The file of the run that ``start`` opens: the template's path, unless another run has it.

    A file of the same run is replaced (an export writes it again); a file of another run
    (scan ids restarted, a second data directory merged in) is kept and this run's file gets
    its uid's first characters appended.
    """
    path = directory / nexus_relative_path(start, template)
    if path.exists() and _file_uid(path) != start["uid"]:
        path = path.with_name(f"{path.stem}_{str(start['uid'])[:8]}{path.suffix}")
    return path


def _writable(start: dict[str, Any]) -> bool:
    return start.get("stxm_scan_type") in NXSTXM_SCAN_TYPES


@dataclass(eq=False)  # hashable: the RunEngine keeps callbacks in a registry
class NexusFileWriter:
    """RunEngine callback that writes each run's NXstxm file when the run ends.

    Subscribe it after the spool (the RunEngine calls subscribers in order, so the stop
    document is in the spool file when this reads it).

    Attributes
    ----------
    directory
        ``[nexus] directory`` (absolute).
    template
        ``[nexus] file_template``.
    spool_dir
        Where the spool keeps each run (``data_dir/spool``).
    written
        Path of each run's file, by uid.
    failed
        Why a run's file was not written, by uid.
    """

    directory: Path
    template: str
    spool_dir: Path
    written: dict[str, Path] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    _starts: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def __call__(self, name: str, doc: dict) -> None:
        if name == "start" and _writable(doc):
            self._starts[doc["uid"]] = doc
        elif name == "stop" and doc.get("run_start") in self._starts:
            self._write(self._starts.pop(doc["run_start"]))

    def _write(self, start: dict[str, Any]) -> None:
        uid = start["uid"]
        spool_file = spool_file_for(self.spool_dir, uid)
        try:
            path = nexus_path_for(start, self.directory, self.template)
            write_nxstxm(read_spool_file(spool_file), path)
        except Exception as exc:  # the run is over and spooled: report, never raise into it
            reason = _failure(exc)
            self.failed[uid] = reason
            log.error(
                "the NXstxm file of scan %s (%s) was not written: %s. Every document is in "
                "%s; write the file later with `stxm export %s`",
                start.get("scan_id"),
                uid,
                reason,
                spool_file,
                uid[:8],
            )
        else:
            self.written[uid] = path
            log.info("scan %s written to %s", start.get("scan_id"), path)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == 28:
        return f"the disk is full ({exc})"
    return f"{type(exc).__name__}: {exc}"


class ExportError(LookupError):
    """A run named for export was not found, or is not an STXM scan (says which and why)."""


class AmbiguousRunError(ExportError):
    """A scan id names several runs (scan numbers restarted, data directories merged)."""


def _ambiguous_scan_id(ref: str, starts: Sequence[dict], where: str) -> AmbiguousRunError:
    from datetime import datetime

    def when(start: dict) -> str:
        return datetime.fromtimestamp(float(start.get("time", 0.0))).strftime("%Y-%m-%d %H:%M:%S")

    runs = ", ".join(
        f"{str(start.get('uid', '?'))[:8]} ({when(start)}, {start.get('plan_name', '?')})"
        for start in sorted(starts, key=lambda doc: float(doc.get("time", 0.0)))
    )
    return AmbiguousRunError(
        f"scan id {ref} names {len(starts)} runs in {where}: {runs}; name the run by its uid "
        "(the first 8 characters are enough), e.g. stxm export "
        f"{str(starts[-1].get('uid', ''))[:8]}"
    )


@dataclass(frozen=True)
class ExportResult:
    """One exported run: what was asked, which run, where its file went."""

    ref: str
    uid: str
    scan_id: int | None
    path: Path
    source: str

    def __str__(self) -> str:
        size = format_bytes(self.path.stat().st_size) if self.path.exists() else "?"
        scan = f"scan {self.scan_id}" if self.scan_id is not None else self.uid[:8]
        return f"{scan} ({self.source}) -> {self.path} ({size})"


def _spool_start(path: Path) -> dict[str, Any] | None:
    """The start document on a spool file's first line (None if it has none)."""
    try:
        with path.open("rb") as file:
            record = json.loads(file.readline())
    except (OSError, ValueError):
        return None
    if isinstance(record, dict) and record.get("name") == "start":
        return record.get("doc")
    return None


def spool_documents_for(spool_dir: Path, ref: str) -> tuple[str, list[tuple[str, dict]]] | None:
    """Find a run in the spool by spool file path, scan id, uid or uid prefix.

    Returns
    -------
    tuple or None
        (where it was found, its documents), or None if the spool does not hold it. The
        newest run wins when scan ids repeat.
    """
    as_path = Path(ref)
    if as_path.suffix == ".jsonl" and as_path.exists():
        return f"spool file {as_path}", list(read_spool_file(as_path))
    if not spool_dir.is_dir():
        return None
    candidates = sorted(spool_dir.glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    if ref.isdigit():  # a scan id; else the first characters of a uid (they can be digits)
        matches = [
            (path, start)
            for path in candidates
            if (start := _spool_start(path)) is not None and start.get("scan_id") == int(ref)
        ]
        if len(matches) > 1:
            raise _ambiguous_scan_id(
                ref, [start for _, start in matches], f"the spool {spool_dir}"
            )
        if matches:
            path = matches[0][0]
            return f"spool {path.name}", list(read_spool_file(path))
    for path in candidates:
        if path.stem.startswith(ref):
            return f"spool {path.name}", list(read_spool_file(path))
    return None


def _catalog_documents(client: Any, ref: str) -> tuple[str, list[tuple[str, dict]]] | None:
    """A run of the catalog by scan id, uid or uid prefix.

    Raises
    ------
    AmbiguousRunError
        If a scan id names several runs.
    ExportError
        If a uid prefix starts several runs' uids.
    """
    from tiled.queries import Eq, Like

    if len(ref) == 36 and ref in client:
        return "catalog", catalog_run_documents(client[ref])
    found = list(client.search(Eq("start.scan_id", int(ref))).items()) if ref.isdigit() else []
    by_scan_id = bool(found)
    if not found:  # the first characters of a uid (they can be all digits)
        found = list(client.search(Like("start.uid", f"{ref}%")).items())
    if not found:
        return None
    if len(found) > 1:
        if by_scan_id:
            raise _ambiguous_scan_id(
                ref, [run.metadata["start"] for _, run in found], "the catalog"
            )
        uids = ", ".join(sorted(uid for uid, _ in found)[:5])
        raise ExportError(f"{ref!r} starts several runs' uids ({uids}); give more characters")
    _, run = found[0]
    return "catalog", catalog_run_documents(run)


def _jsonable(values: Any) -> list[Any]:
    array = np.asarray(values)
    if array.dtype.kind in "OUS":
        return [v.decode() if isinstance(v, bytes) else v for v in array.tolist()]
    return array.tolist()


def catalog_run_documents(run: Any) -> list[tuple[str, dict]]:
    """A catalog run as documents: start, one descriptor and event page per stream, stop.

    Rebuilt from the run's metadata and its streams' columns: the embedded Tiled server has
    no document exporter (``run.documents()`` is refused with 406), and the columns are
    what the writer needs. Event uids are not kept by the catalog and are left out.
    """
    start = dict(run.metadata["start"])
    documents: list[tuple[str, dict]] = [("start", start)]
    for name in run:
        stream = run[name]
        data_keys = dict(stream.metadata.get("data_keys") or {})
        descriptor_uid = str(stream.metadata.get("uid") or f"{start['uid']}-{name}")
        columns = {key: _jsonable(stream[key].read()) for key in data_keys if key in stream}
        times = _jsonable(stream["time"].read()) if "time" in stream else []
        documents.append(
            (
                "descriptor",
                {
                    "uid": descriptor_uid,
                    "name": name,
                    "run_start": start["uid"],
                    "data_keys": data_keys,
                    "time": float(stream.metadata.get("time") or start["time"]),
                },
            )
        )
        if times:
            documents.append(
                (
                    "event_page",
                    {
                        "descriptor": descriptor_uid,
                        "time": times,
                        "data": columns,
                        "seq_num": list(range(1, len(times) + 1)),
                        "timestamps": {},
                        "filled": {},
                    },
                )
            )
    if run.metadata.get("stop"):
        documents.append(("stop", dict(run.metadata["stop"])))
    return documents


def _documents_for(
    ref: str, client: Any | None, spool_dir: Path
) -> tuple[str, list[tuple[str, dict]]]:
    looked_in = []
    if client is not None and not ref.endswith(".jsonl"):
        found = _catalog_documents(client, ref)
        if found is not None:
            return found
        looked_in.append("the catalog")
    try:
        found = spool_documents_for(spool_dir, ref)
    except SpoolCorruptError as exc:
        raise ExportError(f"{ref}: {exc}") from None
    if found is not None:
        return found
    looked_in.append(f"the spool ({spool_dir})")
    raise ExportError(
        f"no run {ref!r} in {' or '.join(looked_in)}; name a run by scan id (e.g. 12), uid "
        "(or its first characters) or spool file (data_dir/spool/<uid>.jsonl)"
    )


def export_runs(
    refs: Sequence[str],
    *,
    directory: Path,
    template: str,
    spool_dir: Path,
    client: Any | None = None,
) -> Iterator[ExportResult]:
    """Write the NXstxm file of each run in ``refs``; yield each as it is written.

    Parameters
    ----------
    refs
        Scan ids, uids (or their first characters) or spool files.
    directory
        Where the files go (``[nexus] directory``, or ``--out``), laid out by ``template``.
    template
        ``[nexus] file_template``.
    spool_dir
        The spool, searched when the catalog does not hold a run (or there is none).
    client
        Tiled catalog client, or None to read from the spool only.

    Raises
    ------
    ExportError
        For a run that is found nowhere or is not an STXM scan; runs before it are written.
    OSError
        If a file cannot be written (nothing half-written is left).
    """
    for ref in refs:
        source, documents = _documents_for(str(ref), client, spool_dir)
        start = next((doc for name, doc in documents if name == "start"), None)
        if start is None:
            raise ExportError(f"{ref}: {source} holds no start document")
        if not _writable(start):
            raise ExportError(
                f"{ref}: run {start['uid'][:8]} ({start.get('plan_name')}) is not an STXM scan "
                f"type NXstxm describes ({', '.join(NXSTXM_SCAN_TYPES)})"
            )
        path = write_nxstxm(documents, nexus_path_for(start, directory, template))
        yield ExportResult(str(ref), start["uid"], start.get("scan_id"), path, source)
