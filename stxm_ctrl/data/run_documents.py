"""A run's documents gathered by stream: the columns, times and descriptors of each stream.

The readers (:mod:`stxm_ctrl.data.images`, :mod:`stxm_ctrl.data.stacks`) pick the columns
they need; the NeXus writer needs all of them (the per-point lists of NXinstrument, the
baseline's optics and ring current, the frames' energies), so it gathers a run once here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from event_model import pack_event_page
from event_model.documents import Event

__all__ = ["RunDocuments", "StreamColumns"]


@dataclass
class StreamColumns:
    """One stream of a run: event times and one list per data key, in event order."""

    name: str
    data_keys: dict[str, Any] = field(default_factory=dict)
    time: list[float] = field(default_factory=list)
    data: dict[str, list[Any]] = field(default_factory=dict)

    def column(self, key: str) -> list[Any]:
        """The values of ``key`` (empty if the stream never recorded it)."""
        return self.data.get(key, [])

    def floats(self, key: str) -> np.ndarray:
        """``key`` as a float array (empty if absent)."""
        return np.asarray(self.data.get(key, []), dtype=float)

    def first(self, key: str, default: Any = None) -> Any:
        """The first recorded value of ``key``, or ``default``."""
        values = self.data.get(key)
        return values[0] if values else default

    def __len__(self) -> int:
        return len(self.time)


@dataclass
class RunDocuments:
    """Every document of one run, by stream.

    Attributes
    ----------
    start
        The start document.
    stop
        The stop document, or None for a run cut off before it closed.
    streams
        Columns of each stream by stream name (``primary``, ``baseline``, ...).
    documents
        The documents as read, in order (for readers that take documents).
    """

    start: dict[str, Any]
    stop: dict[str, Any] | None
    streams: dict[str, StreamColumns]
    documents: list[tuple[str, dict]] = field(repr=False)

    @classmethod
    def from_documents(cls, documents: Iterable[tuple[str, dict]]) -> RunDocuments:
        """Gather ``(name, doc)`` pairs (a spool file, a catalog export, a live run).

        Raises
        ------
        ValueError
            If there is no start document, or documents of several runs.
        """
        start: dict[str, Any] | None = None
        stop: dict[str, Any] | None = None
        by_descriptor: dict[str, StreamColumns] = {}
        streams: dict[str, StreamColumns] = {}
        kept: list[tuple[str, dict]] = []
        for name, doc in documents:
            kept.append((name, doc))
            if name == "start":
                if start is not None and doc.get("uid") != start.get("uid"):
                    raise ValueError(
                        f"documents of two runs ({start.get('uid')} and {doc.get('uid')}); "
                        "give one run's documents"
                    )
                start = doc
            elif name == "stop":
                stop = doc
            elif name == "descriptor":
                stream = streams.setdefault(doc.get("name", "primary"), StreamColumns(doc["name"]))
                stream.data_keys.update(doc.get("data_keys", {}))
                by_descriptor[doc["uid"]] = stream
            elif name in ("event", "event_page") and doc.get("descriptor") in by_descriptor:
                stream = by_descriptor[doc["descriptor"]]
                page = pack_event_page(cast(Event, doc)) if name == "event" else doc
                for key, values in page["data"].items():
                    column = stream.data.setdefault(key, [None] * len(stream.time))
                    column.extend(values)
                stream.time.extend(page["time"])
                for column in stream.data.values():  # keys missing from this page
                    column.extend([None] * (len(stream.time) - len(column)))
        if start is None:
            raise ValueError("no start document: these documents hold no run")
        return cls(start=start, stop=stop, streams=streams, documents=kept)

    def stream(self, name: str) -> StreamColumns:
        """The stream ``name`` (empty if the run has none)."""
        return self.streams.get(name, StreamColumns(name))

    @property
    def end_time(self) -> float:
        """When the run ended: its stop document, else its last event, else its start."""
        if self.stop is not None:
            return float(self.stop["time"])
        last = [max(s.time) for s in self.streams.values() if s.time]
        return max(last, default=float(self.start["time"]))

    def samples_of(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(times, values) of ``key`` from every stream that recorded it, sorted by time."""
        times: list[float] = []
        values: list[float] = []
        for stream in self.streams.values():
            for t, v in zip(stream.time, stream.column(key), strict=False):
                if isinstance(v, int | float) and np.isfinite(v):
                    times.append(float(t))
                    values.append(float(v))
        order = np.argsort(times, kind="stable")
        return np.asarray(times)[order], np.asarray(values)[order]
