"""Property: whatever bad argument sample_image gets, it is refused before its first message:
nothing moves and no run opens (hypothesis draws the arguments)."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ophyd import Signal
from ophyd.sim import SynAxis, SynSignal

from plans import PlanArgumentError, RasterRegion, sample_image


class LimitedAxis(SynAxis):
    @property
    def limits(self) -> tuple[float, float]:
        return (-50.0, 50.0)


GOOD = {
    "x_center_um": 0.0,
    "x_range_um": 10.0,
    "x_points": 5,
    "y_center_um": 0.0,
    "y_range_um": 10.0,
    "y_points": 3,
    "dwell_s": 0.001,
}

not_a_number = st.one_of(
    st.text(max_size=5), st.none(), st.booleans(), st.lists(st.integers(), max_size=2)
)
bad_points = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=4097),
    st.floats().filter(lambda v: not (math.isfinite(v) and v == int(v) and 1 <= v <= 4096)),
    not_a_number,
)
bad_length = st.one_of(
    st.floats(max_value=-1e-9),
    st.floats(min_value=1e6, exclude_min=True),
    st.just(math.nan),
    st.just(math.inf),
    not_a_number,
)
bad_dwell = st.one_of(
    st.floats(max_value=1e-6, exclude_max=True),
    st.floats(min_value=3600, exclude_min=True),
    st.just(math.nan),
    not_a_number,
)
BAD = {
    "x_points": bad_points,
    "y_points": bad_points,
    "x_range_um": bad_length,
    "y_range_um": bad_length,
    "x_center_um": st.one_of(st.floats(min_value=1e6, exclude_min=True), not_a_number),
    "y_center_um": st.one_of(st.just(-math.inf), not_a_number),
    "dwell_s": bad_dwell,
}


@settings(max_examples=300, deadline=None)
@given(
    bad=st.dictionaries(st.sampled_from(sorted(BAD)), st.none(), min_size=1).flatmap(
        lambda keys: st.fixed_dictionaries({key: BAD[key] for key in keys})
    ),
    numpy_ints=st.booleans(),
)
def test_any_bad_argument_is_refused_before_anything_happens(bad, numpy_ints):
    x, y = LimitedAxis(name="sample_x"), LimitedAxis(name="sample_y")
    counter = SynSignal(func=lambda: 1.0, name="apd_counts")
    counter.dwell = Signal(name="apd_dwell", value=0.0)  # type: ignore[attr-defined]
    args = {**GOOD, **bad}
    if numpy_ints:  # numpy numbers are numbers: they must not change the verdict
        fits = np.iinfo(np.int64)
        args = {
            k: np.int64(v) if type(v) is int and fits.min <= v <= fits.max else v
            for k, v in args.items()
        }
    dwell_s = args.pop("dwell_s")
    try:
        # A bad region is refused as it is made, a bad dwell at the plan's first step.
        message = next(sample_image(counter, RasterRegion(x_motor=x, y_motor=y, **args), dwell_s))
    except PlanArgumentError:
        pass
    else:
        raise AssertionError(f"{bad} was accepted; first message {message}")
    assert x.position == 0.0 and y.position == 0.0  # nothing moved
    assert counter.dwell.get() == 0.0  # nothing was set


@settings(max_examples=100, deadline=None)
@given(reserved=st.sampled_from(["shape", "stxm_scan_type", "extents", "plan_name", "dwell_s"]))
def test_md_may_never_overwrite_the_plans_own_keys(reserved):
    x, y = LimitedAxis(name="sample_x"), LimitedAxis(name="sample_y")
    counter = SynSignal(func=lambda: 1.0, name="apd_counts")
    counter.dwell = Signal(name="apd_dwell", value=0.0)  # type: ignore[attr-defined]
    plan = sample_image(
        counter, RasterRegion(x, 0, 1, 2, y, 0, 1, 2), 0.001, md={reserved: "mine"}
    )
    try:
        next(plan)
    except PlanArgumentError as exc:
        assert f"md may not set {reserved}" in str(exc)
    else:
        raise AssertionError(f"md key {reserved!r} was accepted")


@pytest.mark.parametrize("axis", ["x", "y"])
def test_a_huge_point_count_is_refused_before_any_pixel_grid_is_made(axis):
    # The scan-time estimate once built the pixel grid of the points asked for before the
    # plan's checks ran: hypothesis drew a billion-point image and the test's process was
    # killed for memory (19 GB). Ten million points: an 80 MB grid, if one were made. The
    # region refuses them when it is made, before a plan or an estimate sees it.
    x, y = LimitedAxis(name="sample_x"), LimitedAxis(name="sample_y")
    points = {"x_points": 5, "y_points": 3, f"{axis}_points": 10_000_000}
    tracemalloc.start()
    try:
        with pytest.raises(PlanArgumentError, match=rf"{axis}_points = 10000000 is out of range"):
            RasterRegion(x, 0.0, 10.0, points["x_points"], y, 0.0, 10.0, points["y_points"])
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_bytes < 8_000_000, f"{peak_bytes / 1e6:.0f} MB allocated before the refusal"
