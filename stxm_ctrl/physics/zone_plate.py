"""Fresnel zone plate optics (X-ray Data Booklet, section 4.4).

Every function is pure and takes quantities in the units its arguments name. Distances along
the beam are *distances upstream of the sample* (always positive); which sign a motor reads
is the configuration's business (``[optics] z_sign``), not this module's.

Formulas (``../shared/reference/physics.md``):

- wavelength lambda[nm] = 1239.84 / E[eV]
- focal length f = D * drN / lambda = A1 * E, A1 = D * drN / 1239.84 (um/eV)
- zones N = D / (4 drN), numerical aperture NA = lambda / (2 drN)
- Rayleigh resolution 1.22 * drN; depth of focus +- 2 drN^2 / lambda
- geometric spot diameter at defocus dz: d = D * |dz| / f, so dz = d * drN * E / 1239.84
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "FWHM_PER_SIGMA",
    "HC_EV_NM",
    "ZonePlate",
    "a1_um_per_eV",
    "defocus_for_spot_um",
    "depth_of_focus_um",
    "focal_length_um",
    "number_of_zones",
    "numerical_aperture",
    "rayleigh_resolution_nm",
    "spot_sigma_um",
    "wavelength_nm",
]

HC_EV_NM = 1239.84
"""h * c in eV nm: lambda[nm] = 1239.84 / E[eV]."""

FWHM_PER_SIGMA = 2.3548200450309493
"""FWHM of a Gaussian in units of its sigma."""


def wavelength_nm(energy_eV: float) -> float:
    """Photon wavelength in nm."""
    return HC_EV_NM / energy_eV


def a1_um_per_eV(diameter_um: float, outer_zone_width_nm: float) -> float:
    """A1 = D * drN / (h c): the focal length per eV of photon energy, in um/eV."""
    return diameter_um * outer_zone_width_nm / HC_EV_NM


def focal_length_um(energy_eV: float, diameter_um: float, outer_zone_width_nm: float) -> float:
    """First-order focal length f = D * drN / lambda, in um (linear in energy)."""
    return diameter_um * outer_zone_width_nm / wavelength_nm(energy_eV)


def number_of_zones(diameter_um: float, outer_zone_width_nm: float) -> float:
    """N = D / (4 drN); the monochromator must give E / dE >= N."""
    return diameter_um * 1000.0 / (4.0 * outer_zone_width_nm)


def numerical_aperture(energy_eV: float, outer_zone_width_nm: float) -> float:
    """NA = lambda / (2 drN)."""
    return wavelength_nm(energy_eV) / (2.0 * outer_zone_width_nm)


def rayleigh_resolution_nm(outer_zone_width_nm: float) -> float:
    """Rayleigh resolution 1.22 * drN, in nm."""
    return 1.22 * outer_zone_width_nm


def depth_of_focus_um(energy_eV: float, outer_zone_width_nm: float) -> float:
    """Half-width of the depth of focus, +- lambda / (2 NA^2) = +- 2 drN^2 / lambda, in um."""
    return 2.0 * outer_zone_width_nm**2 / wavelength_nm(energy_eV) / 1000.0


def spot_sigma_um(outer_zone_width_nm: float) -> float:
    """Gaussian sigma of the focused spot, taking the Rayleigh resolution as its FWHM."""
    return rayleigh_resolution_nm(outer_zone_width_nm) / 1000.0 / FWHM_PER_SIGMA


def defocus_for_spot_um(
    spot_diameter_um: float, energy_eV: float, outer_zone_width_nm: float
) -> float:
    """Defocus dz = d * drN * E / 1239.84 that spreads the beam to a spot of diameter d, um.

    The geometric cone of a plate of diameter D and focal length f is D * dz / f across at a
    distance dz from its focus; D / f = lambda / drN, which gives this formula.
    """
    return spot_diameter_um * outer_zone_width_nm * energy_eV / HC_EV_NM


@dataclass(frozen=True)
class ZonePlate:
    """One Fresnel zone plate: its geometry, and the optics at any energy.

    Parameters
    ----------
    diameter_um
        Outer diameter D.
    outer_zone_width_nm
        Outermost zone width drN.
    central_stop_um
        Diameter of the central stop (opaque disc in the middle of the plate).
    """

    diameter_um: float
    outer_zone_width_nm: float
    central_stop_um: float

    @property
    def a1_um_per_eV(self) -> float:
        """Focal length per eV, um/eV."""
        return a1_um_per_eV(self.diameter_um, self.outer_zone_width_nm)

    @property
    def zones(self) -> float:
        """Number of zones N."""
        return number_of_zones(self.diameter_um, self.outer_zone_width_nm)

    @property
    def resolution_nm(self) -> float:
        """Rayleigh resolution, nm."""
        return rayleigh_resolution_nm(self.outer_zone_width_nm)

    @property
    def focused_sigma_um(self) -> float:
        """Gaussian sigma of the spot in focus, um."""
        return spot_sigma_um(self.outer_zone_width_nm)

    def focal_length_um(self, energy_eV: float) -> float:
        """First-order focal length at ``energy_eV``, um."""
        return focal_length_um(energy_eV, self.diameter_um, self.outer_zone_width_nm)

    def depth_of_focus_um(self, energy_eV: float) -> float:
        """Half-width of the depth of focus at ``energy_eV``, um."""
        return depth_of_focus_um(energy_eV, self.outer_zone_width_nm)

    def numerical_aperture(self, energy_eV: float) -> float:
        """NA at ``energy_eV``."""
        return numerical_aperture(energy_eV, self.outer_zone_width_nm)

    def spot_sigma_um(self, defocus_um: ArrayLike, energy_eV: float) -> NDArray[np.float64]:
        """Gaussian sigma of the spot on the sample at a defocus, um (vectorised).

        The focused core (the Rayleigh resolution as FWHM) adds in quadrature to the
        geometric blur of the converging cone, an annulus of outer radius (D/2) |dz| / f and
        inner radius (central stop / 2) |dz| / f whose second moment per axis is
        (r_out^2 + r_in^2) / 4. At the depth of focus the spot is about 1.4 times the
        focused one; the central stop's side lobes are not modelled.

        Parameters
        ----------
        defocus_um
            Distance of the sample from the focus (either sign), um.
        energy_eV
            Photon energy.
        """
        dz = np.abs(np.asarray(defocus_um, dtype=float))
        f = self.focal_length_um(energy_eV)
        r_out = 0.5 * self.diameter_um * dz / f
        r_in = 0.5 * self.central_stop_um * dz / f
        return np.sqrt(self.focused_sigma_um**2 + 0.25 * (r_out**2 + r_in**2))

    def defocus_for_spot_um(self, spot_diameter_um: float, energy_eV: float) -> float:
        """Defocus that gives a geometric spot of ``spot_diameter_um`` at ``energy_eV``."""
        return defocus_for_spot_um(spot_diameter_um, energy_eV, self.outer_zone_width_nm)

    def a0_max_first_order_um(self, energy_eV: float, osa_diameter_um: float) -> float:
        """Largest A0 at which the whole first order passes an OSA: d_OSA * f / D, um."""
        return osa_diameter_um * self.focal_length_um(energy_eV) / self.diameter_um

    def a0_max_second_order_um(self, energy_eV: float, osa_diameter_um: float) -> float:
        """A0 below which the OSA blocks the second order: (f / 2)(1 - d_OSA / d_CS), um.

        The second order focuses at f / 2 and diverges again; its central-stop shadow must
        still be wider than the OSA hole at the OSA plane.
        """
        if self.central_stop_um <= 0:
            return 0.0
        f = self.focal_length_um(energy_eV)
        return 0.5 * f * (1.0 - osa_diameter_um / self.central_stop_um)

    def a0_max_um(self, energy_eV: float, osa_diameter_um: float) -> float:
        """Largest A0 that passes the whole first order and blocks the second, um."""
        return min(
            self.a0_max_first_order_um(energy_eV, osa_diameter_um),
            self.a0_max_second_order_um(energy_eV, osa_diameter_um),
        )
