"""Optical density of the simulated test sample: a resolution pattern on a SiN window.

The pattern is analytic (rectangles and discs), convolved in closed form with the Gaussian
focused spot, so the simulator can evaluate OD at any beam position and the tests can
compute the exact ground truth of any scan. Coordinates are sample-stage positions in um.

Layout, relative to the sample centre (x to the right, y up, as the stage axes):

- top band: three groups of five vertical lines, widths 0.8, 0.5 and 0.3 um (line = gap);
- middle band: three groups of five horizontal lines, widths 0.6, 0.4 and 0.25 um;
- bottom left: three rows of five dots, diameters 1.2, 0.8 and 0.5 um;
- bottom right: a 4.5 um square with a 1.5 um square hole;
- top right: an L-shaped orientation marker, so a mirrored or transposed image is
  visibly wrong.

Everything lies within +-11 um of the centre.

The window (``window_size_um`` square) has ``membrane_od``; outside it the silicon frame has
``frame_od``; features add ``feature_od`` on top of the membrane. Beyond the chip
(``chip_size_um`` square, centred on the pattern) there is no sample at all: OD 0, the open
beam that OSA and detector alignment scans look through.

The analytic evaluation skips (*culls*) every shape whose bounds lie more than
:data:`CULL_SIGMAS` spot sigmas from every position asked for: its coverage there is below
1e-9, and a spot blurred by defocus over a small area then costs a few shapes, not all.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import erf

if TYPE_CHECKING:
    from stxm_ctrl.config import SampleConfig

__all__ = ["CULL_SIGMAS", "Disc", "FeatureMap", "Rect", "ResolutionPattern"]

_SQRT2 = np.sqrt(2.0)

CULL_SIGMAS = 6.0
"""Shapes further than this many spot sigmas from every position are not evaluated."""


@dataclass(frozen=True)
class Rect:
    """Axis-aligned rectangle [x0, x1] x [y0, y1] in um."""

    x0: float
    x1: float
    y0: float
    y1: float

    def coverage(self, x: NDArray, y: NDArray, sigma_um: float) -> NDArray:
        """Fraction of a Gaussian spot (sigma) centred at (x, y) that falls inside."""
        return _edge(x, self.x0, self.x1, sigma_um) * _edge(y, self.y0, self.y1, sigma_um)

    def bounds(self) -> tuple[float, float, float, float]:
        """(x0, x1, y0, y1) of the shape."""
        return self.x0, self.x1, self.y0, self.y1


@dataclass(frozen=True)
class Disc:
    """Disc of radius ``r`` centred at (cx, cy), um."""

    cx: float
    cy: float
    r: float

    def coverage(self, x: NDArray, y: NDArray, sigma_um: float) -> NDArray:
        """Fraction of a Gaussian spot centred at (x, y) inside (radial-edge approximation)."""
        radius = np.hypot(x - self.cx, y - self.cy)
        return 0.5 * (1.0 - erf((radius - self.r) / (_SQRT2 * max(sigma_um, 1e-6))))

    def bounds(self) -> tuple[float, float, float, float]:
        """(x0, x1, y0, y1) of the shape."""
        return self.cx - self.r, self.cx + self.r, self.cy - self.r, self.cy + self.r


def _edge(u: NDArray, u0: float, u1: float, sigma_um: float) -> NDArray:
    s = _SQRT2 * max(sigma_um, 1e-6)
    return 0.5 * (erf((u - u0) / s) - erf((u - u1) / s))


def _line_group(x0: float, y0: float, width: float, length: float, vertical: bool) -> list[Rect]:
    rects = []
    for i in range(5):
        start = (x0 if vertical else y0) + 2 * i * width
        if vertical:
            rects.append(Rect(start, start + width, y0, y0 + length))
        else:
            rects.append(Rect(x0, x0 + length, start, start + width))
    return rects


@dataclass(frozen=True)
class ResolutionPattern:
    """The resolution test pattern, positioned and with its ODs.

    Parameters
    ----------
    center_x_um, center_y_um
        Stage position of the pattern centre.
    window_size_um
        Side of the square membrane window.
    membrane_od, feature_od, frame_od
        Optical densities of the membrane, of each feature (on top of the membrane) and of
        the frame outside the window.
    chip_size_um
        Side of the square chip; beyond it the OD is 0 (no sample). Infinite: no edge.
    """

    center_x_um: float
    center_y_um: float
    window_size_um: float
    membrane_od: float
    feature_od: float
    frame_od: float
    chip_size_um: float = float("inf")

    @classmethod
    def from_config(cls, sample: SampleConfig) -> ResolutionPattern:
        """Build from a :class:`stxm_ctrl.config.SampleConfig`."""
        return cls(
            center_x_um=sample.center_x_um,
            center_y_um=sample.center_y_um,
            window_size_um=sample.window_size_um,
            membrane_od=sample.membrane_od,
            feature_od=sample.feature_od,
            frame_od=sample.frame_od,
            chip_size_um=sample.chip_size_um,
        )

    @cached_property
    def _shapes(self) -> tuple[list[Rect | Disc], NDArray[np.float64]]:
        """The features and their bounds (n x 4: x0, x1, y0, y1), made once."""
        shapes = self.features()
        return shapes, np.array([shape.bounds() for shape in shapes])

    def shapes_near(self, x_um: NDArray, y_um: NDArray, reach_um: float) -> list[Rect | Disc]:
        """Features whose bounds come within ``reach_um`` of any position (pattern frame)."""
        shapes, bounds = self._shapes
        if x_um.size == 0:
            return []
        x_low, x_high = float(x_um.min()) - reach_um, float(x_um.max()) + reach_um
        y_low, y_high = float(y_um.min()) - reach_um, float(y_um.max()) + reach_um
        near = (
            (bounds[:, 1] >= x_low)
            & (bounds[:, 0] <= x_high)
            & (bounds[:, 3] >= y_low)
            & (bounds[:, 2] <= y_high)
        )
        if x_um.size > 1 and near.any():
            # Per position: a shape must come within reach of at least one of them.
            idx = np.flatnonzero(near)
            b = bounds[idx]
            px, py = x_um.ravel()[:, None], y_um.ravel()[:, None]
            dx = np.maximum(np.maximum(b[None, :, 0] - px, px - b[None, :, 1]), 0.0)
            dy = np.maximum(np.maximum(b[None, :, 2] - py, py - b[None, :, 3]), 0.0)
            close = ((dx <= reach_um) & (dy <= reach_um)).any(axis=0)
            return [shapes[i] for i in idx[close]]
        return [shapes[i] for i in np.flatnonzero(near)]

    def chip_coverage(self, x_um: NDArray, y_um: NDArray, sigma_um: float) -> NDArray:
        """Fraction of a spot (pattern frame) that falls on the chip (1 without a chip edge)."""
        if not np.isfinite(self.chip_size_um):
            return np.ones(np.shape(x_um))
        half = self.chip_size_um / 2.0
        return Rect(-half, half, -half, half).coverage(x_um, y_um, sigma_um)

    def features(self) -> list[Rect | Disc]:
        """Primitives of the pattern in pattern coordinates (centre at 0, 0)."""
        shapes: list[Rect | Disc] = []
        # Top band: vertical line groups.
        x = -8.0
        for width in (0.8, 0.5, 0.3):
            shapes += _line_group(x, 5.5, width, 4.0, vertical=True)
            x += 9 * width + 0.8
        # Middle band: horizontal line groups, bottom-aligned at y = -1.
        x = -8.0
        for width in (0.6, 0.4, 0.25):
            shapes += _line_group(x, -1.0, width, 4.0, vertical=False)
            x += 5.0
        # Bottom left: rows of dots.
        y = -3.5
        for diameter in (1.2, 0.8, 0.5):
            for i in range(5):
                shapes.append(Disc(-8.0 + i * 2.0 * diameter, y, diameter / 2.0))
            y -= 1.5 * diameter + 0.9
        # Bottom right: a square with a square hole, as four rectangles around the hole.
        sx0, sx1, sy0, sy1 = 2.5, 7.0, -8.5, -4.0
        hx0, hx1, hy0, hy1 = 4.0, 5.5, -7.0, -5.5
        shapes += [
            Rect(sx0, sx1, hy1, sy1),
            Rect(sx0, sx1, sy0, hy0),
            Rect(sx0, hx0, hy0, hy1),
            Rect(hx1, sx1, hy0, hy1),
        ]
        # Top right: an L-shaped orientation marker.
        shapes += [Rect(9.0, 9.6, 5.5, 9.5), Rect(9.0, 10.8, 5.5, 6.1)]
        return shapes

    def optical_density(
        self, x_um: ArrayLike, y_um: ArrayLike, spot_sigma_um: float = 0.013
    ) -> NDArray[np.float64]:
        """OD seen by a Gaussian spot centred at stage position(s) (x_um, y_um).

        Parameters
        ----------
        x_um, y_um
            Beam positions on the sample (broadcast together).
        spot_sigma_um
            Gaussian sigma of the focused spot.

        Returns
        -------
        ndarray
            OD with the broadcast shape of the inputs.
        """
        x = np.asarray(x_um, dtype=float) - self.center_x_um
        y = np.asarray(y_um, dtype=float) - self.center_y_um
        x, y = np.broadcast_arrays(x, y)
        half = self.window_size_um / 2.0
        in_window = Rect(-half, half, -half, half).coverage(x, y, spot_sigma_um)
        features = np.zeros(x.shape)
        for shape in self.shapes_near(x, y, CULL_SIGMAS * spot_sigma_um):
            features += shape.coverage(x, y, spot_sigma_um)
        np.clip(features, 0.0, 1.0, out=features)
        window_od = self.membrane_od + self.feature_od * features
        od = in_window * window_od + (1.0 - in_window) * self.frame_od
        return od * self.chip_coverage(x, y, spot_sigma_um)


class FeatureMap:
    """The pattern's features rasterised once, for fast look-ups by the simulator.

    Evaluating every analytic shape costs ~0.4 ms per beam position; the simulated counter
    needs positions in microseconds. This samples the spot-convolved feature coverage on a
    grid (``pixel_um``, default 5 nm: well below the ~13 nm spot sigma, so bilinear
    interpolation is accurate to ~1e-3 in OD) and adds the window and the chip edge
    analytically. A wide spot (the zero order behind the OSA) takes a coarser grid: a tenth
    of its sigma is as accurate.

    Parameters
    ----------
    pattern
        The pattern to rasterise.
    spot_sigma_um
        Gaussian sigma of the focused spot.
    pixel_um
        Grid spacing.
    """

    def __init__(
        self, pattern: ResolutionPattern, spot_sigma_um: float, pixel_um: float = 0.005
    ) -> None:
        self.pattern = pattern
        self.spot_sigma_um = spot_sigma_um
        self.pixel_um = pixel_um
        shapes = pattern.features()
        margin = 6 * spot_sigma_um + 2 * pixel_um
        bounds = np.array([shape.bounds() for shape in shapes])
        self.x0 = bounds[:, 0].min() - margin
        self.y0 = bounds[:, 2].min() - margin
        nx = int(np.ceil((bounds[:, 1].max() + margin - self.x0) / pixel_um)) + 1
        ny = int(np.ceil((bounds[:, 3].max() + margin - self.y0) / pixel_um)) + 1
        grid = np.zeros((ny, nx), dtype=np.float32)
        for shape, (sx0, sx1, sy0, sy1) in zip(shapes, bounds, strict=True):
            i0, i1 = self._index_range(sx0 - margin, sx1 + margin, self.x0, nx)
            j0, j1 = self._index_range(sy0 - margin, sy1 + margin, self.y0, ny)
            xs = self.x0 + pixel_um * np.arange(i0, i1)
            ys = self.y0 + pixel_um * np.arange(j0, j1)
            if isinstance(shape, Rect):
                block = np.outer(
                    _edge(ys, shape.y0, shape.y1, spot_sigma_um),
                    _edge(xs, shape.x0, shape.x1, spot_sigma_um),
                )
            else:
                block = shape.coverage(xs[None, :], ys[:, None], spot_sigma_um)
            grid[j0:j1, i0:i1] += block.astype(np.float32)
        np.clip(grid, 0.0, 1.0, out=grid)
        self.coverage_grid = grid

    def _index_range(self, low: float, high: float, origin: float, n: int) -> tuple[int, int]:
        start = max(int(np.floor((low - origin) / self.pixel_um)), 0)
        stop = min(int(np.ceil((high - origin) / self.pixel_um)) + 1, n)
        return start, stop

    def optical_density(self, x_um: ArrayLike, y_um: ArrayLike) -> NDArray[np.float64]:
        """OD at stage position(s) (x_um, y_um), as :meth:`ResolutionPattern.optical_density`."""
        p = self.pattern
        x = np.asarray(x_um, dtype=float) - p.center_x_um
        y = np.asarray(y_um, dtype=float) - p.center_y_um
        x, y = np.broadcast_arrays(x, y)
        fx = (x - self.x0) / self.pixel_um
        fy = (y - self.y0) / self.pixel_um
        ny, nx = self.coverage_grid.shape
        inside = (fx >= 0) & (fx < nx - 1) & (fy >= 0) & (fy < ny - 1)
        features = np.zeros(x.shape)
        if inside.any():
            i = np.floor(fx[inside]).astype(int)
            j = np.floor(fy[inside]).astype(int)
            tx, ty = fx[inside] - i, fy[inside] - j
            g = self.coverage_grid
            features[inside] = (
                g[j, i] * (1 - tx) * (1 - ty)
                + g[j, i + 1] * tx * (1 - ty)
                + g[j + 1, i] * (1 - tx) * ty
                + g[j + 1, i + 1] * tx * ty
            )
        half = p.window_size_um / 2.0
        in_window = Rect(-half, half, -half, half).coverage(x, y, self.spot_sigma_um)
        window_od = p.membrane_od + p.feature_od * features
        od = in_window * window_od + (1.0 - in_window) * p.frame_od
        return od * p.chip_coverage(x, y, self.spot_sigma_um)
