"""A fly image on the simulated beamline: wall time against the physical minimum.

    uv run python benchmarks/fly_raster.py --nx 256 --ny 256 --dwell-ms 1 [--json]
    uv run python benchmarks/fly_raster.py --nx 64 --ny 64 --dwell-ms 1 --mode step

Starts the simulated fleet and a catalog server, builds a session as ``stxm demo`` does
(spool and catalog subscribed), and times ``sample_image`` from the RunEngine call to its
return. The physical minimum is pixels x dwell plus lines x the controller's line overhead
(``LINE_OVERHEAD``: settle, run-up, turnaround and the move to the next line), which no
control system can avoid; the ratio is wall / minimum (targets for 256 x 256 at 1 ms: at
least 900 pixels/s and a ratio at most 1.05). In step mode the minimum is pixels x dwell
plus the stage motion the velocities and accelerations imply.

With ``--json`` one JSON object is printed: ``pixels_per_s``, ``wall_s``, ``minimum_s``,
``ratio`` (and the settings).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

RANGE_UM_PER_PIXEL = 0.05  # 50 nm pixels: 12.8 um for 256 pixels, inside the piezo's range


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nx", type=int, default=256, help="pixels per line (default 256)")
    parser.add_argument("--ny", type=int, default=256, help="lines (default 256)")
    parser.add_argument("--dwell-ms", type=float, default=1.0, help="dwell per pixel, ms")
    parser.add_argument("--mode", choices=("fly", "step"), default="fly")
    parser.add_argument("--unidirectional", action="store_true", help="no snake")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    dwell_s = args.dwell_ms / 1000.0

    from plans import RasterRegion, sample_image
    from sim_iocs.fleet import SimFleet, free_port_overrides
    from stxm_ctrl.app.session import build_session
    from stxm_ctrl.config import load_config
    from stxm_ctrl.data.catalog import start_catalog_server
    from stxm_ctrl.physics.motion import move_duration_s

    data_dir = Path(tempfile.mkdtemp(prefix="stxm-bench-"))
    config = load_config(overrides=free_port_overrides(data_dir))
    x_range = RANGE_UM_PER_PIXEL * (args.nx - 1)
    y_range = RANGE_UM_PER_PIXEL * (args.ny - 1)
    snake = not args.unidirectional
    with SimFleet(config):
        server = start_catalog_server(config)
        try:
            with build_session(config, progress=False) as session:
                d = session.devices
                plan = sample_image(
                    d.apd,
                    RasterRegion(
                        d.stage.x, 0, x_range, args.nx, d.stage.y, 0, y_range, args.ny, snake=snake
                    ),
                    dwell_s,
                    mode=args.mode,
                    flyer=d.fly,
                    monitors=[d.ring.current],
                )
                started = time.perf_counter()
                uid = session.run(plan)
                wall_s = time.perf_counter() - started
                image = session.image(uid)
                overhead_s = float(d.fly.line_overhead.get(use_monitor=False))
        finally:
            server.stop()

    pixels = args.nx * args.ny
    if args.mode == "fly":
        minimum_s = pixels * dwell_s + args.ny * overhead_s
    else:
        # The sample stage steps an image this size on the piezo (ms moves).
        x = config.sim.stages.fine_x
        y = config.sim.stages.fine_y
        step_x = move_duration_s(RANGE_UM_PER_PIXEL, x.velocity_um_per_s, x.acceleration_time_s)
        step_y = move_duration_s(RANGE_UM_PER_PIXEL, y.velocity_um_per_s, y.acceleration_time_s)
        minimum_s = pixels * dwell_s + args.ny * (args.nx - 1) * step_x + (args.ny - 1) * step_y
    result = {
        "mode": args.mode,
        "nx": args.nx,
        "ny": args.ny,
        "dwell_s": dwell_s,
        "snake": snake,
        "pixels_per_s": pixels / wall_s,
        "wall_s": wall_s,
        "minimum_s": minimum_s,
        "ratio": wall_s / minimum_s,
        "line_overhead_s": overhead_s if args.mode == "fly" else None,
        "complete": image.complete,
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.mode} image {args.nx} x {args.ny}, dwell {args.dwell_ms:g} ms, snake {snake}")
    print(f"wall time:        {wall_s:8.2f} s  ({result['pixels_per_s']:.0f} pixels/s)")
    print(f"physical minimum: {minimum_s:8.2f} s", end="")
    if args.mode == "fly":
        print(f"  (pixels x dwell + {args.ny} lines x {overhead_s * 1e3:.1f} ms line overhead)")
    else:
        print("  (pixels x dwell + stage motion)")
    print(f"ratio wall/min:   {result['ratio']:8.3f}  (fly targets: >= 900 pixels/s, <= 1.05)")
    print(f"every pixel measured: {image.complete}")


if __name__ == "__main__":
    main()
