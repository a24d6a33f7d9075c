"""Cost of the simulated APD's rate model per counting gate (three instants).

    uv run python benchmarks/instrument_model.py

Prints microseconds per gate for the pure model
(:meth:`stxm_ctrl.physics.instrument.InstrumentModel.detected_rate_Hz`) in focus, defocused
and with the OSA off axis (the zero order leaking), each with its optics terms cached (the
optics standing still) and recomputed (the optics moving or the energy settling, every gate
a new state); then the whole of ``ApdCounter.mean_rate_Hz`` (five world-block reads, the
positions of ten axes and the energy at three instants, the model) on a scratch world.
"""

from __future__ import annotations

import tempfile
import time
import timeit
from dataclasses import replace
from pathlib import Path

import numpy as np

from sim_iocs.apd import ApdCounter
from sim_iocs.optics_world import BEAMLINE, DETECTOR_STAGE, OPTICS_STAGES, start_values
from sim_iocs.ring import RING
from sim_iocs.sample_stage import SAMPLE_STAGE
from sim_iocs.world import World
from stxm_ctrl.config import load_config
from stxm_ctrl.physics.instrument import InstrumentModel
from stxm_ctrl.physics.monochromator import ENERGY_MOVE_FIELDS, EnergyMove
from stxm_ctrl.physics.motion import MOVE_FIELDS, Move


def per_call_us(function, number: int) -> float:
    """Best of five timings, microseconds per call."""
    return 1e6 * min(timeit.repeat(function, number=number, repeat=5)) / number


def main() -> None:
    config = load_config()
    model = InstrumentModel(config)
    optics, gap, polarization = model.start_state()
    x = np.array([0.0, 0.001, 0.002])
    y = np.full(3, -10.0)
    states = {
        "in focus": optics,
        "defocused 20 um": replace(optics, zp_distance_um=optics.zp_distance_um + 20.0),
        "OSA 30 um off axis": replace(optics, osa_x_um=30.0),
    }
    print("pure model, one gate (3 instants), us:")
    for label, state in states.items():

        def cached(state=state):
            return model.detected_rate_Hz(
                x, y, state, ring_current_mA=300.0, gap_mm=gap, polarization=polarization
            )

        counter = iter(range(10**9))

        def uncached(state=state, counter=counter):
            new = replace(state, energy_eV=state.energy_eV + 1e-3 * next(counter))
            return model.detected_rate_Hz(
                x, y, new, ring_current_mA=300.0, gap_mm=gap, polarization=polarization
            )

        cached()
        print(
            f"  {label:<20} optics cached {per_call_us(cached, 2000):7.1f}   "
            f"recomputed {per_call_us(uncached, 300):7.1f}"
        )

    directory = Path(tempfile.mkdtemp(prefix="stxm-model-bench-")) / "world"
    world = World.create(directory)
    starts = start_values(model)
    world.own(SAMPLE_STAGE)
    world.own(RING, initial={"current_mA": 300.0, "shutter_open": 1.0})
    world.own(OPTICS_STAGES, initial=starts[OPTICS_STAGES.name])
    world.own(DETECTOR_STAGE, initial=starts[DETECTOR_STAGE.name])
    beamline = world.own(BEAMLINE, initial=starts[BEAMLINE.name])
    apd = ApdCounter("BENCH:SCALER", config=config, world=world)
    apd.stage_block, apd.ring_block = world.reader(SAMPLE_STAGE), world.reader(RING)
    apd.optics_block, apd.detector_block = (
        world.reader(OPTICS_STAGES),
        world.reader(DETECTOR_STAGE),
    )
    apd.beamline_block = world.reader(BEAMLINE)
    now = time.monotonic()
    apd.mean_rate_Hz(now, now + 0.001)  # builds the grids
    print("ApdCounter.mean_rate_Hz, one gate, us:")
    gate = lambda: apd.mean_rate_Hz(time.monotonic() - 0.001, time.monotonic())  # noqa: E731
    print(f"  everything at rest              {per_call_us(gate, 2000):7.1f}")
    stage = world.own(SAMPLE_STAGE)
    slow = Move(0.0, 20.0, time.monotonic(), 0.001, 0.0)  # moving for hours
    stage.write(sample_x=tuple(getattr(slow, f) for f in MOVE_FIELDS))
    print(f"  sample stage moving             {per_call_us(gate, 2000):7.1f}")
    settling = EnergyMove(700.0, 706.8, time.monotonic() - 10.0, 50.0, 0.3, 1e3)
    beamline.write(energy=tuple(getattr(settling, f) for f in ENERGY_MOVE_FIELDS))
    print(f"  energy still settling (no cache) {per_call_us(gate, 300):6.1f}")


if __name__ == "__main__":
    main()
