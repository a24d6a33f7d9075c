"""NXstxm files from a run's documents: one file per run, for MANTiS, aXis2000 and scripts.

The file follows the NXstxm application definition (``NXstxm.nxdl.xml`` beside this module)
and what mantis-xray's NeXus plugin needs to open it (``definition`` and ``stxm_scan_type``
as 1-element byte-string arrays, ``@axes`` a byte-string array, ``count_time`` in NXdata, a
``.nxs``/``.hdf5``/``.stxm`` ending)::

    /entry1                      NXentry: title, start_time, end_time, definition,
                                 experiment_identifier, program_name, user (NXuser)
      instrument/                NXinstrument, every list in the order points were measured
        source/                  NXsource: type, name, probe, current (mA, mean)
        monochromator/energy     energy of every point (eV)
        <counter>/data           counts of every point; count_time (s)
        sample_x/data            measured sample x of every point (interferometer or stage)
        sample_y/data
        zone_plate/              NXfresnel_zone_plate: diameters, zone width, a0, a1, and
                                 z of every point (um)
        osa/                     NXaperture: diameter, position
        epu/                     NXinsertion_device: polarisation of every frame, gap of
                                 every point (mm)
      sample/                    NXsample: name, rotation_angle
      <counter>[_plus|_minus]/   NXdata: stxm_scan_type, data, energy, sample_y, sample_x,
                                 count_time, axes (+ line_position, osa_x, zoneplate_z, ...)
      control/                   NXmonitor: ring current (mA) at each pixel, data's shape
      collection/                NXcollection: start/stop documents, configuration (JSON)

An XMCD run holds one NXdata per helicity (``apd_plus``, ``apd_minus``, with their
polarisation in ``@polarization``), each with its own monitor (``control``,
``control_minus``). Pixels a run never measured are NaN in NXdata; the NXinstrument lists hold
only measured points. Decision 0010 says why files are written from the documents when a run
ends (and rewritten by ``stxm export``) rather than as the run goes.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from stxm_ctrl.data.images import (
    RASTER_SCAN_TYPES,
    StxmImage,
    fly_keys,
    image_from_documents,
)
from stxm_ctrl.data.run_documents import RunDocuments
from stxm_ctrl.data.stacks import SPECTRO_SCAN_TYPES, frame_of_events, stack_from_documents
from stxm_ctrl.physics.zone_plate import a1_um_per_eV

__all__ = [
    "NXSTXM_SCAN_TYPES",
    "NexusContent",
    "build_nexus_content",
    "estimate_nexus_bytes",
    "nexus_relative_path",
    "write_nxstxm",
]

NXSTXM_SCAN_TYPES = {
    "point spectrum": "sample point spectrum",
    "line spectrum": "sample line spectrum",
    "sample image": "sample image",
    "sample image stack": "sample image stack",
    "sample focus": "sample focus",
    "osa image": "osa image",
    "osa focus": "osa focus",
    "detector image": "detector image",
}
"""The project's scan types and their names in NXstxm's ``stxm_scan_type`` enumeration."""

ENTRY = "entry1"
_BYTES_PER_POINT = 8 * 12  # counts, dwell, energy, x, y, time in NXinstrument and NXdata
_FILE_OVERHEAD_BYTES = 256 * 1024  # groups, attributes, the start document and configuration

# NXdata axis fields of the raster scan types that do not scan the sample: (y axis, x axis).
_ALIGNMENT_AXES = {
    "osa image": ("osa_y", "osa_x"),
    "detector image": ("detector_y", "detector_x"),
    "osa focus": ("zoneplate_z", "line_position"),
    "sample focus": ("zoneplate_z", "line_position"),
}


def estimate_nexus_bytes(points: int) -> int:
    """Upper estimate of the NXstxm file of a run of ``points`` points."""
    return _FILE_OVERHEAD_BYTES + _BYTES_PER_POINT * max(int(points), 0)


@dataclass
class NxdataGroup:
    """One NXdata group: a detector's data over the scan's axes.

    Attributes
    ----------
    name
        Group name (the counter's, with ``_plus``/``_minus`` for a helicity).
    data
        Counts over the axes (NaN where not measured).
    axes
        Axis field names, one per dimension of ``data``.
    fields
        Every field besides ``data`` (axes, energy, sample_x, sample_y, count_time).
    units
        Units of the fields that have one.
    control
        Ring current at each pixel (mA), ``data``'s shape, or None if not recorded.
    polarization
        The helicity's polarisation (XMCD), else None.
    """

    name: str
    data: np.ndarray
    axes: list[str]
    fields: dict[str, np.ndarray]
    units: dict[str, str] = field(default_factory=dict)
    control: np.ndarray | None = None
    polarization: str | None = None


@dataclass
class NexusContent:
    """Everything an NXstxm file of one run holds, as arrays (see module docstring)."""

    start: dict[str, Any]
    stop: dict[str, Any] | None
    scan_type: str
    start_time: str
    end_time: str
    counter: str
    point_energy_eV: np.ndarray
    point_counts: np.ndarray
    point_count_time_s: np.ndarray
    point_x_um: np.ndarray
    point_y_um: np.ndarray
    point_zp_z_um: np.ndarray
    point_epu_gap_mm: np.ndarray
    nxdata: list[NxdataGroup]
    baseline: dict[str, Any]
    ring_current_mA: float | None


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp).astimezone().isoformat()


def _ring_samples(run: RunDocuments) -> tuple[np.ndarray, np.ndarray]:
    """(times, mA) of the ring current: as the run opened, and any stream that recorded it."""
    times, values = run.samples_of("ring_current")
    opened = run.start.get("ring_current_mA")
    if isinstance(opened, int | float) and np.isfinite(opened):
        order = np.argsort(np.r_[float(run.start["time"]), times], kind="stable")
        times = np.r_[float(run.start["time"]), times][order]
        values = np.r_[float(opened), values][order]
    return times, values


def _ring_at(run: RunDocuments, times: np.ndarray) -> np.ndarray | None:
    """Ring current interpolated at ``times`` (NaN where ``times`` is NaN)."""
    sample_times, values = _ring_samples(run)
    if not len(values):
        return None
    out = np.full(times.shape, np.nan)
    known = np.isfinite(times)
    out[known] = np.interp(times[known], sample_times, values)
    return out


def _baseline(run: RunDocuments) -> dict[str, Any]:
    """The baseline's first readings, with the sample position the start document recorded."""
    baseline = run.stream("baseline")
    first = {key: values[0] for key, values in baseline.data.items() if values}
    for axis in ("sample_x", "sample_y"):
        value = run.start.get(f"{axis}_um")
        if axis not in first and isinstance(value, int | float):
            first[axis] = float(value)
    return first


def _baseline_energy(baseline: Mapping[str, Any], start: Mapping[str, Any]) -> float:
    """The energy a run without frames was taken at: the monochromator's readback."""
    for value in (baseline.get("energy_mono_readback"), baseline.get("energy_eV")):
        if isinstance(value, int | float):
            return float(value)
    return float(start.get("energy_eV", np.nan))


def _with_counts_as_time(run: RunDocuments) -> list[tuple[str, dict]]:
    """The run's documents with each primary event's counts replaced by its time.

    Fed to the image/stack readers, this places every pixel's measuring time on the same grid
    as its counts (the ring current is then interpolated at those times).
    """
    start = run.start
    key = start["counter_field"]
    primary = {
        doc["uid"]
        for name, doc in run.documents
        if name == "descriptor"
        if doc.get("name") == "primary"
    }
    out: list[tuple[str, dict]] = []
    for name, doc in run.documents:
        if name in ("event", "event_page") and doc.get("descriptor") in primary:
            times = doc["time"] if name == "event_page" else [doc["time"]]
            counts = doc["data"].get(key) if name == "event_page" else [doc["data"].get(key)]
            replaced = [
                np.full(np.shape(c), t).tolist() if np.ndim(c) else t
                for c, t in zip(counts or [], times, strict=False)
            ]
            data = {**doc["data"], key: replaced if name == "event_page" else replaced[0]}
            doc = {**doc, "data": data}
        out.append((name, doc))
    return out


def _raster_points(run: RunDocuments, energy_eV: float) -> dict[str, np.ndarray]:
    """Per-point lists (acquisition order) of a raster or spectromicroscopy run."""
    start = run.start
    primary = run.stream("primary")
    if start.get("scan_mode") == "fly":
        counts_key, x_key, y_key, _, _, dwell_key = fly_keys(start)
        lines = [
            np.asarray(primary.column(k) or [], dtype=float)
            for k in (counts_key, x_key, y_key, dwell_key)
        ]
        widths = [len(np.atleast_1d(c)) for c in primary.column(counts_key)]
        times = np.repeat(np.asarray(primary.time, dtype=float), widths)
        counts, x, y, dwell = (a.reshape(-1) if a.size else np.array([]) for a in lines)
    else:
        counts = primary.floats(start["counter_field"])
        x = primary.floats(start["x_field"])
        y = primary.floats(start["y_field"])
        dwell = np.full(len(counts), float(start.get("dwell_s", np.nan)))
        times = np.asarray(primary.time, dtype=float)
    return {
        "counts": counts,
        "x": x,
        "y": y,
        "dwell": dwell,
        "time": times,
        "energy": np.full(len(counts), energy_eV),
    }


def _frame_values(run: RunDocuments, keys: Iterable[str], asked: np.ndarray) -> np.ndarray:
    """Each frame's value of the first of ``keys`` its ``frames`` event recorded (read after
    the frame's moves, before its counts), else ``asked``."""
    frames = run.stream("frames")
    measured = np.asarray(asked, dtype=float).copy()
    readback = next((frames.column(key) for key in keys if frames.column(key)), [])
    for index, value in zip(frames.column("stack_frame"), readback, strict=False):
        if isinstance(index, int) and 0 <= index < len(measured) and value is not None:
            measured[index] = float(value)
    return measured


def _frame_energies(run: RunDocuments) -> np.ndarray:
    """Energy each frame was measured at (its readback, else as asked)."""
    asked = np.array([float(f["energy_eV"]) for f in run.start["frames"]])
    # The monochromator's readback: the energy pseudo axis can read stale right after a move.
    return _frame_values(run, ("energy_mono_readback", "energy_eV"), asked)


def _frame_optics(run: RunDocuments) -> dict[str, np.ndarray]:
    """ZP z (um) and EPU gap (mm) each frame was measured with (NaN: not recorded)."""
    unknown = np.full(len(run.start["frames"]), np.nan)
    return {
        "zp_z": _frame_values(run, ("energy_zp_z",), unknown),
        "epu_gap": _frame_values(run, ("energy_epu_gap",), unknown),
    }


def _point_frames(run: RunDocuments, points: Mapping[str, np.ndarray]) -> np.ndarray:
    """Frame index of each point (acquisition order; -1 where not known)."""
    start = run.start
    primary = run.stream("primary")
    frames = run.stream("frames")
    columns = {start.get("frame_field") or "": primary.floats(start.get("frame_field") or "")}
    which = frame_of_events(
        start,
        columns,
        np.asarray(primary.time, dtype=float),
        np.asarray(frames.time, dtype=float),
        np.asarray(frames.column("stack_frame"), dtype=int),
    )
    if start.get("scan_mode") == "fly":
        widths = [len(np.atleast_1d(c)) for c in primary.column(start["counter_field"])]
        which = np.repeat(which, widths)
    out = np.full(len(points["counts"]), -1)
    out[: len(which)] = which[: len(out)]
    return out


def _per_point(per_frame: np.ndarray, which: np.ndarray) -> np.ndarray:
    """``per_frame`` values at each point's frame (NaN where the frame is not known)."""
    out = np.full(len(which), np.nan)
    known = (which >= 0) & (which < len(per_frame))
    out[known] = per_frame[which[known]]
    return out


def _count_time(image: StxmImage) -> np.ndarray:
    """Each pixel's counting time: as the fly controller clocked it, else the dwell asked for
    (NaN where the pixel was never measured)."""
    if image.pixel_dwell_s is not None:
        return image.pixel_dwell_s
    return np.where(np.isfinite(image.counts), image.dwell_s, np.nan)


def _image_group(run: RunDocuments, scan_type: str, baseline: Mapping[str, Any]) -> NxdataGroup:
    start = run.start
    image = image_from_documents(run.documents)
    times = image_from_documents(_with_counts_as_time(run)).counts
    count_time = _count_time(image)
    energy = np.array([_baseline_energy(baseline, start)])
    fields: dict[str, np.ndarray] = {"energy": energy, "count_time": count_time}
    units = {"energy": "eV", "count_time": "s", "sample_x": "um", "sample_y": "um"}
    if scan_type == "sample image":
        axes = ["sample_y", "sample_x"]
        fields |= {"sample_y": image.y_um, "sample_x": image.x_um}
    else:
        y_name, x_name = _ALIGNMENT_AXES[scan_type]
        sample = np.array([float(baseline.get("sample_x", np.nan))])
        fields |= {"sample_x": sample, "sample_y": np.array([baseline.get("sample_y", np.nan)])}
        fields |= {y_name: image.y_um}
        units[y_name] = "um"
        if x_name == "line_position":
            along = start["x_field"]
            fields |= {"line_position": image.x_um - image.x_um[0], along: image.x_um}
            units |= {"line_position": "um", along: "um"}
            if along == "sample_x":
                fields["sample_x"] = image.x_um
                fields["sample_y"] = np.full(len(image.x_um), float(fields["sample_y"][0]))
        else:
            fields[x_name] = image.x_um
            units[x_name] = "um"
        axes = [y_name, x_name]
    counter = str(start.get("counter", "detector"))
    return NxdataGroup(
        name=counter,
        data=image.counts,
        axes=axes,
        fields=fields,
        units=units,
        control=_ring_at(run, times),
    )


def _line_xy(start: Mapping[str, Any], points: int) -> tuple[np.ndarray, np.ndarray]:
    (x0, y0), (x1, y1) = start["line_start_um"], start["line_stop_um"]
    return np.linspace(x0, x1, points), np.linspace(y0, y1, points)


def _spectro_groups(run: RunDocuments, scan_type: str) -> list[NxdataGroup]:
    start = run.start
    stack = stack_from_documents(run.documents)
    times = stack_from_documents(_with_counts_as_time(run)).counts
    energies = _frame_energies(run)
    counter = str(start.get("counter", "detector"))
    xmcd = start.get("xmcd")
    if isinstance(xmcd, Mapping):
        helicities = [
            (f"{counter}_plus", xmcd["plus_polarization"]),
            (f"{counter}_minus", xmcd["minus_polarization"]),
        ]
    else:
        helicities = [(counter, None)]
    groups = []
    for name, polarization in helicities:
        keep = [i for i, p in enumerate(stack.polarizations) if polarization in (None, p)]
        counts = stack.counts[keep]
        time = times[keep]
        dwell = np.stack([_count_time(stack.images[i]) for i in keep])
        energy = energies[keep]
        units = {"energy": "eV", "count_time": "s", "sample_x": "um", "sample_y": "um"}
        fields: dict[str, np.ndarray]
        if scan_type == "point spectrum":
            data, time, dwell = counts[:, 0, 0], time[:, 0, 0], dwell[:, 0, 0]
            axes = ["energy"]
            fields = {"sample_x": stack.x_um[:1], "sample_y": stack.y_um[:1]}
        elif scan_type == "line spectrum":
            data, time, dwell = counts[:, 0, :], time[:, 0, :], dwell[:, 0, :]
            xs, ys = _line_xy(start, data.shape[1])
            axes = ["energy", "line_position"]
            along = np.hypot(xs - xs[0], ys - ys[0])
            fields = {"sample_x": xs, "sample_y": ys, "line_position": along}
            units["line_position"] = "um"
        elif scan_type == "sample image" and len(keep) == 1:  # one helicity of an XMCD image
            data, time, dwell = counts[0], time[0], dwell[0]
            axes = ["sample_y", "sample_x"]
            fields = {"sample_y": stack.y_um, "sample_x": stack.x_um}
        else:
            data = counts
            axes = ["energy", "sample_y", "sample_x"]
            fields = {"sample_y": stack.y_um, "sample_x": stack.x_um}
        fields |= {"energy": energy, "count_time": dwell}
        groups.append(
            NxdataGroup(
                name=name,
                data=data,
                axes=axes,
                fields=fields,
                units=units,
                control=_ring_at(run, time),
                polarization=polarization,
            )
        )
    return groups


def build_nexus_content(documents: Iterable[tuple[str, dict]]) -> NexusContent:
    """Arrange one run's documents as the NXstxm file holds them.

    Parameters
    ----------
    documents
        ``(name, doc)`` pairs of one run (a spool file, a catalog export, a live run); a run
        cut off before its stop document is arranged as far as it got.

    Raises
    ------
    ValueError
        If there is no start document, or the run is not an STXM scan type (names it).
    """
    run = RunDocuments.from_documents(documents)
    start = run.start
    scan_type = str(start.get("stxm_scan_type"))
    if scan_type not in NXSTXM_SCAN_TYPES:
        raise ValueError(
            f"run {start.get('uid')} ({start.get('plan_name')}) has scan type {scan_type!r}; "
            f"NXstxm files are written for {', '.join(map(repr, NXSTXM_SCAN_TYPES))}"
        )
    baseline = _baseline(run)
    energy_eV = _baseline_energy(baseline, start)
    points = _raster_points(run, energy_eV)
    # The optics as each point was measured: a run with frames moved them before each frame
    # (its frames stream read them then); other runs leave them as the run found them, but
    # for the zone plate a focus scan steps.
    n = len(points["counts"])
    points["zp_z"] = np.full(n, float(start.get("zp_z_um", np.nan)))
    points["epu_gap"] = np.full(n, float(baseline.get("energy_epu_gap", np.nan)))
    if "frames" in start and scan_type in SPECTRO_SCAN_TYPES:
        which = _point_frames(run, points)
        points["energy"] = _per_point(_frame_energies(run), which)
        points |= {key: _per_point(values, which) for key, values in _frame_optics(run).items()}
        nxdata = _spectro_groups(run, scan_type)
    elif scan_type in RASTER_SCAN_TYPES:
        nxdata = [_image_group(run, scan_type, baseline)]
        if _ALIGNMENT_AXES.get(scan_type, ("",))[0] == "zoneplate_z":
            points["zp_z"] = points["y"]
    else:
        raise ValueError(f"run {start.get('uid')}: a {scan_type!r} run lists no frames")
    if scan_type != "sample image" and "frames" not in start:
        # Alignment scans do not move the sample: it stayed where the baseline found it.
        points["x"] = np.full(len(points["counts"]), float(baseline.get("sample_x", np.nan)))
        points["y"] = np.full(len(points["counts"]), float(baseline.get("sample_y", np.nan)))
    measured = np.isfinite(points["counts"])
    _, ring = _ring_samples(run)
    return NexusContent(
        start=start,
        stop=run.stop,
        scan_type=scan_type,
        start_time=_iso(float(start["time"])),
        end_time=_iso(run.end_time),
        counter=str(start.get("counter", "detector")),
        point_energy_eV=points["energy"][measured],
        point_counts=points["counts"][measured],
        point_count_time_s=points["dwell"][measured],
        point_x_um=points["x"][measured],
        point_y_um=points["y"][measured],
        point_zp_z_um=points["zp_z"][measured],
        point_epu_gap_mm=points["epu_gap"][measured],
        nxdata=nxdata,
        baseline=baseline,
        ring_current_mA=float(np.mean(ring)) if len(ring) else None,
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "none"


def nexus_relative_path(start: Mapping[str, Any], template: str) -> Path:
    """Where a run's file goes under the NeXus directory (``[nexus] file_template``)."""
    proposal = start.get("proposal_id") or start.get("user") or "no_proposal"
    values = {
        "proposal": _slug(str(proposal)),
        "user": _slug(str(start.get("user") or "no_user")),
        "date": datetime.fromtimestamp(float(start["time"])).strftime("%Y-%m-%d"),
        "scan_id": int(start.get("scan_id", 0)),
        "plan_name": _slug(str(start.get("plan_name", "run"))),
        "scan_type": _slug(str(start.get("stxm_scan_type", "scan"))),
        "uid": str(start["uid"])[:8],
        "sample": _slug(str(start.get("sample_name") or "no_sample")),
    }
    return Path(template.format(**values))


def _text(group: h5py.Group, name: str, value: str) -> h5py.Dataset:
    return group.create_dataset(name, data=value, dtype=h5py.string_dtype())


def _group(parent: h5py.Group, name: str, nx_class: str) -> h5py.Group:
    # Creation order is kept: readers that take "the first NXdata" (MANTiS) get the I+ one.
    group = parent.create_group(name, track_order=True)
    group.attrs["NX_class"] = nx_class
    return group


def _number(group: h5py.Group, name: str, value: Any, units: str | None = None) -> h5py.Dataset:
    data = np.asarray(value)
    compression = "gzip" if data.size > 4096 else None  # small fields stay readable by h5dump
    dataset = group.create_dataset(name, data=data, compression=compression)
    if units:
        dataset.attrs["units"] = units
    return dataset


def _counts(values: np.ndarray) -> np.ndarray:
    """Counts as integers when every value is measured, else float with NaN."""
    if values.size and np.isfinite(values).all():
        return values.astype(np.int64)
    return values.astype(np.float64)


def _write_instrument(entry: h5py.Group, content: NexusContent) -> None:
    start, baseline = content.start, content.baseline
    instrument = _group(entry, "instrument", "NXinstrument")
    source = _group(instrument, "source", "NXsource")
    configuration = start.get("configuration") or {}
    ring_name = (configuration.get("ring") or {}).get("name") or start.get("beamline_id", "")
    _text(source, "type", "Synchrotron X-ray Source")
    _text(source, "name", str(ring_name))
    _text(source, "probe", "x-ray")
    if content.ring_current_mA is not None:
        _number(source, "current", content.ring_current_mA, "mA")
    mono = _group(instrument, "monochromator", "NXmonochromator")
    _number(mono, "energy", content.point_energy_eV, "eV")
    detector = _group(instrument, content.counter, "NXdetector")
    _number(detector, "data", _counts(content.point_counts), "counts")
    _number(detector, "count_time", content.point_count_time_s, "s")
    for axis, values in (("sample_x", content.point_x_um), ("sample_y", content.point_y_um)):
        group = _group(instrument, axis, "NXdetector")
        _number(group, "data", values, "um")
    zone_plate = start.get("zone_plate") or {}
    if zone_plate:
        zp = _group(instrument, "zone_plate", "NXfresnel_zone_plate")
        _text(zp, "name", str(zone_plate.get("name", "")))
        _number(zp, "outer_diameter", zone_plate["diameter_um"], "um")
        _number(zp, "outermost_zone_width", zone_plate["outer_zone_width_nm"], "nm")
        _number(zp, "central_stop_diameter", zone_plate["central_stop_um"], "um")
        a1 = a1_um_per_eV(zone_plate["diameter_um"], zone_plate["outer_zone_width_nm"])
        _number(zp, "a1", a1, "um/eV")
        if "a0_um" in start:
            _number(zp, "a0", start["a0_um"], "um")
        if np.isfinite(content.point_zp_z_um).any():
            _number(zp, "z", content.point_zp_z_um, "um")
        _number(zp, "focus_offset", float(start.get("focus_offset_um", 0.0)), "um")
        zp.create_dataset("focus_follows_energy", data=bool(start.get("focus_follows_energy")))
    osa = start.get("osa") or {}
    if osa:
        aperture = _group(instrument, "osa", "NXaperture")
        _text(aperture, "name", str(osa.get("name", "")))
        _number(aperture, "diameter", osa["diameter_um"], "um")
        for axis in ("x", "y", "z"):
            if f"osa_{axis}" in baseline:
                _number(aperture, axis, float(baseline[f"osa_{axis}"]), "um")
    epu = _group(instrument, "epu", "NXinsertion_device")
    _text(epu, "type", "undulator")
    frames = start.get("frames")
    polarizations = (
        [str(f["polarization"] or start.get("polarization", "")) for f in frames]
        if isinstance(frames, list)
        else [str(start.get("polarization", ""))]
    )
    epu.create_dataset("polarization", data=np.array(polarizations, dtype=h5py.string_dtype()))
    if np.isfinite(content.point_epu_gap_mm).any():
        _number(epu, "gap", content.point_epu_gap_mm, "mm")


def _write_nxdata(entry: h5py.Group, group_spec: NxdataGroup, scan_type: str) -> h5py.Group:
    nxdata = _group(entry, group_spec.name, "NXdata")
    nxdata.create_dataset("stxm_scan_type", data=np.array([NXSTXM_SCAN_TYPES[scan_type].encode()]))
    data = _number(nxdata, "data", _counts(group_spec.data), "counts")
    data.attrs["signal"] = 1
    nxdata.attrs["signal"] = "data"
    nxdata.attrs["axes"] = np.array([a.encode() for a in group_spec.axes])
    for index, axis in enumerate(group_spec.axes):
        nxdata.attrs[f"{axis}_indices"] = index
    for name, values in group_spec.fields.items():
        dataset = _number(nxdata, name, values, group_spec.units.get(name))
        if name in group_spec.axes:
            dataset.attrs["axis"] = group_spec.axes.index(name) + 1
    if scan_type == "line spectrum" or (scan_type.endswith("focus")):
        # Positions along the line: sample_x/sample_y (or osa_x) point to the line's dimension.
        for name in ("sample_x", "sample_y", "osa_x"):
            values = group_spec.fields.get(name)
            if values is not None and values.shape == group_spec.data.shape[-1:]:
                nxdata[name].attrs["axis"] = len(group_spec.axes)
    if "energy" in group_spec.axes:
        nxdata["energy"].attrs["axis"] = group_spec.axes.index("energy") + 1
    if group_spec.polarization is not None:
        nxdata.attrs["polarization"] = group_spec.polarization
    return nxdata


def _write_monitors(entry: h5py.Group, content: NexusContent) -> None:
    for index, group_spec in enumerate(content.nxdata):
        if group_spec.control is None:
            continue
        suffix = group_spec.name.removeprefix(content.counter).lstrip("_")
        name = "control" if index == 0 else f"control_{suffix or index}"
        monitor = _group(entry, name, "NXmonitor")
        _number(monitor, "data", group_spec.control, "mA")
        _text(monitor, "mode", "timer")
        _text(monitor, "description", f"storage ring current at each pixel of {group_spec.name}")


def _json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


def _write_entry(file: h5py.File, content: NexusContent) -> None:
    start = content.start
    entry = _group(file, ENTRY, "NXentry")
    file.attrs["default"] = ENTRY
    entry.attrs["default"] = content.nxdata[0].name
    sample_name = str(start.get("sample_name") or "")
    title = f"scan {start.get('scan_id', '?')}: {start.get('plan_name')} ({content.scan_type})"
    _text(entry, "title", title + (f" of {sample_name}" if sample_name else ""))
    _text(entry, "start_time", content.start_time)
    _text(entry, "end_time", content.end_time)
    entry.create_dataset("definition", data=np.array([b"NXstxm"]))
    _text(entry, "entry_identifier", str(start["uid"]))
    program = _text(entry, "program_name", "stxm_ctrl")
    program.attrs["version"] = _program_version()
    if start.get("proposal_id"):
        _text(entry, "experiment_identifier", str(start["proposal_id"]))
    if start.get("user"):
        user = _group(entry, "user", "NXuser")
        _text(user, "name", str(start["user"]))
    _write_instrument(entry, content)
    sample = _group(entry, "sample", "NXsample")
    _text(sample, "name", sample_name)
    _number(sample, "rotation_angle", float(start.get("sample_rotation_deg", 0.0)), "degree")
    for group_spec in content.nxdata:
        _write_nxdata(entry, group_spec, content.scan_type)
    _write_monitors(entry, content)
    collection = _group(entry, "collection", "NXcollection")
    configuration = start.get("configuration")
    without_configuration = {k: v for k, v in start.items() if k != "configuration"}
    _text(collection, "start_document", _json(without_configuration))
    _text(collection, "stop_document", _json(content.stop) if content.stop else "")
    _text(collection, "configuration", _json(configuration) if configuration else "")
    _text(collection, "exit_status", str((content.stop or {}).get("exit_status", "incomplete")))
    _text(collection, "reason", str((content.stop or {}).get("reason", "")))
    _number(collection, "dwell", float(start.get("dwell_s", np.nan)), "s")


def _program_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("stxm-ctrl")
    except PackageNotFoundError:
        return "unknown"


def write_nxstxm(documents: Iterable[tuple[str, dict]], path: Path) -> Path:
    """Write one run's NXstxm file at ``path`` (replacing a file of the same run).

    The file is written under a temporary name beside ``path`` and renamed when complete, so
    ``path`` never holds a half-written file; a failure (disk full) removes the temporary
    file and raises.

    Parameters
    ----------
    documents
        ``(name, doc)`` pairs of one run.
    path
        The file to write (``.nxs``, ``.hdf5`` or ``.stxm``).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        If the documents hold no run of an NXstxm scan type.
    OSError
        If the file cannot be written (names the file; nothing is left behind).
    """
    content = build_nexus_content(documents)
    # Built in memory, then written with plain file I/O: HDF5 itself never writes to the
    # disk, because libhdf5 meeting a full disk while it flushes fails in its close and can
    # crash the process (seen on a 64 kB tmpfs: a segfault) - here, the acquisition's.
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", track_order=True) as file:
        file.attrs["NX_class"] = "NXroot"
        file.attrs["creator"] = "stxm_ctrl"
        file.attrs["file_name"] = path.name
        file.attrs["file_time"] = datetime.now().astimezone().isoformat()
        file.attrs["HDF5_Version"] = h5py.version.hdf5_version
        file.attrs["h5py_version"] = h5py.version.version
        _write_entry(file, content)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as out:
            out.write(buffer.getbuffer())
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path
