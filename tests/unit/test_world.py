"""The shared world: blocks declared by their owners, consistent snapshots across processes,
recovery from a writer killed mid-write, and stale or foreign files refused clearly."""

from __future__ import annotations

import multiprocessing
import time

import numpy as np
import pytest

from sim_iocs.motor import axis_positions_um, motion_block, move_of
from sim_iocs.ring import RING, RingState
from sim_iocs.sample_stage import SAMPLE_STAGE
from sim_iocs.world import CLOCK, BlockLayout, World, WorldLayoutError
from stxm_ctrl.physics.motion import MOVE_FIELDS, Move


def test_moves_and_ring_state_round_trip_between_owner_and_reader(tmp_path):
    world = World.create(tmp_path / "world")
    stage = world.own(SAMPLE_STAGE)
    ring = world.own(RING)
    reader = World(tmp_path / "world")  # another process would open it like this
    move = Move(0.0, 10.0, world.epoch_s, 2000.0, 0.005)
    stage.write(sample_x=tuple(getattr(move, f) for f in MOVE_FIELDS))
    snapshot = reader.reader(SAMPLE_STAGE).read()
    assert move_of(snapshot, "sample_x") == move
    assert move_of(snapshot, "sample_y").end_um == 0.0  # the other axis untouched
    ring.write(current_mA=251.5, shutter_open=0.0, beam_dumped=0.0)
    assert RingState.from_record(reader.reader(RING).read()) == RingState(251.5, False, False)
    assert reader.epoch_s == world.epoch_s


def test_positions_for_many_instants_from_one_snapshot(tmp_path):
    world = World.create(tmp_path / "world")
    stage = world.own(SAMPLE_STAGE)
    move = Move(-5.0, 5.0, 100.0, 20.0, 0.1)
    stage.write(sample_x=tuple(getattr(move, f) for f in MOVE_FIELDS))
    snapshot = stage.read()
    times = np.linspace(99.0, 101.5, 400)
    vectorised = axis_positions_um(snapshot, "sample_x", times)
    assert vectorised.shape == (400,)
    assert np.allclose(vectorised, [move.position_um(t) for t in times], atol=1e-12)


def test_a_writer_killed_mid_write_does_not_wedge_readers(tmp_path, monkeypatch):
    monkeypatch.setattr("sim_iocs.world._READ_TRIES", 1000)
    world = World.create(tmp_path / "world")
    world.own(RING, initial={"current_mA": 300.0, "shutter_open": 1.0})
    # The ring IOC died between its two increments (no public call leaves a block so).
    world.own(RING)._seq[0] += 1  # noqa: SLF001
    reader = World(tmp_path / "world").reader(RING)
    with pytest.raises(RuntimeError, match="writer stuck mid-update .*restart it"):
        reader.read()
    # The restarted ring IOC (a new World in a new process) takes the block over.
    restarted = World(tmp_path / "world").own(RING)
    assert restarted.recovered
    assert reader.read()["current_mA"] == 300.0  # the old values until it writes
    restarted.write(current_mA=299.0)
    assert reader.read()["current_mA"] == 299.0
    assert not World(tmp_path / "world").own(RING).recovered


def test_a_stale_or_foreign_block_file_is_refused_clearly(tmp_path):
    world = World.create(tmp_path / "world")
    world.own(motion_block("sample_stage", ("sample_x",)))  # an older, one-axis layout
    with pytest.raises(WorldLayoutError, match="has another layout .* start it again"):
        World(tmp_path / "world").reader(SAMPLE_STAGE)
    (tmp_path / "world" / "ring.block").write_bytes(b"not a block at all" * 10)
    with pytest.raises(WorldLayoutError, match="is not a stxm_ctrl world block"):
        World(tmp_path / "world").reader(RING)
    with pytest.raises(WorldLayoutError, match="'optics' does not exist .* has not started"):
        world.reader(BlockLayout("optics", np.dtype([("z_um", "<f8")])))


def test_blocks_outside_the_registry_entry_are_refused(tmp_path):
    World.create(tmp_path / "world")
    apd_view = World(tmp_path / "world", owns=(), reads=("sample_stage", "ring"))
    with pytest.raises(WorldLayoutError, match="does not own world block 'ring'"):
        apd_view.own(RING)
    stage_view = World(tmp_path / "world", owns=("sample_stage",), reads=())
    with pytest.raises(WorldLayoutError, match="does not read world block 'ring'"):
        stage_view.reader(RING)
    assert stage_view.reader(CLOCK).read()["epoch_s"] > 0  # everyone may read the clock


def test_a_fresh_world_removes_the_old_blocks(tmp_path):
    first = World.create(tmp_path / "world")
    first.own(RING, initial={"current_mA": 1.0})
    first_epoch_s = first.epoch_s
    time.sleep(0.01)
    second = World.create(tmp_path / "world")
    assert second.epoch_s > first_epoch_s
    with pytest.raises(WorldLayoutError, match="does not exist"):
        second.reader(RING)


# -- the seqlock across processes ------------------------------------------------------------
WIDE = BlockLayout("stress", np.dtype([("values", "<f8", (64,))]))


def _hammer_writes(directory: str, ready, done) -> None:
    writer = World(directory).own(WIDE)
    ready.set()
    k = 0.0
    deadline = time.monotonic() + 60.0  # in case the reader never ends
    while not done.is_set() and time.monotonic() < deadline:
        k += 1.0
        writer.write(values=np.full(64, k))


def _hammer_reads(directory: str, seconds: float, ready, done, result) -> None:
    reader = World(directory).reader(WIDE)
    ready.wait(30)
    reads = torn = changes = 0
    last = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        values = reader.read()["values"]
        reads += 1
        if not np.all(values == values[0]):
            torn += 1
        if values[0] != last:
            changes += 1
            last = values[0]
    done.set()
    result.put((reads, torn, changes))


def test_seqlock_gives_no_torn_read_across_processes(tmp_path):
    World.create(tmp_path / "world").own(WIDE)
    context = multiprocessing.get_context("spawn")
    # The writer writes until the reader has read for its whole time, however late either
    # process starts on a loaded machine: they always overlap for that time.
    ready, done, result = context.Event(), context.Event(), context.Queue()
    seconds = 2.0
    writer = context.Process(target=_hammer_writes, args=(str(tmp_path / "world"), ready, done))
    reader = context.Process(
        target=_hammer_reads, args=(str(tmp_path / "world"), seconds, ready, done, result)
    )
    writer.start()
    reader.start()
    reads, torn, changes = result.get(timeout=60)
    writer.join(30)
    reader.join(30)
    # Each block is 64 values written one field assignment at a time; a read that mixed
    # two writes would hold two different values.
    assert torn == 0
    assert reads > 200 and changes > 100, (reads, changes)  # they really overlapped
