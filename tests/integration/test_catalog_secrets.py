"""The embedded catalog keeps its API key in one file, and its data directory owner-only.

Runs its own server on a free port with a fresh data directory, writes a run through it,
stops it, then searches every file the server and the writer left for the key.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from event_model import compose_run

from stxm_ctrl.data.catalog import (
    API_KEY_FILE,
    CATALOG_DB,
    LOG_FILE,
    STORAGE_DIR,
    TABLES_DB,
    close_catalog,
    connect_catalog,
    start_catalog_server,
)
from stxm_ctrl.data.writers import CatalogWriter, DocumentSpool
from stxm_ctrl.processes import ProcessStartError, free_tcp_port


@pytest.fixture
def fresh_config(sim_config, tmp_path):
    return sim_config.with_overrides(
        {
            "beamline": {"data_dir": str(tmp_path / "data")},
            "catalog": {"port": free_tcp_port()},
        }
    )


def test_the_api_key_is_in_no_file_but_its_own_and_files_are_owner_only(fresh_config, reliability):
    data_dir = fresh_config.data_dir
    server = start_catalog_server(fresh_config)
    try:
        # The key is on no command line either.
        ps = subprocess.run(
            ["ps", "-o", "args=", "-p", str(server.process.pid)], capture_output=True, text=True
        )
        key = (data_dir / API_KEY_FILE).read_text().strip()
        assert ps.stdout.strip() and key not in ps.stdout
        # Nor in its environment, which other processes of the user can read.
        environ = (Path("/proc") / str(server.process.pid) / "environ").read_bytes()
        assert environ and key.encode() not in environ
        # A client that puts the key in the URL (as Tiled's own banner suggests).
        reply = httpx.get(f"{server.uri}/api/v1/metadata/?api_key={key}", timeout=30)
        assert reply.status_code == 200

        client = connect_catalog(fresh_config)
        spool = DocumentSpool(data_dir / "spool")
        writer = CatalogWriter(client, spool.spool_dir, batch_size=10)
        bundle = compose_run(metadata={"plan_name": "secret test"})
        descriptor = bundle.compose_descriptor(
            name="primary", data_keys={"c": {"source": "s", "dtype": "integer", "shape": []}}
        )
        docs = [("start", bundle.start_doc), ("descriptor", descriptor.descriptor_doc)]
        docs += [
            ("event", descriptor.compose_event(data={"c": i}, timestamps={"c": 1.0}, seq_num=i))
            for i in range(1, 26)
        ]
        docs.append(("stop", bundle.compose_stop()))
        for name, doc in docs:
            spool(name, doc)
            writer(name, doc)
        assert writer.close(timeout_s=120) and writer.failed_runs == []
        assert len(client[bundle.start_doc["uid"]]["primary"].read()["c"]) == 25
        close_catalog(client)
    finally:
        server.stop()

    holding_key = []
    files = []
    for root, _dirs, names in os.walk(data_dir):
        for name in names:
            path = os.path.join(root, name)
            files.append(path)
            with open(path, "rb") as file:
                if key.encode() in file.read():
                    holding_key.append(path)
    assert str(data_dir / LOG_FILE) in files  # the log was searched, and it is not empty
    assert (data_dir / LOG_FILE).stat().st_size > 0
    assert holding_key == [str(data_dir / API_KEY_FILE)]
    assert "/api/v1/metadata/?api_key=[redacted]" in (data_dir / LOG_FILE).read_text()

    def mode(path):
        return stat.S_IMODE(path.stat().st_mode)

    assert mode(data_dir) == 0o700
    assert mode(data_dir / API_KEY_FILE) == 0o600
    assert mode(data_dir / LOG_FILE) == 0o600
    assert mode((data_dir / LOG_FILE).parent) == 0o700
    assert mode(data_dir / CATALOG_DB) == 0o600
    assert mode(data_dir / STORAGE_DIR) == 0o700
    assert mode(data_dir / STORAGE_DIR / TABLES_DB) == 0o600
    assert mode(data_dir / "spool") == 0o700
    # Nothing anywhere in the data directory is open to group or others.
    for root, dirs, names in os.walk(data_dir):
        for name in dirs + names:
            path = os.path.join(root, name)
            assert not stat.S_IMODE(os.lstat(path).st_mode) & 0o077, path
    reliability(
        fault="another local user looks for the catalog's API key",
        seen="the key is in no log (a key in a URL is logged as api_key=[redacted]), command "
        "line, process environment or file but data_dir/tiled_api_key (0600); every file of "
        "the data directory is owner-only",
        ended_s=None,
        kept="the catalog's read and write access, for its owner only",
    )


def test_a_taken_catalog_port_is_refused_naming_the_holder(fresh_config):
    host, port = fresh_config.catalog.host, fresh_config.catalog.port
    with socket.socket() as squatter:
        squatter.bind((host, port))
        squatter.listen()
        with pytest.raises(ProcessStartError) as info:
            start_catalog_server(fresh_config)
    message = str(info.value)
    assert f"catalog port {host}:{port} is in use (held by pid {os.getpid()} (" in message
    assert "set [catalog] port to a free port" in message
