"""Small NXstxm files in the conventions of each STXM control system, with known data.

Each builder writes one file into a directory and returns its path. The layouts follow the
writers' public code and documentation (see :mod:`stxm_ctrl.data.nexus_read`); the data are
synthetic, so a test can check every value lands where it belongs:

- images and stacks: ``counts[k, iy, ix] = 1000 + 10 ix + 100 iy + k`` (:func:`truth`),
  on ``X_UM`` (4 columns), ``Y_UM`` (3 rows), ``ENERGIES_EV`` (5 frames): no two pixels
  alike, and ny != nx so a transpose cannot go unnoticed;
- line spectra: ``1000 + 10 i + k`` at point i of ``LINE_POINTS`` along a line from
  (``LINE_X_UM``, ``LINE_Y_UM``), 0.5 um apart;
- point spectra: ``1000 + k`` at (``POINT_X_UM``, ``POINT_Y_UM``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

__all__ = [
    "DWELL_S",
    "ENERGIES_EV",
    "LINE_POINTS",
    "LINE_X_UM",
    "LINE_Y_UM",
    "MINUS",
    "PLUS",
    "POINT_X_UM",
    "POINT_Y_UM",
    "X_UM",
    "Y_UM",
    "ZONEPLATE_Z_UM",
    "line_truth",
    "pixelator_image",
    "pixelator_line_spectrum",
    "pixelator_point_spectrum",
    "pixelator_stack",
    "point_truth",
    "pystxm_image",
    "pystxm_line_spectrum",
    "pystxm_osa_image",
    "pystxm_point_spectrum",
    "pystxm_stack",
    "pystxmcontrol_image",
    "pystxmcontrol_line_spectrum",
    "pystxmcontrol_stack",
    "stxm_ctrl_focus",
    "stxm_ctrl_image",
    "stxm_ctrl_line_spectrum",
    "stxm_ctrl_osa_image",
    "stxm_ctrl_point_spectrum",
    "stxm_ctrl_stack",
    "stxm_ctrl_xmcd",
    "truth",
    "xmcd_run_frames",
]

X_UM = 10.0 + 0.5 * np.arange(4)
Y_UM = -5.0 + 0.25 * np.arange(3)
ENERGIES_EV = 700.0 + np.arange(5)
DWELL_S = 0.002
LINE_POINTS = 6
LINE_X_UM = 2.0 + 0.3 * np.arange(LINE_POINTS)
LINE_Y_UM = 1.0 + 0.4 * np.arange(LINE_POINTS)
POINT_X_UM, POINT_Y_UM = 3.25, -1.5
ZONEPLATE_Z_UM = -20.0 + 10.0 * np.arange(5)
PLUS, MINUS = "Circular left", "Circular right"


def truth(frames: int = len(ENERGIES_EV), ny: int = 3, nx: int = 4) -> np.ndarray:
    """Counts (frames, ny, nx): 1000 + 10 ix + 100 iy + frame index."""
    k, iy, ix = np.meshgrid(np.arange(frames), np.arange(ny), np.arange(nx), indexing="ij")
    return 1000.0 + 10 * ix + 100 * iy + k


def line_truth(frames: int = len(ENERGIES_EV), points: int = LINE_POINTS) -> np.ndarray:
    """Counts (frames, points): 1000 + 10 i + frame index."""
    return truth(frames, 1, points)[:, 0, :]


def point_truth(frames: int = len(ENERGIES_EV)) -> np.ndarray:
    """Counts (frames,): 1000 + frame index."""
    return truth(frames, 1, 1)[:, 0, 0]


# --- writing helpers ------------------------------------------------------------------------


def _group(parent: h5py.Group, name: str, nx_class: Any) -> h5py.Group:
    group = parent.create_group(name)
    group.attrs["NX_class"] = nx_class
    return group


def _fixed(text: str) -> np.ndarray:
    """A 1-element array of fixed-length bytes (Pixelator, stxm_ctrl)."""
    return np.array([text.encode()])


def _readback(setpoints: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Interferometer values: the setpoint plus 1 nm per point index (tells points apart)."""
    return setpoints + 0.001 * index


def _raster_readbacks(frames: int, snake: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per-point x and y of ``frames`` rasters in acquisition order (rows snaked if asked)."""
    ny, nx = Y_UM.size, X_UM.size
    _, iy, ix = np.meshgrid(np.arange(frames), np.arange(ny), np.arange(nx), indexing="ij")
    index = np.arange(frames * ny * nx).reshape(frames, ny, nx)
    x = _readback(X_UM[ix], index)
    y = _readback(Y_UM[iy], index)
    if snake:
        x[:, 1::2] = x[:, 1::2, ::-1]
        y[:, 1::2] = y[:, 1::2, ::-1]
    return x.reshape(-1), y.reshape(-1)


def _instrument(entry: h5py.Group, nx_class: Any, points: int) -> h5py.Group:
    instrument = _group(entry, "instrument", nx_class("NXinstrument"))
    source = _group(instrument, "source", nx_class("NXsource"))
    source["type"] = "Synchrotron X-ray Source"
    source["name"] = "Synchrotron"
    source["probe"] = "x-ray"
    mono = _group(instrument, "monochromator", nx_class("NXmonochromator"))
    mono["energy"] = np.full(points, ENERGIES_EV[0])
    return instrument


def _detector(parent: h5py.Group, name: str, nx_class: Any, data: Any, count_time: Any) -> None:
    detector = _group(parent, name, nx_class("NXdetector"))
    detector["data"] = data
    if count_time is not None:
        detector["count_time"] = count_time


# --- stxm_ctrl (this project) ---------------------------------------------------------------


def _stxm_ctrl_file(
    path: Path, start: dict[str, Any], points: int, title: str = "vortex disc"
) -> tuple[h5py.File, h5py.Group]:
    f = h5py.File(path, "w")
    entry = _group(f, "entry1", np.bytes_("NXentry"))
    entry["definition"] = _fixed("NXstxm")
    entry["title"] = title
    entry["start_time"] = "2024-05-06T10:11:12.345+02:00"
    entry["end_time"] = "2024-05-06T10:21:12.345+02:00"
    _instrument(entry, np.bytes_, points)
    sample = _group(entry, "sample", np.bytes_("NXsample"))
    sample["name"] = start.get("sample_name", "sample")
    collection = _group(entry, "collection", np.bytes_("NXcollection"))
    collection["start_document"] = json.dumps(start)
    return f, entry


def _stxm_ctrl_nxdata(
    entry: h5py.Group,
    name: str,
    scan_type: str,
    data: np.ndarray,
    axes: list[str],
    fields: dict[str, np.ndarray],
    count_time: np.ndarray,
) -> h5py.Group:
    nxdata = _group(entry, name, np.bytes_("NXdata"))
    nxdata["stxm_scan_type"] = _fixed(scan_type)
    nxdata["data"] = data
    for key, values in fields.items():
        nxdata[key] = values
    nxdata["count_time"] = count_time
    nxdata.attrs["signal"] = "data"
    nxdata.attrs["axes"] = np.array([a.encode() for a in axes])
    return nxdata


def _control(entry: h5py.Group, nx_class: Any, shape: tuple[int, ...]) -> None:
    control = _group(entry, "control", nx_class("NXmonitor"))
    control["data"] = np.full(shape, 401.5)


def _pixel_dwell(shape: tuple[int, ...]) -> np.ndarray:
    """Counting time per pixel: DWELL_S within +-2 % (as the interferometer clocks them)."""
    columns = np.arange(shape[-1])
    return np.broadcast_to(DWELL_S * (0.99 + 0.01 * (columns % 3)), shape).copy()


def stxm_ctrl_image(directory: Path, snake: bool = False) -> Path:
    """A sample image: data (1, ny, nx), per-pixel count_time, readbacks per point."""
    path = directory / "stxm_ctrl_image.hdf5"
    ny, nx = Y_UM.size, X_UM.size
    start = {
        "uid": "image-uid-1",
        "scan_id": 17,
        "plan_name": "sample_image",
        "stxm_scan_type": "sample image",
        "sample_name": "vortex disc",
        "dwell_s": DWELL_S,
        "shape": [ny, nx],
        "extents": [[Y_UM[0], Y_UM[-1]], [X_UM[0], X_UM[-1]]],
        "snaking": [False, snake],
        "scan_mode": "step",
    }
    f, entry = _stxm_ctrl_file(path, start, ny * nx)
    with f:
        data = truth(1)
        x, y = _raster_readbacks(1, snake)
        instrument = entry["instrument"]
        assert isinstance(instrument, h5py.Group)
        _detector(instrument, "apd", np.bytes_, data.reshape(-1), _pixel_dwell(data.shape).ravel())
        _detector(instrument, "sample_x", np.bytes_, x, None)
        _detector(instrument, "sample_y", np.bytes_, y, None)
        fields = {"energy": ENERGIES_EV[:1], "sample_y": Y_UM, "sample_x": X_UM}
        _stxm_ctrl_nxdata(
            entry,
            "apd",
            "sample image",
            data,
            ["energy", "sample_y", "sample_x"],
            fields,
            _pixel_dwell(data.shape),
        )
        _control(entry, np.bytes_, data.shape)
    return path


def stxm_ctrl_stack(directory: Path) -> Path:
    """A sample image stack (energies, ny, nx) with the start document's frames."""
    path = directory / "stxm_ctrl_stack.hdf5"
    frames = [{"energy_eV": float(e), "polarization": None} for e in ENERGIES_EV]
    start = {
        "uid": "stack-uid-1",
        "scan_id": 18,
        "stxm_scan_type": "sample image stack",
        "dwell_s": DWELL_S,
        "frames": frames,
        "sample_name": "pillars",
    }
    data = truth()
    f, entry = _stxm_ctrl_file(path, start, data.size)
    with f:
        x, y = _raster_readbacks(len(ENERGIES_EV))
        instrument = entry["instrument"]
        assert isinstance(instrument, h5py.Group)
        _detector(instrument, "sample_x", np.bytes_, x, None)
        _detector(instrument, "sample_y", np.bytes_, y, None)
        fields = {"energy": ENERGIES_EV, "sample_y": Y_UM, "sample_x": X_UM}
        _stxm_ctrl_nxdata(
            entry,
            "apd",
            "sample image stack",
            data,
            ["energy", "sample_y", "sample_x"],
            fields,
            _pixel_dwell(data.shape),
        )
        _control(entry, np.bytes_, data.shape)
    return path


def xmcd_run_frames(energies: np.ndarray) -> list[tuple[float, str]]:
    """(energy, polarisation) in the project's XMCD order: + -, - +, + -, ..."""
    frames: list[tuple[float, str]] = []
    for i, e in enumerate(energies):
        order = (MINUS, PLUS) if i % 2 else (PLUS, MINUS)
        frames += [(float(e), order[0]), (float(e), order[1])]
    return frames


def stxm_ctrl_xmcd(directory: Path, with_start_document: bool = True) -> Path:
    """XMCD at two energies: NXdata apd_plus and apd_minus with a ``polarization`` attribute.

    I- counts are 0.9 of I+ (``truth`` for I+). The NXinstrument readbacks are per point over
    the whole run in acquisition order; x readback = X + 0.001 * point index.
    """
    path = directory / ("stxm_ctrl_xmcd.hdf5" if with_start_document else "xmcd_bare.hdf5")
    energies = ENERGIES_EV[:2] + 6.0
    run = xmcd_run_frames(energies)
    start = {
        "uid": "xmcd-uid-1",
        "stxm_scan_type": "sample image stack",
        "dwell_s": DWELL_S,
        "frames": [{"energy_eV": e, "polarization": p} for e, p in run],
        "xmcd": {"plus_polarization": PLUS, "minus_polarization": MINUS},
    }
    plus = truth(len(energies))
    f, entry = _stxm_ctrl_file(path, start, 2 * plus.size)
    with f:
        if not with_start_document:
            del entry["collection"]
        x, y = _raster_readbacks(len(run))
        instrument = entry["instrument"]
        assert isinstance(instrument, h5py.Group)
        _detector(instrument, "sample_x", np.bytes_, x, None)
        _detector(instrument, "sample_y", np.bytes_, y, None)
        fields = {"energy": energies, "sample_y": Y_UM, "sample_x": X_UM}
        axes = ["energy", "sample_y", "sample_x"]
        for name, pol, counts in (("apd_plus", PLUS, plus), ("apd_minus", MINUS, 0.9 * plus)):
            nxdata = _stxm_ctrl_nxdata(
                entry,
                name,
                "sample image stack",
                counts,
                axes,
                fields,
                np.full(counts.shape, DWELL_S),
            )
            nxdata.attrs["polarization"] = pol
    return path


def stxm_ctrl_point_spectrum(directory: Path) -> Path:
    """A point spectrum: data (energies,), per-point count_time, axes [energy]."""
    path = directory / "stxm_ctrl_point.hdf5"
    start = {"uid": "point-uid-1", "stxm_scan_type": "point spectrum", "dwell_s": DWELL_S}
    f, entry = _stxm_ctrl_file(path, start, len(ENERGIES_EV))
    with f:
        fields = {
            "energy": ENERGIES_EV,
            "sample_y": np.array([POINT_Y_UM]),
            "sample_x": np.array([POINT_X_UM]),
        }
        _stxm_ctrl_nxdata(
            entry,
            "apd",
            "sample point spectrum",
            point_truth(),
            ["energy"],
            fields,
            np.full(len(ENERGIES_EV), DWELL_S),
        )
    return path


def stxm_ctrl_line_spectrum(directory: Path) -> Path:
    """A line spectrum: data (energies, points) on [energy, line_position]."""
    path = directory / "stxm_ctrl_line.hdf5"
    start = {"uid": "line-uid-1", "stxm_scan_type": "line spectrum", "dwell_s": DWELL_S}
    f, entry = _stxm_ctrl_file(path, start, len(ENERGIES_EV) * LINE_POINTS)
    with f:
        fields = {
            "energy": ENERGIES_EV,
            "line_position": 0.5 * np.arange(LINE_POINTS),
            "sample_y": LINE_Y_UM,
            "sample_x": LINE_X_UM,
        }
        data = line_truth()
        _stxm_ctrl_nxdata(
            entry,
            "apd",
            "sample line spectrum",
            data,
            ["energy", "line_position"],
            fields,
            np.full(data.shape, DWELL_S),
        )
    return path


def stxm_ctrl_osa_image(directory: Path) -> Path:
    """An OSA image: data (ny, nx) on [osa_y, osa_x]."""
    path = directory / "stxm_ctrl_osa.hdf5"
    start = {"uid": "osa-uid-1", "stxm_scan_type": "osa image", "dwell_s": DWELL_S}
    f, entry = _stxm_ctrl_file(path, start, X_UM.size * Y_UM.size)
    with f:
        fields = {
            "energy": ENERGIES_EV[:1],
            "osa_y": Y_UM,
            "osa_x": X_UM,
            "sample_y": np.zeros(1),
            "sample_x": np.zeros(1),
        }
        data = truth(1)[0]
        _stxm_ctrl_nxdata(
            entry,
            "apd",
            "osa image",
            data,
            ["osa_y", "osa_x"],
            fields,
            np.full(data.shape, DWELL_S),
        )
    return path


def stxm_ctrl_focus(directory: Path) -> Path:
    """A sample focus scan: data (z, points) on [zoneplate_z, line_position]."""
    path = directory / "stxm_ctrl_focus.hdf5"
    start = {"uid": "focus-uid-1", "stxm_scan_type": "sample focus", "dwell_s": DWELL_S}
    f, entry = _stxm_ctrl_file(path, start, ZONEPLATE_Z_UM.size * LINE_POINTS)
    with f:
        fields = {
            "energy": ENERGIES_EV[:1],
            "zoneplate_z": ZONEPLATE_Z_UM,
            "line_position": 0.5 * np.arange(LINE_POINTS),
            "sample_y": LINE_Y_UM,
            "sample_x": LINE_X_UM,
        }
        data = truth(1, ZONEPLATE_Z_UM.size, LINE_POINTS)[0]
        _stxm_ctrl_nxdata(
            entry,
            "apd",
            "sample focus",
            data,
            ["zoneplate_z", "line_position"],
            fields,
            np.full(data.shape, DWELL_S),
        )
    return path


# --- Pixelator (PolLux, MAXYMUS) ------------------------------------------------------------


def _pixelator_entry(f: h5py.File, name: str, points: int) -> h5py.Group:
    entry = _group(f, name, _fixed("NXentry"))
    entry["definition"] = _fixed("NXstxm")
    entry["title"] = _fixed("Sample")
    entry["start_time"] = _fixed("2024-05-06T10:11:12+02:00")
    entry["end_time"] = _fixed("2024-05-06T10:41:12+02:00")
    _instrument(entry, _fixed, points)
    sample = _group(entry, "sample", _fixed("NXsample"))
    sample["rotation_angle"] = np.array([0.0])
    return entry


def _pixelator_file(path: Path) -> h5py.File:
    f = h5py.File(path, "w")
    f.attrs["HDF5_Version"] = _fixed(h5py.version.hdf5_version)
    f.attrs["NeXus_version"] = _fixed("4.3.0")
    f.attrs["file_name"] = _fixed(str(path))
    f.attrs["file_time"] = _fixed("2024-05-06T10:11:12+02:00")
    return f


def _pixelator_counter(entry: h5py.Group, name: str, scan_type: str) -> h5py.Group:
    nxdata = _group(entry, name, _fixed("NXdata"))
    nxdata["stxm_scan_type"] = _fixed(scan_type)
    return nxdata


def pixelator_stack(directory: Path) -> Path:
    """Two regions (entry1, entry2), channels counter0 and counter1 (= 2 x counter0).

    Modern axes (@axes array of bytes, @signal bytes), count_time per energy, control
    monitor; entry2's x axis is shifted by +100 um. Named as Pixelator names its files.
    """
    path = directory / "Sample_Image_2024-05-06_012.hdf5"
    data = truth()
    with _pixelator_file(path) as f:
        for region, shift in (("entry1", 0.0), ("entry2", 100.0)):
            entry = _pixelator_entry(f, region, data.size)
            instrument = entry["instrument"]
            assert isinstance(instrument, h5py.Group)
            _detector(instrument, "counter0", _fixed, data.reshape(-1), None)
            x, y = _raster_readbacks(len(ENERGIES_EV))
            _detector(instrument, "sample_x", _fixed, x + shift, None)
            _detector(instrument, "sample_y", _fixed, y, None)
            for name, factor in (("counter0", 1.0), ("counter1", 2.0)):
                nxdata = _pixelator_counter(entry, name, "sample image stack")
                nxdata["data"] = (factor * data).astype(np.int32)
                nxdata["energy"] = ENERGIES_EV
                nxdata["sample_y"] = Y_UM
                nxdata["sample_x"] = X_UM + shift
                nxdata["count_time"] = np.full(len(ENERGIES_EV), DWELL_S)
                nxdata.attrs["axes"] = np.array([b"energy", b"sample_y", b"sample_x"])
                nxdata.attrs["signal"] = np.bytes_("data")
            _control(entry, _fixed, data.shape)
    return path


def pixelator_image(directory: Path, xy_order: bool = False) -> Path:
    """A single image of the old layout: per-field integer @axis, energy without one.

    ``xy_order``: the data stored (x, y) (sample_x @axis 1, sample_y @axis 2) with the
    early ``photon_energy`` field; the reader must transpose by the attributes.
    """
    path = directory / ("pixelator_xy.hdf5" if xy_order else "pixelator_image.hdf5")
    data = truth(1)[0]
    with _pixelator_file(path) as f:
        entry = _pixelator_entry(f, "entry1", data.size)
        nxdata = _pixelator_counter(entry, "counter0", "sample image")
        nxdata["data"] = data.T if xy_order else data
        nxdata["photon_energy" if xy_order else "energy"] = np.array([705.0])
        nxdata["sample_y"] = Y_UM
        nxdata["sample_x"] = X_UM
        nxdata["sample_y"].attrs["axis"] = np.int32(2 if xy_order else 1)
        nxdata["sample_x"].attrs["axis"] = np.int32(1 if xy_order else 2)
        nxdata["count_time"] = np.array([DWELL_S])
    return path


def pixelator_point_spectrum(directory: Path) -> Path:
    """A point spectrum: data (energies,), energy @axis 1, one-value sample_x/sample_y."""
    path = directory / "pixelator_point.hdf5"
    with _pixelator_file(path) as f:
        entry = _pixelator_entry(f, "entry1", len(ENERGIES_EV))
        nxdata = _pixelator_counter(entry, "counter0", "sample point spectrum")
        nxdata["data"] = point_truth()
        nxdata["energy"] = ENERGIES_EV
        nxdata["energy"].attrs["axis"] = np.int32(1)
        nxdata["sample_y"] = np.array([POINT_Y_UM])
        nxdata["sample_x"] = np.array([POINT_X_UM])
        nxdata["count_time"] = np.full(len(ENERGIES_EV), DWELL_S)
    return path


def pixelator_line_spectrum(directory: Path, modern: bool = True) -> Path:
    """A line spectrum (energies, points).

    ``modern``: @axes [energy, line_position] with a line_position field; else the old
    layout: energy @axis 1, sample_x and sample_y both @axis 2, no line_position.
    """
    path = directory / ("pixelator_line.hdf5" if modern else "pixelator_line_old.hdf5")
    with _pixelator_file(path) as f:
        entry = _pixelator_entry(f, "entry1", len(ENERGIES_EV) * LINE_POINTS)
        nxdata = _pixelator_counter(entry, "counter0", "sample line spectrum")
        nxdata["data"] = line_truth()
        nxdata["energy"] = ENERGIES_EV
        nxdata["sample_y"] = LINE_Y_UM
        nxdata["sample_x"] = LINE_X_UM
        nxdata["count_time"] = np.full(len(ENERGIES_EV), DWELL_S)
        if modern:
            nxdata["line_position"] = 0.5 * np.arange(LINE_POINTS)
            nxdata.attrs["axes"] = np.array([b"energy", b"line_position"])
            nxdata.attrs["signal"] = np.bytes_("data")
        else:
            for name, axis in (("energy", 1), ("sample_x", 2), ("sample_y", 2)):
                nxdata[name].attrs["axis"] = np.int32(axis)
    return path


# --- pystxmcontrol (ALS), writeNX.py version 3 ----------------------------------------------


def _pystxmcontrol_entry(
    f: h5py.File, name: str, data: np.ndarray, scan_type: str, xs: np.ndarray, ys: np.ndarray
) -> None:
    n_energies = data.shape[0]
    entry = _group(f, name, np.bytes_("NXentry"))
    entry["start_time"] = b"2024-05-06T10:11:12.123456"
    entry["end_time"] = b"2024-05-06T10:15:12.123456"
    entry["title"] = b"ALS-12345"
    entry["version"] = 3.0
    entry["definition"] = [b"NXstxm"]
    entry["experimenters"] = b"Shapiro"
    instrument = _instrument(entry, np.bytes_, n_energies)
    raw = _group(instrument, "default", np.bytes_("NXdetector"))
    raw.attrs["type"] = np.bytes_("photon")
    raw["data"] = np.zeros((n_energies, 2 * data[0].size))  # the fly DAQ's raw samples
    for axis in ("sample_x", "sample_y", "sample_z"):
        _detector(instrument, axis, np.bytes_, np.zeros((n_energies, 37)), None)
    _group(instrument, "motors", np.bytes_("NXdetector"))
    sample = _group(entry, "sample", np.bytes_("NXsample"))
    sample["description"] = "golden sample"
    sample["comment"] = "test scan"
    nxdata = _group(entry, "default", np.bytes_("NXdata"))
    nxdata.attrs["axes"] = [np.bytes_("energy"), np.bytes_("sample_y"), np.bytes_("sample_x")]
    nxdata.attrs["signal"] = "data"
    nxdata["stxm_scan_type"] = [scan_type]
    nxdata["data"] = data
    energies = ENERGIES_EV[:n_energies] if n_energies > 1 else np.array([705.0])
    nxdata["energy"] = energies
    nxdata["energy"].attrs["axis"] = 1
    nxdata["count_time"] = np.full(n_energies, DWELL_S)
    nxdata["sample_y"] = ys
    nxdata["sample_y"].attrs["axis"] = 2
    nxdata["sample_x"] = xs
    nxdata["sample_x"].attrs["axis"] = 3
    nxdata["motor_name_x"] = "SampleX"
    nxdata["motor_name_y"] = "SampleY"


def pystxmcontrol_image(directory: Path) -> Path:
    """An ``Image`` at one energy: data (1, ny, nx) under @axes and @axis."""
    path = directory / "NS_240506012.stxm"
    with h5py.File(path, "w") as f:
        _pystxmcontrol_entry(f, "entry0", truth(1), "Image", X_UM, Y_UM)
    return path


def pystxmcontrol_stack(directory: Path) -> Path:
    """An ``Image`` of several energies in two regions (entry0, entry1 shifted +100 um in y)."""
    path = directory / "NS_240506013.stxm"
    with h5py.File(path, "w") as f:
        _pystxmcontrol_entry(f, "entry0", truth(), "Image", X_UM, Y_UM)
        _pystxmcontrol_entry(f, "entry1", truth() + 5000, "Image", X_UM, Y_UM + 100.0)
    return path


def pystxmcontrol_line_spectrum(directory: Path) -> Path:
    """A ``Line Spectrum`` along x: data (energies, 1, points), one sample_y."""
    path = directory / "NS_240506014.stxm"
    data = line_truth()[:, None, :]
    with h5py.File(path, "w") as f:
        _pystxmcontrol_entry(
            f, "entry0", data, "Line Spectrum", LINE_X_UM, np.array([LINE_Y_UM[0]])
        )
    return path


# --- pyStxm (CLS), suitcase nxstxm ----------------------------------------------------------


def _nx_dataset(group: h5py.Group, name: str, data: Any, nx_type: str) -> h5py.Dataset:
    """pyStxm's _dataset: every field carries NX_class and NX_units attributes."""
    dataset = group.create_dataset(name, data=data)
    dataset.attrs["NX_class"] = nx_type
    dataset.attrs["NX_units"] = "NX_ANY"
    return dataset


def _pystxm_file(path: Path) -> h5py.File:
    f = h5py.File(path, "w")
    for key, value in (
        ("HDF5_Version", "1.8.4"),
        ("h5py_version", h5py.version.version),
        ("nexpy_version", "0.10.1"),
        ("NeXus_version", "4.3.0"),
        ("file_name", str(path)),
        ("file_time", "2024-05-06T10:11:12-06:00"),
        ("scan_uid", "0f4c5f1e-cls"),
    ):
        f.attrs[key] = value
    f.attrs["default"] = "entry0"
    return f


def _pystxm_entry(
    f: h5py.File, name: str, detector: str, scan_type: str, points: int
) -> tuple[h5py.Group, h5py.Group]:
    entry = _group(f, name, "NXentry")
    entry.attrs["default"] = detector
    _nx_dataset(entry, "title", "NeXus sample", "NX_CHAR")
    _nx_dataset(entry, "start_time", "2024-05-06T10:11:12", "NX_DATE_TIME")
    _nx_dataset(entry, "end_time", "2024-05-06T10:13:12", "NX_DATE_TIME")
    _nx_dataset(entry, "definition", "NXstxm", "NX_CHAR")
    _nx_dataset(entry, "version", "1.0", "NX_CHAR")
    collection = _group(entry, "collection", "NXcollection")
    request = _group(collection, "scan_request", "NXscanDefinition")
    _nx_dataset(request, "scan_request", json.dumps({"SCAN_TYPE": scan_type}), "NXchar")
    instrument = _group(entry, "instrument", "NXinstrument")
    mono = _group(instrument, "monochromator", "NXmonochromator")
    _nx_dataset(mono, "energy", np.full(points, 705.0), "NX_FLOAT")
    for axis, start in (("sample_x", 12.5), ("sample_y", -3.0)):
        # pyStxm writes the start position for every point
        sensor = _group(instrument, axis, "NXdetector")
        _nx_dataset(sensor, "data", np.full(points, start), "NX_FLOAT")
        _nx_dataset(sensor, "count_time", np.full(points, DWELL_S), "NX_FLOAT")
    sample = _group(entry, "sample", "NXsample")
    _nx_dataset(sample, "rotation_angle", 0.0, "NX_FLOAT")
    nxdata = _group(entry, detector, "NXdata")
    _nx_dataset(nxdata, "stxm_scan_type", scan_type, "NX_CHAR")
    nxdata.attrs["signal"] = "data"
    return entry, nxdata


def _pystxm_data(nxdata: h5py.Group, data: np.ndarray, axes: list[str]) -> None:
    dataset = _nx_dataset(nxdata, "data", data, "NX_NUMBER")
    dataset.attrs["signal"] = "1"
    nxdata.attrs["axes"] = axes


def pystxm_image(directory: Path) -> Path:
    """A SAMPLE IMAGE (ny, nx) on positioner-named axes; constant NXinstrument positions."""
    path = directory / "C240506012.hdf5"
    data = truth(1)[0]
    with _pystxm_file(path) as f:
        entry, nxdata = _pystxm_entry(
            f, "entry0", "DNM_DEFAULT_COUNTER", "SAMPLE IMAGE", data.size
        )
        _nx_dataset(nxdata, "count_time", np.array([DWELL_S]), "NX_FLOAT")
        _nx_dataset(nxdata, "energy", np.array([705.0]), "NX_FLOAT")
        _nx_dataset(nxdata, "sample_x", X_UM, "NX_FLOAT")
        _nx_dataset(nxdata, "sample_y", Y_UM, "NX_FLOAT")
        _nx_dataset(nxdata, "dnm_sample_fine_y", Y_UM, "NX_FLOAT")
        _nx_dataset(nxdata, "dnm_sample_fine_x", X_UM, "NX_FLOAT")
        _pystxm_data(nxdata, data, ["dnm_sample_fine_y", "dnm_sample_fine_x"])
        control = _group(entry, "control", "NXmonitor")
        _nx_dataset(control, "data", np.full(data.shape, 220.0), "NX_NUMBER")
    return path


def pystxm_stack(directory: Path) -> Path:
    """A SAMPLE IMAGE STACK (energies, ny, nx) on [energy, sample_y, sample_x]."""
    path = directory / "C240506013.hdf5"
    data = truth()
    with _pystxm_file(path) as f:
        _, nxdata = _pystxm_entry(
            f, "entry0", "DNM_DEFAULT_COUNTER", "SAMPLE IMAGE STACK", data[0].size
        )
        _nx_dataset(nxdata, "count_time", np.full(len(ENERGIES_EV), DWELL_S), "NX_FLOAT")
        _nx_dataset(nxdata, "energy", ENERGIES_EV, "NX_FLOAT")
        _nx_dataset(nxdata, "sample_y", Y_UM, "NX_FLOAT")
        _nx_dataset(nxdata, "sample_x", X_UM, "NX_FLOAT")
        _pystxm_data(nxdata, data, ["energy", "sample_y", "sample_x"])
    return path


def pystxm_point_spectrum(directory: Path) -> Path:
    """Two points (entry0, entry1): data (energies,) under three axes, positions repeated."""
    path = directory / "C240506014.hdf5"
    with _pystxm_file(path) as f:
        for i, name in enumerate(("entry0", "entry1")):
            _, nxdata = _pystxm_entry(
                f, name, "DNM_DEFAULT_COUNTER", "SAMPLE POINT SPECTRUM", len(ENERGIES_EV)
            )
            n = len(ENERGIES_EV)
            _nx_dataset(nxdata, "count_time", np.full(n, DWELL_S), "NX_FLOAT")
            _nx_dataset(nxdata, "energy", ENERGIES_EV, "NX_FLOAT")
            _nx_dataset(nxdata, "sample_y", np.full(n, POINT_Y_UM + i), "NX_FLOAT")
            _nx_dataset(nxdata, "sample_x", np.full(n, POINT_X_UM + i), "NX_FLOAT")
            _pystxm_data(nxdata, point_truth() + 100 * i, ["energy", "sample_y", "sample_x"])
    return path


def pystxm_line_spectrum(directory: Path, square: bool = False) -> Path:
    """A SAMPLE LINE SPECTRUM stored (points, energies) under @axes [energy, line_position].

    ``square``: as many points as energies, so only the writer's known layout tells the
    order.
    """
    path = directory / ("C240506016.hdf5" if square else "C240506015.hdf5")
    points = len(ENERGIES_EV) if square else LINE_POINTS
    with _pystxm_file(path) as f:
        _, nxdata = _pystxm_entry(
            f, "entry0", "DNM_DEFAULT_COUNTER", "SAMPLE LINE SPECTRUM", points * len(ENERGIES_EV)
        )
        _nx_dataset(nxdata, "count_time", np.full(len(ENERGIES_EV), DWELL_S), "NX_FLOAT")
        _nx_dataset(nxdata, "energy", ENERGIES_EV, "NX_FLOAT")
        step = 0.5
        positions = np.cumsum(np.diff(np.linspace(0.0, points * step, points + 1)))
        _nx_dataset(nxdata, "line_position", positions, "NX_FLOAT")
        _nx_dataset(nxdata, "sample_y", LINE_Y_UM[:points], "NX_FLOAT")
        _nx_dataset(nxdata, "sample_x", LINE_X_UM[:points], "NX_FLOAT")
        _pystxm_data(nxdata, line_truth(points=points).T, ["energy", "line_position"])
    return path


def pystxm_osa_image(directory: Path) -> Path:
    """An OSA IMAGE stored (1, ny, nx) under two axes."""
    path = directory / "C240506017.hdf5"
    data = truth(1)
    with _pystxm_file(path) as f:
        _, nxdata = _pystxm_entry(f, "entry0", "DNM_DEFAULT_COUNTER", "OSA IMAGE", data.size)
        _nx_dataset(nxdata, "count_time", np.array([DWELL_S]), "NX_FLOAT")
        _nx_dataset(nxdata, "energy", np.array([705.0]), "NX_FLOAT")
        _nx_dataset(nxdata, "sample_x", np.array([12.5]), "NX_FLOAT")
        _nx_dataset(nxdata, "sample_y", np.array([-3.0]), "NX_FLOAT")
        _nx_dataset(nxdata, "dnm_osa_y", Y_UM, "NX_FLOAT")
        _nx_dataset(nxdata, "dnm_osa_x", X_UM, "NX_FLOAT")
        _pystxm_data(nxdata, data, ["dnm_osa_y", "dnm_osa_x"])
    return path
