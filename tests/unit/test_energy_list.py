"""Energy lists: regions with different steps, and the errors for bad ones."""

import numpy as np
import pytest

from plans.energy_list import MAX_ENERGIES, energy_points
from plans.validation import PlanArgumentError


def test_regions_join_without_repeating_the_shared_energy():
    points = energy_points([(700, 704, 2.0), (704, 705, 0.5), 710.0])
    assert list(points) == [700.0, 702.0, 704.0, 704.5, 705.0, 710.0]


def test_dict_regions_and_numpy_numbers():
    points = energy_points([{"start_eV": 700, "stop_eV": 701, "step_eV": 0.25}, np.float64(702)])
    assert list(points) == [700.0, 700.25, 700.5, 700.75, 701.0, 702.0]


@pytest.mark.parametrize(
    ("energies", "message"),
    [
        ([], "empty"),
        ("700", "give a list"),
        ([(700, 710)], r"energies\[0\]"),
        ([(700, 710, -1)], "step_eV"),
        ([(700, "710", 1)], "numbers"),
        ([{"start_eV": 700, "stop_eV": 701}], "step_eV"),
        ([705, 700], "increasing order"),
        ([float("nan")], "finite"),
        ([(0, 10_000, 0.001)], f"at most {MAX_ENERGIES}"),
    ],
)
def test_bad_lists_name_the_item_and_the_fix(energies, message):
    with pytest.raises(PlanArgumentError, match=message):
        energy_points(energies)
