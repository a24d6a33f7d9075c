"""Render the pictures of docs/how-to/align-the-optics.md from the simulator.

Starts a simulated fleet on free loopback ports in a temporary data directory (no catalog:
runs go to the spool), runs the four alignment scans as the how-to shows them, and saves
one PNG per scan next to this file::

    QT_QPA_PLATFORM=offscreen uv run python docs/images/render_alignment.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from plans import RasterRegion, detector_image, osa_focus, osa_image, sample_focus  # noqa: E402
from sim_iocs.fleet import SimFleet  # noqa: E402
from sim_iocs.registry import INSTRUMENTS  # noqa: E402
from stxm_ctrl.app.session import build_session  # noqa: E402
from stxm_ctrl.config import load_config  # noqa: E402
from stxm_ctrl.processes import free_tcp_port  # noqa: E402
from stxm_ctrl.views.png import save_image_png  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Run the scans and write the PNGs."""
    with tempfile.TemporaryDirectory() as data_dir:
        config = load_config(
            overrides={
                "beamline": {"data_dir": data_dir},
                "sim": {
                    "iocs": {i.name: {"port": free_tcp_port()} for i in INSTRUMENTS},
                    "repeater_port": free_tcp_port(),
                    "random_seed": 7,
                    "optics": {"sample_z_offset_um": 6.0},
                },
                "catalog": {"port": free_tcp_port()},
            }
        )
        with SimFleet(config):
            with build_session(config, catalog=False, progress=False) as s:
                d = s.devices
                z_sign = config.optics.z_sign
                f_um = d.energy.optics.focal_length_um(float(d.energy.mono.readback.get()))
                a0_um = z_sign * float(d.osa.z.user_readback.get())
                uid = s.execute(
                    detector_image(
                        d.apd,
                        RasterRegion(d.detector.x, 0, 2000, 31, d.detector.y, 0, 2000, 31),
                        0.001,
                        osa=d.osa,
                    )
                ).uid
                _save(s, uid, "detector_image")
                d.sample_x.move(config.sim.sample.chip_size_um / 2 + 200.0, wait=True)
                uid = s.execute(
                    osa_image(d.apd, RasterRegion(d.osa.x, 0, 120, 61, d.osa.y, 0, 120, 61), 0.001)
                ).uid
                _save(s, uid, "osa_image")
                crossing = z_sign * (f_um + a0_um)
                uid = s.execute(
                    osa_focus(
                        d.apd, d.zone_plate.z, crossing, 4000, 41, d.osa.x, 4, 200, 81, 0.001
                    )
                ).uid
                _save(s, uid, "osa_focus")
                d.sample_x.move(0.0, wait=True)
                d.sample_y.move(-8.0, wait=True)
                focus = z_sign * f_um
                uid = s.execute(
                    sample_focus(
                        d.apd,
                        d.zone_plate.z,
                        focus + z_sign * 6.0,
                        30,
                        31,
                        d.sample_x,
                        2.5,
                        1.2,
                        61,
                        0.001,
                    )
                ).uid
                _save(s, uid, "sample_focus")


def _save(session, uid: str, name: str) -> None:
    image = session.image(uid)
    path = save_image_png(image, HERE / f"{name}.png", title=name.replace("_", " "))
    print(f"{path} ({path.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
