"""The elliptically polarising undulator (EPU): first-harmonic energy against gap.

A smooth, documented model (an estimate, every number in ``[sim.beamline]``), enough for the
gap to have to follow the energy:

- on-axis field of a pure-permanent-magnet (Halbach) array: B0 = B_peak exp(-pi g / lambda_u)
- deflection parameter K = 0.934 lambda_u[cm] B0[T]
- first harmonic E1[eV] = 950 E_e[GeV]^2 / (lambda_u[cm] (1 + K_eff^2)), with
  K_eff^2 = K^2 / 2 for linear polarisation (one plane of field) and K^2 for circular (both
  planes, an APPLE-II in its helical mode).
- flux at energy E with the gap tuned to E1: a Gaussian line of FWHM E1 / N_periods.

Polarisation states, in the order of the EPU's PV: circular left, circular right, linear
horizontal, linear vertical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stxm_ctrl.physics.zone_plate import FWHM_PER_SIGMA

__all__ = ["POLARIZATIONS", "Undulator", "UndulatorRangeError"]

POLARIZATIONS = ("Circular left", "Circular right", "Linear horizontal", "Linear vertical")
"""Polarisation states, in the order of the EPU's enumerated PV."""


class UndulatorRangeError(ValueError):
    """An energy the undulator's first harmonic cannot reach in a polarisation."""


def _is_circular(polarization: str) -> bool:
    if polarization not in POLARIZATIONS:
        raise ValueError(
            f"polarisation {polarization!r}; choose one of {', '.join(POLARIZATIONS)}"
        )
    return polarization.startswith("Circular")


@dataclass(frozen=True)
class Undulator:
    """An EPU on a storage ring (see the module docstring for the model).

    Parameters
    ----------
    electron_energy_GeV
        Ring energy.
    period_mm
        Magnetic period lambda_u.
    peak_field_T
        Halbach amplitude B_peak.
    periods
        Number of periods N.
    min_gap_mm, max_gap_mm
        Gap travel.
    """

    electron_energy_GeV: float = 1.7
    period_mm: float = 26.0
    peak_field_T: float = 2.0
    periods: int = 60
    min_gap_mm: float = 8.0
    max_gap_mm: float = 80.0

    def _k_eff_squared(self, gap_mm: ArrayLike, polarization: str) -> NDArray[np.float64]:
        field = self.peak_field_T * np.exp(-math.pi * np.asarray(gap_mm, float) / self.period_mm)
        k = 0.934 * (self.period_mm / 10.0) * field
        return k**2 if _is_circular(polarization) else 0.5 * k**2

    def _e_max_eV(self) -> float:
        return 950.0 * self.electron_energy_GeV**2 / (self.period_mm / 10.0)

    def energy_eV(self, gap_mm: ArrayLike, polarization: str) -> NDArray[np.float64]:
        """First-harmonic photon energy at a gap (vectorised)."""
        return self._e_max_eV() / (1.0 + self._k_eff_squared(gap_mm, polarization))

    def energy_range_eV(self, polarization: str) -> tuple[float, float]:
        """(lowest, highest) first-harmonic energy over the gap travel."""
        low = float(self.energy_eV(self.min_gap_mm, polarization))
        high = float(self.energy_eV(self.max_gap_mm, polarization))
        return low, high

    def gap_mm(self, energy_eV: float, polarization: str) -> float:
        """Gap that tunes the first harmonic to ``energy_eV``.

        Raises
        ------
        UndulatorRangeError
            Naming the energy range of this polarisation.
        """
        low, high = self.energy_range_eV(polarization)
        if not low <= energy_eV <= high:
            raise UndulatorRangeError(
                f"energy {energy_eV:.2f} eV is outside the EPU's first harmonic in "
                f"{polarization.lower()} polarisation ({low:.1f} to {high:.1f} eV at gaps "
                f"{self.min_gap_mm:g} to {self.max_gap_mm:g} mm)"
            )
        k_eff_squared = self._e_max_eV() / energy_eV - 1.0
        k_squared = k_eff_squared if _is_circular(polarization) else 2.0 * k_eff_squared
        field = math.sqrt(max(k_squared, 0.0)) / (0.934 * self.period_mm / 10.0)
        if field <= 0:
            return self.max_gap_mm
        gap = -self.period_mm / math.pi * math.log(field / self.peak_field_T)
        return min(max(gap, self.min_gap_mm), self.max_gap_mm)

    def relative_flux(self, energy_eV: ArrayLike, gap_mm: float, polarization: str) -> NDArray:
        """Flux at ``energy_eV`` relative to a perfectly tuned gap (a Gaussian harmonic line)."""
        e1 = float(self.energy_eV(gap_mm, polarization))
        sigma = e1 / self.periods / FWHM_PER_SIGMA
        return np.exp(-0.5 * ((np.asarray(energy_eV, float) - e1) / sigma) ** 2)
