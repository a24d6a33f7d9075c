"""Read spectra, stacks and XMCD runs back as frames with their energies and polarisations.

A run of :mod:`plans.spectromicroscopy` is a sequence of frames, each an energy and a
polarisation (``start["frames"]``) with a spatial pattern: one point (a point spectrum), the
points of a line (a line spectrum) or an image. Step-mode events carry their frame index
(``start["frame_field"]``); fly-mode line events belong to the last ``frames``-stream event
before them in time. Frames the run never reached are NaN.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from event_model import pack_event_page
from event_model.documents import Event

from stxm_ctrl.data.images import StxmImage, fly_keys, image_from_columns, image_from_lines

__all__ = [
    "SPECTRO_SCAN_TYPES",
    "StxmStack",
    "frame_of_events",
    "stack_from_documents",
    "stack_from_run",
]

SPECTRO_SCAN_TYPES = ("point spectrum", "line spectrum", "sample image stack", "sample image")
"""Scan types a spectromicroscopy run records (an XMCD image pair is a "sample image")."""


@dataclass(frozen=True)
class StxmStack:
    """The frames of one spectromicroscopy run.

    Attributes
    ----------
    uid
        Run uid.
    energies_eV
        Energy of each frame, (n,).
    polarizations
        Polarisation of each frame (None: as it was), (n,).
    images
        Each frame as a :class:`~stxm_ctrl.data.images.StxmImage` of the run's shape
        ((1, points) for spectra).
    start
        The run's start document.
    """

    uid: str
    energies_eV: np.ndarray
    polarizations: list[str | None]
    images: list[StxmImage]
    start: Mapping[str, Any] = field(repr=False)

    @property
    def counts(self) -> np.ndarray:
        """Counts, (frames, ny, nx)."""
        return np.stack([image.counts for image in self.images])

    @property
    def rate_Hz(self) -> np.ndarray:
        """Count rates, (frames, ny, nx): counts over each pixel's counting time."""
        return np.stack([image.rate_Hz for image in self.images])

    @property
    def x_um(self) -> np.ndarray:
        """Pixel-centre x setpoints (nx)."""
        return self.images[0].x_um

    @property
    def y_um(self) -> np.ndarray:
        """Pixel-centre y setpoints (ny)."""
        return self.images[0].y_um

    def select(self, polarization: str) -> StxmStack:
        """The frames taken in ``polarization`` (e.g. the I+ half of an XMCD stack)."""
        keep = [i for i, p in enumerate(self.polarizations) if p == polarization]
        if not keep:
            raise ValueError(
                f"no frame of run {self.uid} is in {polarization!r}; its polarisations: "
                f"{sorted({str(p) for p in self.polarizations})}"
            )
        return StxmStack(
            uid=self.uid,
            energies_eV=self.energies_eV[keep],
            polarizations=[self.polarizations[i] for i in keep],
            images=[self.images[i] for i in keep],
            start=self.start,
        )


def _check(start: Mapping[str, Any]) -> None:
    if "frames" not in start or start.get("stxm_scan_type") not in SPECTRO_SCAN_TYPES:
        raise ValueError(
            f"run {start.get('uid')} ({start.get('plan_name')}) is not a spectrum, stack or "
            "XMCD run (its start document lists no frames)"
        )


def _frame_of(times: np.ndarray, frame_times: np.ndarray) -> np.ndarray:
    """Index of the last frame event at or before each time (-1 before the first)."""
    return np.searchsorted(frame_times, times, side="right") - 1


def frame_of_events(
    start: Mapping[str, Any],
    columns: Mapping[str, np.ndarray],
    times: np.ndarray,
    frame_times: np.ndarray,
    frame_indices: np.ndarray,
) -> np.ndarray:
    """Frame index of each ``primary`` event (-1: before the first frame).

    Step-mode events carry it (``start["frame_field"]``); a fly-mode line belongs to the last
    ``frames`` event at or before its time.
    """
    if start.get("scan_mode") != "fly":
        return np.asarray(columns.get(start["frame_field"], np.array([])), dtype=int)
    if not len(frame_times):
        return np.full(len(times), -1)
    position = _frame_of(times, frame_times)
    which = frame_indices[np.clip(position, 0, None)]
    return np.where(position < 0, -1, which)


def _assemble(
    start: Mapping[str, Any],
    columns: Mapping[str, np.ndarray],
    times: np.ndarray,
    frame_times: np.ndarray,
    frame_indices: np.ndarray,
) -> StxmStack:
    frames = start["frames"]
    n = len(frames)
    fly = start.get("scan_mode") == "fly"
    which = frame_of_events(start, columns, times, frame_times, frame_indices)
    images = []
    for k in range(n):
        mask = which == k
        if fly:
            images.append(
                image_from_lines(start, *(_pick(columns[key], mask) for key in fly_keys(start)))
            )
        else:
            images.append(
                image_from_columns(
                    start,
                    _pick(columns[start["counter_field"]], mask),
                    _pick(columns[start["x_field"]], mask),
                    _pick(columns[start["y_field"]], mask),
                )
            )
    return StxmStack(
        uid=str(start["uid"]),
        energies_eV=np.array([float(f["energy_eV"]) for f in frames]),
        polarizations=[f["polarization"] for f in frames],
        images=images,
        start=dict(start),
    )


def _pick(values: Any, mask: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float) if len(values) else np.array([])
    return array[mask] if array.size else array


def stack_from_run(run: Any) -> StxmStack:
    """Read a spectromicroscopy run from the catalog (a Tiled BlueskyRun client).

    Raises
    ------
    ValueError
        If the run is not a spectrum, stack or XMCD run.
    """
    start = run.metadata["start"]
    _check(start)
    fly = start.get("scan_mode") == "fly"
    keys = (
        fly_keys(start)
        if fly
        else (start["counter_field"], start["x_field"], start["y_field"], start["frame_field"])
    )
    columns: dict[str, np.ndarray] = {k: np.array([]) for k in keys}
    times = np.array([])
    if "primary" in run:
        stream = run["primary"]
        for key in keys:
            columns[key] = np.asarray(stream[key].read())
        times = np.asarray(stream["time"].read(), dtype=float) if fly else times
    frame_times, frame_indices = np.array([]), np.array([], dtype=int)
    if "frames" in run:
        frames = run["frames"]
        frame_times = np.asarray(frames["time"].read(), dtype=float)
        frame_indices = np.asarray(frames["stack_frame"].read(), dtype=int)
    return _assemble(start, columns, times, frame_times, frame_indices)


def stack_from_documents(documents: Iterable[tuple[str, dict]]) -> StxmStack:
    """Build a spectromicroscopy run's frames from its documents (e.g. a spool file).

    Raises
    ------
    ValueError
        If there is no start document or the run is not a spectrum, stack or XMCD run.
    """
    start: Mapping[str, Any] | None = None
    streams: dict[str, str] = {}
    columns: dict[str, dict[str, list]] = {"primary": {}, "frames": {}}
    times: dict[str, list[float]] = {"primary": [], "frames": []}
    for name, doc in documents:
        if name == "start":
            start = doc
        elif name == "descriptor" and doc.get("name") in columns:
            streams[doc["uid"]] = doc["name"]
        elif name in ("event", "event_page") and doc.get("descriptor") in streams:
            stream = streams[doc["descriptor"]]
            page = pack_event_page(cast(Event, doc)) if name == "event" else doc
            for key, values in page["data"].items():
                columns[stream].setdefault(key, []).extend(values)
            times[stream].extend(page["time"])
    if start is None:
        raise ValueError("no start document: these documents hold no run")
    _check(start)
    fly = start.get("scan_mode") == "fly"
    keys = (
        fly_keys(start)
        if fly
        else (start["counter_field"], start["x_field"], start["y_field"], start["frame_field"])
    )
    primary = {k: np.asarray(columns["primary"].get(k, []), dtype=float) for k in keys}
    return _assemble(
        start,
        primary,
        np.asarray(times["primary"], dtype=float),
        np.asarray(times["frames"], dtype=float),
        np.asarray(columns["frames"].get("stack_frame", []), dtype=int),
    )
