"""Read a raster run back as an image (ny, nx) with its axes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from event_model import pack_event_page
from event_model.documents import Event

__all__ = [
    "RASTER_SCAN_TYPES",
    "StxmImage",
    "fly_keys",
    "image_from_columns",
    "image_from_documents",
    "image_from_lines",
    "image_from_run",
]


@dataclass(frozen=True)
class StxmImage:
    """One sample image.

    Attributes
    ----------
    uid
        Run uid.
    counts
        Counts per pixel, shape (ny, nx), row 0 at the lowest y; NaN where the scan never
        got to (an aborted run).
    x_um, y_um
        Pixel-centre setpoints along x (nx) and y (ny).
    x_readback_um, y_readback_um
        Measured positions per pixel, (ny, nx), NaN where not measured: the stage
        readbacks of a step scan, the interferometer's of a fly scan.
    dwell_s
        Counting time per pixel (as asked).
    start
        The run's start document.
    pixel_dwell_s
        Fly scans: the time each pixel really counted, (ny, nx), NaN where not measured.
        The controller gates pixels by the interferometer's position at constant speed, so
        a pixel's dwell is ``dwell_s`` to well within 2 % (less where a fault cut it short);
        divide counts by it for a rate.
        None for step scans (every pixel counted ``dwell_s``).
    """

    uid: str
    counts: np.ndarray
    x_um: np.ndarray
    y_um: np.ndarray
    x_readback_um: np.ndarray
    y_readback_um: np.ndarray
    dwell_s: float
    start: Mapping[str, Any] = field(repr=False)
    pixel_dwell_s: np.ndarray | None = field(default=None, repr=False)

    @property
    def rate_Hz(self) -> np.ndarray:
        """Counts per second of counting time, (ny, nx)."""
        dwell = self.pixel_dwell_s if self.pixel_dwell_s is not None else self.dwell_s
        return self.counts / dwell

    @property
    def shape(self) -> tuple[int, int]:
        """(ny, nx)."""
        return self.counts.shape

    @property
    def mode(self) -> str:
        """``"fly"`` (line by line) or ``"step"`` (point by point)."""
        return str(self.start.get("scan_mode", "step"))

    @property
    def complete(self) -> bool:
        """True if every pixel was measured."""
        return bool(np.isfinite(self.counts).all())


def _grid(start_doc: Mapping[str, Any], flat: np.ndarray) -> np.ndarray:
    """Place values in acquisition order onto the (ny, nx) grid, undoing the snake."""
    ny, nx = start_doc["shape"]
    snake = bool(start_doc.get("snaking", [False, False])[1])
    padded = np.full(ny * nx, np.nan)
    n = min(len(flat), ny * nx)
    padded[:n] = np.asarray(flat[:n], dtype=float)
    grid = padded.reshape(ny, nx)
    if snake:
        grid[1::2] = grid[1::2, ::-1]
    return grid


def image_from_columns(
    start_doc: Mapping[str, Any],
    counts: np.ndarray,
    x_readback: np.ndarray,
    y_readback: np.ndarray,
) -> StxmImage:
    """Build a :class:`StxmImage` from a start document and event columns.

    Parameters
    ----------
    start_doc
        Start document of a ``sample_image`` run (shape, snaking, extents, dwell_s).
    counts, x_readback, y_readback
        Columns of the primary stream in acquisition order (may be shorter than the raster
        if the run stopped early).
    """
    (y0, y1), (x0, x1) = start_doc["extents"]
    ny, nx = start_doc["shape"]
    return StxmImage(
        uid=start_doc["uid"],
        counts=_grid(start_doc, counts),
        x_um=np.linspace(x0, x1, nx),
        y_um=np.linspace(y0, y1, ny),
        x_readback_um=_grid(start_doc, x_readback),
        y_readback_um=_grid(start_doc, y_readback),
        dwell_s=float(start_doc["dwell_s"]),
        start=dict(start_doc),
    )


def image_from_lines(
    start_doc: Mapping[str, Any],
    counts: np.ndarray,
    x_um: np.ndarray,
    y_um: np.ndarray,
    rows: np.ndarray,
    columns: np.ndarray,
    dwell_s: np.ndarray | None = None,
) -> StxmImage:
    """Build the :class:`StxmImage` of a fly scan from its line events.

    Parameters
    ----------
    start_doc
        Start document of a fly ``sample_image`` run.
    counts, x_um, y_um
        One row per line event, (lines, pixels per line): counts and the interferometer's
        x and y of every pixel.
    rows, columns
        Image row of each line and the column of its first pixel (tiles of a large image
        start at other columns; a later line of a row replaces an earlier one).
    dwell_s
        The time each pixel counted, (lines, pixels per line), if recorded.
    """
    (y0, y1), (x0, x1) = start_doc["extents"]
    ny, nx = start_doc["shape"]
    columns_in = (counts, x_um, y_um) + ((dwell_s,) if dwell_s is not None else ())
    grids = [np.full((ny, nx), np.nan) for _ in columns_in]
    for k in range(len(rows)):
        row, column = int(rows[k]), int(columns[k])
        if not 0 <= row < ny:
            continue
        width = min(len(counts[k]), nx - column)
        for grid, values in zip(grids, columns_in, strict=True):
            grid[row, column : column + width] = np.asarray(values[k][:width], dtype=float)
    return StxmImage(
        uid=start_doc["uid"],
        counts=grids[0],
        x_um=np.linspace(x0, x1, nx),
        y_um=np.linspace(y0, y1, ny),
        x_readback_um=grids[1],
        y_readback_um=grids[2],
        dwell_s=float(start_doc["dwell_s"]),
        start=dict(start_doc),
        pixel_dwell_s=grids[3] if dwell_s is not None else None,
    )


def fly_keys(start: Mapping[str, Any]) -> tuple[str, ...]:
    """Fields of a fly run's line events: counts, x, y, row, first column, pixel dwell."""
    return (
        start["counter_field"],
        start["x_field"],
        start["y_field"],
        start["row_field"],
        start["column_field"],
        start["dwell_field"],
    )


RASTER_SCAN_TYPES = ("sample image", "detector image", "osa image", "osa focus", "sample focus")
"""Scan types recorded as a raster of two axes (``x_field`` across, ``y_field`` down)."""


def _check_scan_type(start: Mapping[str, Any]) -> None:
    if start.get("stxm_scan_type") not in RASTER_SCAN_TYPES:
        raise ValueError(
            f"run {start.get('uid')} is a {start.get('stxm_scan_type', start.get('plan_name'))!r}"
            f" scan, not a raster ({', '.join(map(repr, RASTER_SCAN_TYPES))})"
        )


def image_from_run(run: Any) -> StxmImage:
    """Read a ``sample_image`` run from the catalog (a Tiled BlueskyRun client).

    Raises
    ------
    ValueError
        If the run is not a sample image (names its scan type).
    """
    start = run.metadata["start"]
    _check_scan_type(start)
    x_field, y_field = start["x_field"], start["y_field"]
    if "primary" not in run:
        empty = np.array([])
        if start.get("scan_mode") == "fly":
            return image_from_lines(start, empty, empty, empty, empty, empty)
        return image_from_columns(start, empty, empty, empty)
    if start.get("scan_mode") == "fly":
        # Column by column: a stream's whole-table read turns array cells into text.
        stream = run["primary"]
        return image_from_lines(start, *(np.asarray(stream[k].read()) for k in fly_keys(start)))
    table = run["primary"].read()
    return image_from_columns(
        start,
        np.asarray(table[start["counter_field"]]),
        np.asarray(table[x_field]),
        np.asarray(table[y_field]),
    )


def image_from_documents(documents: Iterable[tuple[str, dict]]) -> StxmImage:
    """Build the image of a ``sample_image`` run from its documents (e.g. a spool file).

    Works without a catalog, and on runs cut off mid-scan (the missing pixels are NaN).

    Raises
    ------
    ValueError
        If there is no start document or the run is not a sample image.
    """
    start: Mapping[str, Any] | None = None
    primary: set[str] = set()
    columns: dict[str, list] = {}
    for name, doc in documents:
        if name == "start":
            start = doc
        elif name == "descriptor" and doc.get("name") == "primary":
            primary.add(doc["uid"])
        elif name in ("event", "event_page") and doc.get("descriptor") in primary:
            page = pack_event_page(cast(Event, doc)) if name == "event" else doc
            for key, values in page["data"].items():
                columns.setdefault(key, []).extend(values)
    if start is None:
        raise ValueError("no start document: these documents hold no run")
    _check_scan_type(start)

    def column(key: str) -> np.ndarray:
        return np.asarray(columns.get(key, []), dtype=float)

    if start.get("scan_mode") == "fly":
        return image_from_lines(start, *(column(k) for k in fly_keys(start)))
    return image_from_columns(
        start, column(start["counter_field"]), column(start["x_field"]), column(start["y_field"])
    )
