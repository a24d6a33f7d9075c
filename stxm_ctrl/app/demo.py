"""The main job: one sample image of the test pattern on the simulated beamline.

:func:`run_demo` starts the simulated IOC fleet and (unless one is already running) the
embedded catalog, builds a session, rasters the test pattern with ``sample_image``, reads the
image back, saves a PNG, stops everything it started and returns a :class:`DemoResult`. The
``stxm demo`` command only parses its options and prints the result.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from plans import sample_image
from stxm_ctrl.app.session import build_session
from stxm_ctrl.config import BeamlineConfig
from stxm_ctrl.data.catalog import catalog_uri, start_catalog_server
from stxm_ctrl.data.images import StxmImage
from stxm_ctrl.data.writers import spool_file_for
from stxm_ctrl.launch import start_sim_fleet
from stxm_ctrl.processes import tcp_answers
from stxm_ctrl.views.png import save_image_png

__all__ = ["DemoError", "DemoResult", "run_demo"]


class DemoError(ValueError):
    """The demo cannot run with this configuration (the message says why and what to do)."""


@dataclass(frozen=True)
class DemoResult:
    """What one demo acquisition produced.

    Attributes
    ----------
    uid
        The run's uid.
    image
        The image read back (from the catalog, or the spool if the catalog failed).
    png
        The PNG file saved.
    spool_file
        The run's documents, as spooled.
    catalog_uri
        The catalog the run went to.
    elapsed_s
        Wall time of the scan itself.
    range_um, dwell_s
        Scan width and dwell per pixel.
    """

    uid: str
    image: StxmImage
    png: Path
    spool_file: Path
    catalog_uri: str
    elapsed_s: float
    range_um: float
    dwell_s: float

    @property
    def points(self) -> int:
        """Pixels measured."""
        return int(self.image.counts.size)

    @property
    def ms_per_point(self) -> float:
        """Wall time per pixel, ms."""
        return 1000.0 * self.elapsed_s / max(self.points, 1)


def run_demo(
    config: BeamlineConfig,
    *,
    points: int = 64,
    range_um: float = 22.0,
    dwell_s: float = 0.001,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> DemoResult:
    """Acquire one ``points`` x ``points`` image of the test pattern on the simulated beamline.

    Parameters
    ----------
    config
        Configuration; it must describe the simulated beamline (no ``[epics]
        ca_addr_list``): the demo rasters the stages it connects to.
    points, range_um, dwell_s
        Pixels per axis, image width and height, dwell per pixel.
    progress
        Show a progress bar.
    say
        Receives one line per step (starting servers, ...).

    Returns
    -------
    DemoResult
        The run, its image, the PNG and where everything is.

    Raises
    ------
    DemoError
        If the configuration points at real IOCs.
    """
    if not config.simulated:
        raise DemoError(
            f"`stxm demo` runs only on the simulated beamline, but {config.source} sets "
            f"[epics] ca_addr_list = {config.epics.ca_addr_list}; leave it empty for the demo "
            "and acquire on real IOCs from a session (see docs/how-to/real-iocs.md)"
        )
    data_dir = config.data_dir
    say(f"data directory: {data_dir}")
    with contextlib.ExitStack() as stack:
        # Start both servers first, then wait: the catalog takes longer to come up.
        say("starting the simulated IOCs (sample stages, APD counter, storage ring) ...")
        fleet = stack.enter_context(start_sim_fleet(config))
        catalog = config.catalog
        if catalog.embedded and tcp_answers(catalog.host, catalog.port):
            say(f"using the catalog already running at {catalog_uri(config)}")
        elif catalog.embedded:
            say(f"starting the catalog (Tiled, SQLite in {data_dir}) ...")
            stack.enter_context(start_catalog_server(config))
        fleet.wait_ready()
        session = stack.enter_context(build_session(config, progress=progress))
        devices = session.devices
        sample = config.sim.sample
        started = time.monotonic()
        uid = session.run(
            sample_image(
                devices.apd,
                devices.sample_x,
                sample.center_x_um,
                range_um,
                points,
                devices.sample_y,
                sample.center_y_um,
                range_um,
                points,
                dwell_s=dwell_s,
                snake=True,
                monitors=[devices.ring.current],
                md={"purpose": "stxm demo"},
            )
        )
        elapsed = time.monotonic() - started
        image = session.image(uid)
        scan_id = image.start.get("scan_id", 0)
        png = save_image_png(image, data_dir / "images" / f"scan{scan_id}_{uid[:8]}.png")
        return DemoResult(
            uid=uid,
            image=image,
            png=png,
            spool_file=spool_file_for(session.spool.spool_dir, uid),
            catalog_uri=catalog_uri(config),
            elapsed_s=elapsed,
            range_um=range_um,
            dwell_s=dwell_s,
        )
    raise AssertionError("unreachable")  # ExitStack does not swallow exceptions
