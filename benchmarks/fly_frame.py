"""Fly-scan frame timing on the simulated fly IOC: measured duration against FRAME_TIME.

Starts a simulated fleet on free ports, sets a frame on ``STXM:FLY:`` with pyepics, arms
it with put-completion and times it; prints FRAME_TIME, LINE_OVERHEAD, the measured
duration, the excess per line, and the lines received (with monitors on every LINE PV).

    uv run python benchmarks/fly_frame.py [--nx 256] [--ny 256] [--dwell 0.001]

The IOC's own figure (its log in the fleet's runtime directory) gives the slowest line's
computing and posting time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nx", type=int, default=256)
    parser.add_argument("--ny", type=int, default=256)
    parser.add_argument("--dwell", type=float, default=0.001)
    parser.add_argument("--step", type=float, default=0.05, help="pixel step, um")
    parser.add_argument("--snake", action="store_true", help="alternate lines")
    args = parser.parse_args()
    from sim_iocs.fleet import SimFleet, free_port_overrides
    from stxm_ctrl.config import load_config
    from stxm_ctrl.epics_env import apply_ca_client_environment

    with tempfile.TemporaryDirectory() as tmp:
        overrides = free_port_overrides(tmp)
        config = load_config(overrides=overrides)
        fleet = SimFleet(config)
        fleet.start()
        try:
            apply_ca_client_environment(config)
            import epics

            p = config.epics.prefixes.fly
            width = args.step * (args.nx - 1)
            settings = {
                "START_X": -width / 2,
                "STOP_X": width / 2,
                "NX": args.nx,
                "START_Y": -width / 2,
                "STOP_Y": width / 2,
                "NY": args.ny,
                "DWELL": args.dwell,
                "SNAKE": int(args.snake),
            }
            for name, value in settings.items():
                assert epics.caput(p + name, value, wait=True, timeout=10) == 1
            seqs: list[int] = []
            seq = epics.PV(p + "LINE:SEQ", auto_monitor=True)
            counts = epics.PV(p + "LINE:COUNTS", auto_monitor=True)
            assert seq.wait_for_connection(10) and counts.wait_for_connection(10)
            time.sleep(0.5)
            seq.add_callback(lambda value, **kw: seqs.append(value))
            frame_time = float(epics.caget(p + "FRAME_TIME", use_monitor=False) or 0.0)
            overhead = float(epics.caget(p + "LINE_OVERHEAD", use_monitor=False) or 0.0)
            epics.caget(p + "ARM")  # connected before the clock starts
            started = time.monotonic()
            assert epics.caput(p + "ARM", 1, wait=True, timeout=frame_time * 2 + 30) == 1
            took = time.monotonic() - started
            time.sleep(0.5)
            mode = "snake" if args.snake else "unidirectional"
            print(f"frame {args.nx} x {args.ny} at {args.dwell * 1e3:g} ms dwell, {mode}")
            print(f"FRAME_TIME     {frame_time:.4f} s  (LINE_OVERHEAD {overhead * 1e3:.2f} ms)")
            print(f"measured       {took:.4f} s  ({(took / frame_time - 1) * 100:+.2f} %)")
            print(f"excess/line    {(took - frame_time) / args.ny * 1e3:.3f} ms")
            print(f"lines received {len(seqs)} (SEQ {seqs[0] if seqs else '-'}..)")
        finally:
            fleet.stop()
            log = Path(config.sim_dir)
            for file in log.rglob("fly*.log"):
                lines = [x for x in file.read_text().splitlines() if "frame of" in x]
                print(*lines[-1:], sep="\n")


if __name__ == "__main__":
    main()
