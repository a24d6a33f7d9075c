"""The records every simulated IOC serves, found by building the IOCs of the registry.

Used by the conformance tests (``test_conformance_*.py``), which import
:func:`pytest_generate_tests` from here.

Channel Access cannot list the PVs of a server, so the conformance tests build each IOC of
:data:`sim_iocs.registry.INSTRUMENTS` in this process, on a scratch world, from the shipped
configuration (the session fleet serves the same names: tests only change ports), and read
its PV database. A test takes a record through one of the arguments below and is run for
every record of that kind, so an instrument added to the registry is tested with no edit
here:

- ``record``: every record; ``motor_record``, ``scaler_record``, ``ai_record``,
  ``waveform_record``: by type;
- ``ioc``: every registry entry.

The tests themselves talk to the session fleet (``sim_fleet``) as stock clients do.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import pytest

from stxm_ctrl.config import BeamlineConfig, load_config


@dataclass(frozen=True)
class ServedRecord:
    """One record an IOC serves, as the IOC declares it.

    Attributes
    ----------
    ioc
        Registry name of the IOC serving it.
    name
        Record name (the PV of its value).
    rtyp
        Record type (``motor``, ``scaler``, ``ai``, ``bo``...).
    fields
        Data type name (``DOUBLE``, ``LONG``...) of every field, by field name.
    read_only
        Fields (``""``: the value) a client may not write.
    control
        True for simulator controls (under ``[sim] control_prefix``).
    group
        The PVGroup object built in this process (its configuration, not the live IOC).
    """

    ioc: str
    name: str
    rtyp: str
    fields: dict[str, str] = field(repr=False)
    read_only: frozenset[str] = field(repr=False)
    control: bool
    group: Any = field(repr=False, compare=False)

    @property
    def id(self) -> str:
        """Test id: ``ioc:record``."""
        return f"{self.ioc}:{self.name}"


@dataclass(frozen=True)
class ServedPV:
    """A PV an IOC serves that is not a record (a conformance failure)."""

    ioc: str
    name: str


def discovery_config() -> BeamlineConfig:
    """The configuration whose PV names the session fleet serves."""
    return load_config()


@cache
def served() -> tuple[tuple[ServedRecord, ...], tuple[ServedPV, ...]]:
    """Every record (and every bare PV) of every IOC of the registry."""
    from caproto.server.server import PvpropertyReadOnlyData

    from sim_iocs.registry import INSTRUMENTS, IocContext, load_factory
    from sim_iocs.world import World

    config = discovery_config()
    scratch = tempfile.TemporaryDirectory(prefix="stxm-conformance-")
    served.scratch = scratch  # kept for the session
    World.create(scratch.name)
    # Owners first: an IOC may open the blocks it reads while it is built.
    ordered = sorted(INSTRUMENTS, key=lambda i: bool(i.reads))
    records: list[ServedRecord] = []
    bare: list[ServedPV] = []
    for instrument in ordered:
        world = World(scratch.name, owns=instrument.owns, reads=instrument.reads)
        for group in load_factory(instrument)(IocContext(instrument, config, world)):
            for name, channel in group.pvdb.items():
                if getattr(channel, "field_inst", None) is None:
                    bare.append(ServedPV(instrument.name, name))
                    continue
                fields = {f: c.data_type.name for f, c in channel.fields.items()}
                fields[""] = channel.data_type.name
                read_only = frozenset(
                    f
                    for f, c in {**channel.fields, "": channel}.items()
                    if isinstance(c, PvpropertyReadOnlyData)
                )
                records.append(
                    ServedRecord(
                        ioc=instrument.name,
                        name=name,
                        rtyp=channel.field_inst._record_type,  # noqa: SLF001 - caproto's only record type
                        fields=fields,
                        read_only=read_only,
                        control=name.startswith(config.sim.control_prefix),
                        group=group,
                    )
                )
    return tuple(records), tuple(bare)


_BY_TYPE = {
    "record": None,
    "motor_record": "motor",
    "scaler_record": "scaler",
    "ai_record": "ai",
    "waveform_record": "waveform",
}


def records(rtyp: str | None = None) -> list[ServedRecord]:
    """Served records, all or of one type."""
    return [r for r in served()[0] if rtyp is None or r.rtyp == rtyp]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run record tests once per served record (of their type), IOC tests once per IOC."""
    if "ioc" in metafunc.fixturenames:
        from sim_iocs.registry import INSTRUMENTS

        metafunc.parametrize("ioc", [i.name for i in INSTRUMENTS])
    for argname, rtyp in _BY_TYPE.items():
        if argname in metafunc.fixturenames:
            chosen = records(rtyp)
            metafunc.parametrize(argname, chosen, ids=[r.id for r in chosen])


def pv_name(record: ServedRecord, field: str) -> str:
    """The PV of a record's field (``""``: the value)."""
    return f"{record.name}.{field}" if field else record.name


def connect(names: list[str], timeout_s: float = 10.0) -> dict[str, Any]:
    """pyepics PVs for ``names``, all connected (read fresh values with use_monitor=False)."""
    import epics

    # get_pv: pyepics keeps them (a PV garbage-collected with a live channel can crash libca).
    pvs = {name: epics.get_pv(name) for name in names}
    missing = [name for name, pv in pvs.items() if not pv.wait_for_connection(timeout_s)]
    assert not missing, f"did not connect: {missing}"
    return pvs


def wait_for(condition, timeout_s: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout_s``."""
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout_s} s")
        time.sleep(0.01)
