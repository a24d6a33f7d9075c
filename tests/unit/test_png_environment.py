"""Saving a PNG leaves the process environment alone (a live Qt view may share the process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from PyQt5.QtGui import QImage

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    from stxm_ctrl.data.images import StxmImage
    from stxm_ctrl.views.png import save_image_png

    before = dict(os.environ)
    counts = np.arange(12.0).reshape(3, 4)
    image = StxmImage("uid-1", counts, np.arange(4.0), np.arange(3.0), counts, counts, 0.001,
                      {"scan_id": 1, "stxm_scan_type": "sample image"})
    path = save_image_png(image, sys.argv[1])
    after = dict(os.environ)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    print(json.dumps({"changed": changed, "png": str(path)}))
    """
)


def test_saving_a_png_without_a_screen_changes_no_environment_variable(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR"}
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "image.png")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["changed"] == []
    picture = QImage(report["png"])
    assert not picture.isNull() and picture.width() >= 600
    assert "XDG_RUNTIME_DIR" not in result.stderr  # Qt's complaint is not passed on
