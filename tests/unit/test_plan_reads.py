"""Plans read the hardware through the RunEngine (``bps.rd``), never with ``.get()`` behind
its back: every read is a message a RunEngine, a dry run or a test sees.

The devices are in-process (``ophyd.sim`` and soft signals), no IOC. A signal that cannot be
read outside a RunEngine stands for an instrument not there (a dry run on a laptop, a plan
checked before the beamline is up): a plan that called ``.get()`` on it would fail as it is
built, one that reads through the RunEngine yields its messages.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from ophyd import Component as Cpt
from ophyd import Signal
from ophyd.sim import SynAxis, SynSignal

from plans import RasterRegion, image_stack, point_spectrum, sample_image

POLARIZATIONS = ("Circular left", "Circular right")


class OnlyThroughTheRunEngine(Signal):
    """A signal whose value a plan may only have through the RunEngine (a ``read``)."""

    def get(self, **kwargs: Any) -> Any:
        if not getattr(self, "reading", False):
            raise RuntimeError(f"{self.name}.get() outside the RunEngine")
        return super().get(**kwargs)

    def read(self) -> Any:
        self.reading = True
        try:
            return super().read()
        finally:
            self.reading = False


class Undulator:
    def gap_mm(self, energy_eV: float, polarization: str) -> float:
        return 20.0 + energy_eV / 100.0


class FakeEnergy(SynAxis):
    """The energy device's plan-facing surface: a positioner with a focus policy."""

    focus_follows_energy = Cpt(OnlyThroughTheRunEngine, value=True)
    focus_offset_um = Cpt(OnlyThroughTheRunEngine, value=12.5)
    energy_range_eV = (250.0, 1000.0)
    undulator = Undulator()
    interlock = None


class FakePolarization(Signal):
    @property
    def position(self) -> str:
        return str(self._readback)


class TimedAxis(SynAxis):
    """A stage with a motor record's velocity and acceleration, readable only by the RE."""

    velocity = Cpt(OnlyThroughTheRunEngine, value=50.0)
    acceleration = Cpt(OnlyThroughTheRunEngine, value=0.1)


@pytest.fixture
def beamline():
    x, y = TimedAxis(name="sample_x"), TimedAxis(name="sample_y")
    counter = SynSignal(func=lambda: 100.0 * x.position + y.position, name="apd_counts")
    counter.dwell = Signal(name="apd_dwell", value=0.0)  # type: ignore[attr-defined]
    energy = FakeEnergy(name="energy")
    polarization = FakePolarization(name="polarization", value="Circular left")
    return counter, x, y, energy, polarization


@pytest.fixture
def RE(make_run_engine):
    return make_run_engine({}, call_returns_result=True)


def _run(RE, plan):
    messages: list[Any] = []
    docs: list[tuple[str, dict]] = []
    RE.msg_hook = messages.append
    RE(plan, lambda name, doc: docs.append((name, doc)))
    return messages, docs


def _events(docs, stream: str) -> list[dict]:
    uids = {d["uid"] for n, d in docs if n == "descriptor" and d["name"] == stream}
    return [d for n, d in docs if n == "event" and d["descriptor"] in uids]


def _reads_before_open(messages) -> set[str]:
    opened = next(i for i, m in enumerate(messages) if m.command == "open_run")
    return {m.obj.name for m in messages[:opened] if m.command == "read"}


def test_a_point_spectrum_reads_the_focus_policy_through_the_runengine(RE, beamline):
    counter, x, y, energy, polarization = beamline
    messages, docs = _run(
        RE, point_spectrum(counter, energy, polarization, x, 1.0, y, 2.0, [700, 705, 710], 0.01)
    )
    assert {"energy_focus_follows_energy", "energy_focus_offset_um"} <= _reads_before_open(
        messages
    )
    start = docs[0][1]
    assert start["focus_follows_energy"] is True and start["focus_offset_um"] == 12.5
    frames = _events(docs, "frames")
    assert [e["data"]["energy"] for e in frames] == [700, 705, 710]
    primary = _events(docs, "primary")
    assert [e["data"]["stack_frame"] for e in primary] == [0, 1, 2]
    assert all(e["data"]["sample_x"] == 1.0 and e["data"]["sample_y"] == 2.0 for e in primary)
    assert docs[-1][1]["exit_status"] == "success"


def test_an_image_stack_reads_its_estimate_inputs_through_the_runengine(RE, beamline):
    counter, x, y, energy, polarization = beamline
    region = RasterRegion(x, 0.0, 2.0, 3, y, 0.0, 1.0, 2)
    messages, docs = _run(
        RE, image_stack(counter, energy, polarization, region, [700, 710], 0.01, mode="step")
    )
    assert {"sample_x_velocity", "sample_x_acceleration", "sample_y_velocity"} <= (
        _reads_before_open(messages)
    )
    start = docs[0][1]
    # 2 um over 2 steps at 50 um/s, 0.1 s ramps: the estimate used the stages' settings.
    assert start["estimate"]["motion_s"] > 0
    assert start["plan_name"] == "image_stack" and start["shape"] == [2, 3]
    assert start["x_center_um"] == 0.0 and start["y_range_um"] == 1.0
    primary = _events(docs, "primary")
    assert len(primary) == 2 * 3 * 2 and len(_events(docs, "frames")) == 2
    frame = np.array([e["data"]["stack_frame"] for e in primary])
    assert list(frame) == [0] * 6 + [1] * 6
    xs = np.array([e["data"]["sample_x"] for e in primary[:6]])
    np.testing.assert_allclose(xs, [-1.0, 0.0, 1.0] * 2)


def test_sample_image_reads_its_estimate_inputs_through_the_runengine(RE, beamline):
    counter, x, y, _, _ = beamline
    region = RasterRegion(x, 0.0, 2.0, 3, y, 0.0, 1.0, 2)
    messages, docs = _run(RE, sample_image(counter, region, 0.01, mode="step"))
    assert {"sample_x_velocity", "sample_y_acceleration"} <= _reads_before_open(messages)
    assert docs[0][1]["estimate"]["motion_s"] > 0
    assert len(_events(docs, "primary")) == 6


@pytest.mark.parametrize("plan_of", ["point_spectrum", "image_stack"])
def test_a_dry_run_touches_no_device_behind_the_runengine(beamline, plan_of):
    # list() is a dry run: every message is answered with None, no RunEngine, no device.
    counter, x, y, energy, polarization = beamline
    region = RasterRegion(x, 0.0, 2.0, 3, y, 0.0, 1.0, 2)
    plan = {
        "point_spectrum": lambda: point_spectrum(
            counter, energy, polarization, x, 1.0, y, 2.0, [700, 705], 0.01
        ),
        "image_stack": lambda: image_stack(
            counter, energy, polarization, region, [700, 710], 0.01, mode="step"
        ),
    }[plan_of]()
    commands = [m.command for m in plan]
    assert "open_run" in commands and "read" in commands
