"""Soft x-ray absorption and XMCD spectra of the 3d metals around their L3/L2 edges.

A smooth model, not tabulated data: each element's absorption coefficient mu(E) (per nm of
the pure element) is

    mu(E) = [pre + jump * (2/3 S(E - E_L3) + 1/3 S(E - E_L2))] * (E / E_L3) ** -2.6
            + w3 * L(E - E_L3; g3) + w2 * L(E - E_L2; g2)

- ``pre`` the continuum below the edges at E_L3 (shallower shells), falling as E^-2.6 (the
  exponent that fits Si3N4 and the 3d metals' continua from 700 to 950 eV);
- S an arctan edge step of half-width ``step_width_eV``, L3 : L2 = 2 : 1 (the 2p3/2 and
  2p1/2 occupancies);
- L(dE; g) = 1 / (1 + (dE / g) ** 2), a Lorentzian white line of half-width g and peak 1,
  with peak heights w3, w2 above the continuum.

XMCD (``../shared/reference/physics.md``): mu(+-) = mu * (1 -+ A * Pc * (k . m)) with A of
opposite sign at L3 and L2. The dichroic part is carried by the white lines:

    mu_mag(E) = A3 * mu(E_L3) * L(E - E_L3; g3) - A2 * mu(E_L2) * L(E - E_L2; g2)

so the asymmetry mu_mag / mu is A3 at the L3 peak and -A2 at the L2 peak; helicity h Pc
(signed degree of circular polarisation) gives mu(h) = mu - h * Pc * (k . m) * mu_mag.

Edge energies are physics.md's. The amplitudes are estimates, chosen so that permalloy
(Ni80Fe20) has physics.md's absorption length of ~69 nm at the Fe L3 peak and a 30 nm film
an OD of ~0.07 at 700 eV (``tests/unit/test_spectra.py`` holds the model to both); the
asymmetries are physics.md's (0.2 for Fe and Co, 0.1 for Ni at L3). Copper's white line is
weak (a filled d band) and it has no static dichroism.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ELEMENTS",
    "MATERIALS",
    "ElementEdges",
    "Material",
    "absorption_per_nm",
    "dichroism_per_nm",
    "edge_energies_eV",
]

_CONTINUUM_EXPONENT = 2.6


@dataclass(frozen=True)
class ElementEdges:
    """One element's L-edge spectrum parameters (see the module docstring).

    Attributes
    ----------
    symbol
        Chemical symbol.
    l3_eV, l2_eV
        Edge (white-line peak) energies.
    pre_per_nm
        Continuum below the edges at E_L3, 1/nm.
    jump_per_nm
        Continuum step across both edges, 1/nm.
    step_width_eV
        Half-width of the arctan edge steps.
    l3_peak_per_nm, l2_peak_per_nm
        White-line heights above the continuum, 1/nm.
    l3_width_eV, l2_width_eV
        White-line half-widths (Lorentzian HWHM).
    l3_asymmetry, l2_asymmetry
        XMCD asymmetry A at the L3 and L2 peaks (magnitudes; L2 has the opposite sign).
    """

    symbol: str
    l3_eV: float
    l2_eV: float
    pre_per_nm: float
    jump_per_nm: float
    step_width_eV: float
    l3_peak_per_nm: float
    l2_peak_per_nm: float
    l3_width_eV: float
    l2_width_eV: float
    l3_asymmetry: float
    l2_asymmetry: float

    def _continuum(self, e: NDArray) -> NDArray:
        step = self.jump_per_nm * (
            2.0 / 3.0 * _step(e - self.l3_eV, self.step_width_eV)
            + 1.0 / 3.0 * _step(e - self.l2_eV, self.step_width_eV)
        )
        return (self.pre_per_nm + step) * (e / self.l3_eV) ** -_CONTINUUM_EXPONENT

    def mu_per_nm(self, energy_eV: ArrayLike) -> NDArray[np.float64]:
        """Absorption coefficient of the pure element, 1/nm."""
        e = np.asarray(energy_eV, dtype=float)
        return (
            self._continuum(e)
            + self.l3_peak_per_nm * _lorentz(e - self.l3_eV, self.l3_width_eV)
            + self.l2_peak_per_nm * _lorentz(e - self.l2_eV, self.l2_width_eV)
        )

    def mu_magnetic_per_nm(self, energy_eV: ArrayLike) -> NDArray[np.float64]:
        """The dichroic part mu_mag (1/nm): mu(h) = mu - h Pc (k . m) mu_mag."""
        e = np.asarray(energy_eV, dtype=float)
        at_l3 = float(self.mu_per_nm(self.l3_eV))
        at_l2 = float(self.mu_per_nm(self.l2_eV))
        return self.l3_asymmetry * at_l3 * _lorentz(
            e - self.l3_eV, self.l3_width_eV
        ) - self.l2_asymmetry * at_l2 * _lorentz(e - self.l2_eV, self.l2_width_eV)


def _step(de: NDArray, width_eV: float) -> NDArray:
    return 0.5 + np.arctan(de / width_eV) / np.pi


def _lorentz(de: NDArray, hwhm_eV: float) -> NDArray:
    return 1.0 / (1.0 + (de / hwhm_eV) ** 2)


ELEMENTS: dict[str, ElementEdges] = {
    "Fe": ElementEdges("Fe", 706.8, 719.9, 0.0012, 0.012, 0.8, 0.058, 0.027, 0.9, 1.2, 0.2, 0.2),
    "Co": ElementEdges("Co", 778.1, 793.2, 0.0013, 0.013, 0.8, 0.060, 0.028, 1.0, 1.3, 0.2, 0.2),
    "Ni": ElementEdges("Ni", 852.7, 870.0, 0.0014, 0.013, 0.8, 0.048, 0.020, 1.0, 1.4, 0.1, 0.1),
    "Cu": ElementEdges("Cu", 932.7, 952.3, 0.0015, 0.014, 0.8, 0.006, 0.003, 1.2, 1.5, 0.0, 0.0),
}
"""The 3d metals the simulator knows (edge energies: physics.md; the rest: estimates)."""


@dataclass(frozen=True)
class Material:
    """A material as atomic fractions of :data:`ELEMENTS` (a pure element: one fraction 1).

    The coefficients mix linearly by fraction; the 3d metals' atomic volumes differ by a few
    per cent, which the model ignores.
    """

    name: str
    fractions: tuple[tuple[str, float], ...]

    def mu_per_nm(self, energy_eV: ArrayLike) -> NDArray[np.float64]:
        """Absorption coefficient, 1/nm."""
        return sum(
            (f * ELEMENTS[el].mu_per_nm(energy_eV) for el, f in self.fractions),
            start=np.zeros(np.shape(energy_eV)),
        )

    def mu_magnetic_per_nm(self, energy_eV: ArrayLike) -> NDArray[np.float64]:
        """Dichroic part, 1/nm (:meth:`ElementEdges.mu_magnetic_per_nm`)."""
        return sum(
            (f * ELEMENTS[el].mu_magnetic_per_nm(energy_eV) for el, f in self.fractions),
            start=np.zeros(np.shape(energy_eV)),
        )


MATERIALS: dict[str, Material] = {
    "permalloy": Material("permalloy", (("Ni", 0.8), ("Fe", 0.2))),
    "Fe": Material("Fe", (("Fe", 1.0),)),
    "Co": Material("Co", (("Co", 1.0),)),
    "Ni": Material("Ni", (("Ni", 1.0),)),
    "Cu": Material("Cu", (("Cu", 1.0),)),
}
"""Materials a simulated sample can be made of."""


def absorption_per_nm(material: str, energy_eV: ArrayLike) -> NDArray[np.float64]:
    """mu(E) of a material of :data:`MATERIALS`, 1/nm (helicity-averaged)."""
    return MATERIALS[material].mu_per_nm(energy_eV)


def dichroism_per_nm(material: str, energy_eV: ArrayLike) -> NDArray[np.float64]:
    """mu_mag(E) of a material of :data:`MATERIALS`, 1/nm."""
    return MATERIALS[material].mu_magnetic_per_nm(energy_eV)


def edge_energies_eV(material: str) -> dict[str, float]:
    """The L3 and L2 edge energies of each element of a material: {"Fe L3": 706.8, ...}."""
    edges: dict[str, float] = {}
    for element, _ in MATERIALS[material].fractions:
        e = ELEMENTS[element]
        edges[f"{element} L3"] = e.l3_eV
        edges[f"{element} L2"] = e.l2_eV
    return edges
