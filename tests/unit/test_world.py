"""The shared world file: consistent snapshots, and recovery from a writer killed mid-write."""

from __future__ import annotations

import pytest

from sim_iocs.world import RingState, World
from stxm_ctrl.physics.motion import Move


def test_moves_and_ring_state_round_trip(tmp_path):
    world = World.create(tmp_path / "world", ring_current_mA=300.0)
    reader = World(tmp_path / "world")  # another process would open it like this
    move = Move(0.0, 10.0, world.epoch_s, 2000.0, 0.005)
    world.write_move("sample_x", move)
    assert reader.moves()["sample_x"] == move
    assert reader.stage_position_um(world.epoch_s + 1.0) == (10.0, 0.0)
    world.write_ring(RingState(251.5, shutter_open=False, beam_dumped=False))
    assert reader.ring() == RingState(251.5, False, False)


def test_a_writer_killed_mid_write_does_not_wedge_readers(tmp_path):
    world = World.create(tmp_path / "world", ring_current_mA=300.0)
    world._rec["ring_seq"] += 1  # the ring IOC died between its two increments
    reader = World(tmp_path / "world")
    with pytest.raises(RuntimeError, match="ring_seq writer stuck mid-update"):
        reader.ring()
    # The restarted ring IOC takes the block over, then publishes.
    restarted = World(tmp_path / "world")
    assert restarted.take_ownership("ring") is True
    assert reader.ring().current_mA == 300.0
    restarted.write_ring(RingState(299.0, True, False))
    assert reader.ring().current_mA == 299.0
    assert restarted.take_ownership("ring") is False


def test_unknown_block_is_named(tmp_path):
    world = World.create(tmp_path / "world")
    with pytest.raises(ValueError, match="unknown world block 'optics'; blocks: stage, ring"):
        world.take_ownership("optics")
