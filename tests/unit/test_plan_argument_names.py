"""Bad plan arguments get one error naming the parameter as the plan names it, before any
message: no argument taken for what it is not (``snake='yes'``, a counter as the flyer, an
energy twice, a line of no length)."""

from __future__ import annotations

from typing import Any

import pytest
from ophyd import Signal
from ophyd.sim import SynAxis, SynSignal

from plans import (
    PlanArgumentError,
    RasterRegion,
    image_stack,
    line_spectrum,
    osa_focus,
    point_spectrum,
    sample_focus,
    sample_image,
)
from plans.energy_list import energy_points


@pytest.fixture
def beamline():
    x, y, z = SynAxis(name="sample_x"), SynAxis(name="sample_y"), SynAxis(name="zp_z")
    counter = SynSignal(func=lambda: 1.0, name="apd_counts")
    counter.dwell = Signal(name="apd_dwell", value=0.0)
    return counter, x, y, z


def _refused(plan, *expected: str, absent: str = "") -> str:
    """``plan`` (a plan, or a function that makes one: a region is checked as it is made)
    raises before its first message, with ``expected`` in the message."""
    with pytest.raises(PlanArgumentError) as info:
        next(plan() if callable(plan) else plan)  # the RunEngine's first step
    message = str(info.value)
    for text in expected:
        assert text in message, message
    if absent:
        assert absent not in message, message
    return message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"z_points": 0}, "z_points = 0 is out of range; allowed 1 to 4096 points"),
        ({"line_points": 0}, "line_points = 0 is out of range"),
        ({"z_range_um": -5.0}, "z_range_um = -5.0 um is out of range"),
        ({"line_center_um": "1"}, "line_center_um must be a number in um, got '1'"),
        ({"z_center_um": "abc"}, "z_center_um must be a number in um, got 'abc'"),
        ({"move_to_focus": "yes"}, "move_to_focus = 'yes' (str): give True or False"),
    ],
)
def test_sample_focus_names_its_own_parameters(beamline, change, expected):
    counter, x, _, z = beamline
    args = {
        "z_center_um": 0.0,
        "z_range_um": 10.0,
        "z_points": 5,
        "line_center_um": 0.0,
        "line_range_um": 2.0,
        "line_points": 11,
        "move_to_focus": False,
    } | change
    plan = sample_focus(
        counter,
        z,
        args["z_center_um"],
        args["z_range_um"],
        args["z_points"],
        x,
        args["line_center_um"],
        args["line_range_um"],
        args["line_points"],
        0.001,
        move_to_focus=args["move_to_focus"],
    )
    _refused(plan, expected, absent="y_points")
    assert z.position == 0.0 and x.position == 0.0


def test_osa_focus_names_its_own_parameters(beamline):
    counter, x, _, z = beamline
    _refused(osa_focus(counter, z, 0, 10, 5, x, 0, 2, 0, 0.001), "s_points = 0", absent="x_")


@pytest.mark.parametrize("snake", ["yes", "False", 1, None])
def test_snake_is_true_or_false(beamline, snake):
    counter, x, y, _ = beamline
    _refused(
        lambda: sample_image(counter, RasterRegion(x, 0, 4, 3, y, 0, 2, 2, snake=snake), 0.001),
        f"snake = {snake!r} ({type(snake).__name__}): give True or False",
    )


def test_a_region_is_a_raster_region(beamline):
    counter, x, y, _ = beamline
    not_a_region: Any = (x, 0, 4, 3, y, 0, 2, 2)
    _refused(
        sample_image(counter, not_a_region, 0.001),
        "region = (",
        "is not a raster region; give plans.RasterRegion(",
    )


def test_a_stack_refuses_a_snaked_region_by_name(beamline):
    counter, x, y, _ = beamline
    region = RasterRegion(x, 0, 4, 3, y, 0, 2, 2, snake=True)
    _refused(
        image_stack(counter, None, None, region, [700.0], 0.001),
        "region.snake = True: the images of a stack are not snaked",
        "make the region with snake = False",
    )


def test_a_counter_given_as_the_flyer_is_refused_by_name(beamline):
    counter, x, y, _ = beamline
    message = _refused(
        sample_image(counter, RasterRegion(x, 0, 40, 16, y, 0, 2, 2), 0.001, flyer=counter),
        "flyer = 'apd_counts' (SynSignal) is not a fly controller (it has no kickoff",
        "pass the session's fly device (d.fly)",
    )
    assert "AttributeError" not in message


@pytest.mark.parametrize(
    ("energies", "expected"),
    [
        ([700, 700], "energies[1] = 700 repeats 700 eV before it: give each energy once"),
        ([(690, 700, 5), 700], "energies[1] = 700 repeats 700 eV"),
        ([700.0, (700, 705, 1)], "energies[1] = (700, 705, 1) repeats 700 eV"),
    ],
)
def test_an_energy_given_twice_is_refused(energies, expected):
    with pytest.raises(PlanArgumentError) as info:
        energy_points(energies)
    assert expected in str(info.value)


def test_regions_that_meet_still_share_their_energy():
    assert list(energy_points([(700, 702, 1), (702, 704, 2)])) == [700, 701, 702, 704]


def test_a_line_spectrum_of_no_length_is_refused(beamline):
    counter, x, y, _ = beamline
    _refused(
        line_spectrum(counter, None, None, x, y, (1.0, 2.0), (1.0, 2.0), 5, [700], 0.01),
        "start_um = stop_um = (1.0, 2.0) with points = 5",
        "use point_spectrum for one point",
    )


def test_a_point_spectrum_refuses_a_repeated_energy_before_anything_moves(beamline):
    counter, x, y, _ = beamline

    class EnergyLike:
        energy_range_eV = (250.0, 1000.0)
        undulator = focus_offset_um = None

        def set(self, value): ...

    class PolarizationLike:
        position = "Circular left"

        def set(self, value): ...

    plan = point_spectrum(
        counter, EnergyLike(), PolarizationLike(), x, 0.0, y, 0.0, [706.8, 706.8], 0.01
    )
    _refused(plan, "energies[1] = 706.8 repeats 706.8 eV")
