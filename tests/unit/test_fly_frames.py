"""How an image is divided into frames the piezo can fly, and how line events become an image."""

from __future__ import annotations

import numpy as np
import pytest

from plans.fly_image import PIEZO_MARGIN_UM, fly_frames
from plans.sample_image import sample_image_grid
from stxm_ctrl.data.images import image_from_lines

PIEZO = (-50.0, 50.0)


def _frames(xs, ys, coarse=(0.0, 0.0), snake=True):
    return fly_frames(
        xs,
        ys,
        0.001,
        snake=snake,
        piezo_x_limits_um=PIEZO,
        piezo_y_limits_um=PIEZO,
        coarse_x_um=coarse[0],
        coarse_y_um=coarse[1],
    )


def test_an_image_inside_the_piezo_range_is_one_frame_without_a_coarse_move():
    xs, ys = sample_image_grid(10, 20, 64), sample_image_grid(-5, 10, 32)
    (placed,) = _frames(xs, ys)
    assert (placed.coarse_x_um, placed.coarse_y_um) == (0.0, 0.0)
    frame = placed.frame
    assert (frame.start_x_um, frame.stop_x_um, frame.nx) == (0.0, 20.0, 64)
    assert (frame.start_y_um, frame.stop_y_um, frame.ny) == (-10.0, 0.0, 32)
    assert frame.first_row == 0 and frame.first_column == 0 and frame.snake


def test_an_image_beside_the_piezo_range_moves_the_coarse_stage_to_its_centre():
    xs, ys = sample_image_grid(200, 20, 16), sample_image_grid(-300, 10, 8)
    (placed,) = _frames(xs, ys)
    assert (placed.coarse_x_um, placed.coarse_y_um) == (200.0, -300.0)


def test_an_image_wider_and_taller_than_the_piezo_is_tiled_and_every_pixel_is_covered_once():
    xs, ys = sample_image_grid(0, 250, 251), sample_image_grid(0, 130, 27)
    placed = _frames(xs, ys)
    span = PIEZO[1] - PIEZO[0] - 2 * PIEZO_MARGIN_UM
    widths = {p.frame.nx for p in placed}
    assert len(widths) == 1  # lines of one length: one descriptor shape
    covered = np.zeros((27, 251), int)
    rows_seen = np.zeros(27, int)
    for p in placed:
        f = p.frame
        assert abs(f.stop_x_um - f.start_x_um) <= span and abs(f.stop_y_um - f.start_y_um) <= span
        # The frame lies within the piezo's range around where the coarse stage stands.
        for edge in (f.start_x_um, f.stop_x_um):
            assert PIEZO[0] < edge - p.coarse_x_um < PIEZO[1]
        for edge in (f.start_y_um, f.stop_y_um):
            assert PIEZO[0] < edge - p.coarse_y_um < PIEZO[1]
        covered[f.first_row : f.first_row + f.ny, f.first_column : f.first_column + f.nx] = 1
        if f.first_column == 0:
            rows_seen[f.first_row : f.first_row + f.ny] += 1
    assert covered.all()
    assert (rows_seen == 1).all()  # bands do not overlap: one line per row per column
    assert len(placed) == 3 * 2


def test_line_events_become_the_image_at_their_rows_and_columns():
    start = {"uid": "u", "extents": [[0, 3], [0, 5]], "shape": [4, 6], "dwell_s": 0.001}
    counts = np.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 9, 9, 9], [0, 1, 2, 3]])
    x = counts + 0.5
    rows = np.array([0, 0, 2, 2])
    columns = np.array([0, 2, 0, 2])
    image = image_from_lines(start, counts, x, x, rows, columns)
    assert image.shape == (4, 6)
    np.testing.assert_array_equal(image.counts[0], [1, 2, 5, 6, 7, 8])  # overlap: later wins
    np.testing.assert_array_equal(image.counts[2], [9, 9, 0, 1, 2, 3])
    assert np.isnan(image.counts[1]).all() and np.isnan(image.counts[3]).all()
    assert not image.complete
    assert image.x_readback_um[0, 1] == pytest.approx(2.5)
