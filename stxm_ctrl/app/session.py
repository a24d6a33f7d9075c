"""A working session, built from two pieces that the queue server and the tests use too.

- :func:`connect_devices` builds the microscope's devices from the configuration and
  connects them;
- :func:`wire_data_path` subscribes a RunEngine to the data path: the local spool, the
  catalog writer and the scan numbers that keep counting across sessions.

:func:`build_session` composes both with a RunEngine and a progress bar; the queue-server
startup module (:mod:`stxm_ctrl.app.queue_startup`) composes the same two with the queue
server's RunEngine. From IPython (with ``stxm sim`` and ``stxm serve`` running, or against
real IOCs)::

    from stxm_ctrl.app import build_session
    from plans import RasterRegion, sample_image

    with build_session() as s:
        d = s.devices
        region = RasterRegion(d.stage.x, 0, 20, 64, d.stage.y, 0, 20, 64)
        (uid,) = s.RE(sample_image(d.apd, region, dwell_s=0.001))
        image = s.image(uid)

Nothing is global: each call builds its own RunEngine and devices.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from bluesky import RunEngine
from bluesky import preprocessors as bpp
from bluesky.run_engine import RunEngineResult
from bluesky.utils import Msg

from devices import StxmDevices, build_devices
from plans.estimates import CostLearner, ScanCosts, ScanEstimate, estimate_sample_image
from stxm_ctrl.app.instrument_state import record_instrument_state
from stxm_ctrl.config import BeamlineConfig, load_config
from stxm_ctrl.data.catalog import catalog_uri, close_catalog, connect_catalog
from stxm_ctrl.data.images import StxmImage, image_from_documents, image_from_run
from stxm_ctrl.data.nexus_files import NexusFileWriter
from stxm_ctrl.data.nexus_writer import NXSTXM_SCAN_TYPES, estimate_nexus_bytes
from stxm_ctrl.data.stacks import StxmStack, stack_from_documents, stack_from_run
from stxm_ctrl.data.writers import (
    CatalogWriter,
    DocumentSpool,
    estimate_spool_bytes,
    read_spool_file,
    spool_file_for,
)
from stxm_ctrl.disk import check_free_space, same_disk
from stxm_ctrl.epics_env import apply_ca_client_environment
from stxm_ctrl.progress import ScanProgress
from stxm_ctrl.scan_ids import ScanIdFile

__all__ = [
    "AbortReason",
    "DataPath",
    "Session",
    "build_session",
    "close_run_engine",
    "connect_devices",
    "session_metadata",
    "wire_data_path",
]

log = logging.getLogger(__name__)

SCAN_ID_FILE = "last_scan_id"


def close_run_engine(RE: RunEngine, timeout_s: float = 5.0) -> None:
    """Stop and close the event loop a RunEngine runs in its own thread.

    bluesky's RunEngine starts a new asyncio loop in a daemon thread and has no method to
    end it; a process that builds sessions one after another (tests, a queue worker that
    reloads) would otherwise keep one loop, its thread and its sockets per RunEngine.
    """
    loop = RE.loop
    if loop.is_closed():
        return
    if loop.is_running():
        loop.call_soon_threadsafe(loop.stop)
        deadline = time.monotonic() + timeout_s
        while loop.is_running() and time.monotonic() < deadline:
            time.sleep(0.005)
    if not loop.is_running():
        loop.close()


def connect_devices(config: BeamlineConfig, *, connect: bool = True) -> StxmDevices:
    """Build the microscope's devices from ``config`` and connect them.

    Sets this process's Channel Access client environment first (pyepics reads it only
    from the environment, once): the configured servers, or the simulated fleet's.

    Raises
    ------
    FleetNotRunningError
        If the configuration means the simulated beamline and no fleet runs for it.
    TimeoutError
        If ``connect`` and a device's IOC does not answer (names the devices).
    """
    apply_ca_client_environment(config)
    devices = build_devices(config)
    if connect:
        devices.wait_for_connection(config.epics.connection_timeout_s)
    return devices


def session_metadata(config: BeamlineConfig) -> dict[str, Any]:
    """Metadata every run records: the beamline, ``[experiment]`` proposal and user when set.

    The instrument's state (energy, optics and, on the simulator, the sample in the beam)
    is read as each run opens (:mod:`stxm_ctrl.app.instrument_state`); on a real beamline
    the scientist names the sample (``RE.md["sample_name"]`` or a plan's ``md``).
    """
    md: dict[str, Any] = {"beamline_id": config.beamline.name}
    experiment = config.experiment
    who = {"proposal_id": experiment.proposal_id, "user": experiment.user}
    md |= {key: value for key, value in who.items() if value}
    return md


class AbortReason:
    """RunEngine preprocessor that puts why a run was aborted into its stop document.

    bluesky's ``RE.abort(reason)`` does not reach the stop document when the plan closes its
    own run (``run_wrapper`` closes it with no reason), so a run aborted by Ctrl-C reads
    ``reason: ""``. :meth:`Session.abort` (or :meth:`DataPath.abort`) records the reason
    here first; an aborted run whose close has no reason gets it.
    """

    def __init__(self) -> None:
        self.reason = ""

    def __call__(self, plan: Iterable[Msg]) -> Any:
        return bpp.msg_mutator(plan, self._fill)

    def _fill(self, msg: Msg) -> Msg:
        kwargs = msg.kwargs
        if msg.command == "close_run" and kwargs.get("exit_status") == "abort":
            if not kwargs.get("reason"):
                return msg._replace(kwargs={**kwargs, "reason": self.reason or "aborted"})
        return msg


@dataclass
class DataPath:
    """Where a RunEngine's documents go: the spool, the catalog, and its scan numbers.

    A context manager: leaving it (or :meth:`close`) finishes writing to the catalog and
    unsubscribes from the RunEngine.

    Attributes
    ----------
    RE
        The RunEngine it is subscribed to.
    spool
        Local JSON Lines copy of every run (``data_dir/spool``).
    catalog
        Tiled client of the catalog, or None when runs go only to the spool.
    catalog_writer
        The background writer to the catalog, or None.
    nexus
        The writer of each run's NXstxm file (``[nexus]``), or None when disabled.
    """

    RE: RunEngine
    spool: DocumentSpool
    catalog: Any | None = None
    catalog_writer: CatalogWriter | None = None
    nexus: NexusFileWriter | None = None
    tokens: list[int] = field(default_factory=list)
    abort_reason: AbortReason = field(default_factory=AbortReason)

    def abort(self, reason: str) -> tuple[str, ...]:
        """Abort the paused or running plan; its stop document records ``reason``."""
        self.abort_reason.reason = reason
        return tuple(self.RE.abort(reason=reason))

    def image(self, uid: str, *, catalog_timeout_s: float = 120.0) -> StxmImage:
        """Read a ``sample_image`` run back, from the catalog or else from the spool.

        Waits (up to ``catalog_timeout_s``) for the catalog writer to finish the run. A run
        the catalog does not have in full (no catalog, or its write failed) is read from the
        local spool, which holds every document.
        """
        writer = self.catalog_writer
        written = writer is not None and writer.flush(catalog_timeout_s)
        if self.catalog is not None and written and writer is not None:
            if uid not in writer.failed_runs:
                return image_from_run(self.catalog[uid])
        path = spool_file_for(self.spool.spool_dir, uid)
        if self.catalog is not None:
            log.warning("run %s is not (fully) in the catalog; reading it from %s", uid, path)
        return image_from_documents(read_spool_file(path))

    def stack(self, uid: str, *, catalog_timeout_s: float = 120.0) -> StxmStack:
        """Read a spectrum, stack or XMCD run back (catalog, else spool; as :meth:`image`)."""
        writer = self.catalog_writer
        written = writer is not None and writer.flush(catalog_timeout_s)
        if self.catalog is not None and written and writer is not None:
            if uid not in writer.failed_runs:
                return stack_from_run(self.catalog[uid])
        path = spool_file_for(self.spool.spool_dir, uid)
        if self.catalog is not None:
            log.warning("run %s is not (fully) in the catalog; reading it from %s", uid, path)
        return stack_from_documents(read_spool_file(path))

    def nexus_file(self, uid: str) -> Path:
        """The NXstxm file of run ``uid`` (written when the run ended).

        Raises
        ------
        LookupError
            If NeXus files are disabled, the run is unknown, or its file could not be written
            (says why and how to write it with ``stxm export``).
        """
        if self.nexus is None:
            raise LookupError("NeXus files are off ([nexus] enabled = false); use stxm export")
        if uid in self.nexus.written:
            return self.nexus.written[uid]
        reason = self.nexus.failed.get(uid, "no run of that uid ended in this session")
        raise LookupError(f"no NXstxm file for run {uid}: {reason} (stxm export {uid[:8]})")

    def _finish_catalog_writes(self, writer: CatalogWriter, timeout_s: float) -> None:
        spool_dir = self.spool.spool_dir
        try:
            if not writer.flush(1.0):
                log.warning(
                    "waiting up to %.0f s for %d documents to reach the catalog (Ctrl-C to "
                    "stop waiting; every run is in %s)",
                    timeout_s,
                    writer.pending,
                    spool_dir,
                )
            drained = writer.close(timeout_s)
        except KeyboardInterrupt:
            drained = False
        if not drained:
            log.warning(
                "%d documents did not reach the catalog; every run is complete in %s (put one "
                "in the catalog with `stxm import-spool FILE`)",
                writer.pending,
                spool_dir,
            )

    def close(self, catalog_timeout_s: float = 60.0) -> None:
        """Unsubscribe from the RunEngine and finish writing to the catalog."""
        for token in self.tokens:
            self.RE.unsubscribe(token)
        self.tokens.clear()
        if self.abort_reason in self.RE.preprocessors:
            self.RE.preprocessors.remove(self.abort_reason)
        writer, self.catalog_writer = self.catalog_writer, None
        if writer is not None:
            self._finish_catalog_writes(writer, catalog_timeout_s)
        client, self.catalog = self.catalog, None
        if client is not None:
            close_catalog(client)

    def __enter__(self) -> DataPath:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _with_free_space_check(validator: Any, spool_dir: Path, nexus_dir: Path | None) -> Any:
    """``md_validator`` that also refuses a run the disk cannot hold (spool and NeXus file).

    bluesky calls it with the start metadata before the run opens, so a refused run has no
    start document and nothing of it was measured.
    """

    def validate(md: dict[str, Any]) -> None:
        validator(md)
        points = md.get("num_points")
        if not (isinstance(points, int) and points > 0):
            return
        spool_bytes = estimate_spool_bytes(points)
        writes_file = nexus_dir is not None and md.get("stxm_scan_type") in NXSTXM_SCAN_TYPES
        what = f"a run of {points} points"
        if not writes_file or nexus_dir is None:
            check_free_space(spool_dir, spool_bytes, what=what)
        elif same_disk(spool_dir, nexus_dir):
            check_free_space(
                spool_dir, spool_bytes + estimate_nexus_bytes(points), what=f"{what} and its file"
            )
        else:
            check_free_space(spool_dir, spool_bytes, what=f"{what} (its spool file)")
            check_free_space(nexus_dir, estimate_nexus_bytes(points), what=f"{what} (its file)")

    return validate


def wire_data_path(RE: RunEngine, config: BeamlineConfig, *, catalog: bool = True) -> DataPath:
    """Subscribe ``RE`` to the spool and (optionally) the catalog; number its scans.

    Every document goes to ``data_dir/spool/<uid>.jsonl`` first; with ``catalog`` a
    background writer also puts it in the configured Tiled catalog (a slow or dead catalog
    never holds up a scan). Scan ids continue from ``data_dir/last_scan_id``.

    Parameters
    ----------
    RE
        The RunEngine (a session's, or the queue server's).
    config
        Configuration: the data directory and the catalog.
    catalog
        Also write runs to the catalog (it must be running).

    Returns
    -------
    DataPath
        The subscriptions; close it (or use it as a context manager) when done.

    Raises
    ------
    ConnectionError
        If ``catalog`` is requested and the catalog does not answer.
    """
    RE.scan_id_source = ScanIdFile(config.data_dir / SCAN_ID_FILE)
    spool = DocumentSpool(config.data_dir / "spool")
    nexus_dir = config.nexus_dir if config.nexus.enabled else None
    RE.md_validator = _with_free_space_check(RE.md_validator, spool.spool_dir, nexus_dir)
    data = DataPath(RE=RE, spool=spool)
    RE.preprocessors.append(data.abort_reason)
    data.tokens.append(RE.subscribe(spool))
    if nexus_dir is not None:
        # After the spool: the NeXus writer reads each finished run back from its spool file.
        data.nexus = NexusFileWriter(nexus_dir, config.nexus.file_template, spool.spool_dir)
        data.tokens.append(RE.subscribe(data.nexus))
    if catalog:
        client = connect_catalog(config)
        writer = CatalogWriter(client, spool.spool_dir, batch_size=config.catalog.batch_size)
        data.catalog, data.catalog_writer = client, writer
        data.tokens.append(RE.subscribe(writer))
        log.info("writing runs to %s", catalog_uri(config))
    return data


@dataclass
class Session:
    """Everything needed to run plans on the microscope; a context manager.

    Attributes
    ----------
    config
        The configuration the session was built from.
    RE
        The RunEngine, subscribed to the data path and the progress bar.
    devices
        The connected devices.
    data
        The data path (spool, catalog, scan ids).
    """

    config: BeamlineConfig
    RE: RunEngine
    devices: StxmDevices
    data: DataPath
    tokens: list[int] = field(default_factory=list)
    costs: ScanCosts = field(default_factory=ScanCosts)

    def estimate(self, *args: Any, **kwargs: Any) -> ScanEstimate:
        """How long ``sample_image(*args, **kwargs)`` would take now (nothing moves).

        Uses what this session has learned of the control system's costs from its runs::

            region = RasterRegion(d.stage.x, 0, 20, 256, d.stage.y, 0, 20, 256)
            print(s.estimate(d.apd, region, 0.001, flyer=d.fly))
        """
        return estimate_sample_image(*args, costs=self.costs, **kwargs)

    @property
    def catalog(self) -> Any | None:
        """Tiled client of the catalog, or None."""
        return self.data.catalog

    @property
    def spool(self) -> DocumentSpool:
        """The local spool of every run."""
        return self.data.spool

    @property
    def catalog_writer(self) -> CatalogWriter | None:
        """The background catalog writer, or None."""
        return self.data.catalog_writer

    def run(self, plan: Iterable[Msg]) -> str:
        """Run a plan that makes one run; return the run's uid.

        Raises
        ------
        RuntimeError
            If the plan opened no run, or several (use ``RE`` for those).
        """
        uids = self.RE(plan)
        if isinstance(uids, RunEngineResult):  # a RunEngine built to return results
            uids = uids.run_start_uids
        if len(uids) != 1:
            raise RuntimeError(f"the plan made {len(uids)} runs, not one: {list(uids)}")
        return uids[0]

    def execute(self, plan: Iterable[Msg]) -> Any:
        """Run a plan and return what the plan itself returns.

        The alignment plans return what they found (:class:`plans.AlignmentResult`), which
        ``RE(plan)`` does not hand back::

            region = RasterRegion(d.osa.x, 0, 120, 41, d.osa.y, 0, 120, 41)
            found = s.execute(osa_image(d.apd, region, 0.001))
        """
        returned: dict[str, Any] = {}

        def keep_result() -> Any:
            returned["value"] = yield from plan

        self.RE(keep_result())
        return returned.get("value")

    def abort(self, reason: str) -> tuple[str, ...]:
        """Abort the paused plan (after Ctrl-C); the stop document records ``reason``."""
        return self.data.abort(reason)

    def image(self, uid: str, *, catalog_timeout_s: float = 120.0) -> StxmImage:
        """Read a ``sample_image`` run back (see :meth:`DataPath.image`)."""
        return self.data.image(uid, catalog_timeout_s=catalog_timeout_s)

    def stack(self, uid: str, *, catalog_timeout_s: float = 120.0) -> StxmStack:
        """Read a spectrum, stack or XMCD run back (see :meth:`DataPath.stack`)."""
        return self.data.stack(uid, catalog_timeout_s=catalog_timeout_s)

    def nexus_file(self, uid: str) -> Path:
        """The NXstxm file of run ``uid`` (see :meth:`DataPath.nexus_file`)."""
        return self.data.nexus_file(uid)

    def close(self, catalog_timeout_s: float = 60.0) -> None:
        """Finish writing to the catalog, unsubscribe callbacks, disconnect the devices."""
        for token in self.tokens:
            self.RE.unsubscribe(token)
        self.tokens.clear()
        self.data.close(catalog_timeout_s)
        for device in self.devices.all():
            device.destroy()
        close_run_engine(self.RE)

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def build_session(
    config: BeamlineConfig | None = None,
    *,
    catalog: bool = True,
    progress: bool = True,
    connect: bool = True,
) -> Session:
    """Build a session from ``config`` (the defaults / ``STXM_CONFIG`` if None).

    Parameters
    ----------
    config
        Configuration.
    catalog
        Write runs to the configured Tiled catalog (it must be running).
    progress
        Show a progress bar while scanning.
    connect
        Wait for every device to connect (raises naming the missing ones).

    Returns
    -------
    Session
        RunEngine, devices and data path.

    Raises
    ------
    ConnectionError
        If ``catalog`` is requested and the catalog does not answer, or no simulated fleet
        runs for a simulated configuration.
    TimeoutError
        If ``connect`` and a device's IOC does not answer.
    """
    config = config or load_config()
    devices = connect_devices(config, connect=connect)
    RE = RunEngine(session_metadata(config))
    try:
        data = wire_data_path(RE, config, catalog=catalog)
    except BaseException:
        for device in devices.all():
            device.destroy()
        raise
    session = Session(config=config, RE=RE, devices=devices, data=data)
    record_instrument_state(RE, devices, config)
    session.tokens.append(RE.subscribe(CostLearner(session.costs)))
    if progress:
        session.tokens.append(RE.subscribe(ScanProgress(estimate_s=session.costs.total_s)))
    return session
