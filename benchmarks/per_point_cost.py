"""Per-point cost of ``sample_image`` over EPICS against bluesky's ``grid_scan`` on ophyd.sim.

Both run in this process, one after the other, on the same RunEngine settings (no
subscribers, so the figures are acquisition cost, not catalog cost; a third figure adds the
spool and the Tiled catalog the session normally writes to, as the scan sees it and until
the background writer has the run in the catalog).

    uv run python benchmarks/per_point_cost.py [--points N] [--repeats R]

Prints, per point: wall time, time net of the 1 ms dwell, and the ratio of the net EPICS
cost to the ophyd.sim cost (target: at most 3). Also prints the physical stage-motion time
per point implied by the configured velocity and acceleration, which no control system can
avoid, and the ratio net of it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

DWELL_S = 0.001
RANGE_UM = 20.0


def _time_per_point(run, points: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) / points)
    return statistics.median(times)


def baseline_ophyd_sim(n: int, repeats: int) -> float:
    """Median seconds per point of grid_scan(det, motor2, motor1) with ophyd.sim devices."""
    from bluesky import RunEngine
    from bluesky.plans import grid_scan
    from ophyd.sim import det, motor1, motor2

    RE = RunEngine({})
    return _time_per_point(
        lambda: RE(grid_scan([det], motor2, -1, 1, n, motor1, -1, 1, n, snake_axes=True)),
        n * n,
        repeats,
    )


def physical_motion_s_per_point(config, n: int) -> float:
    """Stage-motion time per point a perfect controller would still spend (um steps)."""
    from stxm_ctrl.physics.motion import move_duration_s

    x = config.sim.stages.sample_x
    y = config.sim.stages.sample_y
    step = RANGE_UM / (n - 1)
    x_moves = n * (n - 1) * move_duration_s(step, x.velocity_um_per_s, x.acceleration_time_s)
    y_moves = (n - 1) * move_duration_s(step, y.velocity_um_per_s, y.acceleration_time_s)
    return (x_moves + y_moves) / (n * n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=30, help="pixels per axis (default 30)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each (median)")
    args = parser.parse_args()
    n = args.points

    from sim_iocs.fleet import SimFleet, free_port_overrides
    from stxm_ctrl.config import load_config

    data_dir = Path(tempfile.mkdtemp(prefix="stxm-bench-"))
    config = load_config(overrides=free_port_overrides(data_dir))
    sim_s = baseline_ophyd_sim(n, args.repeats)

    from plans import RasterRegion, sample_image
    from stxm_ctrl.app.session import build_session
    from stxm_ctrl.data.catalog import start_catalog_server

    with SimFleet(config):
        server = start_catalog_server(config)
        try:
            session = build_session(config, catalog=False, progress=False)
            # Like the baseline: no subscribers (the session always spools; not here).
            for token in session.tokens:
                session.RE.unsubscribe(token)
            session.tokens.clear()
            d = session.devices

            def scan():
                session.RE(
                    sample_image(
                        d.apd,
                        RasterRegion(
                            d.sample_x, 0, RANGE_UM, n, d.sample_y, 0, RANGE_UM, n, snake=True
                        ),
                        DWELL_S,
                        monitors=[d.ring.current],
                    )
                )

            scan()  # warm-up: connections, descriptors
            epics_s = _time_per_point(scan, n * n, args.repeats)
            session.close()
            with_catalog = build_session(config, progress=False)
            d = with_catalog.devices
            session = with_catalog
            catalog_s = _time_per_point(scan, n * n, args.repeats)

            def scan_until_written():
                scan()
                with_catalog.catalog_writer.flush()

            written_s = _time_per_point(scan_until_written, n * n, args.repeats)
            with_catalog.close()
        finally:
            server.stop()

    motion_s = physical_motion_s_per_point(config, n)
    net = epics_s - DWELL_S
    print(f"{n} x {n} points, dwell {DWELL_S * 1e3:g} ms, median of {args.repeats} runs")
    print(f"ophyd.sim grid_scan:            {sim_s * 1e3:7.2f} ms/point")
    print(
        f"sample_image over EPICS:        {epics_s * 1e3:7.2f} ms/point "
        f"({net * 1e3:.2f} net of dwell)"
    )
    print(f"  + spool and Tiled catalog:    {catalog_s * 1e3:7.2f} ms/point (scan)")
    print(f"    until all in the catalog:   {written_s * 1e3:7.2f} ms/point (scan + flush)")
    print(
        f"physical stage motion:          {motion_s * 1e3:7.2f} ms/point (velocity/acceleration)"
    )
    print(f"ratio net of dwell:             {net / sim_s:7.2f}  (target <= 3)")
    print(f"ratio net of dwell and motion:  {(net - motion_s) / sim_s:7.2f}")


if __name__ == "__main__":
    main()
