"""Spectra from regions of interest of a stack (or of a point or line spectrum)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Spectrum", "roi_spectrum"]


@dataclass(frozen=True)
class Spectrum:
    """A spectrum: a value per energy with its Poisson error.

    Attributes
    ----------
    energies_eV
        (n,).
    rate_Hz, rate_error_Hz
        Mean count rate over the region per energy, and its error sqrt(N) / t.
    od, od_error
        -ln(rate / i0) and its error, when an I0 was given (else None).
    pixels
        Pixels in the region.
    """

    energies_eV: NDArray[np.float64]
    rate_Hz: NDArray[np.float64]
    rate_error_Hz: NDArray[np.float64]
    od: NDArray[np.float64] | None
    od_error: NDArray[np.float64] | None
    pixels: int


def _region_sums(
    counts: NDArray[np.float64], dwell: NDArray[np.float64], mask: NDArray[np.bool_]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    n = np.array([np.nansum(c[mask]) for c in counts])
    t = np.array(
        [
            np.nansum(np.where(np.isnan(c), np.nan, d)[mask])
            for c, d in zip(counts, dwell, strict=True)
        ]
    )
    return n, t


def roi_spectrum(
    energies_eV: ArrayLike,
    counts: ArrayLike,
    region: ArrayLike,
    *,
    dwell_s: ArrayLike = 1.0,
    i0_region: ArrayLike | None = None,
) -> Spectrum:
    """The spectrum of the pixels in ``region`` (and its OD against ``i0_region``).

    Parameters
    ----------
    energies_eV
        (n,) energies of the frames.
    counts
        (n, ny, nx) counts (a point spectrum is (n, 1, 1)).
    region, i0_region
        (ny, nx) boolean masks.
    dwell_s
        Counting time per pixel (scalar or the counts' shape).

    Raises
    ------
    ValueError
        For shapes that disagree or an empty region.
    """
    e = np.asarray(energies_eV, dtype=float)
    c = np.asarray(counts, dtype=float)
    if c.ndim != 3 or len(e) != len(c):
        raise ValueError(f"counts has shape {c.shape} for {len(e)} energies; give (n, ny, nx)")
    dwell = np.broadcast_to(np.asarray(dwell_s, dtype=float), c.shape)
    mask = np.asarray(region, dtype=bool)
    if mask.shape != c.shape[1:] or not mask.any():
        raise ValueError(f"region must be a non-empty mask of shape {c.shape[1:]}")
    n, t = _region_sums(c, dwell, mask)
    rate = n / t
    rate_err = np.sqrt(n) / t
    od = od_err = None
    if i0_region is not None:
        m0 = np.asarray(i0_region, dtype=bool)
        if m0.shape != c.shape[1:] or not m0.any():
            raise ValueError(f"i0_region must be a non-empty mask of shape {c.shape[1:]}")
        n0, t0 = _region_sums(c, dwell, m0)
        od = -np.log(rate / (n0 / t0))
        od_err = np.sqrt(1.0 / n + 1.0 / n0)
    return Spectrum(e, rate, rate_err, od, od_err, int(mask.sum()))
