"""The reliability table (``--reliability-table``) holds every fault test's row once, whether
the tests ran in one process or in pytest-xdist workers (the default options run them so).

Two tiny fault tests in two files, one passing and one failing, run with this project's
conftest in a pytest of their own, serially and on two workers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CONFTEST = Path(__file__).parents[1] / "conftest.py"

FAULT_TESTS = {
    "test_frozen.py": """
        def test_a_frozen_ioc_ends_the_scan(reliability):
            reliability(fault="IOC frozen mid-scan", seen="the scan stopped:   apd timed out",
                        ended_s=2.04, kept="every point before")
    """,
    "test_full_disk.py": """
        def test_a_full_disk_is_refused(reliability):
            spool = "/tmp/pytest-of-x/pytest-3/popen-gw1/test_full0/data/spool"
            reliability(fault="disk full", seen=f"no room in {spool}", ended_s=None,
                        kept="nothing | was written")
            assert False, "the fault test itself failed"
    """,
}


@pytest.mark.parametrize("workers", ["0", "2"])
def test_every_fault_row_reaches_the_table_once_with_its_outcome(tmp_path, workers):
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text())
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    for name, text in FAULT_TESTS.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    table = tmp_path / "reliability.md"

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "xdist", "-n", workers, "-p", "no:cacheprovider",
         f"--reliability-table={table}", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        # Only the plugin under test: the environment's others (hypothesis, zarr, anyio) add
        # seconds to the start of every worker.
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )  # fmt: skip

    assert "1 failed, 1 passed" in result.stdout, result.stdout + result.stderr
    rows = [line for line in table.read_text().splitlines() if line.startswith("| ")][1:]
    assert rows == [
        "| IOC frozen mid-scan | the scan stopped: apd timed out | 2.0 s | every point before "
        "| `test_a_frozen_ioc_ends_the_scan` |",
        "| disk full | no room in <tmp>/data/spool | — | nothing \\| was written "
        "| `test_a_full_disk_is_refused` (**failed**) |",
    ]
