"""The table of simulated instruments: the one place that lists the simulator's IOCs.

Adding an instrument to the simulator is one new module in ``sim_iocs/`` (its PVGroups, the
world block it owns, a ``build(context)`` factory) plus one :class:`SimInstrument` entry in
:data:`INSTRUMENTS`. Everything else derives from this table: the fleet starts one process
per entry on its port (``[sim.iocs.<name>] port`` in the configuration, or the entry's
default), the fleet's manifest gives clients the Channel Access address list, the test
fixtures give every entry a free port, and ``python -m sim_iocs --list`` prints it.

An IOC takes its PV prefix and its settings from the configuration through its entry, as
the beamline's IOCs do: :attr:`IocContext.prefix` is ``[epics.prefixes] <name>`` (or the
entry's ``default_prefix``), :attr:`IocContext.settings` the entry's ``settings`` updated
from ``[sim.iocs.<name>]``. :func:`check_configuration` refuses, before anything starts, a
prefix or setting the table has no entry or key for.

Factories are named by import path (``"module:function"``) rather than imported here: the
fleet process reads this table without loading caproto's server, which must be imported
only after :func:`sim_iocs.server.prepare_environment` has set its environment.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim_iocs.world import World
    from stxm_ctrl.config import BeamlineConfig

__all__ = [
    "INSTRUMENTS",
    "IocContext",
    "RegistryError",
    "SimInstrument",
    "check_configuration",
    "check_instruments",
    "instrument_prefix",
    "instrument_settings",
    "load_factory",
]

Setting = bool | int | float | str
"""The value of an IOC setting (a TOML scalar)."""


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
        IOC's caproto ``PVGroup`` objects (each may have an ``async initialise()``, run once
        the server listens, as caproto runs its ``.startup`` and ``.scan`` hooks).
    default_port
        Channel Access port unless the configuration gives another.
    owns
        World blocks this IOC writes (each block has exactly one owner in a fleet).
    reads
        World blocks of other IOCs this IOC reads.
    description
        One line for listings and logs.
    default_prefix
        PV prefix unless ``[epics.prefixes] <name>`` gives one (the beamline's own
        subsystems have theirs in the configuration's defaults).
    settings
        The IOC's settings and their defaults; ``[sim.iocs.<name>]`` may change each (a value
        of the default's type) and nothing else.
    """

    name: str
    factory: str
    default_port: int
    owns: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    description: str = ""
    default_prefix: str = ""
    settings: Mapping[str, Setting] = field(default_factory=dict, hash=False)

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
            default_prefix=data.get("default_prefix", ""),
            settings=dict(data.get("settings", {})),
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

    @property
    def prefix(self) -> str:
        """The IOC's PV prefix: ``[epics.prefixes] <name>``, or the entry's default."""
        return instrument_prefix(self.config, self.instrument)

    @property
    def settings(self) -> dict[str, Setting]:
        """The entry's settings, updated from ``[sim.iocs.<name>]``."""
        return instrument_settings(self.config, self.instrument)


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


def instrument_prefix(config: BeamlineConfig, instrument: SimInstrument) -> str:
    """PV prefix of an IOC: ``[epics.prefixes] <name>``, or its entry's ``default_prefix``.

    Raises
    ------
    RegistryError
        If neither gives one.
    """
    configured = getattr(config.epics.prefixes, instrument.name, None)
    prefix = configured or instrument.default_prefix
    if not prefix:
        raise RegistryError(
            f"simulated IOC {instrument.name!r} has no PV prefix: set [epics.prefixes] "
            f'{instrument.name} = "..." in the configuration, or give its registry entry a '
            "default_prefix"
        )
    return prefix


def instrument_settings(config: BeamlineConfig, instrument: SimInstrument) -> dict[str, Setting]:
    """An IOC's settings: its entry's defaults, updated from ``[sim.iocs.<name>]``.

    Raises
    ------
    RegistryError
        For a key the entry does not declare, or a value not of its default's type.
    """
    section = config.sim.iocs.get(instrument.name)
    given = dict(section.model_extra or {}) if section is not None else {}
    settings = dict(instrument.settings)
    where = f"[sim.iocs.{instrument.name}]"
    for key, value in given.items():
        if key not in settings:
            close = difflib.get_close_matches(key, list(settings), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(["port", *settings])
            raise RegistryError(
                f"{where} {key}: simulated IOC {instrument.name!r} has no such setting{hint}; "
                f"its keys are: {known}"
            )
        default = settings[key]
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)  # 4 for 4.0
        if type(value) is not type(default):
            raise RegistryError(
                f"{where} {key} = {value!r}: give a {type(default).__name__} "
                f"(the default is {default!r})"
            )
        settings[key] = value
    return settings


def check_configuration(config: BeamlineConfig, instruments: Iterable[SimInstrument]) -> None:
    """Check the configuration's view of the table: every IOC has a prefix, every prefix an
    IOC, every setting its key.

    Raises
    ------
    RegistryError
        Naming the key at fault and the fix.
    """
    table = {i.name: i for i in instruments}
    for key in config.epics.prefixes.model_extra or {}:
        if key not in table:
            close = difflib.get_close_matches(key, list(table), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise RegistryError(
                f"[epics.prefixes] {key}: no simulated IOC or subsystem has that name{hint}; "
                f"the simulated IOCs are: {', '.join(table)}"
            )
    for instrument in table.values():
        instrument_prefix(config, instrument)
        instrument_settings(config, instrument)
