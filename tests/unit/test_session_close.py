"""Closing a session while the catalog hangs: the user is told, and shutdown goes on."""

from __future__ import annotations

import logging

import pytest
from bluesky import RunEngine

from stxm_ctrl.app.session import DataPath, Session
from stxm_ctrl.config import load_config
from stxm_ctrl.data.writers import CatalogWriter, DocumentSpool

from .test_writers import BlockedTiledWriter, FakeTiledClient, make_run


class FakeDevice:
    def __init__(self) -> None:
        self.destroyed = False

    def destroy(self) -> None:
        self.destroyed = True


class FakeDevices:
    def __init__(self) -> None:
        self.devices = [FakeDevice(), FakeDevice()]

    def all(self) -> list[FakeDevice]:
        return self.devices


def test_close_with_a_hanging_catalog_warns_and_still_disconnects(tmp_path, caplog):
    """Session.close closes the RunEngine's event loop too (no thread or socket left)."""
    writer = CatalogWriter(FakeTiledClient(), tmp_path / "spool")
    writer.writer = BlockedTiledWriter()
    devices = FakeDevices()
    RE = RunEngine({})
    data = DataPath(RE=RE, spool=DocumentSpool(tmp_path / "spool"), catalog_writer=writer)
    session = Session(config=load_config(), RE=RE, devices=devices, data=data)
    for name, doc in make_run(3):
        writer(name, doc)
    with caplog.at_level(logging.WARNING):
        session.close(catalog_timeout_s=0.2)
    messages = [r.getMessage() for r in caplog.records]
    assert any("waiting up to 0 s for 6 documents" in m for m in messages), messages
    assert any("did not reach the catalog" in m and "stxm import-spool" in m for m in messages)
    assert all(device.destroyed for device in devices.devices)
    assert RE.loop.is_closed()
    writer.writer.release.set()  # let the worker thread finish


def test_a_run_the_disk_cannot_hold_is_refused_before_it_opens(
    tmp_path, make_run_engine, monkeypatch
):
    from bluesky.plans import count
    from ophyd.sim import det

    from stxm_ctrl.app.session import wire_data_path
    from stxm_ctrl.disk import DiskSpaceError

    config = load_config(overrides={"beamline": {"data_dir": str(tmp_path)}})
    RE = make_run_engine({})
    data = wire_data_path(RE, config, catalog=False)
    monkeypatch.setattr("stxm_ctrl.disk.free_bytes", lambda directory: 200_000)
    documents: list[str] = []
    RE.subscribe(lambda name, doc: documents.append(name))
    with pytest.raises(DiskSpaceError, match=r"not enough free space for a run of 1000 points"):
        RE(count([det], num=1000))
    assert documents == []  # no start document: nothing was measured, nothing moved
    RE(count([det], num=1))  # small enough
    assert documents[0] == "start"
    data.close()
