"""Render the pictures of docs/tutorial-xmcd.md from the simulator.

Starts a simulated fleet on free loopback ports in a temporary data directory (no catalog:
runs go to the spool), takes the tutorial's Fe L3 point spectrum and XMCD images, and saves
the PNGs next to this file::

    QT_QPA_PLATFORM=offscreen uv run python docs/images/render_xmcd.py
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from bluesky import plan_stubs as bps  # noqa: E402

from plans import RasterRegion, point_spectrum, xmcd_image  # noqa: E402
from sim_iocs.fleet import SimFleet  # noqa: E402
from sim_iocs.registry import INSTRUMENTS  # noqa: E402
from stxm_ctrl.analysis import xmcd_from_stack  # noqa: E402
from stxm_ctrl.app.session import build_session  # noqa: E402
from stxm_ctrl.config import load_config  # noqa: E402
from stxm_ctrl.processes import free_tcp_port  # noqa: E402
from stxm_ctrl.views.png import save_image_png, save_spectrum_png  # noqa: E402

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
                },
                "catalog": {"port": free_tcp_port()},
            }
        )
        flat = config.sim.magnetic_samples["vortex_flat"]
        tilted = config.sim.magnetic_samples["vortex_tilted"]
        with SimFleet(config), build_session(config, catalog=False, progress=False) as s:
            d = s.devices
            s.RE(bps.mv(d.polarization, "Circular left"))
            energies = [
                (695, 703, 1.0),
                (703.5, 712, 0.5),
                (713, 716, 1.0),
                (716.5, 724, 0.5),
                (725, 730, 1.0),
            ]
            x, y = flat.center_x_um + 0.5, flat.center_y_um  # on the centre disc

            def spectrum_at(x_um: float, y_um: float):
                return s.stack(
                    s.run(
                        point_spectrum(
                            d.apd,
                            d.energy,
                            d.polarization,
                            d.stage.x,
                            x_um,
                            d.stage.y,
                            y_um,
                            energies,
                            0.05,
                        )
                    )
                )

            disc, bare = spectrum_at(x, y), spectrum_at(x + 1.5, y)
            od = -np.log(disc.rate_Hz[:, 0, 0] / bare.rate_Hz[:, 0, 0])
            error = np.sqrt(1 / disc.counts[:, 0, 0] + 1 / bare.counts[:, 0, 0])
            path = save_spectrum_png(
                disc.energies_eV,
                od,
                HERE / "fe_l3_spectrum.png",
                errors=error,
                title="30 nm permalloy disc: OD against the bare membrane",
                edges_eV={"Fe L3": 706.8, "Fe L2": 719.9},
            )
            print(path)
            # The whole tilted disc; the flat disc's ~20 nm core in 10 nm pixels.
            for name, spec, size, points, dwell_s in (
                ("tilted", tilted, 2.6, 52, 0.002),
                ("flat", flat, 0.4, 41, 0.005),
            ):
                plan = xmcd_image(
                    d.apd,
                    d.energy,
                    d.polarization,
                    RasterRegion(
                        d.stage.x,
                        spec.center_x_um,
                        size,
                        points,
                        d.stage.y,
                        spec.center_y_um,
                        size,
                        points,
                    ),
                    706.8,
                    dwell_s,
                    mode="fly",
                    flyer=d.fly,
                )
                uid = s.run(plan)
                stack = s.stack(uid)
                result = xmcd_from_stack(stack, dead_time_ns=config.sim.apd.dead_time_ns)
                picture = dataclasses.replace(stack.images[0], counts=result.asymmetry)
                path = save_image_png(
                    picture,
                    HERE / f"xmcd_vortex_{name}.png",
                    scale_label="asymmetry",
                    title=f"XMCD asymmetry at Fe L3, vortex disc, tilt {spec.tilt_deg:g} deg",
                )
                print(path)
            s.RE(bps.mv(d.energy, config.sim.beam.energy_eV))


if __name__ == "__main__":
    main()
