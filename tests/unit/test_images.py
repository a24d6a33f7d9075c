"""Runs back to images: raster order, snake undone, partial runs padded with NaN."""

from __future__ import annotations

import numpy as np

from stxm_ctrl.data.images import image_from_columns, image_from_documents


def start_doc(ny: int, nx: int, snake: bool) -> dict:
    return {
        "uid": "run-1",
        "shape": [ny, nx],
        "extents": [[-1.0, 1.0], [-3.0, 3.0]],
        "snaking": [False, snake],
        "dwell_s": 0.002,
    }


def acquisition_order(truth: np.ndarray, snake: bool) -> np.ndarray:
    rows = [row[::-1] if (snake and i % 2) else row for i, row in enumerate(truth)]
    return np.concatenate(rows)


def test_plain_raster_fills_rows_from_low_y():
    truth = np.arange(12.0).reshape(3, 4)
    flat = acquisition_order(truth, snake=False)
    image = image_from_columns(start_doc(3, 4, False), flat, flat, flat)
    np.testing.assert_array_equal(image.counts, truth)
    np.testing.assert_allclose(image.x_um, np.linspace(-3, 3, 4))
    np.testing.assert_allclose(image.y_um, np.linspace(-1, 1, 3))
    assert image.shape == (3, 4)
    assert image.complete
    assert image.dwell_s == 0.002


def test_snake_is_undone():
    truth = np.arange(20.0).reshape(4, 5)
    flat = acquisition_order(truth, snake=True)
    image = image_from_columns(start_doc(4, 5, True), flat, flat, flat)
    np.testing.assert_array_equal(image.counts, truth)
    np.testing.assert_array_equal(image.x_readback_um, truth)


def test_stopped_run_keeps_what_was_measured_and_marks_the_rest_nan():
    truth = np.arange(20.0).reshape(4, 5)
    flat = acquisition_order(truth, snake=True)[:8]  # stopped in the second row
    image = image_from_columns(start_doc(4, 5, True), flat, flat, flat)
    assert not image.complete
    np.testing.assert_array_equal(image.counts[0], truth[0])
    # Second row ran backwards: its last three pixels (x high to low) were measured.
    np.testing.assert_array_equal(image.counts[1, 2:], truth[1, 2:])
    assert np.isnan(image.counts[1, :2]).all()
    assert np.isnan(image.counts[2:]).all()


def test_empty_run_is_all_nan():
    empty = np.array([])
    image = image_from_columns(start_doc(2, 2, False), empty, empty, empty)
    assert image.shape == (2, 2)
    assert np.isnan(image.counts).all()


def test_image_from_the_documents_of_a_run_cut_off_mid_scan():
    from event_model import compose_run

    md = {k: v for k, v in start_doc(2, 3, True).items() if k != "uid"}
    md.update(stxm_scan_type="sample image", counter_field="apd_counts")
    bundle = compose_run(metadata={**md, "x_field": "sample_x", "y_field": "sample_y"})
    keys = {
        k: {"source": "sim", "dtype": "number", "shape": []}
        for k in ("apd_counts", "sample_x", "sample_y")
    }
    primary = bundle.compose_descriptor(name="primary", data_keys=keys)
    monitor = bundle.compose_descriptor(
        name="ring_current_monitor",
        data_keys={"apd_counts": {"source": "sim", "dtype": "number", "shape": []}},
    )
    docs = [
        ("start", bundle.start_doc),
        ("descriptor", primary.descriptor_doc),
        ("descriptor", monitor.descriptor_doc),
    ]
    for i, (x, y) in enumerate([(0, 0), (1, 0), (2, 0), (2, 1)]):
        data = {"apd_counts": 10 * i, "sample_x": x, "sample_y": y}
        docs.append(("event", primary.compose_event(data=data, timestamps=dict.fromkeys(data, 0))))
        # Events of another stream must not land in the image.
        docs.append(
            ("event", monitor.compose_event(data={"apd_counts": -1}, timestamps={"apd_counts": 0}))
        )
    image = image_from_documents(docs)
    np.testing.assert_array_equal(image.counts[0], [0, 10, 20])
    assert image.counts[1, 2] == 30
    assert np.isnan(image.counts[1, :2]).all()
    np.testing.assert_array_equal(image.x_readback_um[1, 2], 2)
