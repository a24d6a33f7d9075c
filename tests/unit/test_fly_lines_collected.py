"""LineFlyer takes each published line exactly once, whole, whatever order and repeats its
monitor updates arrive in (fake signals fed the updates a Channel Access server sends)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from ophyd.sim import FakeEpicsSignal, fake_device_cache, make_fake_device
from ophyd.status import Status

from devices.fly import FrameSpec, LineFlyer
from devices.signals import BoundedEpicsSignal
from stxm_ctrl.physics.fly_line import LINE_STATUSES, LineData, pack_line

NX = 16
FIRST_SEQ = 100  # lines the controller published before this frame


@pytest.fixture
def flyer(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(fake_device_cache, BoundedEpicsSignal, FakeEpicsSignal)
    device = make_fake_device(LineFlyer)("SIM:FLY:", name="fly")
    _deliver(device, [("LINE:SEQ", FIRST_SEQ), ("LINE:DATA", np.zeros(1))])
    device.busy.sim_put(0)
    device.frame_time.sim_put(1.0)
    frame_done = Status()
    # The frame's put completes when the test says the controller has ended the frame.
    monkeypatch.setattr(device.arm, "set", lambda *a, **k: frame_done)
    device.frame = FrameSpec(
        start_x_um=0.0,
        stop_x_um=1.5,
        nx=NX,
        start_y_um=0.0,
        stop_y_um=0.3,
        ny=4,
        dwell_s=0.001,
        snake=False,
        first_row=10,
    )
    device.kickoff()
    device.busy.sim_put(1)
    return device, frame_done


def _line(index: int) -> LineData:
    """Line ``index`` as the controller measures it: counts that say which line they are."""
    return LineData(
        counts=(1000 * index + np.arange(NX)).astype(np.int32),
        x_um=0.1 * np.arange(NX),
        y_um=np.full(NX, 0.1 * index),
        dwell_s=np.full(NX, 0.001),
    )


def _updates(index: int) -> list[tuple[str, Any]]:
    """The monitor updates the controller posts for line ``index``, in its order."""
    line, seq = _line(index), FIRST_SEQ + 1 + index
    return [
        ("LINE:DATA", pack_line(seq, index, 0, line)),
        ("LINE:INDEX", index),
        ("LINE:STATUS", LINE_STATUSES[0]),
        ("LINE:NPIX", NX),
        ("LINE:COUNTS", line.counts),
        ("LINE:X", line.x_um),
        ("LINE:Y", line.y_um),
        ("LINE:DWELL", line.dwell_s),
        ("LINE:SEQ", seq),
    ]


def _deliver(device: LineFlyer, updates: list[tuple[str, Any]]) -> None:
    """Hand the device the updates of the PVs it has (as its monitors would)."""
    by_pv = {
        getattr(type(device), name).suffix: getattr(device, name)  # the PV after the prefix
        for name in device.component_names
        if hasattr(getattr(device, name), "sim_put")
    }
    for pv, value in updates:
        signal = by_pv.get(pv)
        if signal is not None:
            signal.sim_put(value)


def _collected_rows(device: LineFlyer) -> list[tuple[int, np.ndarray]]:
    rows = []
    for page in device.collect_pages():
        rows += list(zip(page["data"]["fly_row"], page["data"]["fly_counts"], strict=True))
    return [(row, np.asarray(counts)) for row, counts in rows]


@pytest.mark.parametrize(
    "survived",
    [
        pytest.param((), id="line-1-again"),  # what a demo under load recorded
        pytest.param(("LINE:INDEX", "LINE:STATUS"), id="line-2-torn"),
    ],
)
def test_lines_are_taken_once_and_whole_when_updates_are_dropped_and_resent(flyer, survived):
    device, frame_done = flyer
    _deliver(device, _updates(0))
    _deliver(device, _updates(1))
    # The client fell behind: libca turned events off, the server dropped the updates of
    # line 2 it had queued (all of them, or all but the first few sent already), and when
    # events came back on resent SEQ, posted while they were off.
    _deliver(device, [u for u in _updates(2) if u[0] in survived])
    _deliver(device, [u for u in _updates(2) if u[0] == "LINE:SEQ"])
    # Line 3 arrives, then the resend of its updates (current values) once more.
    _deliver(device, _updates(3))
    _deliver(device, _updates(3))
    frame_done.set_finished()
    device.complete().wait(5)

    rows = _collected_rows(device)
    assert [row for row, _ in rows] == [10, 11, 13]  # each once; row 12 never arrived whole
    for row, counts in rows:
        np.testing.assert_array_equal(counts, _line(row - 10).counts)  # its own data
    assert sorted(device.lines_received()) == [0, 1, 3]  # line 2 is measured again
    assert not list(device.failed_lines.collect_pages())


def test_a_repeated_or_stale_line_is_not_taken_again(flyer):
    device, frame_done = flyer
    for index in range(4):
        _deliver(device, _updates(index))
        _deliver(device, _updates(index)[:1] + _updates(index)[-1:])  # DATA and SEQ again
    _deliver(device, _updates(1))  # a late copy of an earlier line
    frame_done.set_finished()
    device.complete().wait(5)
    assert [row for row, _ in _collected_rows(device)] == [10, 11, 12, 13]
