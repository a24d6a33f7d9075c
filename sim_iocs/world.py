"""The simulated world the IOC processes share: stage motion, ring current, shutter.

Each simulated IOC runs in its own process, so that a test can kill one on purpose. The
physical state they have in common lives in one small memory-mapped file (the *world
file*), written by the IOC that owns each part and read by the others:

- the sample-stage IOC writes each axis' current :class:`~stxm_ctrl.physics.motion.Move`
  (start, end, start time, velocity, acceleration time), so any reader can evaluate the
  exact position at any instant, also during a move;
- the ring IOC writes the ring current and the shutter state.

Static parts of the world (the sample, the zone plate, the beam drift rate) come from the
beamline configuration, which every IOC loads itself. Each block has its own sequence
counter (a seqlock): the writer makes it odd while writing and even when done, and a
reader retries until it sees the same even counter before and after copying the block.
Times are ``time.monotonic()`` seconds, which Linux shares between processes.

Each block has exactly one writer, the IOC that owns it. An odd counter when that IOC
starts (or begins a write) can therefore only be left by a predecessor killed mid-write;
:meth:`World.take_ownership` makes it even again, and the new owner's first write
replaces the half-written values, so killing and restarting an IOC never wedges readers.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stxm_ctrl.physics.motion import Move

__all__ = ["AXES", "RingState", "World"]

AXES = ("sample_x", "sample_y")

_MOVE_FIELDS = ("start_um", "end_um", "t0_s", "velocity_um_per_s", "acceleration_time_s")

_DTYPE = np.dtype(
    [
        ("magic", "u8"),
        ("epoch_s", "f8"),
        ("stage_seq", "u8"),
        ("stage", "f8", (len(AXES), len(_MOVE_FIELDS))),
        ("ring_seq", "u8"),
        ("ring_current_mA", "f8"),
        ("shutter_open", "f8"),
        ("beam_dumped", "f8"),
    ]
)
_MAGIC = 0x5354584D574F524C  # "STXMWORL"


@dataclass(frozen=True)
class RingState:
    """What the ring IOC last published."""

    current_mA: float
    shutter_open: bool
    beam_dumped: bool


class World:
    """A view of the world file; create it once per fleet, open it in every IOC.

    Parameters
    ----------
    path
        The world file. :meth:`create` makes it; the constructor opens an existing one.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._map = np.memmap(self.path, dtype=_DTYPE, mode="r+", shape=(1,))
        if int(self._map["magic"][0]) != _MAGIC:
            raise ValueError(f"{self.path} is not a stxm_ctrl world file")
        self._rec = self._map[0]

    @classmethod
    def create(cls, path: str | os.PathLike[str], *, ring_current_mA: float = 0.0) -> World:
        """Make a fresh world file: stages at 0, shutter open, ring at ``ring_current_mA``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        mm = np.memmap(tmp, dtype=_DTYPE, mode="w+", shape=(1,))
        now = time.monotonic()
        mm["magic"] = _MAGIC
        mm["epoch_s"] = now
        for axis in range(len(AXES)):
            mm["stage"][0, axis] = (0.0, 0.0, now, 1.0, 0.0)
        mm["ring_current_mA"] = ring_current_mA
        mm["shutter_open"] = 1.0
        mm.flush()
        del mm
        os.replace(tmp, path)  # readers never see a half-written file
        return cls(path)

    @property
    def epoch_s(self) -> float:
        """Monotonic time the world was created (origin of drift and top-up cycles)."""
        return float(self._rec["epoch_s"])

    def take_ownership(self, block: str) -> bool:
        """Become the writer of ``block`` (``"stage"`` or ``"ring"``).

        Returns True if a previous writer had died mid-write (its counter was odd).
        """
        seq_field = f"{block}_seq"
        if seq_field not in _DTYPE.names:
            raise ValueError(f"unknown world block {block!r}; blocks: stage, ring")
        if int(self._rec[seq_field]) % 2:
            self._rec[seq_field] += 1
            return True
        return False

    # -- stages ----------------------------------------------------------------------
    def write_move(self, axis: str, move: Move) -> None:
        """Publish the move an axis is making (or its rest position, as a zero move)."""
        index = AXES.index(axis)
        self.take_ownership("stage")
        self._rec["stage_seq"] += 1
        self._rec["stage"][index] = tuple(getattr(move, name) for name in _MOVE_FIELDS)
        self._rec["stage_seq"] += 1

    def moves(self) -> dict[str, Move]:
        """The current move of every axis (consistent snapshot)."""
        block = self._read_block("stage_seq", "stage")
        return {
            axis: Move(**dict(zip(_MOVE_FIELDS, map(float, block[i]), strict=True)))
            for i, axis in enumerate(AXES)
        }

    def stage_position_um(self, t_s: float | None = None) -> tuple[float, float]:
        """Sample-stage (x, y) at monotonic time ``t_s`` (now if None)."""
        t = time.monotonic() if t_s is None else t_s
        moves = self.moves()
        return moves["sample_x"].position_um(t), moves["sample_y"].position_um(t)

    # -- ring ------------------------------------------------------------------------
    def write_ring(self, state: RingState) -> None:
        """Publish ring current, shutter and beam-dump state."""
        self.take_ownership("ring")
        self._rec["ring_seq"] += 1
        self._rec["ring_current_mA"] = state.current_mA
        self._rec["shutter_open"] = float(state.shutter_open)
        self._rec["beam_dumped"] = float(state.beam_dumped)
        self._rec["ring_seq"] += 1

    def ring(self) -> RingState:
        """Last published ring state (consistent snapshot)."""
        current, shutter, dumped = self._read_block(
            "ring_seq", "ring_current_mA", "shutter_open", "beam_dumped"
        )
        return RingState(float(current), bool(shutter), bool(dumped))

    def _read_block(self, seq_field: str, *fields: str):
        for _ in range(10_000):
            before = int(self._rec[seq_field])
            if before % 2 == 0:
                values = [np.copy(self._rec[name]) for name in fields]
                if int(self._rec[seq_field]) == before:
                    return values[0] if len(values) == 1 else values
            time.sleep(0)
        raise RuntimeError(f"world file {self.path}: {seq_field} writer stuck mid-update")
