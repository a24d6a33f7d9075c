"""The catalog server's own initialisation: all at once, never over data."""

from __future__ import annotations

import sqlite3

from stxm_ctrl.data.tiled_server import catalog_initialized, initialize_catalog


def test_only_a_stamped_catalog_counts_as_initialised(tmp_path):
    database = tmp_path / "catalog.db"
    assert not catalog_initialized(database)  # missing
    database.write_bytes(b"")
    assert not catalog_initialized(database)  # what an interrupted init left
    with sqlite3.connect(database) as db:  # tables, but the init stopped before its stamp
        db.execute("CREATE TABLE nodes (id INTEGER PRIMARY KEY)")
    assert not catalog_initialized(database)
    database.write_bytes(b"not a database at all")
    assert not catalog_initialized(database)


def test_an_empty_file_is_replaced_and_anything_else_kept_aside(tmp_path):
    said: list[str] = []
    empty = tmp_path / "a" / "catalog.db"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    initialize_catalog(empty, say=said.append)
    assert catalog_initialized(empty)
    assert sorted(p.name for p in empty.parent.iterdir()) == ["catalog.db"]
    assert said == []

    odd = tmp_path / "b" / "catalog.db"
    odd.parent.mkdir()
    with sqlite3.connect(odd) as db:
        db.execute("CREATE TABLE mine (x)")
    (odd.parent / "catalog.db.init-partial").write_bytes(b"left by a killed start")
    initialize_catalog(odd, say=said.append)
    assert catalog_initialized(odd)
    (aside,) = odd.parent.glob("catalog.db.not-a-catalog-*")
    with sqlite3.connect(aside) as db:  # the user's file, untouched
        assert db.execute("SELECT name FROM sqlite_master").fetchall() == [("mine",)]
    assert not (odd.parent / "catalog.db.init-partial").exists()
    assert said == [f"{odd} was not a Tiled catalog (an interrupted start?); kept it as {aside}"]
