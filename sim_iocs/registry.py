"""The table of simulated instruments: the one place that lists the simulator's IOCs.

Adding an instrument to the simulator is one new module in ``sim_iocs/`` (its PVGroups, the
world block it owns, a ``build(context)`` factory) plus one :class:`SimInstrument` entry in
:data:`INSTRUMENTS`. Everything else derives from this table: the fleet starts one process
per entry on its port (``[sim.iocs.<name>] port`` in the configuration, or the entry's
default), the fleet's manifest gives clients the Channel Access address list, the test
fixtures give every entry a free port, and ``python -m sim_iocs --list`` prints it.

Factories are named by import path (``"module:function"``) rather than imported here: the
fleet process reads this table without loading caproto's server, which must be imported
only after :func:`sim_iocs.server.prepare_environment` has set its environment.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim_iocs.world import World
    from stxm_ctrl.config import BeamlineConfig

__all__ = [
    "INSTRUMENTS",
    "IocContext",
    "RegistryError",
    "SimInstrument",
    "check_instruments",
    "load_factory",
]


class RegistryError(ValueError):
    """The instrument table (or the configuration's view of it) is inconsistent."""


@dataclass(frozen=True)
class SimInstrument:
    """One simulated IOC: what it is called, how it is built, what world state it shares.

    Parameters
    ----------
    name
        IOC name: the fleet's process name and the ``[sim.iocs.<name>]`` key.
    factory
        ``"module:function"``; the function takes an :class:`IocContext` and returns the
        IOC's caproto ``PVGroup`` objects (each may have an ``async initialise()``).
    default_port
        Channel Access port unless the configuration gives another.
    owns
        World blocks this IOC writes (each block has exactly one owner in a fleet).
    reads
        World blocks of other IOCs this IOC reads.
    description
        One line for listings and logs.
    """

    name: str
    factory: str
    default_port: int
    owns: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        """Plain data, as the fleet manifest stores it."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SimInstrument:
        """Inverse of :meth:`to_json`."""
        return cls(
            name=data["name"],
            factory=data["factory"],
            default_port=int(data["default_port"]),
            owns=tuple(data.get("owns", ())),
            reads=tuple(data.get("reads", ())),
            description=data.get("description", ""),
        )


@dataclass(frozen=True)
class IocContext:
    """What a factory gets to build its IOC.

    Attributes
    ----------
    instrument
        The IOC's registry entry.
    config
        The effective configuration (prefixes from ``[epics]``, physics from ``[sim]``).
    world
        The fleet's world, restricted to the blocks the entry owns and reads.
    """

    instrument: SimInstrument
    config: BeamlineConfig
    world: World


INSTRUMENTS: tuple[SimInstrument, ...] = (
    SimInstrument(
        name="sample_stage",
        factory="sim_iocs.sample_stage:build",
        default_port=5070,
        owns=("sample_stage",),
        description="sample stage X/Y motor records",
    ),
    SimInstrument(
        name="apd",
        factory="sim_iocs.apd:build",
        default_port=5071,
        reads=(
            "sample_stage",
            "fine_stage",
            "ring",
            "optics_stages",
            "detector_stage",
            "beamline",
        ),
        description="APD point counter: Poisson photons through the optics and the sample",
    ),
    SimInstrument(
        name="ring",
        factory="sim_iocs.ring:build",
        default_port=5072,
        owns=("ring",),
        description="storage ring in top-up, beamline shutter",
    ),
    SimInstrument(
        name="optics",
        factory="sim_iocs.optics:build",
        default_port=5074,
        owns=("optics_stages",),
        reads=("beamline",),
        description="zone plate and OSA x/y/z motor records, their interlocks",
    ),
    SimInstrument(
        name="detector",
        factory="sim_iocs.detector:build",
        default_port=5075,
        owns=("detector_stage",),
        description="detector stage x/y motor records",
    ),
    SimInstrument(
        name="beamline",
        factory="sim_iocs.beamline:build",
        default_port=5076,
        owns=("beamline",),
        reads=("optics_stages",),
        description="monochromator energy, EPU gap and polarisation",
    ),
    SimInstrument(
        name="fly",
        factory="sim_iocs.fly:build",
        default_port=5077,
        owns=("fine_stage",),
        reads=("sample_stage", "ring", "optics_stages", "detector_stage", "beamline"),
        description="fine piezo x/y, laser interferometer and line fly-scan controller",
    ),
)
"""The simulated instruments, in start order."""


def load_factory(instrument: SimInstrument) -> Callable[[IocContext], Sequence[Any]]:
    """Import an entry's factory (in the IOC's own process)."""
    module_name, _, function = instrument.factory.partition(":")
    try:
        return getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as exc:
        raise RegistryError(
            f"simulated IOC {instrument.name!r}: factory {instrument.factory!r} cannot be "
            f"loaded ({exc}); it must name 'module:function'"
        ) from exc


def check_instruments(instruments: Iterable[SimInstrument]) -> tuple[SimInstrument, ...]:
    """Check that names are unique and every world block read has exactly one owner.

    Raises
    ------
    RegistryError
        Naming the entries at fault.
    """
    table = tuple(instruments)
    names = [i.name for i in table]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RegistryError(f"simulated IOC names must be unique; repeated: {duplicates}")
    owners: dict[str, str] = {}
    for instrument in table:
        for block in instrument.owns:
            if block in owners:
                raise RegistryError(
                    f"world block {block!r} is owned by both {owners[block]!r} and "
                    f"{instrument.name!r}; a block has exactly one writer"
                )
            owners[block] = instrument.name
    for instrument in table:
        for block in instrument.reads:
            if block not in owners:
                raise RegistryError(
                    f"simulated IOC {instrument.name!r} reads world block {block!r}, which no "
                    f"IOC of the fleet owns (owned: {sorted(owners)})"
                )
    return table
