"""The PV reference of the simulated IOCs is generated from the IOCs, and every PV is
documented: the IOCs are built in this process (nothing is served)."""

from __future__ import annotations

import difflib

import pytest

from sim_iocs.reference import (
    REFERENCE_PATH,
    REGENERATE,
    built_iocs,
    generated_section,
    render,
    undocumented,
)


@pytest.fixture(scope="module")
def rendered() -> str:
    return render()


def test_the_checked_in_pv_reference_is_what_the_iocs_serve(rendered):
    page = REFERENCE_PATH.read_text()
    current = generated_section(page)
    assert current is not None, f"{REFERENCE_PATH} has no generated PV tables; run: {REGENERATE}"
    diff = "\n".join(
        difflib.unified_diff(
            current.splitlines(), rendered.splitlines(), "checked in", "generated", lineterm=""
        )
    )
    assert current == rendered, (
        f"{REFERENCE_PATH} differs from the IOCs; regenerate it with: {REGENERATE}\n{diff}"
    )


def test_the_reference_names_every_record_with_prefix_type_units_and_description(rendered):
    # What a scientist looks up: the full name, the record type, its units, what it is.
    assert "| `STXM:RING:CURRENT` | ai | mA | read-only | Storage ring current |" in rendered
    assert "| `STXM:BL:EPU:GAP` | motor | mm | read/write | EPU gap |" in rendered
    shutter = "| `STXM:RING:SHUTTER` | bo | Closed / Open | read/write | Beamline shutter |"
    assert shutter in rendered
    assert "| `STXM:SMP:X` | motor | um | read/write | Sample stage x |" in rendered


def test_every_pvproperty_of_the_simulator_has_a_doc():
    with built_iocs() as iocs:
        missing = undocumented(iocs)
    assert not missing, (
        f"pvproperties without doc= (give each a short line saying what it is): {missing}"
    )


def test_a_pvproperty_without_a_doc_is_found():
    from caproto.server import PVGroup, pvproperty

    class Undocumented(PVGroup):
        documented = pvproperty(name="A", value=0.0, record="ai", doc="Documented")
        bare = pvproperty(name="B", value=0.0, record="ai")

    where = f"{__name__}.test_a_pvproperty_without_a_doc_is_found.<locals>.Undocumented.bare"
    assert undocumented({"probe": [Undocumented("P:")]}) == [where]
