"""One instance per data directory: a second command is refused at once, naming the first."""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
import subprocess
import sys
import time

import pytest

from stxm_ctrl.locks import LOCK_FILE, DataDirInUseError, DataDirLock, lock_holder

HOLDER = (
    "import sys, time\n"
    "from stxm_ctrl.locks import DataDirLock\n"
    "with DataDirLock(sys.argv[1], 'stxm demo'):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(120)\n"
)


@pytest.fixture
def holder(tmp_path):
    """Another process holding ``tmp_path / "data"`` as `stxm demo`."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "data")], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "locked"
    process.stdout.close()
    yield process
    process.kill()
    process.wait()


def test_a_second_process_is_refused_at_once_naming_the_holder(tmp_path, holder):
    data_dir = tmp_path / "data"
    started = time.monotonic()
    with pytest.raises(DataDirInUseError) as info:
        DataDirLock(data_dir, "stxm sim").acquire()
    assert time.monotonic() - started < 2.0  # no waiting for the holder
    message = str(info.value)
    assert re.fullmatch(
        rf"data directory {re.escape(str(data_dir))} is in use by `stxm demo` "
        rf"\(pid {holder.pid}, since \d\d:\d\d:\d\d\); stop it or use another data_dir",
        message,
    ), message
    assert info.value.holder["pid"] == holder.pid


def test_the_lock_is_free_again_when_the_holder_is_killed(tmp_path, holder):
    data_dir = tmp_path / "data"
    holder.kill()  # SIGKILL: no chance to clean up; the kernel drops the lock
    holder.wait()
    with DataDirLock(data_dir, "stxm sim") as lock:
        assert lock.held
        record = lock_holder(data_dir)
        assert record["pid"] != holder.pid and record["purpose"] == "stxm sim"


def test_the_lock_file_records_the_holder_and_is_owner_only(tmp_path):
    data_dir = tmp_path / "new" / "data"
    with DataDirLock(data_dir, "stxm serve"):
        path = data_dir / LOCK_FILE
        record = json.loads(path.read_text())
        assert record["purpose"] == "stxm serve"
        assert record["pid"] > 0 and abs(record["since"] - time.time()) < 60
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert lock_holder(data_dir) == {}  # released: nobody is recorded


def test_two_locks_in_one_process_conflict_and_release_lets_the_next_in(tmp_path):
    first = DataDirLock(tmp_path, "stxm demo").acquire()
    with pytest.raises(DataDirInUseError, match="in use by `stxm demo`"):
        DataDirLock(tmp_path, "stxm shell").acquire()
    first.release()
    with DataDirLock(tmp_path, "stxm shell") as second:
        assert second.held
    assert not second.held


def test_a_holder_that_has_not_written_its_record_yet_is_still_refused(tmp_path):
    (tmp_path / LOCK_FILE).touch()
    fd = os.open(tmp_path / LOCK_FILE, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(DataDirInUseError) as info:
            DataDirLock(tmp_path, "stxm demo").acquire()
    finally:
        os.close(fd)
    assert "in use by another process" in str(info.value)
    assert "stop it or use another data_dir" in str(info.value)


def test_parts_of_a_directory_lock_separately(tmp_path):
    """`stxm sim` and `stxm serve` side by side; `stxm demo` (both parts) is refused."""
    with (
        DataDirLock(tmp_path, "stxm sim", part="sim"),
        DataDirLock(tmp_path, "stxm serve", part="catalog"),
    ):
        with pytest.raises(DataDirInUseError) as info:
            DataDirLock(tmp_path, "stxm demo", part="catalog").acquire()
        assert f"data directory {tmp_path} (catalog) is in use by `stxm serve`" in str(info.value)
        assert lock_holder(tmp_path, "sim")["purpose"] == "stxm sim"
    with pytest.raises(ValueError, match="plain name"):
        DataDirLock(tmp_path, "stxm demo", part="../elsewhere")
