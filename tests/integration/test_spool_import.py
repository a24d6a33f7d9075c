"""A run cut off mid-batch: the catalog gets exactly the spool's events, counted by reading back.

TiledWriter writes events in batches (100 here); a run that never gets its stop document
(the process died) leaves the last, partly filled batch out of the catalog. These tests
use the session's catalog server and runs composed with event-model (no IOCs needed).
"""

from __future__ import annotations

import numpy as np
import pytest
from event_model import compose_run

from stxm_ctrl.data.catalog import catalog_client
from stxm_ctrl.data.writers import (
    CatalogWriter,
    DocumentSpool,
    import_spool_file,
    spool_file_for,
)

CUT_AFTER = 483
BATCH = 100


def run_without_stop(n_events: int) -> tuple[list[tuple[str, dict]], object]:
    """A run of ``n_events`` primary events and a few monitor events, with no stop document."""
    bundle = compose_run(metadata={"plan_name": "sample_image", "purpose": "cut-off test"})
    primary = bundle.compose_descriptor(
        name="primary",
        data_keys={
            "apd_counts": {"source": "sim", "dtype": "integer", "shape": []},
            "sample_x": {"source": "sim", "dtype": "number", "shape": []},
        },
    )
    monitor = bundle.compose_descriptor(
        name="ring_current_monitor",
        data_keys={"ring_current": {"source": "sim", "dtype": "number", "shape": []}},
    )
    docs = [
        ("start", bundle.start_doc),
        ("descriptor", primary.descriptor_doc),
        ("descriptor", monitor.descriptor_doc),
    ]
    for i in range(n_events):
        docs.append(
            (
                "event",
                primary.compose_event(
                    data={"apd_counts": 1000 + i, "sample_x": 0.5 * i},
                    timestamps={"apd_counts": 1.0 + i, "sample_x": 1.0 + i},
                    seq_num=i + 1,
                ),
            )
        )
        if i % 50 == 0:
            docs.append(
                (
                    "event",
                    monitor.compose_event(
                        data={"ring_current": 400.0 - i * 1e-3},
                        timestamps={"ring_current": 1.0 + i},
                        seq_num=i // 50 + 1,
                    ),
                )
            )
    return docs, bundle


def read_back(client, uid: str, stream: str = "primary"):
    """The stream as a user reads it from the catalog."""
    return client[uid][stream].read()


@pytest.fixture
def client(sim_config, catalog_server):
    with catalog_client(sim_config) as client:
        yield client


def test_import_completes_a_run_cut_off_mid_batch(client, tmp_path):
    docs, _ = run_without_stop(CUT_AFTER)
    uid = docs[0][1]["uid"]
    spool = DocumentSpool(tmp_path)
    writer = CatalogWriter(client, tmp_path, batch_size=BATCH)
    for name, doc in docs:  # the session, until its process is killed
        spool(name, doc)
        writer(name, doc)
    assert writer.flush(timeout_s=120)
    # What a crash leaves: only the full batches reached the catalog.
    assert read_back(client, uid).sizes["time"] == 400

    result = import_spool_file(client, spool_file_for(tmp_path, uid), batch_size=BATCH)

    data = read_back(client, uid)
    assert data.sizes["time"] == CUT_AFTER
    np.testing.assert_array_equal(data["apd_counts"].values, 1000 + np.arange(CUT_AFTER))
    assert read_back(client, uid, "ring_current_monitor").sizes["time"] == 10
    assert result.replaced_partial_copy and not result.complete
    assert result.spool_events == {"primary": CUT_AFTER, "ring_current_monitor": 10}
    assert result.catalog_events == result.spool_events
    assert result.all_in_catalog
    summary = result.summary()
    assert f"primary {CUT_AFTER} of {CUT_AFTER}" in summary
    assert "run cut off without a stop document" in summary
    assert "the catalog has every event of the spool" in summary
    assert "replaced the incomplete copy" in summary

    # Importing again gives the same catalog (the run still has no stop document).
    again = import_spool_file(client, spool_file_for(tmp_path, uid), batch_size=BATCH)
    assert again.catalog_events == {"primary": CUT_AFTER, "ring_current_monitor": 10}
    assert read_back(client, uid).sizes["time"] == CUT_AFTER


def test_import_skips_a_torn_last_line_and_says_so(client, tmp_path):
    docs, _ = run_without_stop(150)
    uid = docs[0][1]["uid"]
    spool = DocumentSpool(tmp_path)
    for name, doc in docs:
        spool(name, doc)
    path = spool_file_for(tmp_path, uid)
    with open(path, "ab") as file:  # killed in the middle of writing event 151
        file.write(b'{"name": "event_page", "doc": {"time": [17')

    result = import_spool_file(client, path, batch_size=BATCH)

    assert result.torn_line_skipped
    assert not result.replaced_partial_copy
    assert result.catalog_events["primary"] == 150
    assert read_back(client, uid).sizes["time"] == 150
    assert "skipped a torn last line" in result.summary()


def test_closing_the_writer_pushes_the_partial_batch_of_an_open_run(client, tmp_path):
    docs, bundle = run_without_stop(CUT_AFTER)
    uid = docs[0][1]["uid"]
    writer = CatalogWriter(client, tmp_path, batch_size=BATCH)
    for name, doc in docs:
        writer(name, doc)
    assert writer.flush(timeout_s=120, open_runs=True)
    assert read_back(client, uid).sizes["time"] == CUT_AFTER

    # The run goes on after a flush: later events are appended, none written twice.
    descriptor_uid = docs[1][1]["uid"]
    for i in range(CUT_AFTER, CUT_AFTER + 17):
        writer(
            "event",
            {
                "uid": f"{uid}-extra-{i}",
                "descriptor": descriptor_uid,
                "seq_num": i + 1,
                "time": 1.0 + i,
                "data": {"apd_counts": 1000 + i, "sample_x": 0.5 * i},
                "timestamps": {"apd_counts": 1.0 + i, "sample_x": 1.0 + i},
                "filled": {},
            },
        )
    assert writer.close(timeout_s=120)  # the run is still open: close pushes its batch
    data = read_back(client, uid)
    assert data.sizes["time"] == CUT_AFTER + 17
    np.testing.assert_array_equal(data["apd_counts"].values, 1000 + np.arange(CUT_AFTER + 17))
    assert writer.failed_runs == []
