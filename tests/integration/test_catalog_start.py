"""Starting the embedded catalog: an interrupted first start leaves nothing that stops the
next one, and a slow start on a loaded machine is waited for, not given up on.

`tiled catalog init` cut short (a start that timed out, Ctrl-C, a kill) once left a 0-byte
`catalog.db`, after which every `stxm serve` exited 3 ("No catalog database found") until
the file was removed by hand.
"""

from __future__ import annotations

import time

import pytest
from event_model import compose_run

from stxm_ctrl.data.catalog import (
    CATALOG_DB,
    catalog_client,
    catalog_server_process,
    start_catalog_server,
)
from stxm_ctrl.data.writers import CatalogWriter, DocumentSpool, catalog_event_counts
from stxm_ctrl.processes import free_tcp_port


@pytest.fixture
def fresh_config(sim_config, tmp_path):
    return sim_config.with_overrides(
        {
            "beamline": {"data_dir": str(tmp_path / "data")},
            "catalog": {"port": free_tcp_port()},
        }
    )


def _write_and_read_a_run(config) -> None:
    """The catalog serves: a run written through it is read back whole."""
    with catalog_client(config) as client:
        spool = DocumentSpool(config.data_dir / "spool")
        writer = CatalogWriter(client, spool.spool_dir, batch_size=10)
        bundle = compose_run(metadata={"plan_name": "catalog start test"})
        descriptor = bundle.compose_descriptor(
            name="primary", data_keys={"c": {"source": "s", "dtype": "integer", "shape": []}}
        )
        docs = [("start", bundle.start_doc), ("descriptor", descriptor.descriptor_doc)]
        docs += [
            ("event", descriptor.compose_event(data={"c": i}, timestamps={"c": time.time()}))
            for i in range(5)
        ]
        docs.append(("stop", bundle.compose_stop()))
        for name, doc in docs:
            writer(name, doc)
        assert writer.close(60.0)
        assert catalog_event_counts(client, bundle.start_doc["uid"])["primary"] == 5


def test_a_zero_byte_catalog_from_an_interrupted_init_does_not_stop_the_next_start(
    fresh_config, reliability
):
    data_dir = fresh_config.data_dir
    data_dir.mkdir(parents=True, mode=0o700)
    (data_dir / CATALOG_DB).write_bytes(b"")  # what a start cut short during init left
    started = time.monotonic()
    with start_catalog_server(fresh_config):
        ended_s = time.monotonic() - started
        _write_and_read_a_run(fresh_config)
    assert (data_dir / CATALOG_DB).stat().st_size > 0
    assert list(data_dir.glob(f"{CATALOG_DB}.*")) == []  # an empty file is simply replaced
    reliability(
        fault="a 0-byte catalog.db left by a catalog start interrupted during its initialisation",
        seen="nothing: the next start initialises the catalog and serves",
        ended_s=ended_s,
        kept="the catalog (new); nothing to remove by hand",
    )


def test_a_start_killed_during_init_does_not_stop_the_next_start(fresh_config, children):
    """SIGKILL as soon as the catalog file appears (or its partial copy): whatever moment
    that is, the next start serves, and no partial file is left."""
    database = fresh_config.data_dir / CATALOG_DB
    partial = database.with_name(database.name + ".init-partial")
    server = catalog_server_process(fresh_config)
    server.start()
    try:
        deadline = time.monotonic() + fresh_config.catalog.start_timeout_s
        while not (partial.exists() or database.exists()) and time.monotonic() < deadline:
            assert server.is_running(), server.log_tail()
            time.sleep(0.005)
        assert partial.exists() or database.exists(), "the server never began its catalog"
    finally:
        server.kill()
    with start_catalog_server(fresh_config):
        _write_and_read_a_run(fresh_config)
    assert not partial.exists()


def test_a_slow_start_is_waited_for_with_a_message(fresh_config):
    """A server alive and starting is waited for (up to [catalog] start_timeout_s), and
    says so every 15 s; on this 2-core machine a start takes 20-60 s."""
    lines: list[str] = []
    started = time.monotonic()
    with start_catalog_server(fresh_config, say=lines.append) as server:
        took_s = time.monotonic() - started
        pid = server.process.pid
    # One line each 15 s of the wait (the last one may fall just before the server answered).
    assert int(took_s // 15) - 1 <= len(lines) <= int(took_s // 15), (took_s, lines)
    for line in lines:
        assert line.startswith(f"Tiled catalog server still starting (pid {pid}, "), line
        assert line.endswith("; waiting up to 300 s ([catalog] start_timeout_s)"), line
