"""Where a run looks at the sample, for the sample name the simulated beamline records."""

from __future__ import annotations

import pytest

from stxm_ctrl.app.instrument_state import sample_position_um

STAGE = {"sample_x_um": 300.0, "sample_y_um": 0.0}  # where the stage stands as the run opens


@pytest.mark.parametrize(
    ("md", "expected"),
    [
        ({"stxm_scan_type": "sample image", "x_center_um": 2.5, "y_center_um": -8.0}, (2.5, -8.0)),
        ({"stxm_scan_type": "sample image stack", "x_center_um": 1.0, "y_center_um": 2.0},
         (1.0, 2.0)),
        # Spectra by the plans' scan types and by NXstxm's names for them.
        ({"stxm_scan_type": "point spectrum", "x_center_um": 3.0, "y_center_um": 4.0},
         (3.0, 4.0)),
        ({"stxm_scan_type": "sample point spectrum", "x_center_um": 3.0, "y_center_um": 4.0},
         (3.0, 4.0)),
        ({"stxm_scan_type": "line spectrum", "line_start_um": [0.0, 300.0],
          "line_stop_um": [2.0, 302.0]}, (1.0, 301.0)),
        ({"stxm_scan_type": "sample line spectrum", "line_start_um": [0.0, 300.0],
          "line_stop_um": [2.0, 302.0]}, (1.0, 301.0)),
        # A focus scan: its line's centre on its own axis, the stage on the other.
        ({"stxm_scan_type": "sample focus", "x_field": "sample_x", "x_center_um": 2.5,
          "y_center_um": -3420.0}, (2.5, 0.0)),
        ({"stxm_scan_type": "sample focus", "x_field": "stage_y", "x_center_um": 5.0},
         (300.0, 5.0)),
        # OSA and detector scans: their centres are not on the sample.
        ({"stxm_scan_type": "osa image", "x_center_um": 0.0, "y_center_um": 0.0}, (300.0, 0.0)),
        ({"stxm_scan_type": "detector image", "x_center_um": 9.0, "y_center_um": 9.0},
         (300.0, 0.0)),
    ],
)  # fmt: skip
def test_a_run_looks_where_its_scan_is_centred_or_the_stage_stands(md, expected):
    assert sample_position_um({**STAGE, **md}) == pytest.approx(expected)


def test_without_a_stage_position_nothing_is_named():
    assert sample_position_um({"stxm_scan_type": "osa image"}) is None
