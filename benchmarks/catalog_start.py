"""Cost of starting the embedded catalog server: first start (new catalog) and a restart.

    uv run python benchmarks/catalog_start.py [--trials 2]

For each trial: a fresh data directory and a free port; the server is started as
``stxm serve`` starts it and timed until its port answers (wall time), with the CPU time
its process and its reaped children used by then (``/proc/<pid>/stat``: utime, stime,
cutime, cstime), then stopped; then started again on the same catalog. The load average
is printed with each figure: on a shared machine the wall time follows it, CPU time much
less.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from stxm_ctrl.config import load_config
from stxm_ctrl.data.catalog import start_catalog_server
from stxm_ctrl.processes import free_tcp_port


def cpu_s(pid: int) -> float:
    """CPU time of ``pid`` and its reaped children so far, s."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def one_start(config) -> tuple[float, float]:
    """Wall time to an answering port and the CPU time used by then."""
    started = time.monotonic()
    server = start_catalog_server(config)
    wall = time.monotonic() - started
    assert server.process.pid is not None
    cpu = cpu_s(server.process.pid)
    server.stop()
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=2)
    args = parser.parse_args()
    print("start        wall s   CPU s   load (1 min)")
    for _ in range(args.trials):
        data_dir = Path(tempfile.mkdtemp(prefix="stxm-catalog-bench-"))
        config = load_config(
            overrides={
                "beamline": {"data_dir": str(data_dir)},
                "catalog": {"port": free_tcp_port()},
            }
        )
        for name in ("first", "restart"):
            wall, cpu = one_start(config)
            print(f"{name:<10} {wall:8.1f} {cpu:7.1f}   {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
