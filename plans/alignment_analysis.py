"""Find centres and foci in alignment scans: pure functions on the measured arrays.

Each takes what a scan recorded (positions and counts) and returns what a scientist reads off
the picture: the centre of a bright disc (``detector_image``, ``osa_image``), the zone-plate
position where the focus "X" of an OSA scan crosses (``osa_focus``), the zone-plate position
where a sharp edge looks sharpest (``sample_focus``). The alignment plans call them on their
own data to move there; they work as well on a run read back from the catalog.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import erf

__all__ = [
    "AnalysisError",
    "EdgeFocus",
    "disc_center",
    "edge_width_um",
    "sample_focus_from_edges",
    "x_focus_from_osa_scan",
]


class AnalysisError(RuntimeError):
    """The data do not show what the analysis looks for; the message says what to change."""


def disc_center(
    x_um: ArrayLike, y_um: ArrayLike, counts: ArrayLike, *, level: float = 0.5
) -> tuple[float, float]:
    """Centre of the bright disc in an image: the centroid of the pixels above ``level``.

    The level is a fraction between the image's background (its 5th percentile) and its
    peak (99th percentile, so a single hot pixel does not set it); the centroid of the
    thresholded disc is not biased by faint structure around it (the zero-order ring of an
    OSA image) and is good to a fraction of a pixel for a disc many pixels wide.

    Parameters
    ----------
    x_um, y_um
        Pixel centres along x (columns) and y (rows).
    counts
        Image, shape (len(y_um), len(x_um)).
    level
        Threshold as a fraction of the way from background to peak.

    Raises
    ------
    AnalysisError
        If the image is flat or the disc touches the image's border (not all of it is in
        the picture: centre the scan on it or widen it).
    """
    image = np.asarray(counts, dtype=float)
    xs, ys = np.asarray(x_um, dtype=float), np.asarray(y_um, dtype=float)
    if image.shape != (ys.size, xs.size):
        raise AnalysisError(f"image shape {image.shape} does not match {ys.size} x {xs.size}")
    finite = np.isfinite(image)
    low, high = np.percentile(image[finite], [5, 99])
    if not high > low:
        raise AnalysisError("the image is flat: no disc to find (is the beam on the detector?)")
    bright = finite & (image >= low + level * (high - low))
    rows, cols = np.nonzero(bright)
    border = (rows == 0) | (rows == ys.size - 1) | (cols == 0) | (cols == xs.size - 1)
    if np.any(border) and (ys.size > 2 and xs.size > 2):
        raise AnalysisError(
            "the bright disc touches the edge of the image, so its centre cannot be found; "
            "centre the scan on it or widen the scan"
        )
    weights = image[rows, cols] - low
    return float(np.average(xs[cols], weights=weights)), float(
        np.average(ys[rows], weights=weights)
    )


def _edge_model(x: NDArray, low: float, step: float, x0: float, sigma: float) -> NDArray:
    return low + 0.5 * step * (1.0 + erf((x - x0) / (np.sqrt(2.0) * np.abs(sigma) + 1e-12)))


def edge_width_um(x_um: ArrayLike, counts: ArrayLike) -> tuple[float, float]:
    """Gaussian sigma and position of one edge in a line profile (an erf fit), um.

    Returns
    -------
    sigma_um, x0_um

    Raises
    ------
    AnalysisError
        If the profile has no edge (flat) or the fit fails.
    """
    x = np.asarray(x_um, dtype=float)
    y = np.asarray(counts, dtype=float)
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 5:
        raise AnalysisError("a line needs at least 5 measured points to fit an edge")
    left, right = np.median(y[: max(x.size // 5, 2)]), np.median(y[-max(x.size // 5, 2) :])
    if not abs(right - left) > 3.0 * np.sqrt(max(min(left, right), 1.0)):
        raise AnalysisError(
            "the line shows no edge above the counting noise; put the line across a sharp "
            "edge of the sample"
        )
    mid = 0.5 * (left + right)
    x0 = float(x[np.argmin(np.abs(y - mid))])
    span = float(x[-1] - x[0])
    try:
        with warnings.catch_warnings():
            # A line with little beyond the edge leaves the fit's covariance undetermined;
            # the fitted width is still what is asked for.
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(
                _edge_model, x, y, p0=(left, right - left, x0, span / 20.0), maxfev=5000
            )
    except (RuntimeError, ValueError) as exc:
        raise AnalysisError(f"the edge fit failed ({exc})") from None
    return float(abs(params[3])), float(params[2])


@dataclass(frozen=True)
class EdgeFocus:
    """Result of a focus scan across an edge.

    Attributes
    ----------
    focus_z_um
        ZP z where the edge is sharpest (the vertex of sigma^2 against z).
    sigma_at_focus_um
        Edge sigma there (the focused spot, if the edge is sharp).
    z_um, sigma_um
        The edge sigma fitted on each line.
    """

    focus_z_um: float
    sigma_at_focus_um: float
    z_um: NDArray[np.float64]
    sigma_um: NDArray[np.float64]


def _vertex(z: NDArray, value: NDArray) -> tuple[float, float]:
    """Vertex (z, value) of the parabola fitted to value(z)."""
    a, b, c = np.polyfit(z, value, 2)
    if not a > 0:
        raise AnalysisError(
            "the scan does not pass through a focus (the width has no minimum inside it); "
            "centre the ZP z range on the focus or widen it"
        )
    z0 = -b / (2 * a)
    return float(z0), float(c - b * b / (4 * a))


def sample_focus_from_edges(z_um: ArrayLike, line_um: ArrayLike, counts: ArrayLike) -> EdgeFocus:
    """Where the zone plate focuses on the sample, from lines across an edge at several ZP z.

    The spot's variance grows quadratically with defocus (sigma^2 = sigma0^2 + k^2 dz^2,
    :meth:`stxm_ctrl.physics.zone_plate.ZonePlate.spot_sigma_um`), so the fitted edge
    sigma^2 against ZP z is a parabola whose vertex is the focus. Lines whose edge fit fails
    (noise only), or whose edge is wider than a quarter of the line, are left out.

    Parameters
    ----------
    z_um
        ZP z of each line.
    line_um
        Positions along the line.
    counts
        Shape (len(z_um), len(line_um)).

    Raises
    ------
    AnalysisError
        If fewer than 3 lines show an edge, or the widths have no minimum in the scan.
    """
    z = np.asarray(z_um, dtype=float)
    line = np.asarray(line_um, dtype=float)
    image = np.asarray(counts, dtype=float)
    sigmas = np.full(z.size, np.nan)
    for i, row in enumerate(image):
        try:
            sigmas[i] = edge_width_um(line, row)[0]
        except AnalysisError:
            continue
    # An edge wider than a quarter of the line is not measured by it (the fit has no
    # plateaus to hold on to): such lines are left out.
    sigmas[sigmas > (line.max() - line.min()) / 4.0] = np.nan
    ok = np.isfinite(sigmas)
    if ok.sum() < 3:
        raise AnalysisError(
            "fewer than 3 lines show the edge sharply enough to measure; put the line across "
            "a sharp edge of the sample, lengthen it, or centre the ZP z range on the focus"
        )
    z0, variance = _vertex(z[ok], sigmas[ok] ** 2)
    if not z[ok].min() <= z0 <= z[ok].max():
        raise AnalysisError(
            f"the sharpest edge would be at ZP z = {z0:.1f} um, outside the scan "
            f"({z[ok].min():.1f} to {z[ok].max():.1f} um); centre the scan there and repeat"
        )
    return EdgeFocus(z0, float(np.sqrt(max(variance, 0.0))), z, sigmas)


def x_focus_from_osa_scan(z_um: ArrayLike, s_um: ArrayLike, counts: ArrayLike) -> float:
    """ZP z at which the first-order focus lies in the OSA plane: where the "X" crosses.

    Scanning the OSA across the beam at each ZP z, the converging cone at the OSA plane is
    an annulus whose size grows linearly with the distance of the focus from that plane:
    the light through the hole spreads into two arms, an "X" whose crossing is the focus.
    The zero order, which does not depend on ZP z, is removed as each column's minimum over
    the scan; the second moment of each line's first-order light about its centroid then
    grows as (z - z0)^2, and the vertex of a parabola through it is z0.

    Raises
    ------
    AnalysisError
        If the crossing is not inside the scan.
    """
    z = np.asarray(z_um, dtype=float)
    s = np.asarray(s_um, dtype=float)
    image = np.nan_to_num(np.asarray(counts, dtype=float))
    first = image - image.min(axis=0, keepdims=True)
    totals = first.sum(axis=1)
    ok = totals > 0
    if ok.sum() < 3:
        raise AnalysisError("no first-order light in the scan; is the OSA across the beam?")
    centroid = (first[ok] * s).sum(axis=1) / totals[ok]
    second = (first[ok] * (s[None, :] - centroid[:, None]) ** 2).sum(axis=1) / totals[ok]
    z0, _ = _vertex(z[ok], second)
    if not z.min() <= z0 <= z.max():
        raise AnalysisError(
            f"the X would cross at ZP z = {z0:.1f} um, outside the scan ({z.min():.1f} to "
            f"{z.max():.1f} um); centre the scan there and repeat"
        )
    return z0
