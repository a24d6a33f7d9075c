"""A working session: RunEngine, devices and subscriptions built from the configuration.

Use from IPython (with ``stxm sim`` and ``stxm serve`` running, or against real IOCs)::

    from stxm_ctrl.session import build_session
    from plans import sample_image

    s = build_session()
    (uid,) = s.RE(sample_image(s.devices.apd, s.devices.sample_x, 0, 20, 64,
                               s.devices.sample_y, 0, 20, 64, dwell_s=0.001))
    image = s.image(uid)

Nothing is global: each call builds its own RunEngine and devices.

This module and :mod:`stxm_ctrl.cli` are the top of the import graph: they compose
``devices`` and ``plans``; the rest of ``stxm_ctrl`` imports neither.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from bluesky import RunEngine

from devices import StxmDevices, build_devices
from stxm_ctrl.config import BeamlineConfig, load_config
from stxm_ctrl.data.catalog import catalog_uri, connect_catalog
from stxm_ctrl.data.images import StxmImage, image_from_documents, image_from_run
from stxm_ctrl.data.writers import (
    CatalogWriter,
    DocumentSpool,
    read_spool_file,
    spool_file_for,
)
from stxm_ctrl.epics_env import apply_ca_client_environment
from stxm_ctrl.progress import ScanProgress
from stxm_ctrl.scan_ids import ScanIdFile

__all__ = ["Session", "build_session"]

log = logging.getLogger(__name__)

SCAN_ID_FILE = "last_scan_id"


@dataclass
class Session:
    """Everything needed to run plans on the microscope.

    Attributes
    ----------
    config
        The beamline configuration the session was built from.
    RE
        The RunEngine, subscribed to the spool, the catalog and the progress bar.
    devices
        The connected devices.
    catalog
        Tiled client of the catalog, or None if the session runs without one.
    spool
        Local JSON Lines copy of every run (``data_dir/spool``).
    """

    config: BeamlineConfig
    RE: RunEngine
    devices: StxmDevices
    catalog: Any | None
    spool: DocumentSpool
    catalog_writer: CatalogWriter | None = None
    tokens: list[int] = field(default_factory=list)

    def image(self, uid: str, *, catalog_timeout_s: float = 120.0) -> StxmImage:
        """Read a ``sample_image`` run back, from the catalog or else from the spool.

        Waits (up to ``catalog_timeout_s``) for the catalog writer to finish the run. A run
        the catalog does not have in full (no catalog, or its write failed) is read from the
        local spool, which holds every document.
        """
        writer = self.catalog_writer
        written = writer is not None and writer.flush(catalog_timeout_s)
        if self.catalog is not None and written and uid not in writer.failed_runs:
            return image_from_run(self.catalog[uid])
        path = spool_file_for(self.spool.spool_dir, uid)
        log.warning("run %s is not (fully) in the catalog; reading it from %s", uid, path)
        return image_from_documents(read_spool_file(path))

    def _finish_catalog_writes(self, timeout_s: float) -> None:
        writer = self.catalog_writer
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
        """Finish writing to the catalog, unsubscribe callbacks, disconnect the devices."""
        for token in self.tokens:
            self.RE.unsubscribe(token)
        self.tokens.clear()
        if self.catalog_writer is not None:
            self._finish_catalog_writes(catalog_timeout_s)
        for device in self.devices.all():
            device.destroy()


def build_session(
    config: BeamlineConfig | None = None,
    *,
    catalog: bool = True,
    progress: bool = True,
    connect: bool = True,
) -> Session:
    """Build a session from ``config`` (the shipped default / ``STXM_CONFIG`` if None).

    Parameters
    ----------
    config
        Beamline configuration.
    catalog
        Write runs to the configured Tiled catalog (it must be running).
    progress
        Show a progress bar while scanning.
    connect
        Wait for every device to connect (raises naming the missing ones).

    Returns
    -------
    Session
        RunEngine, devices and subscriptions.

    Raises
    ------
    ConnectionError
        If ``catalog`` is requested and the catalog does not answer.
    TimeoutError
        If ``connect`` and a device's IOC does not answer.
    """
    config = config or load_config()
    apply_ca_client_environment(config)
    devices = build_devices(config)
    if connect:
        devices.wait_for_connection(config.epics.connection_timeout_s)

    md: dict[str, Any] = {"beamline_id": config.beamline.name}
    if config.simulated:
        # Known only for the simulated beamline; real runs record energy from the
        # monochromator and the sample from the user.
        md |= {"sample_name": config.sim.sample.name, "energy_eV": config.sim.beam.energy_eV}
    RE = RunEngine(
        md,
        scan_id_source=ScanIdFile(config.data_dir / SCAN_ID_FILE),
    )
    spool = DocumentSpool(config.data_dir / "spool")
    session = Session(config=config, RE=RE, devices=devices, catalog=None, spool=spool)
    session.tokens.append(RE.subscribe(spool))
    if catalog:
        client = connect_catalog(config)
        writer = CatalogWriter(client, spool.spool_dir, batch_size=config.catalog.batch_size)
        session.catalog = client
        session.catalog_writer = writer
        session.tokens.append(RE.subscribe(writer))
        log.info("writing runs to %s", catalog_uri(config))
    if progress:
        session.tokens.append(RE.subscribe(ScanProgress()))
    return session
