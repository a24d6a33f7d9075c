"""sample_image with ophyd.sim devices: raster order, documents, image, argument checks."""

from __future__ import annotations

import io

import numpy as np
import pytest
from ophyd import Signal
from ophyd.sim import SynAxis, SynSignal

from plans import PlanArgumentError, RasterRegion, sample_image, sample_image_grid
from stxm_ctrl.data.images import image_from_columns
from stxm_ctrl.progress import ScanProgress


class LimitedAxis(SynAxis):
    """A simulated axis that reports soft limits, as an EpicsMotor does."""

    @property
    def limits(self) -> tuple[float, float]:
        return (-50.0, 50.0)


def counts_at(x_um: np.ndarray, y_um: np.ndarray) -> np.ndarray:
    """A position-coded signal: every pixel's value says where it was measured."""
    return 1000.0 * np.round(x_um, 6) + np.round(y_um, 6)


@pytest.fixture
def beamline():
    x = LimitedAxis(name="sample_x")
    y = LimitedAxis(name="sample_y")
    counter = SynSignal(func=lambda: float(counts_at(x.position, y.position)), name="apd_counts")
    counter.dwell = Signal(name="apd_dwell", value=0.0)
    return counter, x, y


@pytest.fixture
def RE(make_run_engine):
    return make_run_engine({}, call_returns_result=True)


def run_and_collect(RE, plan):
    docs: list[tuple[str, dict]] = []
    result = RE(plan, lambda name, doc: docs.append((name, doc)))
    return result, docs


def primary_columns(docs, *fields):
    primary = {d["uid"] for n, d in docs if n == "descriptor" and d["name"] == "primary"}
    events = [d for n, d in docs if n == "event" and d["descriptor"] in primary]
    return [np.array([e["data"][f] for e in events]) for f in fields]


@pytest.mark.parametrize("snake", [False, True])
def test_image_is_the_signal_at_every_pixel(RE, beamline, snake):
    counter, x, y = beamline
    plan = sample_image(counter, RasterRegion(x, 1.0, 4.0, 5, y, -2.0, 2.0, 3, snake=snake), 0.01)
    result, docs = run_and_collect(RE, plan)
    start = docs[0][1]
    assert result.exit_status == "success"
    assert result.plan_result == start["uid"]
    counts, xs, ys = primary_columns(docs, "apd_counts", "sample_x", "sample_y")
    assert len(counts) == 15
    image = image_from_columns(start, counts, xs, ys)
    gx, gy = np.meshgrid(np.linspace(-1, 3, 5), np.linspace(-3, -1, 3))
    np.testing.assert_allclose(image.counts, counts_at(gx, gy))
    np.testing.assert_allclose(image.x_readback_um, gx)
    np.testing.assert_allclose(image.y_readback_um, gy)
    np.testing.assert_allclose(image.x_um, np.linspace(-1, 3, 5))
    # The snake shows in the acquisition order: row 2 runs from high x to low x.
    assert (np.diff(xs[5:10]) < 0).all() == snake


def test_start_document_describes_the_image(RE, beamline):
    counter, x, y = beamline
    _, docs = run_and_collect(
        RE,
        sample_image(
            counter, RasterRegion(x, 0, 10, 4, y, 5, 6, 3, snake=True), 0.002, md={"user": "a"}
        ),
    )
    start = docs[0][1]
    assert start["plan_name"] == "sample_image"
    assert start["stxm_scan_type"] == "sample image"
    assert start["shape"] == [3, 4]
    assert start["extents"] == [[2.0, 8.0], [-5.0, 5.0]]
    assert start["snaking"] == [False, True]
    assert start["dwell_s"] == 0.002
    assert start["num_points"] == 12
    assert start["counter_field"] == "apd_counts"
    assert (start["x_field"], start["y_field"]) == ("sample_x", "sample_y")
    assert start["plan_args"]["x_points"] == 4
    assert start["user"] == "a"
    assert counter.dwell.get() == 0.002  # the counter was set to the dwell


def test_y_moves_once_per_row(RE, beamline):
    counter, x, y = beamline
    sets: list[str] = []
    RE.msg_hook = lambda msg: sets.append(msg.obj.name) if msg.command == "set" else None
    RE(sample_image(counter, RasterRegion(x, 0, 4, 5, y, 0, 2, 3), 0.001))
    assert sets.count("sample_y") == 3
    assert sets.count("sample_x") == 15


def test_single_pixel_sits_at_the_centre():
    np.testing.assert_array_equal(sample_image_grid(7.5, 0.0, 1), [7.5])
    np.testing.assert_allclose(sample_image_grid(0.0, 10.0, 3), [-5, 0, 5])


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"dwell_s": 0.0}, "dwell_s = 0.0 s is out of range; allowed 1e-06 to 3600 s"),
        ({"dwell_s": -1}, "dwell_s = -1 s is out of range"),
        ({"dwell_s": "fast"}, "dwell_s must be a number in s, got 'fast'"),
        ({"x_points": 0}, "x_points = 0 is out of range; allowed 1 to 4096 points"),
        ({"y_points": 2.5}, "y_points must be a whole number of points, got 2.5"),
        ({"x_range_um": -3}, "x_range_um = -3 um is out of range"),
        ({"y_range_um": 0.0}, "y_range_um = 0 um with y_points = 3"),
        ({"x_center_um": float("nan")}, "x_center_um = nan um is out of range"),
        ({"x_points": float("inf")}, "x_points must be a whole number of points, got inf"),
        ({"y_points": float("nan")}, "y_points must be a whole number of points, got nan"),
        (
            {"x_center_um": 46.0},
            "the scan from 41 to 51 um leaves the limits of sample_x (-50 to 50 um)",
        ),
        ({"y_range_um": 120.0}, "shrink y_range_um (at most 100 um)"),
    ],
)
def test_bad_arguments_are_refused_before_any_message(beamline, change, expected):
    counter, x, y = beamline
    args = {
        "x_center_um": 0.0,
        "x_range_um": 10.0,
        "x_points": 5,
        "y_center_um": 0.0,
        "y_range_um": 10.0,
        "y_points": 3,
        "dwell_s": 0.001,
    }
    args.update(change)
    dwell_s = args.pop("dwell_s")
    # A bad region is refused as it is made, a bad dwell at the plan's first step: both
    # before any message.
    with pytest.raises(PlanArgumentError) as info:
        next(sample_image(counter, RasterRegion(x_motor=x, y_motor=y, **args), dwell_s))
    assert expected in str(info.value)
    assert x.position == 0.0 and y.position == 0.0


def test_dwell_limits_come_from_the_counter(beamline):
    counter, x, y = beamline

    class LimitedDwell(Signal):
        @property
        def limits(self) -> tuple[float, float]:
            return (0.0001, 10.0)

    counter.dwell = LimitedDwell(name="apd_dwell", value=0.001)
    with pytest.raises(
        PlanArgumentError, match=r"dwell_s = 20 s is out of range; allowed 0.0001 to 10 s"
    ):
        next(sample_image(counter, RasterRegion(x, 0, 1, 2, y, 0, 1, 2), 20))


def test_progress_counts_raster_points_only(RE, beamline):
    counter, x, y = beamline
    out = io.StringIO()
    monitor = Signal(name="ring_current", value=300.0)
    RE(
        sample_image(counter, RasterRegion(x, 0, 1, 3, y, 0, 1, 2), 0.001, monitors=[monitor]),
        ScanProgress(out),
    )
    text = out.getvalue()
    assert "6/6" in text
    assert "sample image" in text
    assert "success" in text


def _plan(counter, x, y, **change):
    args = {"x_center_um": 0.0, "x_range_um": 4.0, "x_points": 3, "y_center_um": 0.0}
    args |= {"y_range_um": 2.0, "y_points": 2}
    kwargs = {k: change.pop(k) for k in ("md", "readables") if k in change}
    dwell_s = change.pop("dwell_s", 0.001)
    args |= change
    return sample_image(counter, RasterRegion(x_motor=x, y_motor=y, **args), dwell_s, **kwargs)


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ("x_as_y", "x_motor and y_motor are the same device 'sample_x'"),
        ("swapped", "counter = 'sample_x' (LimitedAxis) is not a counter (it has no dwell"),
        ("counter_as_motor", "x_motor = 'apd' (ApdLike) cannot be moved (it has no set)"),
    ],
)
def test_devices_in_the_wrong_role_are_refused_before_any_message(beamline, roles, expected):
    counter, x, y = beamline

    class ApdLike:
        name = "apd"
        dwell = Signal(name="apd_dwell", value=0.0)

        def trigger(self): ...
        def read(self): ...
        def describe(self): ...

    with pytest.raises(PlanArgumentError) as info:  # the region's or the plan's check
        if roles == "x_as_y":
            next(_plan(counter, x, x))
        elif roles == "swapped":
            next(_plan(x, counter, y))
        else:
            next(_plan(counter, ApdLike(), y))
    assert expected in str(info.value)
    assert x.position == 0.0 and y.position == 0.0


def test_numpy_numbers_are_numbers_and_strings_are_not(RE, beamline):
    counter, x, y = beamline
    result, docs = run_and_collect(
        RE, _plan(counter, x, y, x_points=np.int64(3), x_center_um=np.float32(1.0))
    )
    assert result.exit_status == "success"
    assert docs[0][1]["shape"] == [2, 3]
    with pytest.raises(PlanArgumentError, match=r"x_center_um must be a number in um, got '0'"):
        next(_plan(counter, x, y, x_center_um="0"))
    with pytest.raises(PlanArgumentError, match="y_points must be a whole number"):
        next(_plan(counter, x, y, y_points=True))


def test_md_cannot_override_the_plans_own_keys(beamline):
    counter, x, y = beamline
    with pytest.raises(PlanArgumentError) as info:
        next(_plan(counter, x, y, md={"shape": [1, 1], "stxm_scan_type": "x", "user": "a"}))
    message = str(info.value)
    assert "md may not set shape, stxm_scan_type" in message
    assert "user" not in message.split("Reserved keys")[0]


def test_a_failed_read_drops_that_pixel_and_ends_the_run(RE, beamline):
    """As bluesky's trigger_and_read: no half-saved event, every earlier pixel kept."""
    counter, x, y = beamline

    class FlakySignal(Signal):
        def read(self):
            if (x.position, y.position) == (0.0, 1.0):  # the 5th pixel of 3 x 2
                raise OSError("readback lost")
            return super().read()

    flaky = FlakySignal(name="temperature", value=21.0)
    docs: list[tuple[str, dict]] = []
    with pytest.raises(OSError, match="readback lost"):
        RE(_plan(counter, x, y, readables=[flaky]), lambda n, d: docs.append((n, d)))
    events = [d for n, d in docs if n == "event"]
    assert len(events) == 4
    assert all(set(e["data"]) >= {"apd_counts", "temperature", "sample_x"} for e in events)
    assert docs[-1][0] == "stop" and docs[-1][1]["exit_status"] == "fail"
