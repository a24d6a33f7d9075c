"""The main job: one sample image of the test pattern on the simulated beamline.

:func:`run_demo` starts the simulated IOC fleet and (unless one is already running) the
embedded catalog, builds a session, rasters the test pattern with ``sample_image``, reads the
image back, saves a PNG, stops everything it started and returns a :class:`DemoResult`. The
``stxm demo`` command only parses its options and prints the result.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bluesky.utils import RunEngineInterrupted

from devices.stxm import optics_geometry, undulator_model
from plans import RasterRegion, sample_image
from plans.raster_grid import MAX_POINTS_PER_AXIS
from stxm_ctrl.app.session import Session, build_session
from stxm_ctrl.config import BeamlineConfig
from stxm_ctrl.data.catalog import catalog_uri, start_catalog_server
from stxm_ctrl.data.images import StxmImage
from stxm_ctrl.data.writers import estimate_spool_bytes, spool_file_for
from stxm_ctrl.disk import check_free_space, make_private_dir
from stxm_ctrl.errors import UsageError
from stxm_ctrl.launch import start_sim_fleet
from stxm_ctrl.locks import DataDirLock
from stxm_ctrl.physics.undulator import POLARIZATIONS
from stxm_ctrl.processes import tcp_answers
from stxm_ctrl.views.png import save_image_png

__all__ = [
    "DemoError",
    "DemoResult",
    "ScanEndedError",
    "check_demo_arguments",
    "check_data_dir",
    "run_demo",
]

# Names of the demo's arguments as the ``stxm demo`` command spells them.
CLI_NAMES = {
    "points": "--points",
    "range_um": "--range-um",
    "dwell_s": "--dwell-ms",
    "energy_eV": "--energy-eV",
    "mode": "--mode",
}


class DemoError(UsageError):
    """The demo cannot run with these arguments or this configuration (says why and what to do)."""


class ScanEndedError(RuntimeError):
    """The scan started but did not finish: interrupted (abort) or failed.

    Everything measured before the end is kept: in the spool file and, as far as the
    catalog took it, in the catalog.

    Attributes
    ----------
    uid
        The run's uid (None if it never opened).
    exit_status
        ``"abort"`` (Ctrl-C, SIGTERM, SIGHUP) or ``"fail"``.
    reason
        Why, as recorded in the run's stop document.
    points_measured, points_total
        Pixels measured, and the raster's size.
    spool_file
        Where every document of the run is.
    """

    def __init__(
        self,
        message: str,
        *,
        uid: str | None,
        exit_status: str,
        reason: str,
        points_measured: int,
        points_total: int,
        spool_file: Path | None,
    ) -> None:
        super().__init__(message)
        self.uid = uid
        self.exit_status = exit_status
        self.reason = reason
        self.points_measured = points_measured
        self.points_total = points_total
        self.spool_file = spool_file


def _finite_number(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise DemoError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_demo_arguments(
    config: BeamlineConfig,
    points: int,
    range_um: float,
    dwell_s: float,
    *,
    energy_eV: float | None = None,
    mode: str = "auto",
    names: dict[str, str] | None = None,
) -> None:
    """Refuse demo arguments the simulated beamline cannot take, before anything starts.

    The limits are the simulator's own (``[sim.stages.*]``, ``[sim.apd]``), so the check
    needs no running IOC; the plan checks again against what the IOCs report.

    Parameters
    ----------
    config
        The simulated beamline's configuration.
    points, range_um, dwell_s
        Pixels per axis, image width, dwell per pixel.
    energy_eV
        Photon energy to image at (None: where the beamline is). Checked against the
        beamline's range, the EPU and the optics' interlocks with the OSA where the
        simulator starts it.
    mode
        ``"auto"``, ``"fly"`` or ``"step"``; a fly scan's line speed (pixel step / dwell)
        must be one the fly controller does (``[sim.fly] max_line_speed_um_per_s``); with
        ``"auto"`` a line that would be too fast is stepped.
    names
        How to call each argument in messages (the CLI passes its option names).

    Raises
    ------
    DemoError
        Naming the argument, the allowed range and what to change.
    """
    label = {**{k: k for k in CLI_NAMES}, **(names or {})}
    if isinstance(points, bool) or not isinstance(points, int):
        raise DemoError(f"{label['points']} must be a whole number, got {points!r}")
    if not 1 <= points <= MAX_POINTS_PER_AXIS:
        raise DemoError(
            f"{label['points']} = {points} is out of range; allowed 1 to {MAX_POINTS_PER_AXIS} "
            "pixels per axis"
        )
    range_um = _finite_number(label["range_um"], range_um)
    dwell_s = _finite_number(label["dwell_s"], dwell_s)
    sim = config.sim
    if range_um <= 0:
        raise DemoError(f"{label['range_um']} must be > 0 um, got {range_um:g}")
    for axis, center in (
        ("sample_x", sim.sample.center_x_um),
        ("sample_y", sim.sample.center_y_um),
    ):
        stage = getattr(sim.stages, axis)
        low, high = center - range_um / 2, center + range_um / 2
        if low < stage.low_limit_um or high > stage.high_limit_um:
            widest = 2 * min(center - stage.low_limit_um, stage.high_limit_um - center)
            raise DemoError(
                f"{label['range_um']} = {range_um:g} um: the image from {low:g} to {high:g} um "
                f"leaves the limits of {axis} ({stage.low_limit_um:g} to "
                f"{stage.high_limit_um:g} um); give at most {widest:g} um"
            )
    apd = sim.apd
    if not apd.min_dwell_s <= dwell_s <= apd.max_dwell_s:
        scale = 1000.0 if label["dwell_s"].endswith("ms") else 1.0
        unit = "ms" if scale == 1000.0 else "s"
        raise DemoError(
            f"{label['dwell_s']} = {dwell_s * scale:g} {unit} is out of range; the APD counts "
            f"for {apd.min_dwell_s * scale:g} to {apd.max_dwell_s * scale:g} {unit}"
        )
    if energy_eV is not None:
        _check_energy(config, _finite_number(label["energy_eV"], energy_eV), label["energy_eV"])
    if mode not in ("auto", "fly", "step"):
        raise DemoError(f"{label['mode']} = {mode!r}: give fly, step or auto")
    if mode == "fly" and points > 1:  # "auto" steps instead
        speed = range_um / (points - 1) / dwell_s
        fastest = sim.fly.max_line_speed_um_per_s
        if speed > fastest:
            scale = 1000.0 if label["dwell_s"].endswith("ms") else 1.0
            raise DemoError(
                f"{label['range_um']} = {range_um:g} um over {label['points']} = {points} at "
                f"{label['dwell_s']} = {dwell_s * scale:g}: the fly lines would sweep at "
                f"{speed:g} um/s, faster than the fly controller's {fastest:g} um/s; give "
                f"{label['dwell_s']} >= {range_um / (points - 1) / fastest * scale:.3g}, more "
                f"{label['points']}, or {label['mode']} step"
            )


def _check_energy(config: BeamlineConfig, energy_eV: float, label: str) -> None:
    optics = config.optics
    low, high = optics.energy_min_eV, optics.energy_max_eV
    if not low <= energy_eV <= high:
        raise DemoError(
            f"{label} = {energy_eV:g} eV is out of range; the beamline delivers {low:g} to "
            f"{high:g} eV"
        )
    try:
        undulator_model(config).gap_mm(energy_eV, POLARIZATIONS[0])
        optics_geometry(config).check_energy(
            energy_eV,
            optics.a0_um,
            focus_offset_um=config.sim.optics.sample_z_offset_um,
            clip_first_order=True,
        )
    except ValueError as exc:
        raise DemoError(f"{label} = {energy_eV:g} eV: {exc}") from None


def check_data_dir(config: BeamlineConfig) -> Path:
    """The data directory, created (owner-only) and writable, or a :class:`DemoError`."""
    data_dir = config.data_dir
    if data_dir.exists() and not data_dir.is_dir():
        raise DemoError(
            f"data directory {data_dir} is a file; set [beamline] data_dir to a directory"
        )
    try:
        make_private_dir(data_dir)
    except OSError as exc:
        raise DemoError(
            f"data directory {data_dir} cannot be created ({exc.strerror}); set "
            "[beamline] data_dir to a directory you can write"
        ) from None
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise DemoError(
            f"data directory {data_dir} is not writable; set [beamline] data_dir to a "
            "directory you can write"
        )
    return data_dir


@dataclass(eq=False)  # hashable: bluesky keeps subscribers in a registry
class _RunRecord:
    """What the demo needs to know of the run it started, from the documents."""

    uid: str | None = None
    primary: set[str] = field(default_factory=set)
    events: int = 0  # pixels measured: one per event of a step scan, a line's of a fly scan
    stop: dict[str, Any] | None = None
    line_field: str | None = None  # fly scans: the counts of each line

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self.uid = doc["uid"]
            self.line_field = doc["counter_field"] if doc.get("scan_mode") == "fly" else None
        elif name == "descriptor" and doc.get("name") == "primary":
            self.primary.add(doc["uid"])
        elif name == "event" and doc.get("descriptor") in self.primary:
            self.events += 1
        elif name == "event_page" and doc.get("descriptor") in self.primary:
            if self.line_field is not None:
                self.events += sum(len(line) for line in doc["data"].get(self.line_field, ()))
            else:
                self.events += len(doc.get("seq_num", ()))
        elif name == "stop":
            self.stop = doc


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
    nexus_file
        The run's NXstxm file, or None if it could not be written (the log says why).
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
    nexus_file: Path | None = None

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
    energy_eV: float | None = None,
    mode: str = "auto",
    progress: bool = True,
    say: Callable[[str], None] = print,
    names: dict[str, str] | None = None,
) -> DemoResult:
    """Acquire one ``points`` x ``points`` image of the test pattern on the simulated beamline.

    Every argument and the data directory are checked before anything starts. The demo
    holds the data directory's ``sim`` lock (and its ``catalog`` lock when it starts the
    catalog) for its whole life, so a second demo, or a ``stxm sim`` on the same data
    directory, is refused at once with this one's process id.

    Parameters
    ----------
    config
        Configuration; it must describe the simulated beamline (no ``[epics]
        ca_addr_list``): the demo rasters the stages it connects to.
    points, range_um, dwell_s
        Pixels per axis, image width and height, dwell per pixel.
    energy_eV
        Move to this photon energy first (monochromator, EPU gap and focus together);
        None images at the energy the simulator starts at (``[sim.beam] energy_eV``).
    mode
        ``"auto"`` (fly, line by line, unless the image is narrower than
        :data:`plans.raster_grid.FLY_MIN_X_POINTS`), ``"fly"`` or ``"step"``.
    progress
        Show a progress bar.
    say
        Receives one line per step (starting servers, ...).
    names
        How to call the arguments in messages (see :func:`check_demo_arguments`).

    Returns
    -------
    DemoResult
        The run, its image, the PNG and where everything is.

    Raises
    ------
    DemoError
        If an argument, the configuration or the data directory cannot be used.
    DataDirInUseError
        If another command holds the data directory.
    ScanEndedError
        If the scan was interrupted (Ctrl-C: the run is closed as aborted) or failed (a
        device timed out or disconnected); everything measured is kept.
    """
    if not config.simulated:
        raise DemoError(
            f"`stxm demo` runs only on the simulated beamline, but {config.source} sets "
            f"[epics] ca_addr_list = {config.epics.ca_addr_list}; leave it empty for the demo "
            "and acquire on real IOCs from a session (see docs/how-to/real-iocs.md)"
        )
    check_demo_arguments(
        config, points, range_um, dwell_s, energy_eV=energy_eV, mode=mode, names=names
    )
    data_dir = check_data_dir(config)
    check_free_space(
        data_dir, estimate_spool_bytes(points * points), what=f"a {points} x {points} image"
    )
    say(f"data directory: {data_dir}")
    with contextlib.ExitStack() as stack:
        stack.enter_context(DataDirLock(data_dir, "stxm demo", part="sim"))
        # Start both servers first, then wait: the catalog takes longer to come up.
        say(
            "starting the simulated IOCs (sample stages, APD counter, storage ring, optics, "
            "detector stage, monochromator and EPU) ..."
        )
        fleet = stack.enter_context(start_sim_fleet(config))
        catalog = config.catalog
        if catalog.embedded and tcp_answers(catalog.host, catalog.port):
            say(f"using the catalog already running at {catalog_uri(config)}")
        elif catalog.embedded:
            stack.enter_context(DataDirLock(data_dir, "stxm demo", part="catalog"))
            say(f"starting the catalog (Tiled, SQLite in {data_dir}) ...")
            stack.enter_context(start_catalog_server(config, say=say))
        fleet.wait_ready(config.sim.start_timeout_s, say=say)
        session = stack.enter_context(build_session(config, progress=progress))
        devices = session.devices
        if energy_eV is not None:
            say(f"moving to {energy_eV:g} eV (monochromator, EPU gap and zone-plate focus) ...")
            # The simulator starts in focus: keep that focus while the energy changes.
            devices.energy.focus_here()
            devices.energy.move(energy_eV, wait=True)
        sample = config.sim.sample
        record = _RunRecord()
        token = session.RE.subscribe(record)
        started = time.monotonic()
        region = RasterRegion(
            devices.stage.x,
            sample.center_x_um,
            range_um,
            points,
            devices.stage.y,
            sample.center_y_um,
            range_um,
            points,
            snake=True,
        )
        args = (devices.apd, region, dwell_s)
        options = {"mode": mode, "flyer": devices.fly}
        estimate = session.estimate(*args, **options)
        say(_MODE_LINES[estimate.mode].format(estimate=estimate))
        plan = sample_image(
            *args, **options, monitors=[devices.ring.current], md={"purpose": "stxm demo"}
        )
        try:
            uid = session.run(plan)
        except RunEngineInterrupted:
            session.abort(_INTERRUPTED)
            raise _ended(session, record, points, _INTERRUPTED) from None
        except Exception as exc:
            if record.uid is None or record.stop is None:
                raise
            raise _ended(session, record, points, str(exc) or type(exc).__name__) from exc
        finally:
            session.RE.unsubscribe(token)
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
            nexus_file=session.data.nexus.written.get(uid) if session.data.nexus else None,
        )
    raise AssertionError("unreachable")  # ExitStack does not swallow exceptions


_CATALOG_FLUSH_S = 60.0
_MODE_LINES = {
    "fly": "fly scan, line by line: the piezo sweeps each line while the counter bins photons "
    "by the interferometer's position ({estimate}; --mode step for point by point)",
    "step": "step scan, point by point ({estimate})",
}
_INTERRUPTED = "interrupted by the user (Ctrl-C, SIGTERM or SIGHUP) during stxm demo"


def _ended(session: Session, record: _RunRecord, points: int, why: str) -> ScanEndedError:
    """The exception for a run that ended early, after its documents are written."""
    stop = record.stop or {}
    status = stop.get("exit_status", "abort")
    reason = stop.get("reason") or why
    spool = spool_file_for(session.spool.spool_dir, record.uid) if record.uid else None
    total = points * points
    what = "aborted" if status == "abort" else "failed"
    writer = session.catalog_writer
    in_catalog = (
        writer is not None
        and writer.flush(_CATALOG_FLUSH_S, open_runs=True)
        and record.uid not in writer.failed_runs
    )
    where = (
        f"in {spool} and in the catalog"
        if in_catalog
        else f"in {spool}; put them in the catalog with `stxm import-spool {spool}`"
    )
    return ScanEndedError(
        f"scan {what}: {reason}; run {record.uid} kept {record.events} of {total} points, "
        f"every one {where}",
        uid=record.uid,
        exit_status=status,
        reason=reason,
        points_measured=record.events,
        points_total=total,
        spool_file=spool,
    )
