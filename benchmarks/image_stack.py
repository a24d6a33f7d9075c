"""A flown image stack on the simulated beamline: wall time against the physical minimum.

    uv run python benchmarks/image_stack.py --energies 100 --nx 100 --ny 100 --dwell-ms 1
    uv run python benchmarks/image_stack.py --energies 20 [--xmcd] [--json]

Starts the simulated fleet and a catalog server, builds a session as ``stxm demo`` does,
and times ``image_stack`` (or ``xmcd_stack`` with ``--xmcd``) of energies spread from 700 to
720 eV across the Fe L3 and L2 edges, from the RunEngine call to its return.

The physical minimum is what no control system avoids: for every frame, pixels x dwell plus
lines x the controller's line overhead; plus the energy moves and the helicity switches.
Those two are measured in the same process as a baseline: the same energies (and, for
``--xmcd``, the same helicity switches) moved through with nothing else, each move's time
being the monochromator's slew and settle, the EPU gap and the zone plate. The target
(issue: a stack of 100 energies of a 100 x 100 fly image) is at most 15 % above it.

With ``--json`` one JSON object is printed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

PIXEL_UM = 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--energies", type=int, default=100, help="energies (default 100)")
    parser.add_argument("--nx", type=int, default=100, help="pixels per line (default 100)")
    parser.add_argument("--ny", type=int, default=100, help="lines (default 100)")
    parser.add_argument("--dwell-ms", type=float, default=1.0, help="dwell per pixel, ms")
    parser.add_argument("--xmcd", action="store_true", help="both helicities per energy")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    dwell_s = args.dwell_ms / 1000.0

    import numpy as np
    from bluesky import plan_stubs as bps

    from plans import RasterRegion, image_stack, xmcd_stack
    from plans.spectromicroscopy import xmcd_frames
    from sim_iocs.fleet import SimFleet, free_port_overrides
    from stxm_ctrl.app.session import build_session
    from stxm_ctrl.config import load_config
    from stxm_ctrl.data.catalog import start_catalog_server

    data_dir = Path(tempfile.mkdtemp(prefix="stxm-bench-"))
    config = load_config(overrides=free_port_overrides(data_dir))
    energies = np.round(np.linspace(700.0, 720.0, args.energies), 3)
    plus, minus = "Circular left", "Circular right"
    frames = (
        xmcd_frames(energies, plus, minus) if args.xmcd else [(float(e), None) for e in energies]
    )
    centre = config.sim.magnetic_samples["vortex_tilted"]
    x_range, y_range = PIXEL_UM * (args.nx - 1), PIXEL_UM * (args.ny - 1)
    with SimFleet(config):
        server = start_catalog_server(config)
        try:
            with build_session(config, progress=False) as session:
                d = session.devices
                # One after the other: both move the EPU gap.
                session.RE(bps.mv(d.polarization, plus))
                session.RE(bps.mv(d.energy, float(energies[0])))
                # Baseline: the same energy moves and helicity switches, nothing else.
                started = time.perf_counter()
                for energy_eV, polarization in frames:
                    if polarization is not None and d.polarization.position != polarization:
                        session.RE(bps.mv(d.polarization, polarization))
                    session.RE(bps.mv(d.energy, energy_eV))
                changes_s = time.perf_counter() - started
                session.RE(bps.mv(d.polarization, plus))
                session.RE(bps.mv(d.energy, float(energies[0])))
                region = RasterRegion(
                    d.stage.x,
                    centre.center_x_um,
                    x_range,
                    args.nx,
                    d.stage.y,
                    centre.center_y_um,
                    y_range,
                    args.ny,
                )
                common = (d.apd, d.energy, d.polarization, region, energies.tolist(), dwell_s)
                plan = (
                    xmcd_stack(*common, mode="fly", flyer=d.fly, monitors=[d.ring.current])
                    if args.xmcd
                    else image_stack(*common, mode="fly", flyer=d.fly, monitors=[d.ring.current])
                )
                started = time.perf_counter()
                uid = session.run(plan)
                wall_s = time.perf_counter() - started
                stack = session.stack(uid)
                overhead_s = float(d.fly.line_overhead.get(use_monitor=False))
                estimate_s = float(stack.start["estimate"]["total_s"])
        finally:
            server.stop()

    n = len(frames)
    frames_min_s = n * (args.nx * args.ny * dwell_s + args.ny * overhead_s)
    minimum_s = frames_min_s + changes_s
    result = {
        "frames": n,
        "energies": args.energies,
        "xmcd": args.xmcd,
        "nx": args.nx,
        "ny": args.ny,
        "dwell_s": dwell_s,
        "wall_s": wall_s,
        "minimum_s": minimum_s,
        "frames_minimum_s": frames_min_s,
        "energy_and_helicity_changes_s": changes_s,
        "ratio": wall_s / minimum_s,
        "estimate_s": estimate_s,
        "complete": bool(not np.isnan(stack.counts).any()),
    }
    if args.json:
        print(json.dumps(result))
        return
    kind = "XMCD stack" if args.xmcd else "image stack"
    print(f"fly {kind}: {n} frames of {args.nx} x {args.ny}, dwell {args.dwell_ms:g} ms")
    print(f"wall time:        {wall_s:8.2f} s   (estimate before the run: {estimate_s:.2f} s)")
    print(
        f"physical minimum: {minimum_s:8.2f} s   ({frames_min_s:.2f} s frames: pixels x "
        f"dwell + lines x {overhead_s * 1e3:.1f} ms; {changes_s:.2f} s energy moves and "
        "helicity switches, measured alone)"
    )
    print(f"ratio wall/min:   {result['ratio']:8.3f}   (target <= 1.15)")
    print(f"every pixel measured: {result['complete']}")


if __name__ == "__main__":
    main()
