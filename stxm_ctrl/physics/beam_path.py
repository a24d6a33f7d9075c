"""Where the light goes between the zone plate and the detector: OSA, sample, detector.

The geometry (distances upstream of the sample, lateral positions in the lab frame, x and y
across the beam, um):

- The illumination is a broad parallel beam; the zone plate (diameter D, central stop
  d_CS) sits ``zp_distance_um`` upstream of the sample at lateral ``zp_xy``. Its first order
  converges to a focus f(E) downstream of it; its zero order goes straight on as a parallel
  annulus (radii d_CS/2 to D/2) around the plate's axis.
- The order-sorting aperture (a hole of diameter d_OSA in a plate) sits ``a0_um`` upstream
  of the sample (A0) at lateral ``osa_xy``. Beyond ``osa_plate_half_width_um`` from the
  plate's axis the OSA is out of the beam and blocks nothing.
- The sample is at distance 0; the detector (an APD of active diameter ``detector_diameter_um``)
  ``detector_distance_um`` downstream at lateral ``detector_xy``.

Each fraction is the area of a uniform annulus or disc of light that falls inside an
aperture (circle-overlap areas, exact for uniform illumination). The simulated counter adds
the first-order spot on the sample (blurred by defocus, :meth:`ZonePlate.spot_sigma_um`) and
the zero order that gets past the OSA (a wide patch, a blurred background) with these
fractions; the tests compute the same numbers to check the counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stxm_ctrl.physics.zone_plate import ZonePlate

__all__ = [
    "BeamPath",
    "OpticsPositions",
    "annulus_fraction_in_disc",
    "circle_overlap_area_um2",
]


def circle_overlap_area_um2(r1_um: ArrayLike, r2_um: ArrayLike, distance_um: ArrayLike) -> NDArray:
    """Area shared by two discs of radii r1, r2 whose centres are ``distance_um`` apart.

    Vectorised; a radius of 0 gives 0.
    """
    r1 = np.asarray(r1_um, dtype=float)
    r2 = np.asarray(r2_um, dtype=float)
    d = np.abs(np.asarray(distance_um, dtype=float))
    r1, r2, d = np.broadcast_arrays(r1, r2, d)
    small = np.minimum(r1, r2)
    area = np.where(d <= np.abs(r1 - r2), np.pi * small**2, 0.0)
    partial = (d < r1 + r2) & (d > np.abs(r1 - r2))
    if np.any(partial):
        a, b, c = r1[partial], r2[partial], d[partial]
        alpha = np.arccos(np.clip((c**2 + a**2 - b**2) / (2 * c * a), -1.0, 1.0))
        beta = np.arccos(np.clip((c**2 + b**2 - a**2) / (2 * c * b), -1.0, 1.0))
        kite = 0.5 * np.sqrt(
            np.clip((-c + a + b) * (c + a - b) * (c - a + b) * (c + a + b), 0.0, None)
        )
        area = area.copy()
        area[partial] = a**2 * alpha + b**2 * beta - kite
    return area


def annulus_fraction_in_disc(
    r_inner_um: ArrayLike, r_outer_um: ArrayLike, disc_radius_um: float, offset_um: ArrayLike
) -> NDArray:
    """Fraction of a uniformly lit annulus that falls inside a disc ``offset_um`` off its centre.

    A zero-width annulus (a point: both radii 0) counts as inside when the offset is within
    the disc.
    """
    r_in = np.asarray(r_inner_um, dtype=float)
    r_out = np.asarray(r_outer_um, dtype=float)
    offset = np.abs(np.asarray(offset_um, dtype=float))
    lit = np.pi * (r_out**2 - r_in**2)
    inside = circle_overlap_area_um2(r_out, disc_radius_um, offset) - circle_overlap_area_um2(
        r_in, disc_radius_um, offset
    )
    point = np.asarray(offset <= disc_radius_um, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(lit > 1e-12, inside / np.where(lit > 1e-12, lit, 1.0), point)
    return np.clip(fraction, 0.0, 1.0)


@dataclass(frozen=True)
class OpticsPositions:
    """Where the optics are at one instant (physical coordinates, see the module docstring).

    Attributes
    ----------
    energy_eV
        Photon energy.
    zp_distance_um
        Zone plate upstream of the sample.
    a0_um
        OSA (downstream face) upstream of the sample.
    zp_x_um, zp_y_um, osa_x_um, osa_y_um, detector_x_um, detector_y_um
        Lateral positions of the zone plate, OSA and detector.
    """

    energy_eV: float
    zp_distance_um: float
    a0_um: float
    zp_x_um: float = 0.0
    zp_y_um: float = 0.0
    osa_x_um: float = 0.0
    osa_y_um: float = 0.0
    detector_x_um: float = 0.0
    detector_y_um: float = 0.0


@dataclass(frozen=True)
class BeamPath:
    """The optical path of the microscope: zone plate, OSA and detector, and their efficiencies.

    Parameters
    ----------
    zone_plate
        The zone plate in the beam.
    osa_diameter_um
        Hole of the OSA in the beam.
    osa_plate_half_width_um
        Beyond this lateral distance of the OSA from the plate's axis the OSA is out of the
        beam (nothing blocked).
    first_order_efficiency, zero_order_efficiency
        Fractions of the light on the plate's open area that go into the first-order focus
        and straight on (zero order).
    detector_diameter_um, detector_distance_um
        Active area of the APD and its distance downstream of the sample.
    """

    zone_plate: ZonePlate
    osa_diameter_um: float
    osa_plate_half_width_um: float = 1000.0
    first_order_efficiency: float = 0.1
    zero_order_efficiency: float = 0.25
    detector_diameter_um: float = 1000.0
    detector_distance_um: float = 5000.0

    def defocus_um(self, at: OpticsPositions) -> float:
        """Distance of the focus upstream of the sample, um.

        Positive: the zone plate is further from the sample than its focal length, so the
        focus lies upstream of the sample; negative: the focus lies downstream of it.
        """
        return at.zp_distance_um - self.zone_plate.focal_length_um(at.energy_eV)

    def spot_sigma_um(self, at: OpticsPositions) -> float:
        """Gaussian sigma of the first-order spot on the sample, um."""
        return float(self.zone_plate.spot_sigma_um(self.defocus_um(at), at.energy_eV))

    def _osa_offset_um(self, at: OpticsPositions) -> float:
        return float(np.hypot(at.osa_x_um - at.zp_x_um, at.osa_y_um - at.zp_y_um))

    def osa_in_beam(self, at: OpticsPositions) -> bool:
        """True when the OSA plate is across the beam (its hole or its plate)."""
        return self._osa_offset_um(at) < self.osa_plate_half_width_um

    def first_order_through_osa(self, at: OpticsPositions) -> float:
        """Fraction of the first order that passes the OSA (1: none clipped).

        At the OSA plane the converging cone is an annulus centred on the plate's axis with
        radii (d_CS/2, D/2) x |distance from the OSA to the focus| / f.
        """
        if not self.osa_in_beam(at):
            return 1.0
        zp = self.zone_plate
        f = zp.focal_length_um(at.energy_eV)
        to_focus = abs(f - (at.zp_distance_um - at.a0_um))
        scale = to_focus / f
        return float(
            annulus_fraction_in_disc(
                0.5 * zp.central_stop_um * scale,
                0.5 * zp.diameter_um * scale,
                0.5 * self.osa_diameter_um,
                self._osa_offset_um(at),
            )
        )

    def zero_order_through_osa(self, at: OpticsPositions) -> float:
        """Fraction of the zero order (the parallel annulus behind the plate) past the OSA."""
        if not self.osa_in_beam(at):
            return 1.0
        zp = self.zone_plate
        return float(
            annulus_fraction_in_disc(
                0.5 * zp.central_stop_um,
                0.5 * zp.diameter_um,
                0.5 * self.osa_diameter_um,
                self._osa_offset_um(at),
            )
        )

    def zero_order_patch(self, at: OpticsPositions) -> tuple[float, float, float]:
        """Where the zero order lands on the sample: lab (x, y) of its centre and its sigma, um.

        With the OSA in, the light that leaks is what passes the hole: a patch the size of the
        hole where the hole is. With the OSA out, the whole annulus behind the plate.
        """
        zp = self.zone_plate
        if self.osa_in_beam(at):
            return at.osa_x_um, at.osa_y_um, 0.25 * self.osa_diameter_um
        r_out, r_in = 0.5 * zp.diameter_um, 0.5 * zp.central_stop_um
        return at.zp_x_um, at.zp_y_um, 0.5 * float(np.sqrt(r_out**2 + r_in**2))

    def detector_first_order(self, at: OpticsPositions) -> float:
        """Fraction of the first order (diverging from the focus) the APD's active area catches.

        The focus lies ``defocus_um`` upstream of the sample, the detector
        ``detector_distance_um`` downstream of it: the cone has spread over their sum.
        """
        zp = self.zone_plate
        f = zp.focal_length_um(at.energy_eV)
        scale = abs(self.detector_distance_um + self.defocus_um(at)) / f
        offset = np.hypot(at.detector_x_um - at.zp_x_um, at.detector_y_um - at.zp_y_um)
        return float(
            annulus_fraction_in_disc(
                0.5 * zp.central_stop_um * scale,
                0.5 * zp.diameter_um * scale,
                0.5 * self.detector_diameter_um,
                offset,
            )
        )

    def detector_zero_order(self, at: OpticsPositions) -> float:
        """Fraction of the zero order that passed the OSA and reaches the APD's active area."""
        zp = self.zone_plate
        radius = 0.5 * self.detector_diameter_um
        if self.osa_in_beam(at):
            hole = 0.5 * self.osa_diameter_um
            offset = np.hypot(at.detector_x_um - at.osa_x_um, at.detector_y_um - at.osa_y_um)
            return float(annulus_fraction_in_disc(0.0, hole, radius, offset))
        offset = np.hypot(at.detector_x_um - at.zp_x_um, at.detector_y_um - at.zp_y_um)
        return float(
            annulus_fraction_in_disc(
                0.5 * zp.central_stop_um, 0.5 * zp.diameter_um, radius, offset
            )
        )

    def weights(self, at: OpticsPositions) -> tuple[float, float]:
        """(first, zero): photons reaching the APD per photon on the plate's open area.

        Multiply by the illumination and by the sample's transmission at the spot (first) and
        at the zero-order patch (zero) to get the rates.
        """
        first = (
            self.first_order_efficiency
            * self.first_order_through_osa(at)
            * self.detector_first_order(at)
        )
        zero = (
            self.zero_order_efficiency
            * self.zero_order_through_osa(at)
            * self.detector_zero_order(at)
        )
        return first, zero
