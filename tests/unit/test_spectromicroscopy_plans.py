"""XMCD frame order and the time estimate of spectra and stacks (no IOCs)."""

import numpy as np
import pytest

from plans.estimates import (
    ENERGY_MOVE_S,
    HELICITY_SWITCH_S,
    ScanEstimate,
    estimate_spectromicroscopy,
)
from plans.spectromicroscopy import xmcd_frames

PLUS, MINUS = "Circular left", "Circular right"


def test_xmcd_frames_alternate_so_the_epu_switches_once_per_pair():
    frames = xmcd_frames(np.array([706.0, 707.0, 708.0]), PLUS, MINUS)
    assert frames == [
        (706.0, PLUS),
        (706.0, MINUS),
        (707.0, MINUS),
        (707.0, PLUS),
        (708.0, PLUS),
        (708.0, MINUS),
    ]
    abba = xmcd_frames(np.array([706.8]), PLUS, MINUS, pairs=2)
    assert [p for _, p in abba] == [PLUS, MINUS, MINUS, PLUS]


def test_the_estimate_counts_energy_moves_and_helicity_switches():
    frames = xmcd_frames(np.array([706.0, 707.0, 708.0]), PLUS, MINUS)
    frame = ScanEstimate("fly", 12.0, 10.0, 1.5, 0.5, 10_000, frames=1, lines=100)
    estimate = estimate_spectromicroscopy(
        frames=frames, pixels=10_000, dwell_s=0.001, mode="fly", frame_estimate=frame
    )
    assert estimate.counting_s == pytest.approx(6 * 10.0)
    # 3 energy moves and 3 switches (one per pair; consecutive pairs meet in one helicity).
    assert estimate.motion_s == pytest.approx(6 * 1.5 + 3 * ENERGY_MOVE_S + 3 * HELICITY_SWITCH_S)
    assert estimate.lines == 600 and estimate.points == 60_000
    spectrum = estimate_spectromicroscopy(
        frames=[(e, None) for e in (700.0, 701.0)], pixels=1, dwell_s=0.1, mode="step"
    )
    assert spectrum.counting_s == pytest.approx(0.2)
    assert spectrum.motion_s == pytest.approx(2 * ENERGY_MOVE_S)
