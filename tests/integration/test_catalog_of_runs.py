"""The catalog as databroker users know it, and the commands' one-line errors about it.

One embedded catalog server (``start_catalog_server``) on a fresh data directory for the
module, with four runs written by a RunEngine counting an ``ophyd.sim`` detector through the
session's writers (catalog and spool): scan ids 4, 5, 6 and 6 again (scan numbers restarted).
No IOCs.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
import warnings
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from stxm_ctrl.app.cli import main
from stxm_ctrl.data.catalog import catalog_client, start_catalog_server
from stxm_ctrl.data.writers import (
    CatalogWriter,
    DocumentSpool,
    catalog_event_counts,
    spool_file_for,
)
from stxm_ctrl.processes import free_tcp_ports
from tests.conftest import config_toml

SCAN_IDS = (4, 5, 6, 6)
POINTS = {4: 2, 5: 3, 6: 4}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """The server, its configuration file, and the runs' start documents in write order."""
    from bluesky.plans import count
    from ophyd.sim import hw

    from stxm_ctrl.app.session import close_run_engine
    from stxm_ctrl.config import load_config

    base = tmp_path_factory.mktemp("catalog_of_runs")
    (catalog_port, other_port) = free_tcp_ports(2)
    overrides = {
        "beamline": {"data_dir": str(base / "data")},
        "catalog": {"port": catalog_port},
    }
    config_path = base / "beamline.toml"
    config_path.write_text(config_toml(overrides))
    config = load_config(config_path)
    server = start_catalog_server(config)
    from bluesky import RunEngine

    RE = RunEngine()
    det = hw().det
    starts: list[dict] = []
    try:
        with catalog_client(config) as client:
            spool = DocumentSpool(config.data_dir / "spool")
            writer = CatalogWriter(client, spool.spool_dir, batch_size=10)
            RE.subscribe(spool)
            RE.subscribe(writer)
            RE.subscribe(lambda name, doc: starts.append(doc) if name == "start" else None)
            for scan_id in SCAN_IDS:
                RE.md["scan_id"] = scan_id - 1
                RE(count([det], num=POINTS[scan_id], md={"sample_name": f"film {scan_id}"}))
                time.sleep(0.01)  # distinct start times
            assert writer.close(timeout_s=120) and writer.failed_runs == []
        yield SimpleNamespace(
            config=config,
            config_path=config_path,
            starts=starts,
            server=server,
            base=base,
            other_port=other_port,
        )
    finally:
        close_run_engine(RE)
        server.stop()


@pytest.fixture
def client(catalog):
    with catalog_client(catalog.config) as client:
        yield client


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ") and "Traceback" not in captured.err
    return lines[0]


# -- item: the client is bluesky-tiled-plugins' catalog of runs ------------------------------


def test_the_client_is_the_catalog_of_runs(client, catalog):
    from bluesky_tiled_plugins import CatalogOfBlueskyRuns

    assert isinstance(client, CatalogOfBlueskyRuns)
    uids = [start["uid"] for start in catalog.starts]
    assert client[-1].metadata["start"]["uid"] == uids[-1]  # the newest
    assert client[-4].metadata["start"]["uid"] == uids[0]
    assert client[5].metadata["start"]["uid"] == uids[1]  # by scan id
    assert client[6].metadata["start"]["uid"] == uids[3]  # databroker: the newest of that id
    assert client[uids[2][:8]].metadata["start"]["uid"] == uids[2]  # a uid prefix
    assert client[uids[0]].metadata["start"]["scan_id"] == 4  # a whole uid
    with pytest.raises(KeyError):
        client[99]


def test_databroker_v1_habits(client, catalog):
    from databroker import Broker

    db = Broker(client)
    table = db[-1].table()
    assert len(table) == POINTS[6]
    assert "det" in table.columns
    assert len(client.v1[5].table()) == POINTS[5]
    header = db[4]
    assert header.start["uid"] == catalog.starts[0]["uid"]
    assert header.stop["exit_status"] == "success"
    assert sorted(h.start["scan_id"] for h in db(sample_name="film 6")) == [6, 6]
    # Those switched the process's clients to v2 runs (bluesky-tiled-plugins keeps the
    # choice in a map shared by every client); the import's read-back still counts events.
    with catalog_client(catalog.config) as fresh:
        for start in catalog.starts:
            events = catalog_event_counts(fresh, start["uid"])
            assert events == {"primary": POINTS[start["scan_id"]]}


def test_databroker_queries(client, catalog):
    from databroker.queries import PartialUID, ScanID, ScanIDRange, TimeRange

    starts = catalog.starts
    assert len(client.search(ScanID(6))) == 2
    assert len(client.search(ScanIDRange(4, 6))) == 2  # 4 and 5: the end is excluded
    after = starts[2]["time"]
    found = client.search(TimeRange(since=after))
    assert sorted(run.metadata["start"]["uid"] for run in found.values()) == sorted(
        start["uid"] for start in starts[2:]
    )
    assert len(client.search(TimeRange(until=after))) == 2
    (run,) = client.search(PartialUID(starts[1]["uid"][:8])).values()
    assert run.metadata["start"]["scan_id"] == 5


# -- the commands' errors about the catalog ---------------------------------------------------


def test_export_refuses_a_scan_id_that_names_several_runs(catalog, tmp_path, capsys):
    out = tmp_path / "nexus"
    status = main(["export", "6", "--out", str(out), "--config", str(catalog.config_path)])
    line = one_line_error(capsys)
    assert status == 2
    first, second = (start["uid"][:8] for start in catalog.starts[2:])
    assert "scan id 6 names 2 runs in the catalog" in line
    assert first in line and second in line
    assert f"e.g. stxm export {second}" in line
    assert not out.exists()  # nothing written
    # Named by uid, that run is the one taken (a count, which NXstxm does not describe).
    assert main(["export", first, "--out", str(out), "--config", str(catalog.config_path)]) == 1
    assert f"run {first} (count) is not an STXM scan type" in one_line_error(capsys)


def test_export_refuses_a_scan_id_that_names_several_spooled_runs(catalog, tmp_path, capsys):
    argv = ["export", "6", "--from-spool", "--out", str(tmp_path), "--config"]
    assert main([*argv, str(catalog.config_path)]) == 2
    assert "scan id 6 names 2 runs in the spool" in one_line_error(capsys)


def test_runs_with_a_limit_beyond_any_index_lists_every_run(catalog, capsys):
    argv = ["runs", "--limit", "99999999999999999999", "--config", str(catalog.config_path)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert sum(start["uid"][:8] in captured.out for start in catalog.starts) == 4


@pytest.mark.parametrize("sample", ["x" * 70_000, "é" * 10_000])
def test_runs_with_a_very_long_sample_is_refused_in_one_line(catalog, sample, capsys):
    argv = ["runs", "--sample", sample, "--config", str(catalog.config_path)]
    assert main(argv) == 2
    line = one_line_error(capsys)
    assert f"sample (--sample) is {len(sample)} characters long; at most 1000" in line


def test_a_key_of_another_data_directory_is_named_as_such(catalog, tmp_path, capsys):
    other = tmp_path / "beamline.toml"
    other.write_text(
        config_toml(
            {
                "beamline": {"data_dir": str(tmp_path / "other")},
                "catalog": {"port": catalog.config.catalog.port},
            }
        )
    )
    assert main(["runs", "--config", str(other)]) == 1
    line = one_line_error(capsys)
    assert "refused the API key of" in line and str(tmp_path / "other") in line
    assert "`stxm serve` of another data directory" in line
    assert "does not answer" not in line


def test_a_port_held_by_another_http_server_is_named_as_such(catalog, tmp_path, capsys):
    port = catalog.other_port

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # not on the test's stderr
            pass

    server = http.server.HTTPServer(("127.0.0.1", port), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    path = tmp_path / "beamline.toml"
    path.write_text(
        config_toml({"beamline": {"data_dir": str(tmp_path / "d")}, "catalog": {"port": port}})
    )
    try:
        assert main(["runs", "--config", str(path)]) == 1
    finally:
        server.shutdown()
        server.server_close()
    line = one_line_error(capsys)
    assert f"what answers at http://127.0.0.1:{port} is not a Tiled catalog" in line
    assert f"another program holds port {port} (held by pid {os.getpid()} (" in line
    assert "does not answer" not in line


# -- import-spool of a spool with documents after its stop -------------------------------------


def test_import_spool_refuses_documents_after_the_stop(catalog, client, tmp_path, capsys):
    from event_model import compose_run

    bundle = compose_run(metadata={"plan_name": "count", "scan_id": 77})
    descriptor = bundle.compose_descriptor(
        name="primary", data_keys={"c": {"source": "s", "dtype": "integer", "shape": []}}
    )
    docs = [("start", bundle.start_doc), ("descriptor", descriptor.descriptor_doc)]
    docs += [
        ("event", descriptor.compose_event(data={"c": i}, timestamps={"c": 1.0}, seq_num=i))
        for i in (1, 2)
    ]
    docs.append(("stop", bundle.compose_stop()))
    spool = DocumentSpool(tmp_path)
    for name, doc in docs:
        spool(name, doc)
    path = spool_file_for(tmp_path, bundle.start_doc["uid"])
    late = descriptor.compose_event(data={"c": 3}, timestamps={"c": 1.0}, seq_num=3)
    with path.open("a") as file:  # another process appended to the file after the run ended
        file.write(json.dumps({"name": "event", "doc": late}) + "\n")
    assert len(path.read_text().splitlines()) == 6

    status = main(["import-spool", str(path), "--config", str(catalog.config_path)])
    line = one_line_error(capsys)
    assert status == 2
    assert f"{path} has 1 document(s) after its stop document (document 5 of 6)" in line
    assert "nothing was imported" in line
    assert bundle.start_doc["uid"] not in client  # the catalog does not call it complete


def test_a_catalog_made_without_the_spec_is_served_as_a_catalog_of_runs(tmp_path):
    """Data directories of older versions: their root had no spec; served now, it has."""
    from bluesky import RunEngine
    from bluesky.plans import count
    from bluesky_tiled_plugins import CatalogOfBlueskyRuns, TiledWriter
    from ophyd.sim import hw
    from tiled.catalog import from_uri
    from tiled.client import from_context
    from tiled.client.context import Context
    from tiled.server.app import build_app

    from stxm_ctrl.app.session import close_run_engine
    from stxm_ctrl.config import load_config
    from stxm_ctrl.data.catalog import CATALOG_DB, STORAGE_DIR, TABLES_DB

    data_dir = tmp_path / "data"
    storage = data_dir / STORAGE_DIR
    storage.mkdir(parents=True)
    old = from_uri(
        f"sqlite:///{data_dir / CATALOG_DB}",
        writable_storage=[str(storage), f"sqlite:///{storage / TABLES_DB}"],
        init_if_not_exists=True,
    )
    RE = RunEngine()
    try:
        with warnings.catch_warnings():
            # starlette's, about its test client (what Context.from_app serves through).
            warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
            context = Context.from_app(build_app(old))
        with context:
            plain = from_context(context)
            assert not isinstance(plain, CatalogOfBlueskyRuns)  # as older versions made it
            RE.subscribe(TiledWriter(plain))
            RE.md["scan_id"] = 17
            (uid,) = RE(count([hw().det], num=3))
    finally:
        close_run_engine(RE)

    (port,) = free_tcp_ports(1)
    config = load_config(
        overrides={"beamline": {"data_dir": str(data_dir)}, "catalog": {"port": port}}
    )
    with start_catalog_server(config), catalog_client(config) as client:
        assert isinstance(client, CatalogOfBlueskyRuns)
        assert client[-1].metadata["start"]["uid"] == uid
        assert client[18]["primary"].read().sizes["time"] == 3
