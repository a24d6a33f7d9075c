"""Run a script on a real, small filesystem: a tmpfs in a private mount namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def run_on_small_disk(tmp_path: Path, script_text: str, size: str = "64k") -> tuple[Path, str]:
    """Run ``script_text`` with ``argv[1]`` a fresh tmpfs of ``size`` and ``argv[2]`` tests/unit.

    Needs ``unshare`` (util-linux) and a kernel that allows the mount (as root, or in an
    unprivileged user namespace); skips the test otherwise. No mount outlives the script.

    Returns
    -------
    tuple
        The mount point and the script's standard output.
    """
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("`unshare` (util-linux) is not installed")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    script = tmp_path / "on_small_disk.py"
    script.write_text(script_text)
    shell = (
        f"mount -t tmpfs -o size={size} tmpfs {mount_point} || exit 77; "
        f"exec {sys.executable} {script} {mount_point} {Path(__file__).parent}"
    )
    argv = [unshare, "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        argv.append("--map-root-user")  # an unprivileged user namespace, if the kernel allows
    result = subprocess.run(
        [*argv, "sh", "-c", shell], capture_output=True, text=True, timeout=120
    )
    if result.returncode == 77 or "unshare failed" in result.stderr:
        pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    return mount_point, result.stdout
