"""Writing the NXstxm file of a large fly stack from its spool file: time and memory.

The session writes each run's file when the run ends, from its spool file, in the RunEngine's
callback (decision 0010), so this is how long the end of a run waits and how much memory it
takes. A spool file of a flown image stack (N energies x ny lines of nx pixels, one frames
event per energy, the baseline and ring-current monitor) is made with synthetic documents;
the baseline is reading that spool file back (the part of the work no file layout avoids).

    uv run python benchmarks/nexus_write.py --energies 100 --nx 100 --ny 100 [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from event_model import compose_run

from stxm_ctrl.data.nexus_writer import write_nxstxm
from stxm_ctrl.data.writers import DocumentSpool, read_spool_file, spool_file_for


def spool_fly_stack(spool_dir: Path, energies: int, ny: int, nx: int) -> Path:
    """Spool a flown image stack's documents (Poisson counts, interferometer positions)."""
    rng = np.random.default_rng(0)
    frames = [{"energy_eV": 700.0 + 0.2 * k, "polarization": None} for k in range(energies)]
    start_md = {
        "plan_name": "image_stack",
        "stxm_scan_type": "sample image stack",
        "scan_id": 1,
        "scan_mode": "fly",
        "shape": [ny, nx],
        "extents": [[-5.0, 5.0], [-5.0, 5.0]],
        "snaking": [False, False],
        "dwell_s": 0.001,
        "counter": "fly",
        "counter_field": "fly_counts",
        "x_field": "fly_x",
        "y_field": "fly_y",
        "row_field": "fly_row",
        "column_field": "fly_column",
        "dwell_field": "fly_dwell",
        "frame_field": None,
        "frames": frames,
        "num_points": energies * ny * nx,
        "energy_eV": 700.0,
    }
    bundle = compose_run(metadata=start_md)
    spooler = DocumentSpool(spool_dir)

    def spool(name: str, doc: Any) -> None:
        spooler(name, dict(doc))

    spool("start", bundle.start_doc)
    number = {"dtype": "number", "shape": [], "source": "sim"}
    integer = {**number, "dtype": "integer"}
    line = {"dtype": "array", "shape": [nx], "source": "sim"}
    baseline = bundle.compose_descriptor(name="baseline", data_keys={"ring_current": number})
    frame_stream = bundle.compose_descriptor(
        name="frames",
        data_keys={"energy_mono_readback": number, "stack_frame": {**number, "dtype": "integer"}},
    )
    primary = bundle.compose_descriptor(
        name="primary",
        data_keys={
            "fly_counts": line,
            "fly_x": line,
            "fly_y": line,
            "fly_dwell": line,
            "fly_row": integer,
            "fly_column": integer,
        },
    )
    for descriptor in (baseline, frame_stream, primary):
        spool("descriptor", descriptor.descriptor_doc)
    t = float(bundle.start_doc["time"])
    spool(
        "event",
        baseline.compose_event(
            data={"ring_current": 300.0}, timestamps={"ring_current": t}, time=t
        ),
    )
    xs = np.linspace(-5, 5, nx)
    for k, frame in enumerate(frames):
        t += 1.0
        data = {"energy_mono_readback": frame["energy_eV"], "stack_frame": k}
        spool(
            "event",
            frame_stream.compose_event(data=data, timestamps=dict.fromkeys(data, t), time=t),
        )
        for row in range(ny):
            t += 0.001 * nx + 0.01
            data = {
                "fly_counts": rng.poisson(8000, nx).tolist(),
                "fly_x": (xs + rng.normal(0, 0.002, nx)).tolist(),
                "fly_y": np.full(nx, -5 + 10 * row / max(ny - 1, 1)).tolist(),
                "fly_dwell": np.full(nx, 0.001).tolist(),
                "fly_row": row,
                "fly_column": 0,
            }
            spool(
                "event",
                primary.compose_event(data=data, timestamps=dict.fromkeys(data, t), time=t),
            )
    spool(
        "event",
        baseline.compose_event(
            data={"ring_current": 299.0}, timestamps={"ring_current": t}, time=t
        ),
    )
    spool("stop", bundle.compose_stop(exit_status="success"))
    return spool_file_for(spool_dir, bundle.start_doc["uid"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--energies", type=int, default=100)
    parser.add_argument("--nx", type=int, default=100)
    parser.add_argument("--ny", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        spool_file = spool_fly_stack(Path(tmp) / "spool", args.energies, args.ny, args.nx)
        started = time.perf_counter()
        documents = read_spool_file(spool_file)
        read_s = time.perf_counter() - started
        del documents
        started = time.perf_counter()
        path = write_nxstxm(read_spool_file(spool_file), Path(tmp) / "stack.nxs")
        write_s = time.perf_counter() - started
        tracemalloc.start()
        write_nxstxm(read_spool_file(spool_file), Path(tmp) / "again.nxs")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        figures = {
            "points": args.energies * args.nx * args.ny,
            "spool_MB": spool_file.stat().st_size / 1e6,
            "file_MB": path.stat().st_size / 1e6,
            "read_spool_s": read_s,
            "write_file_s": write_s,
            "ratio_write_over_read": write_s / read_s,
            "peak_python_memory_MB": peak / 1e6,
        }
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            shown = f"{value:,.3f}" if isinstance(value, float) else f"{value:,}"
            print(f"{key:24s} {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
