"""The spool on a full disk and after a crash: whole lines only, torn tails skipped."""

from __future__ import annotations

import copy
import errno
import json
import logging
import os
import stat
import textwrap
from pathlib import Path

import pytest

from stxm_ctrl.data.writers import (
    DocumentSpool,
    SpoolCorruptError,
    SpoolWriteError,
    estimate_spool_bytes,
    read_spool_file,
    spool_event_counts,
    spool_file_for,
)
from stxm_ctrl.disk import DiskSpaceError, check_free_space, free_bytes

from .small_disk import run_on_small_disk
from .test_writers import make_run


class DiskThatFillsUp:
    """``os.write`` as a disk with ``budget`` bytes left behaves, for files under ``root``.

    Like the kernel: a write larger than what is left writes what fits and returns the
    short count; the next write raises ENOSPC.
    """

    def __init__(self, root: Path, budget: int) -> None:
        self.root = str(root)
        self.budget = budget
        self.real_write = os.write
        self.short_writes = 0

    def __call__(self, fd: int, data) -> int:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if not target.startswith(self.root):
            return self.real_write(fd, data)
        if self.budget <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        data = bytes(data)
        if len(data) > self.budget:
            self.short_writes += 1
            data = data[: self.budget]
        written = self.real_write(fd, data)
        self.budget -= written
        return written


def line_sizes(docs, scratch: Path) -> list[int]:
    """Bytes of each spool line of ``docs``, from spooling them to a disk with room."""
    spool = DocumentSpool(scratch)
    for name, doc in copy.deepcopy(docs):  # the router adds keys to the documents it routes
        spool(name, doc)
    raw = spool_file_for(scratch, docs[0][1]["uid"]).read_bytes()
    return [len(line) for line in raw.splitlines(keepends=True)]


def spool_until_full(
    tmp_path: Path, docs, budget: int, monkeypatch
) -> tuple[Path, int, Exception]:
    disk = DiskThatFillsUp(tmp_path, budget)
    monkeypatch.setattr(os, "write", disk)
    spool = DocumentSpool(tmp_path / "spool")
    failed_at = error = None
    for index, (name, doc) in enumerate(docs):
        try:
            spool(name, doc)
        except SpoolWriteError as exc:
            if failed_at is not None:
                raise AssertionError("the spool raised a second time for the same run") from exc
            failed_at, error = index, exc
    monkeypatch.undo()
    assert disk.short_writes == 1, "the test meant to cut a line in half"
    assert spool.failures[docs[0][1]["uid"]] is error
    return spool_file_for(tmp_path / "spool", docs[0][1]["uid"]), failed_at, error


def test_a_full_disk_leaves_only_whole_lines_and_says_what_is_kept(tmp_path, monkeypatch):
    docs = make_run(40)
    # Room for the start, descriptor and a few events, then half of the next line.
    sizes = line_sizes(docs, tmp_path / "scratch")
    budget = sum(sizes[:6]) + sizes[6] // 2
    path, failed_at, error = spool_until_full(tmp_path, docs, budget, monkeypatch)

    assert failed_at == 6
    uid = docs[0][1]["uid"]
    message = str(error)
    assert f"the disk holding {path.parent} is full" in message
    assert f"the first 6 documents of run {uid} (4 events) are safely in {path}" in message
    assert f"stxm import-spool {path}" in message
    assert error.errno == errno.ENOSPC
    assert (error.documents, error.events, error.path) == (6, 4, path)

    # Every line on disk is whole: the half-written one was cut off again.
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    assert len(raw) == sum(sizes[:6])
    contents = read_spool_file(path)
    assert not contents.torn
    assert [name for name, _ in contents] == ["start", "descriptor"] + ["event_page"] * 4
    assert spool_event_counts(contents) == {"primary": 4}


def test_after_a_full_disk_the_rest_of_the_run_is_dropped_quietly(tmp_path, monkeypatch, caplog):
    docs = make_run(10)
    sizes = line_sizes(docs, tmp_path / "scratch")
    with caplog.at_level(logging.DEBUG):
        path, failed_at, _ = spool_until_full(tmp_path, docs, sizes[0] + 5, monkeypatch)
    assert failed_at == 1
    # The stop document (as the RunEngine sends it while cleaning up) raised nothing.
    assert [name for name, _ in read_spool_file(path)] == ["start"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_quota_exceeded_is_named_as_such(tmp_path, monkeypatch):
    docs = make_run(3)

    def no_quota(fd, data):
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    spool = DocumentSpool(tmp_path)
    monkeypatch.setattr(os, "write", no_quota)
    with pytest.raises(SpoolWriteError) as info:
        spool(*docs[0])
    monkeypatch.undo()
    assert "disk quota on the disk holding" in str(info.value)
    assert "the first 0 documents" in str(info.value)


def test_a_torn_last_line_is_skipped_and_reported(tmp_path, caplog):
    docs = make_run(3)
    spool = DocumentSpool(tmp_path)
    for name, doc in docs[:-1]:
        spool(name, doc)
    path = spool_file_for(tmp_path, docs[0][1]["uid"])
    whole = path.stat().st_size
    with open(path, "ab") as file:  # a crash in the middle of the stop document
        file.write(b'{"name": "stop", "doc": {"run_sta')
    with caplog.at_level(logging.WARNING):
        contents = read_spool_file(path)
    assert contents.torn and contents.torn_offset == whole and contents.torn_bytes == 33
    assert [name for name, _ in contents] == ["start", "descriptor"] + ["event_page"] * 3
    (warning,) = [r.getMessage() for r in caplog.records]
    assert str(path) in warning and f"byte offset {whole}" in warning


def test_a_last_line_that_only_lacks_its_newline_is_kept(tmp_path):
    path = tmp_path / "run.jsonl"
    path.write_text('{"name": "start", "doc": {"uid": "u"}}\n{"name": "stop", "doc": {}}')
    contents = read_spool_file(path)
    assert not contents.torn
    assert [name for name, _ in contents] == ["start", "stop"]


def test_a_damaged_line_in_the_middle_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "run.jsonl"
    intact = '{"name": "start", "doc": {"uid": "u"}}\n{"name": "descriptor", "doc": {}}\n'
    # What a writer that lets a later write complete a half line leaves behind.
    path.write_text(
        intact
        + '{"name": "event_page", "doc": {"de{"name": "event_page", "doc": {}}\n'
        + '{"name": "stop", "doc": {}}\n'
    )
    with pytest.raises(SpoolCorruptError) as info:
        read_spool_file(path)
    message = str(info.value)
    assert f"spool file {path} is damaged at line 3 (byte offset {len(intact)})" in message
    assert "head -n 2" in message


def test_spool_files_and_directories_are_owner_only(tmp_path):
    docs = make_run(1)
    spool = DocumentSpool(tmp_path / "new" / "spool")
    for name, doc in docs:
        spool(name, doc)
    path = spool_file_for(tmp_path / "new" / "spool", docs[0][1]["uid"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700


def test_check_free_space_names_directory_free_and_needed_bytes(tmp_path):
    target = tmp_path / "not" / "yet" / "made"
    free = free_bytes(target)
    assert check_free_space(target, 1000) >= 1000
    needed = free + 10**15
    with pytest.raises(DiskSpaceError) as info:
        check_free_space(target, needed, what="the spool of a 64 x 64 image")
    message = str(info.value)
    assert f"not enough free space for the spool of a 64 x 64 image in {target}" in message
    assert f"({needed} bytes) needed" in message
    assert "bytes) free on that disk" in message
    assert info.value.errno == errno.ENOSPC
    assert not (tmp_path / "not").exists()


def test_the_spool_estimate_covers_a_sample_image_like_run(tmp_path):
    import numpy as np
    from event_model import compose_run

    # The data keys of sample_image, with realistic values and metadata.
    bundle = compose_run(metadata={"plan_name": "sample_image", "purpose": "x" * 200})
    keys = [
        "apd_counts",
        "sample_x",
        "sample_x_user_setpoint",
        "sample_y",
        "sample_y_user_setpoint",
    ]
    descriptor = bundle.compose_descriptor(
        name="primary",
        data_keys={k: {"source": f"PV:STXM:{k}", "dtype": "number", "shape": []} for k in keys},
    )
    spool = DocumentSpool(tmp_path)
    spool("start", bundle.start_doc)
    spool("descriptor", descriptor.descriptor_doc)
    rng = np.random.default_rng(1)
    points = 300
    for i in range(points):
        values = {k: float(rng.uniform(-1000, 1000)) for k in keys}
        spool(
            "event",
            descriptor.compose_event(
                data=values, timestamps=dict.fromkeys(keys, 1.7e9 + i), seq_num=i + 1
            ),
        )
    spool("stop", bundle.compose_stop())
    size = spool_file_for(tmp_path, bundle.start_doc["uid"]).stat().st_size
    assert size <= estimate_spool_bytes(points)
    # ... and not wildly above it either (the estimate is for refusing runs).
    assert estimate_spool_bytes(points) < 4 * size


REAL_SMALL_DISK = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[2])
    from test_writers import make_run
    from stxm_ctrl.data.writers import DocumentSpool, SpoolWriteError, read_spool_file
    docs = make_run(2000)
    spool = DocumentSpool(sys.argv[1])
    result = {"errors": []}
    for name, doc in docs:
        try:
            spool(name, doc)
        except SpoolWriteError as exc:
            result["errors"].append(str(exc))
            result["documents"] = exc.documents
            result["path"] = str(exc.path)
    contents = read_spool_file(result["path"])
    raw = open(result["path"], "rb").read()
    result.update(read=len(contents), torn=contents.torn, ends_whole=raw.endswith(b"\\n"))
    print(json.dumps(result))
    """
)


def test_a_real_64k_filesystem_fills_up_cleanly(tmp_path):
    """A tmpfs of 64 kB in a private mount namespace (needs `unshare`; no mount is left)."""
    mount_point, stdout = run_on_small_disk(tmp_path, REAL_SMALL_DISK)
    outcome = json.loads(stdout)
    assert len(outcome["errors"]) == 1, outcome["errors"]
    assert f"the disk holding {mount_point} is full" in outcome["errors"][0]
    assert outcome["read"] == outcome["documents"] > 100
    assert outcome["ends_whole"] and not outcome["torn"]


def test_a_full_disk_stops_the_scan_with_one_clear_error(
    tmp_path, monkeypatch, caplog, make_run_engine, reliability
):
    from bluesky.plans import count
    from ophyd.sim import det

    RE = make_run_engine({})
    spool = DocumentSpool(tmp_path / "spool")
    seen: list[str] = []
    RE.subscribe(spool)
    RE.subscribe(lambda name, doc: seen.append(name))
    monkeypatch.setattr(os, "write", DiskThatFillsUp(tmp_path, 2000))
    with caplog.at_level(logging.DEBUG), pytest.raises(SpoolWriteError) as info:
        RE(count([det], num=50))
    monkeypatch.undo()
    assert "is full" in str(info.value)
    (uid,) = spool.failures
    # The RunEngine closed the run (stop document, exit status "fail") without the spool
    # raising again: no "Failed to close run", and nothing logged by the spool itself.
    assert seen[-1] == "stop"
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "Failed to close run" in m]
    assert not [r for r in caplog.records if r.name.startswith("stxm_ctrl")]
    assert len(read_spool_file(spool_file_for(tmp_path / "spool", uid))) == info.value.documents
    reliability(
        fault="disk full while a run is being spooled",
        seen=str(info.value)[:200] + "...",
        ended_s=None,
        kept=f"every whole document before the disk filled ({info.value.documents}), readable; "
        "no half line; run closed with exit_status fail",
    )
