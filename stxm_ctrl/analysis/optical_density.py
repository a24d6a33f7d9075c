"""Optical density OD = -ln(I / I0) with I0 from a region the scientist chooses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["OpticalDensity", "i0_mask", "optical_density"]


@dataclass(frozen=True)
class OpticalDensity:
    """OD per pixel with its Poisson error, on the frames' axes.

    Attributes
    ----------
    od
        -ln(I / I0), the shape of the counts given ((ny, nx) or (frames, ny, nx)).
    od_error
        One standard deviation from photon statistics: sqrt(1/I + 1/sum(I0 counts)).
    i0_rate_Hz
        The I0 rate of each frame (scalar or (frames,)).
    x_um, y_um
        The axes given (pixel centres), if any.
    """

    od: NDArray[np.float64]
    od_error: NDArray[np.float64]
    i0_rate_Hz: NDArray[np.float64]
    x_um: NDArray[np.float64] | None = None
    y_um: NDArray[np.float64] | None = None


def i0_mask(
    x_um: ArrayLike, y_um: ArrayLike, box_um: tuple[float, float, float, float]
) -> NDArray[np.bool_]:
    """(ny, nx) mask of the pixels inside ``box_um`` = (x0, x1, y0, y1), um.

    Raises
    ------
    ValueError
        If the box holds no pixel (names the image's extent).
    """
    x = np.asarray(x_um, dtype=float)
    y = np.asarray(y_um, dtype=float)
    x0, x1, y0, y1 = box_um
    mask = ((y[:, None] >= min(y0, y1)) & (y[:, None] <= max(y0, y1))) & (
        (x[None, :] >= min(x0, x1)) & (x[None, :] <= max(x0, x1))
    )
    if not mask.any():
        raise ValueError(
            f"i0 box {box_um} holds no pixel of the image (x {x.min():g} to {x.max():g} um, "
            f"y {y.min():g} to {y.max():g} um); choose a box of bare membrane inside it"
        )
    return mask


def optical_density(
    counts: ArrayLike,
    i0_region: ArrayLike,
    *,
    dwell_s: ArrayLike = 1.0,
    x_um: ArrayLike | None = None,
    y_um: ArrayLike | None = None,
) -> OpticalDensity:
    """OD of each pixel against the mean rate over ``i0_region`` of the same frame.

    Parameters
    ----------
    counts
        Counts, (ny, nx) or (frames, ny, nx); NaN pixels (never measured) stay NaN.
    i0_region
        Boolean (ny, nx) mask of the I0 pixels (bare membrane or open beam), e.g.
        :func:`i0_mask`.
    dwell_s
        Counting time of each pixel (a scalar, or the counts' shape for fly scans).
    x_um, y_um
        The axes, passed through.

    Raises
    ------
    ValueError
        If the mask's shape differs from the frames' or holds no measured pixel.
    """
    c = np.asarray(counts, dtype=float)
    mask = np.asarray(i0_region, dtype=bool)
    if mask.shape != c.shape[-2:]:
        raise ValueError(f"i0_region has shape {mask.shape}; the frames are {c.shape[-2:]}")
    dwell = np.broadcast_to(np.asarray(dwell_s, dtype=float), c.shape)
    frames = c.reshape(-1, *c.shape[-2:])
    dwells = dwell.reshape(frames.shape)
    i0_counts = np.array([np.nansum(f[mask]) for f in frames])
    i0_time = np.array(
        [
            np.nansum(np.where(np.isnan(f), np.nan, d)[mask])
            for f, d in zip(frames, dwells, strict=True)
        ]
    )
    if np.any(i0_time <= 0) or np.any(i0_counts <= 0):
        raise ValueError("i0_region holds no measured pixel with counts in some frame")
    i0_rate = i0_counts / i0_time
    rate = frames / dwells
    with np.errstate(divide="ignore", invalid="ignore"):
        od = -np.log(rate / i0_rate[:, None, None])
        error = np.sqrt(1.0 / frames + 1.0 / i0_counts[:, None, None])
    shape = c.shape
    return OpticalDensity(
        od=od.reshape(shape),
        od_error=error.reshape(shape),
        i0_rate_Hz=i0_rate if c.ndim == 3 else i0_rate[0],
        x_um=None if x_um is None else np.asarray(x_um, dtype=float),
        y_um=None if y_um is None else np.asarray(y_um, dtype=float),
    )
