"""The absorption and XMCD spectrum model against physics.md's numbers."""

import numpy as np
import pytest

from stxm_ctrl.physics.spectra import (
    ELEMENTS,
    absorption_per_nm,
    dichroism_per_nm,
    edge_energies_eV,
)


def test_permalloy_has_physics_md_absorption_length_at_the_fe_l3_peak():
    assert 1.0 / float(absorption_per_nm("permalloy", 706.8)) == pytest.approx(69.0, rel=0.03)
    for thickness_nm, od in ((20, 0.29), (30, 0.43), (50, 0.72)):
        assert thickness_nm * float(absorption_per_nm("permalloy", 706.8)) == pytest.approx(
            od, abs=0.02
        )


def test_permalloy_off_resonance_is_physics_md_od():
    assert 30 * float(absorption_per_nm("permalloy", 700.0)) == pytest.approx(0.07, abs=0.01)


@pytest.mark.parametrize("element", ["Fe", "Co", "Ni"])
def test_white_lines_peak_at_the_edge_energies(element):
    edges = ELEMENTS[element]
    for edge in (edges.l3_eV, edges.l2_eV):
        e = np.linspace(edge - 3, edge + 3, 601)
        mu = absorption_per_nm(element, e)
        assert e[np.argmax(mu)] == pytest.approx(edge, abs=0.15)


@pytest.mark.parametrize(("element", "a3"), [("Fe", 0.2), ("Co", 0.2), ("Ni", 0.1)])
def test_xmcd_asymmetry_is_a_at_l3_and_opposite_at_l2(element, a3):
    edges = ELEMENTS[element]
    at_l3 = dichroism_per_nm(element, edges.l3_eV) / absorption_per_nm(element, edges.l3_eV)
    at_l2 = dichroism_per_nm(element, edges.l2_eV) / absorption_per_nm(element, edges.l2_eV)
    assert float(at_l3) == pytest.approx(a3, rel=0.02)
    assert float(at_l2) < 0 and abs(float(at_l2)) == pytest.approx(edges.l2_asymmetry, rel=0.05)


def test_copper_rises_steepest_at_its_edges():
    # A weak white line (filled d band): an edge without a peak.
    e = np.linspace(928, 937, 901)
    slope = np.gradient(absorption_per_nm("Cu", e), e)
    assert e[np.argmax(slope)] == pytest.approx(932.7, abs=0.8)  # the step half-width


def test_copper_has_no_static_dichroism_and_edges_are_listed():
    assert float(dichroism_per_nm("Cu", 932.7)) == 0.0
    assert edge_energies_eV("permalloy") == {
        "Ni L3": 852.7,
        "Ni L2": 870.0,
        "Fe L3": 706.8,
        "Fe L2": 719.9,
    }
