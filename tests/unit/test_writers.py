"""Spool and catalog writer: every document kept locally; a failing catalog never stops a scan."""

from __future__ import annotations

import threading

import numpy as np
from event_model import compose_run

from stxm_ctrl.data.writers import CatalogWriter, DocumentSpool, read_spool_file, spool_file_for


def make_run(n_events: int = 3) -> list[tuple[str, dict]]:
    """A small but complete run, as a RunEngine would emit it."""
    bundle = compose_run(metadata={"plan_name": "test", "shape": [1, n_events]})
    docs = [("start", bundle.start_doc)]
    descriptor = bundle.compose_descriptor(
        name="primary",
        data_keys={"counts": {"source": "sim", "dtype": "integer", "shape": []}},
    )
    docs.append(("descriptor", descriptor.descriptor_doc))
    for i in range(n_events):
        event = descriptor.compose_event(
            data={"counts": np.int64(100 + i)}, timestamps={"counts": 1.0 + i}, seq_num=i + 1
        )
        docs.append(("event", event))
    docs.append(("stop", bundle.compose_stop()))
    return docs


def test_spool_round_trips_every_document(tmp_path):
    spool = DocumentSpool(tmp_path)
    docs = make_run()
    for name, doc in docs:
        spool(name, doc)
    path = spool_file_for(tmp_path, docs[0][1]["uid"])
    back = list(read_spool_file(path))
    # The router hands events on as single-event pages: same data, same order.
    assert [name for name, _ in back] == ["start", "descriptor"] + ["event_page"] * 3 + ["stop"]
    assert [d["data"]["counts"] for n, d in back if n == "event_page"] == [[100], [101], [102]]
    assert back[0][1] == docs[0][1]


def test_spool_has_each_document_on_disk_as_soon_as_it_is_emitted(tmp_path):
    spool = DocumentSpool(tmp_path)
    docs = make_run()
    for name, doc in docs[:3]:  # start, descriptor, first event; no stop (a crash)
        spool(name, doc)
    path = spool_file_for(tmp_path, docs[0][1]["uid"])
    assert [name for name, _ in read_spool_file(path)] == ["start", "descriptor", "event_page"]


class FakeTiledClient:
    """Just enough of a Tiled client for ``TiledWriter`` to be constructed."""

    def include_data_sources(self) -> FakeTiledClient:
        return self


class FailingTiledWriter:
    """Stands in for TiledWriter on a catalog that goes away after the start document."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, name: str, doc: dict) -> None:
        self.seen.append(name)
        if name in ("event", "event_page"):
            raise ConnectionError("catalog at http://127.0.0.1:8765 refused the connection")


def test_catalog_failure_is_reported_once_and_names_the_spool(tmp_path):
    messages: list[str] = []
    writer = CatalogWriter(FakeTiledClient(), tmp_path, report=messages.append)
    writer.writer = FailingTiledWriter()
    docs = make_run(5)
    for name, doc in docs:
        writer(name, doc)  # must not raise: the scan goes on
    assert writer.flush(timeout_s=10)
    uid = docs[0][1]["uid"]
    assert writer.failed_runs == [uid]
    assert len(messages) == 1
    message = messages[0]
    assert uid in message
    assert "ConnectionError" in message
    assert str(spool_file_for(tmp_path, uid)) in message
    assert "stxm import-spool" in message
    # Writing that run stopped at the first failure.
    assert writer.writer.seen == ["start", "descriptor", "event_page"]


def test_a_failed_run_does_not_stop_the_next_one(tmp_path):
    messages: list[str] = []
    writer = CatalogWriter(FakeTiledClient(), tmp_path, report=messages.append)
    writer.writer = FailingTiledWriter()
    first, second = make_run(2), make_run(0)
    for name, doc in first + second:
        writer(name, doc)
    assert writer.flush(timeout_s=10)
    assert writer.writer.seen[-3:] == ["start", "descriptor", "stop"]
    assert len(messages) == 1


class BlockedTiledWriter:
    """A catalog that hangs until released (a server stuck or retrying)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.written: list[str] = []

    def __call__(self, name: str, doc: dict) -> None:
        self.release.wait()
        self.written.append(name)


def test_a_hanging_catalog_does_not_hold_up_the_scan(tmp_path):
    writer = CatalogWriter(FakeTiledClient(), tmp_path)
    writer.writer = BlockedTiledWriter()
    docs = make_run(4)
    for name, doc in docs:
        writer(name, doc)  # returns at once although the catalog hangs
    assert writer.pending == len(docs)
    assert not writer.flush(timeout_s=0.05)
    writer.writer.release.set()
    assert writer.flush(timeout_s=10)
    assert writer.pending == 0
    assert writer.writer.written == ["start", "descriptor"] + ["event_page"] * 4 + ["stop"]
    assert writer.close(timeout_s=10)
