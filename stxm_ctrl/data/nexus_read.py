"""Read NXstxm (NeXus/HDF5) files of any STXM control system as images and stacks.

:func:`read_nxstxm` returns the objects the analysis works on
(:class:`~stxm_ctrl.data.images.StxmImage`, :class:`~stxm_ctrl.data.stacks.StxmStack`), so
old data from other beamlines goes through the same optical density, XMCD and spectra code
as new data; :func:`list_nxstxm` says what a file holds. Strings, axes, energy and signal
are read in every spelling the NXstxm writers use (Pixelator, pystxmcontrol, pyStxm and
this project), and the data are transposed by what the axes say, never guessed from the
shape. Which conventions, where they were learned, each writer's quirks and what each scan
type becomes: ``docs/explanation/reading-nxstxm.md``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from stxm_ctrl.data.images import StxmImage
from stxm_ctrl.data.stacks import StxmStack

__all__ = ["NexusReadError", "NxstxmEntrySummary", "list_nxstxm", "read_nxstxm"]

_NXSTXM = "NXstxm definition"
_ENERGY_FIELDS = ("energy", "photon_energy")
_IMAGE_TYPES = ("sample image", "osa image", "osa focus", "sample focus", "detector image")
_SAMPLE_TYPES = ("sample image", "sample image stack", "point spectrum", "line spectrum")

_SCAN_TYPES = {
    # NXstxm's enumeration and the project's own names
    "sample image": "sample image",
    "sample image stack": "sample image stack",
    "sample point spectrum": "point spectrum",
    "sample line spectrum": "line spectrum",
    "point spectrum": "point spectrum",
    "line spectrum": "line spectrum",
    "sample focus": "sample focus",
    "osa image": "osa image",
    "osa focus": "osa focus",
    "detector image": "detector image",
    # pyStxm's enum names (upper case, "_" for " ", SPECTRA in suitcase-nxstxm)
    "sample point spectra": "point spectrum",
    "sample line spectra": "line spectrum",
    "coarse image scan": "sample image",
    "coarse image": "sample image",
    # pystxmcontrol's scan names (config/scans.json)
    "image": "sample image",
    "spiral image": "sample image",
    "focus": "sample focus",
}
"""Scan-type labels of the writers, lower case, to the project's names."""

_PIXELATOR_FILE = re.compile(r"^[A-Za-z][A-Za-z0-9 _]*_\d{4}-\d{2}-\d{2}_\d+\.(hdf5|h5|nxs)$")
_WRITER_NAMES = (
    ("stxm_ctrl", "stxm_ctrl"),
    ("stxm-ctrl", "stxm_ctrl"),
    ("pixelator", "Pixelator"),
    ("pystxmcontrol", "pystxmcontrol"),
    ("pystxm", "pyStxm"),
)


class NexusReadError(ValueError):
    """A file that cannot be read as NXstxm; the message names the file and the part."""


@dataclass(frozen=True)
class NxstxmEntrySummary:
    """What one NXstxm entry of a file holds.

    Attributes
    ----------
    entry
        Name of the NXentry group (``entry1``, ``entry0``, ...).
    channels
        Names of its NXdata groups (detector channels), the default first.
    scan_type
        The scan type in the project's names (``"sample image"``, ``"point spectrum"``, ...),
        or the file's own label if it is not one of them, or ``"unknown"``.
    data_shape
        Shape of the default channel's data as stored.
    source_writer
        Best guess of the writing software (see :func:`read_nxstxm`).
    title
        The entry's title, if any.
    """

    entry: str
    channels: tuple[str, ...]
    scan_type: str
    data_shape: tuple[int, ...]
    source_writer: str
    title: str | None = None


def read_nxstxm(
    path: Path | str, *, entry: str | None = None, channel: str | None = None
) -> StxmImage | StxmStack:
    """Read one entry and channel of an NXstxm file as an image or a stack.

    The ``start`` mapping of the result carries ``uid``, ``stxm_scan_type`` (the project's
    names), ``source_file``, ``source_entry``, ``source_channel``, ``source_writer``,
    ``dwell_s``, ``energy_eV`` (first energy), ``shape`` [ny, nx], ``extents``
    [[y0, y1], [x0, x1]], ``x_axis``/``y_axis`` (names of the scanned axes), and when the
    file has them ``title``, ``start_time``, ``end_time``, ``sample_name``,
    ``ring_current_mA`` (mean per frame of the NXmonitor), ``nexus_stxm_scan_type`` (the
    file's label) and ``nexus_read_notes``. A file written by this project starts from its
    bluesky start document (``collection/start_document``), whose ``uid``, ``scan_id``,
    ``sample_name`` and ``dwell_s`` are kept.

    ``source_writer`` is a guess from these markers, in order: a ``creator``,
    ``program_name``, ``program`` or ``software`` attribute or field of the file or entry
    naming the program; ``collection/start_document`` (``"stxm_ctrl"``); the file
    attributes ``nexpy_version``/``scan_uid`` or ``collection/scan_request`` (``"pyStxm"``);
    a ``.stxm`` file, a numeric entry ``version``, ``motor_name_x`` in an NXdata group,
    NXdetectors with ``@type = "photon"`` or an entry-level ``motors`` group
    (``"pystxmcontrol"``); a file named like ``Sample_Image_2024-05-06_012.hdf5``, or
    NXdata groups named ``counter<N>`` next to a 1-element ``definition`` array
    (``"Pixelator"``); else ``"unknown"``.

    Dwell: ``count_time`` of the NXdata group (else of the NXinstrument detector of the
    channel), a scalar, one value per energy, or one per point (its median is ``dwell_s``
    and, when it has the data's shape, each frame's ``pixel_dwell_s``); NaN when the file
    records none. Measured positions (``x_readback_um``, ``y_readback_um``) come from the
    NXinstrument ``sample_x``/``sample_y`` detectors of sample images when they hold
    ny * nx (or frames * ny * nx) points that are not all one value; snaking rows are
    undone when the start document says the scan snaked; otherwise they are NaN.

    Parameters
    ----------
    path
        The NXstxm file.
    entry
        Name of the NXentry to read; default the first NXstxm entry (natural order:
        ``entry2`` before ``entry10``).
    channel
        Name of the NXdata group; default the entry's ``@default`` NXdata, else the first.
        With ``None`` an entry whose NXdata groups carry ``polarization`` attributes is
        read as one stack of all helicities of that detector.

    Returns
    -------
    StxmImage or StxmStack
        An image for single-energy images and alignment scans, a stack otherwise (how each
        scan type maps: ``docs/explanation/reading-nxstxm.md``).

    Raises
    ------
    NexusReadError
        If the file is missing, not HDF5, has no NXstxm entry, or the entry lacks a part
        the reader needs or its data do not fit its axes; the message names the file, the
        entry/group/field and what NXstxm expects.
    """
    path = Path(path)
    with _open(path) as h5:
        src = _source(path, h5, entry)
        channels = _channels(src)
        if channel is None:
            helicities = _helicity_channels(src, channels)
            if helicities:
                return _stack_of_helicities(src, helicities)
            channel = _default_channel(src.entry, channels)
        elif channel not in channels:
            raise NexusReadError(
                f"{src.where()} has no NXdata group {channel!r} with a data field; "
                f"its channels: {channels}"
            )
        frames = _read_frames(src, channel)
        return _result(src, [frames])


def list_nxstxm(path: Path | str) -> list[NxstxmEntrySummary]:
    """The NXstxm entries of a file: name, channels, scan type, data shape and writer.

    Parameters
    ----------
    path
        The file.

    Raises
    ------
    NexusReadError
        If the file is missing, not HDF5 or has no NXstxm entry.
    """
    path = Path(path)
    summaries = []
    with _open(path) as h5:
        for name in _stxm_entries(h5, path):
            src = _source(path, h5, name)
            channels = _channels(src, required=False)
            default = _default_channel(src.entry, channels) if channels else None
            ordered = tuple([default] if default else []) + tuple(
                c for c in channels if c != default
            )
            shape: tuple[int, ...] = ()
            scan_type = "unknown"
            if default is not None:
                group = _sub(src.entry, default)
                signal = _field(group, _signal_name(group) or "data")
                shape = tuple(signal.shape) if signal is not None else ()
                scan_type = _listed_scan_type(group)
            summaries.append(
                NxstxmEntrySummary(
                    entry=name,
                    channels=ordered,
                    scan_type=scan_type,
                    data_shape=shape,
                    source_writer=src.writer,
                    title=_text(src.entry.get("title")),
                )
            )
    return summaries


# --- text and attributes ------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """A string from any of the ways writers store one; None if it is not text."""
    if isinstance(value, h5py.Dataset):
        value = value[()]
    if isinstance(value, np.ndarray):
        if value.size != 1:
            return None
        value = value.reshape(-1)[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value.replace("\x00", "").strip()
    return None


def _texts(value: Any) -> list[str]:
    """A list of names: an array of strings, or one string separated by commas or colons."""
    if isinstance(value, np.ndarray) and value.size != 1:
        return [t for t in (_text(v) for v in value.reshape(-1)) if t is not None]
    single = _text(value)
    if single is None:
        return []
    parts = (p.strip().strip("\"'").strip() for p in re.split(r"[,:]", single))
    return [p for p in parts if p]


def _nx_class(obj: Any) -> str | None:
    return _text(obj.attrs.get("NX_class"))


def _natural(name: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


def _groups(parent: h5py.Group, nx_class: str) -> list[str]:
    return [
        name
        for name, obj in parent.items()
        if isinstance(obj, h5py.Group) and _nx_class(obj) == nx_class
    ]


def _sub(parent: h5py.Group, name: str) -> h5py.Group:
    """The subgroup ``name`` (found by :func:`_groups`)."""
    obj = parent[name]
    if not isinstance(obj, h5py.Group):
        raise NexusReadError(f"{parent.file.filename}: {obj.name} is not a group")
    return obj


def _field(group: h5py.Group, name: str) -> h5py.Dataset | None:
    obj = group.get(name)
    return obj if isinstance(obj, h5py.Dataset) else None


def _numbers(ds: h5py.Dataset) -> np.ndarray:
    return np.atleast_1d(np.asarray(ds[()], dtype=float))


# --- file, entry, channels ------------------------------------------------------------------


@contextmanager
def _open(path: Path) -> Iterator[h5py.File]:
    if not path.exists():
        raise NexusReadError(f"{path}: no such file")
    if not path.is_file():
        raise NexusReadError(f"{path}: not a file (an NXstxm file is one HDF5 file)")
    if not h5py.is_hdf5(path):
        raise NexusReadError(
            f"{path.name}: not an HDF5 file (no HDF5 signature); NXstxm files are NeXus HDF5"
        )
    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise NexusReadError(f"{path.name}: HDF5 file cannot be opened: {error}") from error
    with h5:
        yield h5


@dataclass
class _Source:
    """The open file and the entry being read."""

    path: Path
    file: h5py.File
    name: str
    entry: h5py.Group
    writer: str
    run_start: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)

    def where(self, channel: str | None = None) -> str:
        text = f"{self.path.name}: entry {self.name!r}"
        return text + (f" NXdata {channel!r}" if channel else "")


def _is_stxm_entry(group: h5py.Group) -> bool:
    definition = _text(group.get("definition"))
    if definition is not None and definition.lower() == "nxstxm":
        return True
    # Early pystxmcontrol files kept a version number in "definition".
    return any(
        "stxm_scan_type" in _sub(group, name) or "scan_type" in _sub(group, name)
        for name in _groups(group, "NXdata")
    )


def _stxm_entries(h5: h5py.File, path: Path) -> list[str]:
    names = [
        name
        for name, obj in h5.items()
        if isinstance(obj, h5py.Group)
        and _nx_class(obj) in ("NXentry", None)
        and _is_stxm_entry(obj)
    ]
    if not names:
        raise NexusReadError(
            f"{path.name}: no NXstxm entry (top-level groups: {sorted(h5.keys())}); an NXstxm "
            "file needs /<entry> with NX_class NXentry and definition = 'NXstxm' "
            f"({_NXSTXM})"
        )
    return sorted(names, key=_natural)


def _source(path: Path, h5: h5py.File, entry: str | None) -> _Source:
    names = _stxm_entries(h5, path)
    if entry is None:
        entry = names[0]
    elif entry not in names:
        raise NexusReadError(f"{path.name}: no NXstxm entry {entry!r}; its entries: {names}")
    group = _sub(h5, entry)
    run_start, notes = _run_start(group)
    return _Source(path, h5, entry, group, _guess_writer(h5, group, path), run_start, notes)


def _run_start(entry: h5py.Group) -> tuple[dict[str, Any] | None, list[str]]:
    ds = entry.get("collection/start_document")
    text = _text(ds) if isinstance(ds, h5py.Dataset) else None
    if text is None:
        return None, []
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as error:
        return None, [f"collection/start_document is not JSON ({error}); not used"]
    return (doc, []) if isinstance(doc, dict) else (None, ["start_document is not a mapping"])


def _signal_name(group: h5py.Group) -> str | None:
    name = _text(group.attrs.get("signal"))
    if name and _field(group, name) is not None:
        return name
    for key, obj in group.items():
        if isinstance(obj, h5py.Dataset) and _text(obj.attrs.get("signal")) == "1":
            return key
        if isinstance(obj, h5py.Dataset) and _is_int(obj.attrs.get("signal"), 1):
            return key
    return "data" if _field(group, "data") is not None else None


def _is_int(value: Any, wanted: int) -> bool:
    if value is None or isinstance(value, (str, bytes)):
        return False
    array = np.asarray(value)
    return array.size == 1 and array.dtype.kind in "iu" and int(array.reshape(-1)[0]) == wanted


def _channels(src: _Source, required: bool = True) -> list[str]:
    groups = _groups(src.entry, "NXdata")
    channels = [name for name in groups if _signal_name(_sub(src.entry, name)) is not None]
    if not channels and required:
        without = f" (NXdata groups without one: {groups})" if groups else ""
        raise NexusReadError(
            f"{src.where()} has no NXdata group with a 'data' field{without}; an NXstxm file "
            f"needs /entry/<NXdata>/data ({_NXSTXM})"
        )
    return channels


def _default_channel(entry: h5py.Group, channels: list[str]) -> str:
    default = _text(entry.attrs.get("default"))
    return default if default in channels else channels[0]


# --- which software wrote the file ----------------------------------------------------------


def _explicit_writer(h5: h5py.File, entry: h5py.Group) -> str | None:
    keys = ("creator", "program_name", "program", "software")
    texts = [_text(obj.attrs.get(k)) for obj in (h5, entry) for k in keys]
    texts += [_text(entry.get(k)) for k in keys if _field(entry, k) is not None]
    for text in texts:
        low = (text or "").lower()
        for marker, writer in _WRITER_NAMES:
            if marker in low:
                return writer
    return None


def _looks_pystxmcontrol(path: Path, entry: h5py.Group) -> bool:
    version = entry.get("version")
    numeric_version = isinstance(version, h5py.Dataset) and version.dtype.kind == "f"
    motor_names = any("motor_name_x" in _sub(entry, g) for g in _groups(entry, "NXdata"))
    photon = any(
        _text(_sub(_sub(entry, i), d).attrs.get("type")) == "photon"
        for i in _groups(entry, "NXinstrument")
        for d in _groups(_sub(entry, i), "NXdetector")
    )
    motors = isinstance(entry.get("motors"), h5py.Group) and "experimenters" in entry
    return path.suffix.lower() == ".stxm" or numeric_version or motor_names or photon or motors


def _looks_pixelator(path: Path, entry: h5py.Group) -> bool:
    if _PIXELATOR_FILE.match(path.name):
        return True
    definition = _field(entry, "definition")
    one_element = definition is not None and definition.shape == (1,)
    counters = [g for g in _groups(entry, "NXdata") if re.fullmatch(r"counter\d+", g)]
    return one_element and bool(counters)


def _guess_writer(h5: h5py.File, entry: h5py.Group, path: Path) -> str:
    explicit = _explicit_writer(h5, entry)
    if explicit:
        return explicit
    if isinstance(entry.get("collection/start_document"), h5py.Dataset):
        return "stxm_ctrl"
    if "nexpy_version" in h5.attrs or "scan_uid" in h5.attrs or "collection/scan_request" in entry:
        return "pyStxm"
    if _looks_pystxmcontrol(path, entry):
        return "pystxmcontrol"
    if _looks_pixelator(path, entry):
        return "Pixelator"
    return "unknown"


# --- axes -----------------------------------------------------------------------------------


def _field_axes(group: h5py.Group, signal: str) -> dict[int, list[str]]:
    """Dimension (0-based) of each field that declares one: @axis, @axes (int), @*_indices."""
    dims: dict[int, list[str]] = {}
    for name, obj in group.items():
        if not isinstance(obj, h5py.Dataset) or name == signal:
            continue
        for key in ("axis", "axes"):
            value = obj.attrs.get(key)
            if value is not None and not isinstance(value, (str, bytes)):
                array = np.asarray(value)
                if array.size == 1 and array.dtype.kind in "iuf":
                    dims.setdefault(int(array.reshape(-1)[0]) - 1, []).append(name)
                    break
    for key, value in group.attrs.items():
        if key.endswith("_indices") and _field(group, key[: -len("_indices")]) is not None:
            array = np.atleast_1d(np.asarray(value))
            if array.size and array.dtype.kind in "iu":
                names = dims.setdefault(int(array[0]), [])
                if key[: -len("_indices")] not in names:
                    names.append(key[: -len("_indices")])
    return {k: v for k, v in dims.items() if k >= 0}


def _declared_axes(group: h5py.Group, signal: str) -> tuple[list[list[str]], str]:
    """Names along each data dimension, and where they were declared."""
    by_field = _field_axes(group, signal)
    names = _texts(group.attrs.get("axes"))
    signal_field = _field(group, signal)
    if not names and signal_field is not None:
        # NeXus before 2014: the signal field lists its axes ("energy:sample_y:sample_x")
        names = _texts(signal_field.attrs.get("axes"))
    if names:
        dims = [[] if n == "." else [n] for n in names]
        for index, extra in by_field.items():
            if index < len(dims):
                dims[index] += [n for n in extra if n not in dims[index]]
        return dims, "@axes"
    if by_field:
        return [by_field.get(i, []) for i in range(max(by_field) + 1)], "@axis"
    energy = next((n for n in _ENERGY_FIELDS if _field(group, n) is not None), "energy")
    return [[energy], ["sample_y"], ["sample_x"]], "the NXstxm order (no axis attributes)"


def _length(group: h5py.Group, name: str) -> int | None:
    ds = _field(group, name)
    if ds is None or ds.ndim > 1:
        return None
    return 1 if ds.ndim == 0 else int(ds.shape[0])


def _dim_fits(group: h5py.Group, names: list[str], size: int) -> bool:
    """Every field naming the dimension has its length (a single point takes any field)."""
    return size == 1 or all(_length(group, n) in (None, size) for n in names)


def _names(dims: list[list[str]]) -> str:
    return "[" + ", ".join("/".join(names) or "." for names in dims) + "]"


def _describe(group: h5py.Group, dims: list[list[str]]) -> str:
    """The axes with their fields' lengths, e.g. ``[energy (5), sample_y (3), sample_x (4)]``."""

    def one(name: str) -> str:
        length = _length(group, name)
        return f"{name} ({'-' if length is None else length})"

    return "[" + ", ".join("/".join(one(n) for n in names) or "." for names in dims) + "]"


def _fit(
    group: h5py.Group, dims: list[list[str]], shape: tuple[int, ...]
) -> tuple[list[list[str]], tuple[int, ...]] | None:
    """Dimensions matching ``shape``, and the data axis of each; None if none or ambiguous."""
    nd = len(shape)
    subsets = [list(c) for c in itertools.combinations(dims, nd)] if len(dims) > nd else [dims]
    identity = tuple(range(nd))
    for subset in subsets:
        if all(_dim_fits(group, d, s) for d, s in zip(subset, shape, strict=True)):
            return subset, identity
    for subset in subsets:
        orders = [
            p
            for p in itertools.permutations(range(nd))
            if all(_dim_fits(group, subset[i], shape[p[i]]) for i in range(nd))
        ]
        if len(orders) == 1:
            return subset, orders[0]
        if len(orders) > 1:
            return None
    return None


def _kind(names: list[str]) -> str:
    low = [n.lower() for n in names]
    if any(n in _ENERGY_FIELDS for n in low):
        return "energy"
    xs = any(n == "line_position" or n.endswith("x") for n in low)
    ys = any(n.endswith(("y", "z")) for n in low)
    if "line_position" in low or (xs and ys):
        return "line"
    return "col" if xs else "row" if ys else "other"


@dataclass(frozen=True)
class _Layout:
    """How the stored data map onto frames (n, ny, nx)."""

    squeeze: int
    order: tuple[int, ...]
    shape: tuple[int, int, int]
    energy: list[str] | None
    row: list[str] | None
    col: list[str] | None

    def apply(self, array: np.ndarray) -> np.ndarray:
        """Frames (n, ny, nx) of an array stored like the data."""
        array = np.atleast_1d(np.asarray(array, dtype=float))
        array = array.reshape(array.shape[self.squeeze :])
        return np.transpose(array, self.order).reshape(self.shape)


def _layout(src: _Source, group: h5py.Group, signal: str, shape: tuple[int, ...]) -> _Layout:
    where = src.where((group.name or "").split("/")[-1])
    dims, declared = _declared_axes(group, signal)
    squeeze = 0
    while len(shape) - squeeze > len(dims) and shape[squeeze] == 1:
        squeeze += 1
    stored = shape[squeeze:]
    fitted = _fit(group, dims, stored) if len(dims) >= len(stored) else None
    if fitted is None:
        raise NexusReadError(
            f"{where}: data of shape {shape} does not fit its axes {_describe(group, dims)} "
            f"(from {declared}); NXstxm data are (energy, sample_y, sample_x) with unused "
            f"dimensions dropped ({_NXSTXM})"
        )
    dims, order = fitted
    if order != tuple(range(len(order))):
        stored_as = [dims[order.index(axis)] for axis in range(len(order))]
        src.notes.append(
            f"{group.name}: data stored as {_names(stored_as)} although {declared} says "
            f"{_names(dims)}; read by the axes' lengths"
        )
    order = _writer_order(src, dims, stored, order)
    return _roles(where, dims, stored, squeeze, order)


def _writer_order(
    src: _Source, dims: list[list[str]], stored: tuple[int, ...], order: tuple[int, ...]
) -> tuple[int, ...]:
    """pyStxm stores line spectra (line, energy) under @axes [energy, line_position]."""
    names = [d[0] if d else "" for d in dims]
    if (
        src.writer == "pyStxm"
        and names == ["energy", "line_position"]
        and stored[0] == stored[1]
        and order == (0, 1)
    ):
        src.notes.append("pyStxm line spectrum: data read as (line_position, energy)")
        return (1, 0)
    return order


def _roles(
    where: str,
    dims: list[list[str]],
    stored: tuple[int, ...],
    squeeze: int,
    order: tuple[int, ...],
) -> _Layout:
    kinds = [_kind(d) for d in dims]
    energy = [i for i, k in enumerate(kinds) if k == "energy"]
    spatial = [i for i, k in enumerate(kinds) if k != "energy"]
    if len(energy) > 1 or len(spatial) > 2:
        raise NexusReadError(
            f"{where}: axes {dims} are not energy and at most two spatial axes ({_NXSTXM})"
        )
    row: int | None = None
    col: int | None = None
    if len(spatial) == 2:
        row, col = spatial
        if kinds[row] in ("col", "line") and kinds[col] == "row":
            row, col = col, row
    elif spatial:
        col = spatial[0]
    roles = [*energy, *([row] if row is not None else []), *([col] if col is not None else [])]

    def size(i: int | None) -> int:
        return 1 if i is None else stored[order[i]]

    return _Layout(
        squeeze=squeeze,
        order=tuple(order[i] for i in roles),
        shape=(size(energy[0] if energy else None), size(row), size(col)),
        energy=dims[energy[0]] if energy else None,
        row=dims[row] if row is not None else None,
        col=dims[col] if col is not None else None,
    )


# --- one channel ----------------------------------------------------------------------------


@dataclass
class _Frames:
    """One NXdata group as frames (n, ny, nx) with their axes."""

    channel: str
    scan_type: str
    raw_scan_type: str | None
    polarization: str | None
    energies: np.ndarray
    counts: np.ndarray
    x_um: np.ndarray
    y_um: np.ndarray
    x_axis: str
    y_axis: str
    dwell_s: np.ndarray
    pixel_dwell_s: np.ndarray | None
    ring_current_mA: list[float] | None = None
    line_xy: tuple[np.ndarray, np.ndarray] | None = None


def _read_frames(src: _Source, channel: str) -> _Frames:
    group = _sub(src.entry, channel)
    where = src.where(channel)
    signal = _signal_name(group) or "data"
    ds = _field(group, signal)
    if ds is None:
        raise NexusReadError(
            f"{where} has no 'data' field; an NXstxm file needs /entry/<NXdata>/data ({_NXSTXM})"
        )
    stored = np.asarray(ds[()])
    if stored.dtype.kind not in "biuf":
        raise NexusReadError(f"{where}: field {signal!r} holds {stored.dtype}, not numbers")
    data = np.atleast_1d(stored.astype(float))
    energies = _energies(src, group, where)
    layout = _layout(src, group, signal, data.shape)
    raw_type = _text(group.get("stxm_scan_type")) or _text(group.get("scan_type"))
    scan_type = _scan_type(raw_type, layout)
    _check_geometry(where, scan_type, layout)
    if scan_type in _SAMPLE_TYPES:
        for name in ("sample_x", "sample_y"):
            if _field(group, name) is None:
                raise NexusReadError(
                    f"{where} has no {name!r} field; an NXstxm NXdata group needs energy, "
                    f"sample_y and sample_x ({_NXSTXM})"
                )
    energies = _frame_energies(where, energies, layout)
    frames = _Frames(
        channel=channel,
        scan_type=scan_type,
        raw_scan_type=raw_type,
        polarization=_text(group.attrs.get("polarization")),
        energies=energies,
        counts=layout.apply(data),
        x_um=np.array([]),
        y_um=np.array([]),
        x_axis="",
        y_axis="",
        dwell_s=np.array([]),
        pixel_dwell_s=None,
    )
    _axes_values(src, group, layout, frames)
    _dwell(src, group, layout, data.shape, frames)
    frames.ring_current_mA = _monitor(src, layout, data.shape)
    return frames


def _energies(src: _Source, group: h5py.Group, where: str) -> np.ndarray:
    for name in _ENERGY_FIELDS:
        ds = _field(group, name)
        if ds is not None:
            return _numbers(ds)
    for instrument in _groups(src.entry, "NXinstrument"):
        ds = _sub(src.entry, instrument).get("monochromator/energy")
        if isinstance(ds, h5py.Dataset):
            values = _numbers(ds)
            _, first = np.unique(values, return_index=True)
            src.notes.append(f"{where}: energies from {ds.name} (no energy field in NXdata)")
            return values[np.sort(first)]
    raise NexusReadError(
        f"{where} has no 'energy' field (nor 'photon_energy', nor "
        f"instrument/monochromator/energy); an NXstxm NXdata group needs energy, sample_y "
        f"and sample_x ({_NXSTXM})"
    )


def _frame_energies(where: str, energies: np.ndarray, layout: _Layout) -> np.ndarray:
    n = layout.shape[0]
    if layout.energy is not None:
        if energies.size != n:
            raise NexusReadError(
                f"{where}: {energies.size} energies for {n} frames along the energy axis"
            )
        return energies
    if energies.size > 1 and np.ptp(energies) > 0:
        raise NexusReadError(
            f"{where}: the energy field lists {energies.size} energies but no data dimension "
            f"is the energy axis ({_NXSTXM})"
        )
    return energies[:1]


def _scan_type(raw: str | None, layout: _Layout) -> str:
    label = re.sub(r"[\s_]+", " ", raw).strip().lower() if raw else ""
    known = _SCAN_TYPES.get(label)
    spatial = sum(role is not None for role in (layout.row, layout.col))
    if known is None:
        known = ("point spectrum", "line spectrum", "sample image")[spatial]
        if spatial == 1 and layout.energy is None:
            known = "sample image"
    if known == "sample image" and layout.energy is not None and layout.shape[0] > 1:
        return "sample image stack"
    return known


def _check_geometry(where: str, scan_type: str, layout: _Layout) -> None:
    _, ny, nx = layout.shape
    if scan_type == "point spectrum" and (ny, nx) != (1, 1):
        raise NexusReadError(f"{where}: a point spectrum with {ny} x {nx} points per energy")
    if scan_type == "line spectrum" and ny != 1:
        raise NexusReadError(f"{where}: a line spectrum with {ny} lines; expected one")


def _first_field(group: h5py.Group, names: list[str] | None) -> str | None:
    return next((n for n in names or [] if _field(group, n) is not None), None)


def _axes_values(src: _Source, group: h5py.Group, layout: _Layout, frames: _Frames) -> None:
    where = src.where(frames.channel)
    _, ny, nx = layout.shape
    if frames.scan_type == "point spectrum":
        frames.x_um = _axis_values(group, "sample_x", 1, where)
        frames.y_um = _axis_values(group, "sample_y", 1, where)
        frames.x_axis, frames.y_axis = "sample_x", "sample_y"
        return
    along_line = frames.scan_type == "line spectrum" or _kind(layout.col or []) == "line"
    if along_line:
        frames.x_um, frames.line_xy = _line_positions(group, layout.col or [], nx, where)
        frames.x_axis = "line_position"
    else:
        frames.x_axis = _first_field(group, layout.col) or "sample_x"
        frames.x_um = _axis_values(group, frames.x_axis, nx, where)
    if frames.scan_type == "line spectrum":
        frames.y_um, frames.y_axis = np.zeros(1), "line"
        return
    frames.y_axis = _first_field(group, layout.row) or "sample_y"
    frames.y_um = _axis_values(group, frames.y_axis, ny, where)


def _axis_values(group: h5py.Group, name: str, size: int, where: str) -> np.ndarray:
    ds = _field(group, name)
    if ds is None:
        if size == 1:
            return np.zeros(1)
        raise NexusReadError(f"{where} has no {name!r} field for its axis of {size} points")
    values = _numbers(ds)
    if values.size == size:
        return values
    if size == 1:
        return values[:1]
    raise NexusReadError(f"{where}: axis field {name!r} has {values.size} values for {size}")


def _line_positions(
    group: h5py.Group, names: list[str], n: int, where: str
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Positions along a line: line_position, else the distance from the first point."""
    x_name = next((m for m in names if m.lower().endswith("x")), None) or "sample_x"
    y_name = x_name[:-1] + "y"
    fields = (_field(group, x_name), _field(group, y_name))
    points = [_numbers(ds) for ds in fields if ds is not None]
    usable = [p if p.size == n else np.full(n, p[0]) for p in points if p.size in (1, n)]
    line_xy = (usable[0], usable[1]) if len(usable) == 2 else None
    position = _field(group, "line_position")
    if position is not None:
        return _axis_values(group, "line_position", n, where), line_xy
    if not usable:
        raise NexusReadError(
            f"{where}: a line of {n} points with neither line_position nor {x_name}/{y_name} "
            f"positions of its points ({_NXSTXM})"
        )
    x = usable[0]
    y = usable[1] if len(usable) == 2 else np.zeros(n)
    return np.hypot(x - x[0], y - y[0]), line_xy


def _count_time(src: _Source, group: h5py.Group, channel: str) -> h5py.Dataset | None:
    ds = _field(group, "count_time")
    if ds is not None:
        return ds
    for instrument in _groups(src.entry, "NXinstrument"):
        found = _sub(src.entry, instrument).get(f"{channel}/count_time")
        if isinstance(found, h5py.Dataset):
            return found
    return None


def _dwell(
    src: _Source, group: h5py.Group, layout: _Layout, shape: tuple[int, ...], frames: _Frames
) -> None:
    n, ny, nx = layout.shape
    ds = _count_time(src, group, frames.channel)
    if ds is None:
        src.notes.append(f"{src.where(frames.channel)}: no count_time; dwell_s is NaN")
        frames.dwell_s = np.full(n, np.nan)
        return
    values = np.atleast_1d(np.asarray(ds[()], dtype=float))
    if values.shape == shape and values.size == n * ny * nx and values.size > 1:
        frames.pixel_dwell_s = layout.apply(values)
        frames.dwell_s = np.nanmedian(frames.pixel_dwell_s.reshape(n, -1), axis=1)
        return
    flat = values.reshape(-1)
    if flat.size == 1:
        frames.dwell_s = np.full(n, flat[0])
    elif flat.size == n:
        frames.dwell_s = flat.copy()
    elif flat.size == n * ny * nx:
        frames.dwell_s = np.nanmedian(flat.reshape(n, -1), axis=1)
    else:
        src.notes.append(f"{ds.name}: {flat.size} values for {n} frames; dwell_s is its median")
        frames.dwell_s = np.full(n, np.nanmedian(flat))


def _monitor(src: _Source, layout: _Layout, shape: tuple[int, ...]) -> list[float] | None:
    names = sorted(_groups(src.entry, "NXmonitor"), key=lambda m: m != "control")
    for name in names:
        ds = _sub(src.entry, name).get("data")
        if isinstance(ds, h5py.Dataset) and np.atleast_1d(ds[()]).shape == shape:
            per_frame = layout.apply(ds[()]).reshape(layout.shape[0], -1)
            return [float(v) for v in np.nanmean(per_frame, axis=1)]
    return None


def _measured(
    src: _Source, axis: str, first: _Frames, setpoints: np.ndarray, total: int
) -> np.ndarray:
    """Per-pixel positions of an NXinstrument NXdetector, (total, ny, nx); NaN if unusable.

    The NXdetector lists one value per point in acquisition order: ny * nx (one raster for
    every frame) or total * ny * nx (frame after frame).
    """
    _, ny, nx = first.counts.shape
    missing = np.full((total, ny, nx), np.nan)
    if first.scan_type not in ("sample image", "sample image stack"):
        return missing
    for instrument in _groups(src.entry, "NXinstrument"):
        ds = _sub(src.entry, instrument).get(f"{axis}/data")
        if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "iuf":
            continue
        values = np.asarray(ds[()], dtype=float).reshape(-1)
        if values.size and np.ptp(setpoints) > 0 and np.nanmax(values) == np.nanmin(values):
            src.notes.append(f"{ds.name}: one value for every point; not measured positions")
            return missing
        if values.size == ny * nx:
            grid = np.broadcast_to(values.reshape(1, ny, nx), (total, ny, nx)).copy()
        elif values.size == total * ny * nx:
            grid = values.reshape(total, ny, nx)
        else:
            return missing
        if src.run_start and bool((src.run_start.get("snaking") or [False, False])[-1]):
            grid[:, 1::2] = grid[:, 1::2, ::-1]
        return grid
    return missing


# --- the result -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slot:
    """One frame of the result: frame ``k`` of part ``part``."""

    part: int
    k: int
    energy: float
    polarization: str | None


def _result(src: _Source, parts: list[_Frames]) -> StxmImage | StxmStack:
    first = parts[0]
    slots = _frame_order(src, parts)
    x_measured = _measured(src, "sample_x", first, first.x_um, len(slots))
    y_measured = _measured(src, "sample_y", first, first.y_um, len(slots))
    start = _start(src, parts, slots)
    images = []
    for j, slot in enumerate(slots):
        part = parts[slot.part]
        images.append(
            StxmImage(
                uid=str(start["uid"]),
                counts=part.counts[slot.k],
                x_um=part.x_um.copy(),
                y_um=part.y_um.copy(),
                x_readback_um=x_measured[j],
                y_readback_um=y_measured[j],
                dwell_s=float(part.dwell_s[slot.k]),
                start=start,
                pixel_dwell_s=None if part.pixel_dwell_s is None else part.pixel_dwell_s[slot.k],
            )
        )
    if len(parts) == 1 and first.scan_type in _IMAGE_TYPES and len(images) == 1:
        return images[0]
    return StxmStack(
        uid=str(start["uid"]),
        energies_eV=np.array([s.energy for s in slots], dtype=float),
        polarizations=[s.polarization for s in slots],
        images=images,
        start=start,
    )


def _frame_order(src: _Source, parts: list[_Frames]) -> list[_Slot]:
    """The frames in the order of the run's start document, else energy by energy."""
    same = all(np.array_equal(p.energies, parts[0].energies) for p in parts)
    pairs = (
        [(i, k) for k in range(parts[0].energies.size) for i in range(len(parts))]
        if same
        else [(i, k) for i, p in enumerate(parts) for k in range(p.energies.size)]
    )
    slots = [_Slot(i, k, float(parts[i].energies[k]), parts[i].polarization) for i, k in pairs]
    run_frames = (src.run_start or {}).get("frames")
    if isinstance(run_frames, list) and len(run_frames) == len(slots):
        return _as_run_frames(slots, run_frames, single=len(parts) == 1) or slots
    return slots


_ENERGY_MATCH_EV = 0.5
"""How far a frame's measured energy may be from the energy its run asked for."""


def _as_run_frames(slots: list[_Slot], run_frames: list[Any], single: bool) -> list[_Slot] | None:
    """Slots reordered to the start document's frames (energy, polarisation), or None.

    One channel without a ``polarization`` attribute takes the run's polarisations. Each
    frame takes the next frame of its polarisation in the file (a helicity's frames are
    stored in the order measured); its energy must agree with the one asked within
    ``_ENERGY_MATCH_EV`` (the file holds the monochromator's readback).
    """
    left = list(slots)
    ordered = []
    for frame in run_frames:
        if not isinstance(frame, Mapping) or "energy_eV" not in frame:
            return None
        pol = frame.get("polarization")
        match = next(
            (s for s in left if s.polarization == pol or (single and s.polarization is None)),
            None,
        )
        if match is None or abs(match.energy - float(frame["energy_eV"])) > _ENERGY_MATCH_EV:
            return None
        left.remove(match)
        ordered.append(_Slot(match.part, match.k, match.energy, match.polarization or pol))
    return ordered


def _start(src: _Source, parts: list[_Frames], slots: list[_Slot]) -> dict[str, Any]:
    first = parts[0]
    run = dict(src.run_start or {})
    pixel = [p.pixel_dwell_s for p in parts if p.pixel_dwell_s is not None]
    dwells = np.concatenate([np.ravel(d) for d in pixel] or [p.dwell_s for p in parts])
    dwell = float(np.nanmedian(dwells)) if np.isfinite(dwells).any() else None
    derived: dict[str, Any] = {
        "uid": _text(src.entry.get("entry_identifier")) or f"{src.path.name}:{src.name}",
        "stxm_scan_type": first.scan_type,
        "source_file": str(src.path),
        "source_entry": src.name,
        "source_channel": first.channel,
        "source_writer": src.writer,
        "dwell_s": dwell,
        "energy_eV": slots[0].energy,
        "shape": [int(first.y_um.size), int(first.x_um.size)],
        "extents": [
            [float(first.y_um[0]), float(first.y_um[-1])],
            [float(first.x_um[0]), float(first.x_um[-1])],
        ],
        "x_axis": first.x_axis,
        "y_axis": first.y_axis,
        "nexus_stxm_scan_type": first.raw_scan_type,
        **_entry_text(src.entry),
    }
    kept = ("uid", "scan_id", "sample_name", "dwell_s")
    for key, value in derived.items():
        if value is not None and not (key in kept and run.get(key) is not None):
            run[key] = value
    if len(parts) > 1:
        run["source_channels"] = [p.channel for p in parts]
        roles = _xmcd_roles(parts)
        if roles and not run.get("xmcd"):
            run["xmcd"] = roles
    currents = [p.ring_current_mA for p in parts]
    if all(c is not None for c in currents):
        run["ring_current_mA"] = [(currents[s.part] or [])[s.k] for s in slots]
    if first.line_xy is not None:
        run["line_sample_x_um"] = first.line_xy[0].tolist()
        run["line_sample_y_um"] = first.line_xy[1].tolist()
    if len(slots) > 1 or first.scan_type not in _IMAGE_TYPES:
        run["frames"] = [{"energy_eV": s.energy, "polarization": s.polarization} for s in slots]
    if src.notes:
        run["nexus_read_notes"] = list(src.notes)
    return run


def _entry_text(entry: h5py.Group) -> dict[str, str | None]:
    sample = None
    for name in ("sample/name", "sample/description", "sample_description"):
        obj = entry.get(name)
        sample = _text(obj) if isinstance(obj, h5py.Dataset) else None
        if sample:
            break
    return {
        "title": _text(entry.get("title")),
        "start_time": _text(entry.get("start_time")),
        "end_time": _text(entry.get("end_time")),
        "sample_name": sample,
    }


# --- XMCD: one NXdata per helicity ----------------------------------------------------------


def _helicity_channels(src: _Source, channels: list[str]) -> list[str]:
    """NXdata groups of the default (or first) polarised detector: ``_plus``, ``_minus``, rest."""
    polarised = [c for c in channels if _text(_sub(src.entry, c).attrs.get("polarization"))]
    if not polarised:
        return []
    default = _default_channel(src.entry, channels)
    lead = default if default in polarised else polarised[0]
    members = [c for c in polarised if _detector_of(c) == _detector_of(lead)]
    suffix_order = {"plus": 0, "minus": 1}
    return sorted(members, key=lambda c: suffix_order.get(c.rsplit("_", 1)[-1].lower(), 2))


def _detector_of(channel: str) -> str:
    return channel.rsplit("_", 1)[0] if "_" in channel else channel


def _stack_of_helicities(src: _Source, channels: list[str]) -> StxmStack:
    parts = [_read_frames(src, c) for c in channels]
    shapes = {p.counts.shape[1:] for p in parts}
    if len(shapes) > 1:
        raise NexusReadError(
            f"{src.where()}: helicity channels {channels} have frames of shapes {sorted(shapes)}"
        )
    result = _result(src, parts)
    assert isinstance(result, StxmStack)
    return result


def _xmcd_roles(parts: list[_Frames]) -> dict[str, str] | None:
    """Which polarisation is I+ and which I-, from channel names ending _plus / _minus."""
    roles: dict[str, str] = {}
    for part in parts:
        suffix = part.channel.rsplit("_", 1)[-1].lower()
        if suffix in ("plus", "minus") and part.polarization:
            roles[f"{suffix}_polarization"] = part.polarization
    return roles if len(roles) == 2 else None


def _listed_scan_type(group: h5py.Group) -> str:
    raw = _text(group.get("stxm_scan_type")) or _text(group.get("scan_type"))
    if not raw:
        return "unknown"
    known = _SCAN_TYPES.get(re.sub(r"[\s_]+", " ", raw).strip().lower())
    if known is None:
        return raw
    energy = next((_field(group, n) for n in _ENERGY_FIELDS if _field(group, n) is not None), None)
    if known == "sample image" and energy is not None and (energy.size or 0) > 1:
        return "sample image stack"
    return known
