"""Cost of the simulated world: reading a block, evaluating stage positions for many instants.

    uv run python benchmarks/world_blocks.py

Prints, per call: a seqlock read of the sample-stage block and of the ring block (against a
plain in-memory copy of the same bytes, the baseline), the positions of one axis at 3
instants (one counting gate) and at 500 instants (a fly-scan line) from one snapshot, and
the scalar ``Move.position_um`` loop the vectorised form replaces.
"""

from __future__ import annotations

import tempfile
import timeit
from pathlib import Path

import numpy as np

from sim_iocs.motor import axis_positions_um, move_of
from sim_iocs.ring import RING
from sim_iocs.sample_stage import SAMPLE_STAGE
from sim_iocs.world import World
from stxm_ctrl.physics.motion import MOVE_FIELDS, Move


def per_call_us(function, number: int) -> float:
    """Best of five timings, microseconds per call."""
    return 1e6 * min(timeit.repeat(function, number=number, repeat=5)) / number


def main() -> None:
    directory = Path(tempfile.mkdtemp(prefix="stxm-world-bench-")) / "world"
    world = World.create(directory)
    stage = world.own(SAMPLE_STAGE)
    world.own(RING, initial={"current_mA": 300.0, "shutter_open": 1.0})
    move = Move(0.0, 100.0, world.epoch_s, 2000.0, 0.005)
    stage.write(sample_x=tuple(getattr(move, f) for f in MOVE_FIELDS))
    readers = World(directory)
    stage_reader, ring_reader = readers.reader(SAMPLE_STAGE), readers.reader(RING)
    snapshot = stage_reader.read()
    in_memory = np.zeros(1, dtype=SAMPLE_STAGE.fields)
    gate = np.linspace(world.epoch_s, world.epoch_s + 0.001, 3)
    line = np.linspace(world.epoch_s, world.epoch_s + 0.05, 500)

    baseline = per_call_us(lambda: in_memory[0].copy(), 20_000)
    stage_read = per_call_us(stage_reader.read, 20_000)
    ring_read = per_call_us(ring_reader.read, 20_000)
    gate_positions = per_call_us(lambda: axis_positions_um(snapshot, "sample_x", gate), 5_000)
    line_positions = per_call_us(lambda: axis_positions_um(snapshot, "sample_x", line), 2_000)
    scalar_m = move_of(snapshot, "sample_x")
    line_scalar = per_call_us(lambda: [scalar_m.position_um(t) for t in line], 200)

    print(f"in-memory copy of the stage block (baseline): {baseline:8.2f} us")
    print(
        f"seqlock read, sample_stage block:             {stage_read:8.2f} us "
        f"({stage_read / baseline:.1f} x baseline)"
    )
    print(f"seqlock read, ring block:                     {ring_read:8.2f} us")
    print(f"positions at 3 instants (one gate):           {gate_positions:8.2f} us")
    print(f"positions at 500 instants (one fly line):     {line_positions:8.2f} us")
    print(
        f"  the same with Move.position_um in a loop:   {line_scalar:8.2f} us "
        f"({line_scalar / line_positions:.0f} x slower)"
    )


if __name__ == "__main__":
    main()
