"""The whole simulated microscope as one pure model: photons at the APD for any state.

:class:`InstrumentModel` is the ground truth of the simulated beamline. The APD IOC draws its
Poisson counts from it and the tests compute what an image, a focus scan or an OSA scan
should show from it; both build it from the same :class:`~stxm_ctrl.config.BeamlineConfig`.
The rate is the one of ``docs/decisions/0007-optics.md``: the ring's flux through the EPU
(:meth:`Undulator.relative_flux`), split by :meth:`BeamPath.weights` into the first order
(the zone plate's spot, blurred by defocus, :meth:`ZonePlate.spot_sigma_um`) and the zero
order that gets past the OSA (:meth:`BeamPath.zero_order_patch`), each through the sample's
optical density (:mod:`stxm_ctrl.physics.sample`), then quantum efficiency, dark counts and
dead time (:func:`stxm_ctrl.physics.detector.detected_rate_Hz`). Motor readings map to true
distances as 0007 says (``z_sign * reading - sample_z_offset_um``; lateral readings less the
OSA's and detector's centres). The formula term by term, with the figures it gives:
``docs/reference/sim-iocs.md``, section "APD counter IOC"; the optics it models:
``docs/explanation/optics.md``.

Speed: the simulated counter evaluates a gate (three instants) per count. The optics terms
(weights, spot size, patch, EPU flux) depend only on the optics, so they are cached per
optics state, with the optics' coordinates rounded to 0.1 nm and 0.1 meV (far below
anything that changes a rate). The sample's OD under the in-focus spot and under the
zero-order patch comes from grids rasterised once (:class:`FeatureMap`, built on first use
when ``feature_maps`` is true); a defocused spot is evaluated analytically, skipping every
shape more than six sigmas from the spot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stxm_ctrl.physics.beam_path import BeamPath, OpticsPositions
from stxm_ctrl.physics.detector import detected_rate_Hz
from stxm_ctrl.physics.interlocks import OpticsGeometry
from stxm_ctrl.physics.magnetic_samples import MagneticSample, magnetic_sample
from stxm_ctrl.physics.sample import FeatureMap, ResolutionPattern
from stxm_ctrl.physics.undulator import POLARIZATIONS, Undulator
from stxm_ctrl.physics.zone_plate import ZonePlate

if TYPE_CHECKING:
    from stxm_ctrl.config import BeamlineConfig

__all__ = ["OPTICS_AXES", "InstrumentModel", "OpticsTerms"]

OPTICS_AXES = (
    "zp_x",
    "zp_y",
    "zp_z",
    "osa_x",
    "osa_y",
    "osa_z",
    "detector_x",
    "detector_y",
)
"""The optics' motor axes, as ``[epics.axes]`` and ``[sim.stages]`` name them."""

_IN_FOCUS_TOLERANCE = 0.01  # a spot within 1 % of the focused sigma uses the focused grid
_ROUND_DIGITS = 4  # optics coordinates rounded to 1e-4 um, eV and mm for the cache
_PATCH_PIXELS_PER_SIGMA = 10.0


@dataclass(frozen=True)
class OpticsTerms:
    """What the optics contribute to the rate, for one state of the optics.

    Attributes
    ----------
    first_weight, zero_weight
        (w1, w0) of :meth:`BeamPath.weights`.
    spot_sigma_um
        Sigma of the first-order spot on the sample.
    patch_x_um, patch_y_um, patch_sigma_um
        Where the zero order lands (lab frame) and its sigma.
    relative_flux
        EPU flux relative to a tuned gap.
    od_scale
        (E / E_ref) ** -absorption_exponent.
    """

    first_weight: float
    zero_weight: float
    spot_sigma_um: float
    patch_x_um: float
    patch_y_um: float
    patch_sigma_um: float
    relative_flux: float
    od_scale: float


class InstrumentModel:
    """The simulated microscope's rate model (see the module docstring).

    Parameters
    ----------
    config
        The beamline configuration: ``[optics]`` (zone plate, OSA, interlocks, z sign),
        ``[sim.optics]``, ``[sim.beamline]``, ``[sim.beam]``, ``[sim.apd]``, ``[sim.sample]``.
    feature_maps
        Look the in-focus spot and the zero-order patch up in rasterised grids (fast, to
        ~1e-3 in OD; the simulator) rather than evaluating every shape (exact; the tests).
    """

    def __init__(self, config: BeamlineConfig, *, feature_maps: bool = True) -> None:
        optics, sim = config.optics, config.sim
        spec = optics.selected_zone_plate
        self.zone_plate = ZonePlate(
            diameter_um=spec.diameter_um,
            outer_zone_width_nm=spec.outer_zone_width_nm,
            central_stop_um=spec.central_stop_um,
        )
        self.beam_path = BeamPath(
            self.zone_plate,
            osa_diameter_um=optics.selected_osa.diameter_um,
            osa_plate_half_width_um=sim.optics.osa_plate_half_width_um,
            first_order_efficiency=spec.first_order_efficiency,
            zero_order_efficiency=spec.zero_order_efficiency,
            detector_diameter_um=sim.apd.active_diameter_um,
            detector_distance_um=sim.apd.distance_um,
        )
        self.geometry = OpticsGeometry(
            self.zone_plate,
            osa_diameter_um=optics.selected_osa.diameter_um,
            min_zp_osa_gap_um=optics.min_zp_osa_gap_um,
            min_a0_um=optics.min_a0_um,
            z_sign=optics.z_sign,
        )
        beamline = sim.beamline
        self.undulator = Undulator(
            electron_energy_GeV=beamline.electron_energy_GeV,
            period_mm=beamline.epu_period_mm,
            peak_field_T=beamline.epu_peak_field_T,
            periods=beamline.epu_periods,
            min_gap_mm=beamline.epu_min_gap_mm,
            max_gap_mm=beamline.epu_max_gap_mm,
        )
        self.pattern = ResolutionPattern.from_config(sim.sample)
        self.magnetic_samples: tuple[MagneticSample, ...] = tuple(
            magnetic_sample(
                name, spec, sim.sample.reference_energy_eV, sim.sample.absorption_exponent
            )
            for name, spec in sim.magnetic_samples.items()
        )
        self.circular_degree = beamline.circular_polarization_degree
        self.positive_helicity_polarization = beamline.positive_helicity_polarization
        self.z_sign = optics.z_sign
        self.a0_um = optics.a0_um
        self.start_energy_eV = sim.beam.energy_eV
        self.sample_z_offset_um = sim.optics.sample_z_offset_um
        self.osa_center_um = (sim.optics.osa_center_x_um, sim.optics.osa_center_y_um)
        self.detector_center_um = (
            sim.optics.detector_center_x_um,
            sim.optics.detector_center_y_um,
        )
        self.photon_flux_per_mA_Hz = sim.beam.photon_flux_per_mA_Hz
        self.quantum_efficiency = sim.apd.quantum_efficiency
        self.dark_count_rate_Hz = sim.apd.dark_count_rate_Hz
        self.dead_time_ns = sim.apd.dead_time_ns
        self.reference_energy_eV = sim.sample.reference_energy_eV
        self.absorption_exponent = sim.sample.absorption_exponent
        self.feature_maps = feature_maps
        self._maps: dict[float, FeatureMap] = {}
        self._terms = lru_cache(maxsize=256)(self._compute_terms)

    # -- motor readings and physics ----------------------------------------------------
    def distance_um(self, z_reading_um: float) -> float:
        """True distance upstream of the sample of a ZP z or OSA z reading."""
        return self.z_sign * z_reading_um - self.sample_z_offset_um

    def z_reading_um(self, distance_um: float) -> float:
        """ZP z or OSA z reading that puts the optic ``distance_um`` upstream of the sample."""
        return self.z_sign * (distance_um + self.sample_z_offset_um)

    def optics_positions(self, energy_eV: float, readings: Mapping[str, float]) -> OpticsPositions:
        """The physics' view of the optics from motor (dial) readings of :data:`OPTICS_AXES`."""
        osa_cx, osa_cy = self.osa_center_um
        det_cx, det_cy = self.detector_center_um
        return OpticsPositions(
            energy_eV=energy_eV,
            zp_distance_um=self.distance_um(readings["zp_z"]),
            a0_um=self.distance_um(readings["osa_z"]),
            zp_x_um=readings["zp_x"],
            zp_y_um=readings["zp_y"],
            osa_x_um=readings["osa_x"] - osa_cx,
            osa_y_um=readings["osa_y"] - osa_cy,
            detector_x_um=readings["detector_x"] - det_cx,
            detector_y_um=readings["detector_y"] - det_cy,
        )

    def start_readings(self, energy_eV: float | None = None) -> dict[str, float]:
        """Motor readings of an aligned, focused microscope (where the simulator starts).

        The zone plate at the focus of ``energy_eV`` (default ``[sim.beam] energy_eV``) on
        the real sample, the OSA at ``[optics] a0_um`` (reading), the OSA hole and the
        detector centred on the zone plate's axis, the zone plate at lateral 0.
        """
        energy = self.start_energy_eV if energy_eV is None else energy_eV
        osa_cx, osa_cy = self.osa_center_um
        det_cx, det_cy = self.detector_center_um
        return {
            "zp_x": 0.0,
            "zp_y": 0.0,
            "zp_z": self.z_reading_um(self.zone_plate.focal_length_um(energy)),
            "osa_x": osa_cx,
            "osa_y": osa_cy,
            "osa_z": self.z_sign * self.a0_um,
            "detector_x": det_cx,
            "detector_y": det_cy,
        }

    def tuned_gap_mm(self, energy_eV: float, polarization: str = POLARIZATIONS[0]) -> float:
        """EPU gap that tunes the first harmonic to ``energy_eV`` in ``polarization``."""
        return self.undulator.gap_mm(energy_eV, polarization)

    def od_scale(self, energy_eV: float) -> float:
        """Factor on the sample's ODs at ``energy_eV``: (E / E_ref) ** -absorption_exponent."""
        return (energy_eV / self.reference_energy_eV) ** -self.absorption_exponent

    # -- the optics' terms ---------------------------------------------------------------
    def terms(self, optics: OpticsPositions, gap_mm: float, polarization: str) -> OpticsTerms:
        """The optics' contribution (cached per state, coordinates rounded to 1e-4)."""
        key = tuple(round(float(v), _ROUND_DIGITS) for v in _fields(optics))
        return self._terms(key, round(float(gap_mm), _ROUND_DIGITS), polarization)

    def _compute_terms(
        self, key: tuple[float, ...], gap_mm: float, polarization: str
    ) -> OpticsTerms:
        at = OpticsPositions(*key)
        first, zero = self.beam_path.weights(at)
        patch_x, patch_y, patch_sigma = self.beam_path.zero_order_patch(at)
        return OpticsTerms(
            first_weight=first,
            zero_weight=zero,
            spot_sigma_um=self.beam_path.spot_sigma_um(at),
            patch_x_um=patch_x,
            patch_y_um=patch_y,
            patch_sigma_um=patch_sigma,
            relative_flux=float(self.undulator.relative_flux(at.energy_eV, gap_mm, polarization)),
            od_scale=self.od_scale(at.energy_eV),
        )

    # -- the sample ----------------------------------------------------------------------
    def helicity_pc(self, polarization: str) -> float:
        """Photon helicity times the degree of circular polarisation (0 for linear light)."""
        if not polarization.startswith("Circular"):
            return 0.0
        sign = 1.0 if polarization == self.positive_helicity_polarization else -1.0
        return sign * self.circular_degree

    def sample_od(
        self,
        x_um: NDArray,
        y_um: NDArray,
        spot_sigma_um: float,
        od_scale: float,
        energy_eV: float,
        helicity_pc: float,
    ) -> NDArray[np.float64]:
        """OD of the chip at (x, y) at an energy and helicity: the resolution pattern's
        window and frame, and each magnetic sample's window (:mod:`.magnetic_samples`)."""
        pattern_od = od_scale * self.optical_density(x_um, y_um, spot_sigma_um)
        if not self.magnetic_samples:
            return pattern_od
        shape = np.shape(pattern_od)
        od = np.array(pattern_od, dtype=float).ravel()  # a copy, also of a scalar
        x = np.broadcast_to(x_um, shape).ravel()
        y = np.broadcast_to(y_um, shape).ravel()
        reach = 6.0 * spot_sigma_um
        for sample in self.magnetic_samples:
            x0, x1, y0, y1 = sample.bounds_um()
            near = (x >= x0 - reach) & (x <= x1 + reach) & (y >= y0 - reach) & (y <= y1 + reach)
            if not near.any():
                continue
            xs, ys = x[near], y[near]
            inside = sample.window_coverage(xs, ys, spot_sigma_um)
            content = sample.optical_density(xs, ys, energy_eV, helicity_pc, spot_sigma_um)
            od[near] = (1.0 - inside) * od[near] + inside * content
        return od.reshape(shape)

    def optical_density(
        self, x_um: ArrayLike, y_um: ArrayLike, spot_sigma_um: float
    ) -> NDArray[np.float64]:
        """OD at the reference energy seen by a spot of ``spot_sigma_um`` at (x, y)."""
        feature_map = self._map_for(spot_sigma_um)
        if feature_map is not None:
            return feature_map.optical_density(x_um, y_um)
        return self.pattern.optical_density(x_um, y_um, spot_sigma_um)

    def _map_for(self, sigma_um: float) -> FeatureMap | None:
        if not self.feature_maps:
            return None
        focused = self.zone_plate.focused_sigma_um
        if abs(sigma_um - focused) <= _IN_FOCUS_TOLERANCE * focused:
            sigma_um, pixel_um = focused, 0.005
        elif sigma_um > 1.0:  # the zero-order patch: a few values, each gridded once
            pixel_um = sigma_um / _PATCH_PIXELS_PER_SIGMA
        else:
            return None
        if sigma_um not in self._maps:
            self._maps[sigma_um] = FeatureMap(self.pattern, sigma_um, pixel_um=pixel_um)
        return self._maps[sigma_um]

    # -- rates ---------------------------------------------------------------------------
    def photon_rate_Hz(
        self,
        x_um: ArrayLike,
        y_um: ArrayLike,
        optics: OpticsPositions,
        *,
        ring_current_mA: float,
        gap_mm: float,
        polarization: str,
    ) -> NDArray[np.float64]:
        """Photons per second reaching the APD (before its quantum efficiency).

        Parameters
        ----------
        x_um, y_um
            The beam on the sample in stage coordinates (stage position plus drift), one per
            instant (broadcast together).
        optics
            The optics at those instants (:meth:`optics_positions`).
        ring_current_mA
            Ring current whose photons reach the sample (0: shutter closed, beam dumped).
        gap_mm, polarization
            The EPU's gap and polarisation (one of ``POLARIZATIONS``).
        """
        x, y = np.broadcast_arrays(np.asarray(x_um, dtype=float), np.asarray(y_um, dtype=float))
        if ring_current_mA <= 0.0:
            return np.zeros(x.shape)
        t = self.terms(optics, gap_mm, polarization)
        incident = self.photon_flux_per_mA_Hz * ring_current_mA * t.relative_flux
        transmitted = np.zeros(x.shape)
        energy, helicity_pc = optics.energy_eV, self.helicity_pc(polarization)
        if t.first_weight > 0.0:
            od = self.sample_od(
                x + optics.zp_x_um,
                y + optics.zp_y_um,
                t.spot_sigma_um,
                t.od_scale,
                energy,
                helicity_pc,
            )
            transmitted += t.first_weight * np.exp(-od)
        if t.zero_weight > 0.0:
            od = self.sample_od(
                x + t.patch_x_um,
                y + t.patch_y_um,
                t.patch_sigma_um,
                t.od_scale,
                energy,
                helicity_pc,
            )
            transmitted += t.zero_weight * np.exp(-od)
        return incident * transmitted

    def detected_rate_Hz(
        self,
        x_um: ArrayLike,
        y_um: ArrayLike,
        optics: OpticsPositions,
        *,
        ring_current_mA: float,
        gap_mm: float,
        polarization: str,
    ) -> NDArray[np.float64]:
        """Mean count rate the counter records (quantum efficiency, dark counts, dead time).

        Arguments as :meth:`photon_rate_Hz`.
        """
        photons = self.photon_rate_Hz(
            x_um,
            y_um,
            optics,
            ring_current_mA=ring_current_mA,
            gap_mm=gap_mm,
            polarization=polarization,
        )
        return detected_rate_Hz(
            photons, self.quantum_efficiency, self.dark_count_rate_Hz, self.dead_time_ns
        )

    def start_state(self) -> tuple[OpticsPositions, float, str]:
        """(optics, gap, polarisation) of the microscope as the simulator starts it."""
        energy = self.start_energy_eV
        polarization = POLARIZATIONS[0]
        optics = self.optics_positions(energy, self.start_readings(energy))
        return optics, self.tuned_gap_mm(energy, polarization), polarization


def _fields(optics: OpticsPositions) -> tuple[float, ...]:
    return (
        optics.energy_eV,
        optics.zp_distance_um,
        optics.a0_um,
        optics.zp_x_um,
        optics.zp_y_um,
        optics.osa_x_um,
        optics.osa_y_um,
        optics.detector_x_um,
        optics.detector_y_um,
    )
