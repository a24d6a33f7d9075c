"""The simulated world the IOC processes share: one memory-mapped block per owner.

Each simulated IOC runs in its own process, so that a test can kill one on purpose. The
physical state they have in common lives in a *world directory* (``data_dir/sim/world``):
one small memory-mapped file per *block*, each written by the one IOC that owns it and read
by any other. A block is declared next to its owner as a :class:`BlockLayout` (a name and
numpy fields): the sample-stage IOC owns the moves of its axes, the ring IOC the ring
current and shutter, the fleet itself the clock (the world's epoch).

Each block file starts with a header: a magic number, a layout id (a hash of the block's
name and fields) and a sequence counter, the *seqlock*. The writer makes the counter odd
while it writes and even when done; a reader copies the block when the counter is even and
unchanged across the copy, and retries otherwise. Readers never block the writer, and a
reader killed mid-read harms no one. A file whose layout id differs from the code's (a
world left by another version) is refused with a message that says how to start afresh.

A block has exactly one writer, so an odd counter when the owner opens the block can only
be left by a predecessor killed mid-write: :meth:`World.own` makes it even again and
reports it, and the new owner's first write replaces the half-written values. Killing and
restarting an IOC therefore never wedges readers.

Times are ``time.monotonic()`` seconds, which Linux shares between processes. The seqlock
issues no explicit memory barriers; it relies on stores becoming visible in program order,
as they do on x86-64 (the cross-process stress test in ``tests/unit/test_world.py`` checks
it on the machine it runs on).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CLOCK",
    "BlockLayout",
    "BlockReader",
    "BlockWriter",
    "World",
    "WorldLayoutError",
    "open_reader",
]

_MAGIC = 0x5354584D424C4B31  # "STXMBLK1"
_SUFFIX = ".block"
_READ_TRIES = 100_000


class WorldLayoutError(RuntimeError):
    """A world block file that this code cannot use (foreign, stale or missing)."""


@dataclass(frozen=True)
class BlockLayout:
    """The shape of one world block: its name (and file name) and its numpy fields.

    Parameters
    ----------
    name
        Block name, a lower-case identifier; the file is ``<name>.block``.
    fields
        Structured numpy dtype of the block's contents.
    """

    name: str
    fields: np.dtype

    @property
    def layout_id(self) -> int:
        """64-bit hash of the name and fields; a file with another id is refused."""
        text = f"{self.name}|{self.fields.descr!r}".encode()
        return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")

    @property
    def file_dtype(self) -> np.dtype:
        """Header (magic, layout id, seqlock counter) followed by the fields."""
        return np.dtype(
            [("magic", "<u8"), ("layout", "<u8"), ("seq", "<u8"), ("data", self.fields)]
        )


CLOCK = BlockLayout("clock", np.dtype([("epoch_s", "<f8")]))
"""The fleet's block: the monotonic time the world began (origin of drift and top-up)."""


class _Block:
    """An open block file (shared by readers and the writer)."""

    def __init__(self, path: Path, layout: BlockLayout) -> None:
        self.path = path
        self.layout = layout
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise WorldLayoutError(
                f"world block {layout.name!r} does not exist in {path.parent}: the IOC that "
                "owns it has not started (is the simulated fleet running?)"
            ) from None
        dtype = layout.file_dtype
        magic = layout_id = 0
        if size >= 16:
            magic, layout_id = (int(v) for v in np.fromfile(path, dtype="<u8", count=2))
        if magic != _MAGIC:
            raise WorldLayoutError(f"{path} is not a stxm_ctrl world block")
        if layout_id != layout.layout_id or size != dtype.itemsize:
            raise WorldLayoutError(
                f"world block {path} has another layout than this version of sim_iocs "
                f"expects for {layout.name!r} (a world left by another version); stop the "
                "simulated fleet and start it again (`stxm sim` makes a fresh world)"
            )
        self._map = np.memmap(path, dtype=dtype, mode="r+", shape=(1,))
        self._seq = self._map["seq"]
        self._data = self._map["data"]


class BlockReader(_Block):
    """Read consistent snapshots of a block another process writes."""

    def read(self) -> np.void:
        """A consistent copy of the block's fields (a numpy structured scalar).

        Raises
        ------
        RuntimeError
            If the writer seems stuck mid-write (it died; its restart recovers the block).
        """
        seq, data = self._seq, self._data
        for _ in range(_READ_TRIES):
            before = int(seq[0])
            if not before & 1:
                copy = data[0].copy()
                if int(seq[0]) == before:
                    return copy
            time.sleep(0)
        raise RuntimeError(
            f"world block {self.path}: writer stuck mid-update (the IOC that owns "
            f"{self.layout.name!r} died while writing; restart it)"
        )


class BlockWriter(BlockReader):
    """The owner's handle on its block: consistent writes, and reads of its own state.

    Attributes
    ----------
    recovered
        True if a previous owner had died mid-write and this one made the block usable.
    """

    recovered: bool = False

    def take_over(self) -> None:
        """Become the block's writer: finish a dead owner's half-done update (sets
        :attr:`recovered`)."""
        if int(self._seq[0]) & 1:
            self._seq[0] += 1
            self.recovered = True

    def write(self, **values: Any) -> None:
        """Publish new values of some fields (the others keep theirs) in one update."""
        names = self.layout.fields.names or ()
        unknown = set(values) - set(names)
        if unknown:
            raise KeyError(
                f"world block {self.layout.name!r} has no field(s) {sorted(unknown)}; "
                f"fields: {', '.join(names)}"
            )
        record = self._data[0]
        self._seq[0] += 1  # odd: writing
        for name, value in values.items():
            record[name] = value
        self._seq[0] += 1  # even: consistent


class World:
    """The world directory of one simulated fleet.

    Parameters
    ----------
    directory
        The world directory; :meth:`create` makes a fresh one, the constructor opens it.
    owns, reads
        Block names this process may write and read (from its registry entry); None
        allows any. Opening a block outside them is refused, so the registry's table of
        who owns and reads what stays true.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        owns: Iterable[str] | None = None,
        reads: Iterable[str] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._owns = None if owns is None else frozenset(owns)
        self._reads = None if reads is None else frozenset(reads) | {CLOCK.name}
        self._epoch_s: float | None = None
        self._writers: dict[str, BlockWriter] = {}

    @classmethod
    def create(cls, directory: str | os.PathLike[str]) -> World:
        """Make a fresh world: remove old blocks, start the clock now."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for old in directory.glob(f"*{_SUFFIX}"):
            old.unlink()
        world = cls(directory)
        world.own(CLOCK, initial={"epoch_s": time.monotonic()})
        return world

    def path_of(self, layout: BlockLayout) -> Path:
        """File of a block."""
        return self.directory / f"{layout.name}{_SUFFIX}"

    def own(self, layout: BlockLayout, initial: Mapping[str, Any] | None = None) -> BlockWriter:
        """Open (creating it if needed) the block this process owns and writes.

        A new block starts with ``initial`` (zeros elsewhere). An existing one is kept (an
        IOC restarted on a running world finds its state) and recovered if its previous
        owner died mid-write.

        Raises
        ------
        WorldLayoutError
            If this process does not own the block, or the file has another layout.
        """
        if self._owns is not None and layout.name not in self._owns:
            raise WorldLayoutError(
                f"this IOC does not own world block {layout.name!r} (its registry entry owns "
                f"{sorted(self._owns)}); add it to `owns` in sim_iocs/registry.py"
            )
        if layout.name in self._writers:
            return self._writers[layout.name]
        path = self.path_of(layout)
        if not path.exists():
            _create_block(path, layout, initial or {})
        writer = BlockWriter(path, layout)
        writer.take_over()
        self._writers[layout.name] = writer
        return writer

    def owned(self) -> dict[str, BlockWriter]:
        """The blocks this process has opened as their owner, by name."""
        return dict(self._writers)

    def reader(self, layout: BlockLayout) -> BlockReader:
        """Open a block another process owns, for reading.

        Raises
        ------
        WorldLayoutError
            If the block is not declared as read, does not exist yet, or has another layout.
        """
        if self._reads is not None and layout.name not in self._reads:
            raise WorldLayoutError(
                f"this IOC does not read world block {layout.name!r} (its registry entry reads "
                f"{sorted(self._reads - {CLOCK.name})}); add it to `reads` in "
                "sim_iocs/registry.py"
            )
        return BlockReader(self.path_of(layout), layout)

    @property
    def epoch_s(self) -> float:
        """Monotonic time the world was created (origin of drift and top-up cycles)."""
        if self._epoch_s is None:
            self._epoch_s = float(BlockReader(self.path_of(CLOCK), CLOCK).read()["epoch_s"])
        return self._epoch_s


async def open_reader(world: World, layout: BlockLayout, timeout_s: float = 30.0) -> BlockReader:
    """Open a block another IOC owns, waiting (polling, not blocking) until it exists.

    The IOCs of a fleet start in any order; a block appears when its owner starts.

    Raises
    ------
    WorldLayoutError
        If the block has not appeared within ``timeout_s``, or has another layout.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return world.reader(layout)
        except WorldLayoutError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


def _create_block(path: Path, layout: BlockLayout, initial: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    record = np.zeros(1, dtype=layout.file_dtype)
    record["magic"] = _MAGIC
    record["layout"] = layout.layout_id
    for name, value in initial.items():
        record["data"][name] = value
    record.tofile(tmp)
    os.replace(tmp, path)  # readers never see a half-made file
