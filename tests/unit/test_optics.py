"""Pure optics against the worked values of physics.md: zone plate, beam path, interlocks, EPU.

The expected numbers are the reference's (``/work/shared/reference/physics.md``, X-ray Data
Booklet section 4.4), written as they are printed there; where the reference gives a formula
only, the test derives the number another way (a traced ray, a second-moment integral).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from stxm_ctrl.physics.beam_path import BeamPath, OpticsPositions, annulus_fraction_in_disc
from stxm_ctrl.physics.interlocks import InterlockError, OpticsGeometry
from stxm_ctrl.physics.undulator import POLARIZATIONS, Undulator, UndulatorRangeError
from stxm_ctrl.physics.zone_plate import (
    FWHM_PER_SIGMA,
    ZonePlate,
    defocus_for_spot_um,
    depth_of_focus_um,
    number_of_zones,
    numerical_aperture,
    wavelength_nm,
)

# The reference's worked plate, 240 um / 25 nm, with the 95 um central stop it is used with.
ZP = ZonePlate(diameter_um=240.0, outer_zone_width_nm=25.0, central_stop_um=95.0)
OSA_UM = 50.0

# edge, E (eV), lambda (nm), f (um), DOF (+- um), max A0 for a 50 um OSA (um): physics.md.
TABLE = [
    ("Fe L3", 706.8, 1.7542, 3420, 0.71, 713),
    ("Co L3", 778.1, 1.5934, 3766, 0.78, 784),
    ("Ni L3", 852.7, 1.4540, 4127, 0.86, 860),
    ("Cu L3", 932.7, 1.3293, 4514, 0.94, 940),
]


class TestZonePlateWorkedExample:
    def test_a1_zones_and_resolution(self):
        assert round(ZP.a1_um_per_eV, 3) == 4.839
        assert ZP.zones == 2400
        assert number_of_zones(240.0, 25.0) == 2400
        assert ZP.resolution_nm == pytest.approx(30.5)

    @pytest.mark.parametrize(("edge", "energy", "lam", "f", "dof", "a0_max"), TABLE)
    def test_table_row_as_printed(self, edge, energy, lam, f, dof, a0_max):
        assert round(wavelength_nm(energy), 4) == lam
        # Whole um, except that the reference rounds Co's 3765.49 um up to 3766: within
        # 0.6 um, less than any depth of focus here.
        assert ZP.focal_length_um(energy) == pytest.approx(f, abs=0.6)
        assert round(ZP.depth_of_focus_um(energy), 2) == dof
        assert round(ZP.a0_max_first_order_um(energy, OSA_UM)) == a0_max
        # With a 95 um stop the first-order limit is the binding one: it is the table's.
        assert ZP.a0_max_um(energy, OSA_UM) == ZP.a0_max_first_order_um(energy, OSA_UM)

    @pytest.mark.parametrize("energy", [row[1] for row in TABLE])
    def test_focal_length_is_a1_times_energy(self, energy):
        assert ZP.focal_length_um(energy) == pytest.approx(ZP.a1_um_per_eV * energy)

    def test_numerical_aperture_and_depth_of_focus_agree(self):
        # DOF = lambda / (2 NA^2) = 2 drN^2 / lambda: two forms of one formula.
        energy = 706.8
        na = numerical_aperture(energy, 25.0)
        assert na == pytest.approx(1.7542 / 50.0, rel=1e-4)
        lam_um = wavelength_nm(energy) / 1000.0
        assert depth_of_focus_um(energy, 25.0) == pytest.approx(lam_um / (2 * na**2))

    def test_focus_tracking_700_to_730_eV_moves_about_145_um(self):
        df = ZP.focal_length_um(730.0) - ZP.focal_length_um(700.0)
        assert df == pytest.approx(145.0, abs=0.5)
        assert df == pytest.approx(ZP.a1_um_per_eV * 30.0)
        # ... against a depth of focus of +-0.7 um: two hundred times the tolerance.
        assert df / ZP.depth_of_focus_um(700.0) > 200


class TestSecondOrderLimit:
    def test_formula(self):
        f = ZP.focal_length_um(706.8)
        expected = 0.5 * f * (1.0 - OSA_UM / 95.0)
        assert ZP.a0_max_second_order_um(706.8, OSA_UM) == pytest.approx(expected)
        assert round(expected, 1) == 810.1

    @pytest.mark.parametrize("energy", [706.8, 932.7])
    def test_agrees_with_a_traced_ray(self, energy):
        # The ray past the edge of the central stop crosses the axis at the second-order
        # focus, f/2 downstream of the plate, then diverges. With the plate in focus (f
        # upstream of the sample) the OSA at A0 is f/2 - A0 beyond that crossing; the ray's
        # radius there is (d_CS/2)(f/2 - A0)/(f/2). The second order is blocked while that
        # radius is larger than the hole's.
        f = ZP.focal_length_um(energy)
        limit = ZP.a0_max_second_order_um(energy, OSA_UM)

        def shadow_edge_um(a0_um: float) -> float:
            return 0.5 * ZP.central_stop_um * (0.5 * f - a0_um) / (0.5 * f)

        assert shadow_edge_um(limit) == pytest.approx(0.5 * OSA_UM)
        assert shadow_edge_um(limit - 1.0) > 0.5 * OSA_UM
        assert shadow_edge_um(limit + 1.0) < 0.5 * OSA_UM

    def test_binds_for_a_wide_osa_on_a_small_stop(self):
        # 240 um / 40 nm with a 90 um stop and a 60 um OSA: (f/2)(1/3) < 60 f / 240.
        plate = ZonePlate(diameter_um=240.0, outer_zone_width_nm=40.0, central_stop_um=90.0)
        f = plate.focal_length_um(778.1)
        assert plate.a0_max_second_order_um(778.1, 60.0) == pytest.approx(f / 6.0)
        assert plate.a0_max_first_order_um(778.1, 60.0) == pytest.approx(f / 4.0)
        assert plate.a0_max_um(778.1, 60.0) == pytest.approx(f / 6.0)


class TestDefocusAndSpot:
    def test_defocus_for_a_spot_size(self):
        # dz = d * drN * E / 1239.84: a 1 um spot at 706.8 eV needs 14.25 um of defocus.
        dz = ZP.defocus_for_spot_um(1.0, 706.8)
        assert dz == pytest.approx(1.0 * 25.0 * 706.8 / 1239.84)
        assert round(dz, 2) == 14.25
        assert defocus_for_spot_um(1.0, 706.8, 25.0) == dz
        # The cone of the whole plate is that wide there: D dz / f.
        assert ZP.diameter_um * dz / ZP.focal_length_um(706.8) == pytest.approx(1.0)

    def test_in_focus_the_spot_is_the_rayleigh_resolution(self):
        sigma = float(ZP.spot_sigma_um(0.0, 706.8))
        assert sigma * FWHM_PER_SIGMA * 1000.0 == pytest.approx(30.5)
        assert sigma == ZP.focused_sigma_um

    @pytest.mark.parametrize("energy", [706.8, 852.7])
    def test_at_the_depth_of_focus_the_spot_grows_about_sqrt_2(self, energy):
        dof = ZP.depth_of_focus_um(energy)
        ratio = float(ZP.spot_sigma_um(dof, energy)) / ZP.focused_sigma_um
        assert 1.3 < ratio < 1.5
        # The geometric blur there: the cone's outer radius is drN exactly (D dz / 2f with
        # D / f = lambda / drN), the stop's shadow drN d_CS / D; second moment (a^2+b^2)/4.
        r_out, r_in = 0.025, 0.025 * 95.0 / 240.0
        expected = math.sqrt(ZP.focused_sigma_um**2 + 0.25 * (r_out**2 + r_in**2))
        assert float(ZP.spot_sigma_um(dof, energy)) == pytest.approx(expected)

    def test_far_out_the_spot_grows_linearly_and_either_side_alike(self):
        sigma = ZP.spot_sigma_um(np.array([-100.0, -50.0, 50.0, 100.0]), 706.8)
        assert sigma[0] == sigma[3] and sigma[1] == sigma[2]
        assert sigma[3] / sigma[2] == pytest.approx(2.0, rel=1e-4)
        # Annulus second moment per axis: sqrt((R^2 + r^2) / 4) with R = (D/2) dz / f.
        f = ZP.focal_length_um(706.8)
        r_out, r_in = 120.0 * 100.0 / f, 47.5 * 100.0 / f
        assert sigma[3] == pytest.approx(0.5 * math.hypot(r_out, r_in), rel=1e-4)

    def test_spot_sigma_matches_a_sampled_annulus(self):
        # The second moment of a uniform annulus, by sampling it, at 30 um of defocus.
        rng = np.random.default_rng(1)
        f = ZP.focal_length_um(706.8)
        r_out, r_in = 120.0 * 30.0 / f, 47.5 * 30.0 / f
        r = np.sqrt(rng.uniform(r_in**2, r_out**2, 400_000))
        x = r * np.cos(rng.uniform(0, 2 * np.pi, r.size))
        expected = math.sqrt(ZP.focused_sigma_um**2 + float(np.mean(x**2)))
        assert float(ZP.spot_sigma_um(30.0, 706.8)) == pytest.approx(expected, rel=5e-3)


def _at(**kwargs: float) -> OpticsPositions:
    """The worked plate in focus at 706.8 eV with the OSA at A0 = 500 um, unless told."""
    values = {"energy_eV": 706.8, "zp_distance_um": ZP.focal_length_um(706.8), "a0_um": 500.0}
    values.update(kwargs)
    energy, zp, a0 = values.pop("energy_eV"), values.pop("zp_distance_um"), values.pop("a0_um")
    return OpticsPositions(energy_eV=energy, zp_distance_um=zp, a0_um=a0, **values)


PATH = BeamPath(zone_plate=ZP, osa_diameter_um=OSA_UM)


class TestBeamPath:
    def test_centred_osa_below_the_limit_passes_the_first_order_and_blocks_the_zero(self):
        for a0 in (100.0, 500.0, 712.0):
            at = _at(a0_um=a0)
            assert PATH.first_order_through_osa(at) == pytest.approx(1.0)
            assert PATH.zero_order_through_osa(at) == 0.0
        # In focus, detector centred and wide: a tenth of the light, no zero order.
        first, zero = PATH.weights(_at())
        assert first == pytest.approx(0.1)
        assert zero == 0.0

    def test_beyond_the_first_order_limit_the_osa_clips(self):
        # At A0 = 800 um the cone at the OSA is an annulus of radii (47.5, 120) x 800 / f;
        # the 25 um hole keeps the part inside it.
        f = ZP.focal_length_um(706.8)
        r_out, r_in = 120.0 * 800.0 / f, 47.5 * 800.0 / f
        expected = (25.0**2 - r_in**2) / (r_out**2 - r_in**2)
        assert PATH.first_order_through_osa(_at(a0_um=800.0)) == pytest.approx(expected)
        assert 0.7 < expected < 0.8

    def test_off_axis_osa_clips_the_first_order_then_lets_the_zero_order_through(self):
        # Cone at A0 = 500 um: radius 17.5 um; 10 um off axis its edge is 27.5 um out.
        clipped = PATH.first_order_through_osa(_at(osa_x_um=10.0))
        assert 0.5 < clipped < 1.0
        assert PATH.zero_order_through_osa(_at(osa_x_um=10.0)) == 0.0
        # 40 um off, the hole (15 to 65 um from the axis) overlaps the zero order's annulus
        # (47.5 to 120 um) and misses most of the cone.
        assert PATH.zero_order_through_osa(_at(osa_y_um=40.0)) > 0.0
        assert PATH.first_order_through_osa(_at(osa_y_um=40.0)) < clipped
        # What matters is the OSA relative to the zone plate's axis.
        assert PATH.first_order_through_osa(_at(zp_x_um=5.0, osa_x_um=15.0)) == pytest.approx(
            clipped
        )

    def test_osa_out_of_the_beam_passes_the_zero_order(self):
        at = _at(osa_x_um=2000.0)
        assert not PATH.osa_in_beam(at)
        assert PATH.zero_order_through_osa(at) == 1.0
        assert PATH.first_order_through_osa(at) == 1.0
        # The whole annulus lands on the sample around the plate's axis, sigma from its
        # second moment; every photon of it reaches the 1 mm detector.
        x, y, sigma = PATH.zero_order_patch(at)
        assert (x, y) == (0.0, 0.0)
        assert sigma == pytest.approx(0.5 * math.hypot(120.0, 47.5))
        assert PATH.weights(at) == pytest.approx((0.1, 0.25))

    def test_defocus_sign_focus_upstream_of_the_sample_is_positive(self):
        f = ZP.focal_length_um(706.8)
        assert PATH.defocus_um(_at(zp_distance_um=f + 10.0)) == pytest.approx(10.0)
        assert PATH.spot_sigma_um(_at(zp_distance_um=f + 10.0)) == pytest.approx(
            PATH.spot_sigma_um(_at(zp_distance_um=f - 10.0))
        )

    def test_the_detector_sees_the_cone_spread_from_the_focus(self):
        # Focus 1000 um upstream of the sample, detector (70 um) 100 um downstream: the cone
        # has spread over 1100 um when it reaches the detector.
        path = BeamPath(
            zone_plate=ZP,
            osa_diameter_um=OSA_UM,
            detector_diameter_um=70.0,
            detector_distance_um=100.0,
        )
        f = ZP.focal_length_um(706.8)
        at = _at(zp_distance_um=f + 1000.0, a0_um=100.0)
        scale = 1100.0 / f
        expected = float(annulus_fraction_in_disc(47.5 * scale, 120.0 * scale, 35.0, 0.0))
        assert path.detector_first_order(at) == pytest.approx(expected)
        assert expected < 1.0

    def test_annulus_in_disc_limits(self):
        assert float(annulus_fraction_in_disc(10.0, 20.0, 30.0, 0.0)) == 1.0
        assert float(annulus_fraction_in_disc(10.0, 20.0, 5.0, 0.0)) == 0.0
        assert float(annulus_fraction_in_disc(10.0, 20.0, 30.0, 100.0)) == 0.0
        # Half of the annulus' area lies within sqrt((10^2 + 20^2)/2) of its centre.
        half = math.sqrt(250.0)
        assert float(annulus_fraction_in_disc(10.0, 20.0, half, 0.0)) == pytest.approx(0.5)


GEOMETRY = OpticsGeometry(zone_plate=ZP, osa_diameter_um=OSA_UM)


class TestOpticsGeometry:
    def test_motor_readings_follow_z_sign(self):
        assert GEOMETRY.motor_z(3420.0) == -3420.0
        assert GEOMETRY.distance(-3420.0) == 3420.0
        plus = OpticsGeometry(zone_plate=ZP, osa_diameter_um=OSA_UM, z_sign=1)
        assert plus.motor_z(3420.0) == 3420.0

    def test_an_osa_as_wide_as_the_stop_is_refused(self):
        GEOMETRY.check_osa_blocks_zero_order()
        with pytest.raises(InterlockError) as info:
            OpticsGeometry(zone_plate=ZP, osa_diameter_um=95.0).check_osa_blocks_zero_order()
        assert str(info.value) == (
            "an OSA of 95 um passes the zero order around a central stop of 95 um; select an "
            "OSA smaller than 95 um"
        )

    def test_zone_plate_into_the_osa(self):
        GEOMETRY.check_zp_distance(700.0, 500.0)
        with pytest.raises(InterlockError) as info:
            GEOMETRY.check_zp_distance(600.0, 500.0)
        message = str(info.value)
        assert "ZP z = -600.0 um" in message
        assert "100.0 um from the OSA (A0 = 500.0 um; at least 200 um needed)" in message
        assert "allowed ZP z <= -700.0 um" in message
        plus = OpticsGeometry(zone_plate=ZP, osa_diameter_um=OSA_UM, z_sign=1)
        with pytest.raises(InterlockError, match=r"allowed ZP z >= 700\.0 um"):
            plus.check_zp_distance(600.0, 500.0)

    @pytest.mark.parametrize(
        ("a0", "clip", "reason", "allowed"),
        [
            (50.0, True, "the OSA would come within 100 um of the sample", "100.0 to 712.6"),
            (
                750.0,
                True,
                "the 50 um OSA would clip the first order at 706.80 eV "
                "(A0 <= d_OSA f / D = 712.6 um)",
                "100.0 to 712.6",
            ),
            (
                850.0,
                False,
                "the second order would pass the 50 um OSA at 706.80 eV (A0 must stay below "
                "(f/2)(1 - d_OSA/d_CS) = 810.1 um)",
                "100.0 to 810.1",
            ),
        ],
    )
    def test_a0_refusals_name_the_numbers_and_the_range(self, a0, clip, reason, allowed):
        f = ZP.focal_length_um(706.8)
        with pytest.raises(InterlockError) as info:
            GEOMETRY.check_a0(a0, f, 706.8, clip_first_order=clip)
        assert str(info.value) == (
            f"A0 = {a0:.1f} um (OSA z = {-a0:.1f} um): {reason}; allowed A0 {allowed} um"
        )

    def test_a0_next_to_the_zone_plate_and_an_empty_range(self):
        with pytest.raises(InterlockError) as info:
            GEOMETRY.check_a0(450.0, 600.0, 706.8, clip_first_order=True)
        assert "within 200 um of the zone plate (ZP z = -600.0 um)" in str(info.value)
        assert "allowed A0 100.0 to 400.0 um" in str(info.value)
        with pytest.raises(InterlockError) as info:
            GEOMETRY.check_a0(150.0, 250.0, 706.8, clip_first_order=True)
        assert "(empty: move the zone plate or change energy first)" in str(info.value)

    def test_energy_too_low_for_the_osa_where_it_stands(self):
        # A0 = 700 um clips below 700 / (50 A1 / 240) = 694.3 eV.
        GEOMETRY.check_energy(706.8, 700.0, clip_first_order=True)
        with pytest.raises(InterlockError) as info:
            GEOMETRY.check_energy(690.0, 700.0, clip_first_order=True)
        message = str(info.value)
        assert "energy 690.00 eV: the 50 um OSA at A0 = 700.0 um would clip the first order" in (
            message
        )
        assert "(at this energy A0 must be <= 695.7 um)" in message
        assert "choose an energy >= 694.3 eV" in message
        assert GEOMETRY.energy_min_for_a0_eV(700.0, clip_first_order=True) == pytest.approx(
            700.0 / (OSA_UM * ZP.a1_um_per_eV / 240.0)
        )

    def test_energy_whose_focus_brings_the_zone_plate_into_the_osa(self):
        # Focus 2600 um short of f at 706.8 eV: ZP at 820 um, A0 = 700 um, gap 120 um.
        with pytest.raises(InterlockError) as info:
            GEOMETRY.check_energy(
                706.8, 700.0, focus_offset_um=820.0 - 3420.4413, clip_first_order=True
            )
        assert "focusing needs ZP z = -820.0 um, within 120.0 um of the OSA" in str(info.value)


EPU = Undulator()


class TestUndulator:
    @pytest.mark.parametrize("polarization", POLARIZATIONS)
    @pytest.mark.parametrize("fraction", [0.0, 0.3, 0.7, 1.0])
    def test_gap_energy_round_trip(self, polarization, fraction):
        low, high = EPU.energy_range_eV(polarization)
        energy = low + fraction * (high - low)
        gap = EPU.gap_mm(energy, polarization)
        assert EPU.min_gap_mm <= gap <= EPU.max_gap_mm
        assert float(EPU.energy_eV(gap, polarization)) == pytest.approx(energy, rel=1e-9)

    def test_first_harmonic_by_hand(self):
        # 8 mm gap: B0 = 2 T exp(-pi 8/26), K = 0.934 * 2.6 cm * B0,
        # E1 = 950 * 1.7^2 / 2.6 / (1 + K^2) in circular, (1 + K^2/2) in linear.
        b0 = 2.0 * math.exp(-math.pi * 8.0 / 26.0)
        k = 0.934 * 2.6 * b0
        e_max = 950.0 * 1.7**2 / 2.6
        assert float(EPU.energy_eV(8.0, "Circular left")) == pytest.approx(e_max / (1 + k**2))
        assert float(EPU.energy_eV(8.0, "Linear vertical")) == pytest.approx(
            e_max / (1 + k**2 / 2)
        )
        # The L3 edges of Fe, Co and Ni are reachable in circular polarisation.
        low, high = EPU.energy_range_eV("Circular right")
        assert low < 706.8 and 852.7 < high

    def test_energy_out_of_range_names_the_range(self):
        low, high = EPU.energy_range_eV("Circular left")
        with pytest.raises(UndulatorRangeError) as info:
            EPU.gap_mm(high + 10.0, "Circular left")
        assert str(info.value) == (
            f"energy {high + 10.0:.2f} eV is outside the EPU's first harmonic in circular "
            f"left polarisation ({low:.1f} to {high:.1f} eV at gaps 8 to 80 mm)"
        )
        with pytest.raises(UndulatorRangeError, match="linear horizontal polarisation"):
            EPU.gap_mm(100.0, "Linear horizontal")

    def test_unknown_polarisation_lists_the_states(self):
        with pytest.raises(ValueError, match="choose one of Circular left, Circular right"):
            EPU.gap_mm(706.8, "circular")

    def test_relative_flux_is_a_line_of_width_e1_over_n(self):
        gap = EPU.gap_mm(706.8, "Circular left")
        assert float(EPU.relative_flux(706.8, gap, "Circular left")) == pytest.approx(1.0)
        half_width = 706.8 / EPU.periods / 2.0
        flux = EPU.relative_flux([706.8 - half_width, 706.8 + half_width], gap, "Circular left")
        np.testing.assert_allclose(flux, [0.5, 0.5], rtol=1e-6)
