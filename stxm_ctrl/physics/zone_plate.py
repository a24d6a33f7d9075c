"""Fresnel zone plate optics (X-ray Data Booklet, section 4.4)."""

from __future__ import annotations

__all__ = [
    "HC_EV_NM",
    "focal_length_um",
    "rayleigh_resolution_nm",
    "spot_sigma_um",
    "wavelength_nm",
]

HC_EV_NM = 1239.84
"""h * c in eV nm: lambda[nm] = 1239.84 / E[eV]."""


def wavelength_nm(energy_eV: float) -> float:
    """Photon wavelength in nm."""
    return HC_EV_NM / energy_eV


def focal_length_um(energy_eV: float, diameter_um: float, outer_zone_width_nm: float) -> float:
    """First-order focal length f = D * drN / lambda, in um (linear in energy)."""
    return diameter_um * outer_zone_width_nm / wavelength_nm(energy_eV)


def rayleigh_resolution_nm(outer_zone_width_nm: float) -> float:
    """Rayleigh resolution 1.22 * drN, in nm."""
    return 1.22 * outer_zone_width_nm


def spot_sigma_um(outer_zone_width_nm: float) -> float:
    """Gaussian sigma of the focused spot, taking the Rayleigh resolution as its FWHM."""
    fwhm_um = rayleigh_resolution_nm(outer_zone_width_nm) / 1000.0
    return fwhm_um / 2.3548200450309493
