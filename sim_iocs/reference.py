"""The PV tables of ``docs/reference/sim-iocs.md``, generated from the IOCs themselves.

Channel Access cannot list what a server serves, so this module builds every IOC of the
registry in this process, as its own process does (a world in a scratch directory, the
shipped configuration, each group's ``initialise()``), without serving anything, and reads
its PV database: every record's full name (default prefixes), record type, units (or enum
states), access and description (its ``.DESC``: the ``pvproperty(doc=...)``, or the one the
IOC gives that instance, e.g. ``Sample stage x``). The page keeps its hand-written
explanations; only the part between :data:`BEGIN_MARKER` and :data:`END_MARKER` is
generated. A unit test fails when the page differs from the rendering, or when a
pvproperty of the simulator has no ``doc``. Regenerate with::

    uv run python -m sim_iocs.reference --write
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim_iocs.registry import INSTRUMENTS, IocContext, SimInstrument, load_factory
from stxm_ctrl.config import BeamlineConfig

__all__ = [
    "BEGIN_MARKER",
    "END_MARKER",
    "REFERENCE_PATH",
    "REGENERATE",
    "ServedPV",
    "built_iocs",
    "generated_section",
    "render",
    "served_pvs",
    "undocumented",
    "updated_page",
]

REFERENCE_PATH = Path(__file__).resolve().parents[1] / "docs" / "reference" / "sim-iocs.md"
"""The page whose PV tables are generated."""

REGENERATE = "uv run python -m sim_iocs.reference --write"
"""The command that regenerates the tables."""

BEGIN_MARKER = f"<!-- BEGIN generated PV tables: {REGENERATE} -->"
END_MARKER = "<!-- END generated PV tables -->"


@dataclass(frozen=True)
class ServedPV:
    """One record an IOC serves, as its table row shows it.

    Attributes
    ----------
    name
        Full PV name of the record's value.
    rtyp
        Record type (``ai``, ``motor``, ``scaler``...).
    units
        Units of the value, or the states of an enum (``Closed / Open``); empty for none.
    read_only
        True when clients may not write the value.
    doc
        The record's description (``.DESC``).
    """

    name: str
    rtyp: str
    units: str
    read_only: bool
    doc: str


@contextmanager
def built_iocs(
    instruments: Iterable[SimInstrument] = INSTRUMENTS, config: BeamlineConfig | None = None
) -> Iterator[dict[str, list[Any]]]:
    """The PVGroups of every IOC, built and initialised in this process, by IOC name.

    Nothing is served; the groups share a world in a scratch directory that is removed on
    exit. Background tasks their ``initialise()`` started are cancelled.
    """
    from sim_iocs.world import World

    config = BeamlineConfig() if config is None else config
    table = tuple(instruments)
    with tempfile.TemporaryDirectory(prefix="stxm-sim-reference-") as scratch:
        World.create(scratch)
        groups: dict[str, list[Any]] = {}
        # Owners first: an IOC may open the blocks it reads while it is built.
        for instrument in sorted(table, key=lambda i: bool(i.reads)):
            world = World(scratch, owns=instrument.owns, reads=instrument.reads)
            factory = load_factory(instrument)
            groups[instrument.name] = list(factory(IocContext(instrument, config, world)))

        async def initialise_all() -> None:
            for built in groups.values():
                for group in built:
                    initialise = getattr(group, "initialise", None)
                    if initialise is not None:
                        await initialise()

        asyncio.run(initialise_all())
        yield {i.name: groups[i.name] for i in table}


def _served(group: Any) -> list[ServedPV]:
    from caproto.server.server import PvpropertyReadOnlyData

    rows = []
    for name, channel in group.pvdb.items():
        fields = getattr(channel, "field_inst", None)
        states = getattr(channel, "enum_strings", None)
        units = " / ".join(states) if states else (getattr(channel, "units", "") or "")
        rows.append(
            ServedPV(
                name=name,
                # caproto names a record's type only in this class attribute.
                rtyp=fields._record_type if fields is not None else "(no record)",  # noqa: SLF001
                units=units,
                read_only=isinstance(channel, PvpropertyReadOnlyData),
                doc=" ".join((channel.__doc__ or "").split()),
            )
        )
    return rows


def served_pvs(
    instruments: Iterable[SimInstrument] = INSTRUMENTS, config: BeamlineConfig | None = None
) -> dict[str, list[ServedPV]]:
    """Every record each IOC serves, in the order its groups declare them."""
    with built_iocs(instruments, config) as iocs:
        return {name: [row for g in groups for row in _served(g)] for name, groups in iocs.items()}


def _own_pvproperties(cls: type) -> Iterator[tuple[str, Any]]:
    """The pvproperties a class of the project declares (not those caproto ships)."""
    from caproto.server import pvproperty

    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] == "caproto":
            continue
        for attr, value in vars(klass).items():
            if isinstance(value, pvproperty):
                yield f"{klass.__module__}.{klass.__qualname__}.{attr}", value


def undocumented(iocs: dict[str, list[Any]]) -> list[str]:
    """Every pvproperty of the built groups (and of their record field classes) without a
    ``doc``, as ``module.Class.attribute``."""
    missing: set[str] = set()
    for groups in iocs.values():
        for group in groups:
            classes = {type(group)}
            classes |= {
                type(c.field_inst) for c in group.pvdb.values() if hasattr(c, "field_inst")
            }
            for cls in classes:
                for where, prop in _own_pvproperties(cls):
                    if not (prop.pvspec.doc or "").strip():
                        missing.add(where)
    return sorted(missing)


def _cell(text: str) -> str:
    return text.replace("|", "\\|") if text else "—"


def render(
    instruments: Sequence[SimInstrument] = INSTRUMENTS, config: BeamlineConfig | None = None
) -> str:
    """The generated section, markers included."""
    served = served_pvs(instruments, config)
    lines = [
        BEGIN_MARKER,
        "",
        f"Generated from the IOCs by `{REGENERATE}`; do not edit by hand (a unit test "
        "compares it with the IOCs). Names with the shipped prefixes.",
        "",
    ]
    for instrument in instruments:
        rows = served[instrument.name]
        owns = ", ".join(f"`{b}`" for b in instrument.owns) or "none"
        reads = ", ".join(f"`{b}`" for b in instrument.reads) or "none"
        module = instrument.factory.partition(":")[0]
        settings = "".join(f", `{key}` = {value!r}" for key, value in instrument.settings.items())
        lines += [
            f"### `{instrument.name}`: {instrument.description}",
            "",
            f"`{module}`; prefix `[epics.prefixes] {instrument.name}`; default port "
            f"{instrument.default_port} (`[sim.iocs.{instrument.name}] port`{settings}); world "
            f"blocks owned: {owns}; read: {reads}. {len(rows)} records.",
            "",
            "| PV | record | units / states | access | description |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| `{r.name}` | {r.rtyp} | {_cell(r.units)} | "
            f"{'read-only' if r.read_only else 'read/write'} | {_cell(r.doc)} |"
            for r in rows
        ]
        lines.append("")
    lines.append(END_MARKER)
    return "\n".join(lines)


def generated_section(page: str) -> str | None:
    """The generated section of ``page`` (markers included), or None if it has none."""
    start, end = page.find(BEGIN_MARKER), page.find(END_MARKER)
    if start < 0 or end < start:
        return None
    return page[start : end + len(END_MARKER)]


def updated_page(page: str, section: str) -> str:
    """``page`` with its generated section replaced by ``section``.

    Raises
    ------
    ValueError
        If the page lacks the markers.
    """
    current = generated_section(page)
    if current is None:
        raise ValueError(
            f"the page has no generated section: put the lines {BEGIN_MARKER!r} and "
            f"{END_MARKER!r} where the PV tables belong"
        )
    return page.replace(current, section)


def main(argv: list[str] | None = None) -> int:
    """Print the generated section, write it into the page, or check the page."""
    parser = argparse.ArgumentParser(prog="python -m sim_iocs.reference", description=__doc__)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help=f"update {REFERENCE_PATH.name}")
    action.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    args = parser.parse_args(argv)
    from sim_iocs.server import prepare_environment

    prepare_environment()  # before caproto.server is imported, as in an IOC process
    section = render()
    if not (args.write or args.check):
        print(section)
        return 0
    page = REFERENCE_PATH.read_text()
    if args.write:
        REFERENCE_PATH.write_text(updated_page(page, section))
        return 0
    if generated_section(page) != section:
        print(f"{REFERENCE_PATH} is out of date; run: {REGENERATE}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
