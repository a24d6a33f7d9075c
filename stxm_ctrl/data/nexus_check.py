"""Check HDF5 files against the NXstxm application definition, read from its NXDL.

The project has its own checker because punx, the NeXus validator, knows NXstxm but does
not check a file against it: a missing NXdata group or an unknown ``stxm_scan_type`` goes
unreported, and punx exits 0 even when it does report errors, so it cannot gate anything.

The rules come from ``NXstxm.nxdl.xml`` (the NIAC definition, packaged beside this module)
parsed into a small tree of group, field and attribute specs (:func:`load_nxdl`). Every
NXentry whose ``definition`` is NXstxm is checked against that tree: required groups (by
``NX_class``; groups the NXDL names must carry that name), required fields, minOccurs and
maxOccurs, NX types, enumerations, ranks and dimensions. The dimension symbols (numP, numE,
numY, numX) take one value per NXentry. The NXDL's documentation also states relations its
XML cannot: one NXdata axis per data dimension with a matching length, the data shape of
each ``stxm_scan_type`` (read from the table in the NXDL's doc), an NXmonitor shaped like
the NXdata data, and no more measured NXdata values (NaN marks a point never measured)
than scan points. These are checked too.

In an application definition a group or field without ``minOccurs`` is required
(minOccurs=1). A field the NXDL gives no ``type`` takes its type from the NeXus base class,
which this checker does not read, so such a field's type is not checked.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import NamedTuple, TextIO

import h5py
import numpy as np

__all__ = [
    "ERROR",
    "NXDL_NAMESPACE",
    "WARNING",
    "AttributeSpec",
    "Dim",
    "Dimensions",
    "FieldSpec",
    "GroupSpec",
    "NexusProblem",
    "Nxdl",
    "NxdlSymbol",
    "check_nexus_file",
    "format_problems",
    "load_nxdl",
    "run_check_nexus",
]

NXDL_NAMESPACE = "http://definition.nexusformat.org/nxdl/3.1"
ERROR = "error"
WARNING = "warning"

_PACKAGED_NXDL = "NXstxm.nxdl.xml"
_DEFINITION_NAME = "NXstxm"
# File names mantis-xray opens, and .h5, which other NeXus readers take.
_GOOD_SUFFIXES = (".hdf5", ".nxs", ".h5", ".stxm")
_MANTIS_SUFFIXES = (".hdf5", ".nxs", ".stxm")
# The NXDL symbol counting every scan point (the NXinstrument lists).
_POINTS_SYMBOL = "numP"
_NXDATA = "NXdata"
_NXMONITOR = "NXmonitor"

_STRING_TYPES = ("NX_CHAR", "NX_DATE_TIME")
# NX type -> (numpy dtype kinds it allows, what it requires, what to store).
_NUMERIC_TYPES = {
    "NX_FLOAT": ("f", "a floating-point dtype", "floats, e.g. values.astype(np.float64)"),
    "NX_NUMBER": ("iuf", "a numeric dtype (int, uint or float)", "numbers, not text"),
    "NX_INT": ("iu", "an integer dtype", "integers, e.g. values.astype(np.int64)"),
    "NX_POSINT": ("iu", "an integer dtype", "integers, e.g. values.astype(np.int64)"),
    "NX_UINT": ("u", "an unsigned integer dtype", "unsigned integers (np.uint64)"),
    "NX_BOOLEAN": ("biu", "a boolean or integer dtype", "booleans"),
}
_DATE_TIME_EXAMPLE = "e.g. '2024-05-01T14:03:07+02:00' (datetime.now().astimezone().isoformat())"
_HAS_DATE_AND_TIME = re.compile(r"^\d{4}-?\d{2}-?\d{2}[T ]\d{2}")
_DATE_ONLY = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")
# "* sample image: (sample_y, sample_x)" in the doc of an enumerated field.
_SHAPE_LINE = re.compile(r"^\s*[*-]\s*(?P<item>[^:\n]+?)\s*:\s*\((?P<axes>[^)\n]*)\)", re.M)


@dataclass(frozen=True)
class NexusProblem:
    """One way a file departs from NXstxm.

    Attributes
    ----------
    path
        HDF5 path in the file, e.g. ``"/entry1/instrument/monochromator/energy"``; ``"/"``
        for the file as a whole; ``"/entry1/counts@axes"`` for an attribute.
    severity
        ``"error"`` (a required element missing or wrong) or ``"warning"``.
    message
        What is wrong, what was expected (allowed values, shape, type) and how to fix it.
    """

    path: str
    severity: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


# --- The NXDL tree -----------------------------------------------------------------------


@dataclass(frozen=True)
class NxdlSymbol:
    """A dimension symbol declared by the NXDL (e.g. ``numP``, total number of scan points)."""

    name: str
    doc: str = ""


@dataclass(frozen=True)
class Dim:
    """One ``<dim>``: dimension ``index`` (1-based) has length ``value``.

    ``value`` is a number or a symbol name as written in the NXDL (``"NumP"``).
    """

    index: int
    value: str

    @property
    def length(self) -> int | None:
        """The fixed length, or None when ``value`` is a symbol."""
        return int(self.value) if self.value.isdigit() else None


@dataclass(frozen=True)
class Dimensions:
    """A ``<dimensions>`` element: the rank (None if not given) and the dims it constrains."""

    rank: int | None
    dims: tuple[Dim, ...] = ()


@dataclass(frozen=True)
class AttributeSpec:
    """An ``<attribute>``; required only when the NXDL says ``optional="false"``."""

    name: str
    nx_type: str | None = None
    enumeration: tuple[str, ...] = ()
    required: bool = False
    doc: str = ""


@dataclass(frozen=True)
class FieldSpec:
    """A ``<field>`` of the NXDL.

    Attributes
    ----------
    name
        Field name.
    nx_type
        NX type (``"NX_FLOAT"``, ``"NX_CHAR"``, ...); None when the NXDL gives none (the base
        class decides, and the type is not checked).
    min_occurs, max_occurs
        Occurrence bounds; ``max_occurs`` None is unbounded. minOccurs defaults to 1.
    recommended
        The NXDL marks the field ``recommended``: missing is a warning.
    enumeration
        Allowed values (empty: any).
    item_shapes
        For an enumerated field whose doc lists ``* item: (axis, axis)``: the data shape each
        item stands for, as (item, axis labels) pairs.
    dimensions
        Rank and dims, or None.
    signal
        The ``signal`` attribute of the field element (1 for the plotted data), or None.
    attributes
        Attribute specs of the field.
    doc
        The field's documentation.
    """

    name: str
    nx_type: str | None = None
    min_occurs: int = 1
    max_occurs: int | None = 1
    recommended: bool = False
    enumeration: tuple[str, ...] = ()
    item_shapes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    dimensions: Dimensions | None = None
    signal: int | None = None
    attributes: tuple[AttributeSpec, ...] = ()
    doc: str = ""

    @property
    def required(self) -> bool:
        """True if the field must be present (minOccurs >= 1)."""
        return self.min_occurs > 0

    def shape_for(self, item: str) -> tuple[str, ...] | None:
        """Axis labels of the data shape that enumeration ``item`` stands for, if documented."""
        return dict(self.item_shapes).get(item)


@dataclass(frozen=True)
class GroupSpec:
    """A ``<group>`` of the NXDL.

    Attributes
    ----------
    nx_class
        The group's NX_class (the NXDL's ``type``), e.g. ``"NXmonochromator"``.
    name
        The name the NXDL gives the group, or None (any name).
    min_occurs, max_occurs
        Occurrence bounds; ``max_occurs`` None is unbounded. minOccurs defaults to 1.
    recommended
        The NXDL marks the group ``recommended``: missing is a warning.
    fields, groups, attributes
        Children specs, in NXDL order.
    doc
        The group's documentation.
    """

    nx_class: str
    name: str | None = None
    min_occurs: int = 1
    max_occurs: int | None = None
    recommended: bool = False
    fields: tuple[FieldSpec, ...] = ()
    groups: tuple[GroupSpec, ...] = ()
    attributes: tuple[AttributeSpec, ...] = ()
    doc: str = ""

    @property
    def required(self) -> bool:
        """True if the group must be present (minOccurs >= 1)."""
        return self.min_occurs > 0

    @property
    def signal_field(self) -> FieldSpec | None:
        """The field the NXDL marks as the signal (``signal="1"``), if any."""
        return next((f for f in self.fields if f.signal is not None), None)


@dataclass(frozen=True)
class Nxdl:
    """A parsed application definition.

    Attributes
    ----------
    name
        Definition name, e.g. ``"NXstxm"``: the value of ``/entry/definition``.
    version
        The NXDL's ``version`` attribute.
    symbols
        Declared dimension symbols.
    groups
        Top-level group specs (the NXentry).
    doc
        The definition's documentation.
    """

    name: str
    version: str
    symbols: tuple[NxdlSymbol, ...] = ()
    groups: tuple[GroupSpec, ...] = ()
    doc: str = ""

    @property
    def entry(self) -> GroupSpec:
        """The NXentry group spec."""
        for group in self.groups:
            if group.nx_class == "NXentry":
                return group
        raise ValueError(f"{self.name} defines no NXentry group")

    def symbol(self, name: str) -> NxdlSymbol | None:
        """The declared symbol called ``name``, matched case-insensitively (NumP = numP)."""
        key = name.casefold()
        return next((s for s in self.symbols if s.name.casefold() == key), None)

    def symbol_name(self, name: str) -> str:
        """The declared spelling of symbol ``name``, or ``name`` itself if undeclared."""
        symbol = self.symbol(name)
        return symbol.name if symbol is not None else name


def load_nxdl(path: Path | None = None) -> Nxdl:
    """Parse an NXDL application definition.

    Parameters
    ----------
    path
        The ``.nxdl.xml`` file; None for the NXstxm definition packaged with stxm_ctrl.

    Returns
    -------
    Nxdl
        The definition's tree of group, field and attribute specs.

    Raises
    ------
    ValueError
        If the file is not XML or not an NXDL 3.1 ``<definition>``.
    """
    try:
        if path is None:
            resource = resources.files("stxm_ctrl.data").joinpath(_PACKAGED_NXDL)
            root = ET.fromstring(resource.read_bytes())
        else:
            root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{path or _PACKAGED_NXDL}: not an XML file: {exc}") from exc
    if root.tag != _tag("definition"):
        raise ValueError(
            f"{path or _PACKAGED_NXDL}: root element is {root.tag!r}, expected an NXDL "
            f"<definition> in namespace {NXDL_NAMESPACE}"
        )
    return Nxdl(
        name=root.get("name", ""),
        version=root.get("version", ""),
        symbols=tuple(
            NxdlSymbol(s.get("name", ""), _doc(s))
            for s in root.findall(f"{_tag('symbols')}/{_tag('symbol')}")
        ),
        groups=tuple(_parse_group(g) for g in root.findall(_tag("group"))),
        doc=_doc(root),
    )


def _tag(name: str) -> str:
    return f"{{{NXDL_NAMESPACE}}}{name}"


def _doc(element: ET.Element) -> str:
    doc = element.find(_tag("doc"))
    return (doc.text or "").strip() if doc is not None else ""


def _occurs(element: ET.Element, default_max: int | None) -> tuple[int, int | None, bool]:
    """minOccurs (default 1 in an application definition), maxOccurs, recommended."""
    recommended = element.get("recommended") == "true"
    optional = recommended or element.get("optional") == "true"
    min_occurs = int(element.get("minOccurs", "0" if optional else "1"))
    max_text = element.get("maxOccurs")
    if max_text is None:
        max_occurs = default_max
    else:
        max_occurs = None if max_text == "unbounded" else int(max_text)
    return min_occurs, max_occurs, recommended


def _enumeration(element: ET.Element) -> tuple[str, ...]:
    return tuple(
        item.get("value", "") for item in element.findall(f"{_tag('enumeration')}/{_tag('item')}")
    )


def _item_shapes(doc: str, items: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    shapes: dict[str, tuple[str, ...]] = {}
    for match in _SHAPE_LINE.finditer(doc):
        item = match["item"].strip()
        if item in items:
            shapes[item] = tuple(a.strip() for a in match["axes"].split(",") if a.strip())
    return tuple(shapes.items())


def _parse_dimensions(element: ET.Element) -> Dimensions | None:
    dims = element.find(_tag("dimensions"))
    if dims is None:
        return None
    rank = dims.get("rank")
    parsed = tuple(
        Dim(int(d.get("index", "0")), d.get("value", ""))
        for d in dims.findall(_tag("dim"))
        if d.get("index", "").isdigit()
    )
    return Dimensions(int(rank) if rank and rank.isdigit() else None, parsed)


def _parse_attribute(element: ET.Element) -> AttributeSpec:
    return AttributeSpec(
        name=element.get("name", ""),
        nx_type=element.get("type"),
        enumeration=_enumeration(element),
        required=element.get("optional") == "false",
        doc=_doc(element),
    )


def _parse_field(element: ET.Element) -> FieldSpec:
    min_occurs, max_occurs, recommended = _occurs(element, default_max=1)
    enumeration = _enumeration(element)
    doc = _doc(element)
    signal = element.get("signal")
    return FieldSpec(
        name=element.get("name", ""),
        nx_type=element.get("type"),
        min_occurs=min_occurs,
        max_occurs=max_occurs,
        recommended=recommended,
        enumeration=enumeration,
        item_shapes=_item_shapes(doc, enumeration),
        dimensions=_parse_dimensions(element),
        signal=int(signal) if signal and signal.isdigit() else None,
        attributes=tuple(_parse_attribute(a) for a in element.findall(_tag("attribute"))),
        doc=doc,
    )


def _parse_group(element: ET.Element) -> GroupSpec:
    min_occurs, max_occurs, recommended = _occurs(element, default_max=None)
    return GroupSpec(
        nx_class=element.get("type", ""),
        name=element.get("name"),
        min_occurs=min_occurs,
        max_occurs=max_occurs,
        recommended=recommended,
        fields=tuple(_parse_field(f) for f in element.findall(_tag("field"))),
        groups=tuple(_parse_group(g) for g in element.findall(_tag("group"))),
        attributes=tuple(_parse_attribute(a) for a in element.findall(_tag("attribute"))),
        doc=_doc(element),
    )


# --- Reading HDF5 values -----------------------------------------------------------------


Node = h5py.Group | h5py.Dataset


def _join(parent: str, name: str) -> str:
    return f"{parent.rstrip('/')}/{name}"


def _names(group: h5py.Group) -> list[str]:
    return [str(name) for name in group]


def _get(group: h5py.Group, name: str) -> Node | None:
    """The child ``name``, or None if absent or a link whose target cannot be found."""
    try:
        node = group.get(name)
    except (KeyError, OSError):
        return None
    return node if isinstance(node, h5py.Group | h5py.Dataset) else None


def _as_text(value: object) -> str | None:
    """A str/bytes scalar, or a 1-element array of one, as str; None otherwise."""
    if isinstance(value, np.ndarray):
        if value.size != 1:
            return None
        value = value.reshape(-1)[0]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    return None


def _as_text_list(value: object) -> list[str] | None:
    """A string, or a 0/1-D array of strings, as a list of str; None if not text."""
    if isinstance(value, str | bytes):
        text = _as_text(value)
        return None if text is None else [text]
    if isinstance(value, np.ndarray) and value.ndim <= 1:
        texts = [_as_text(v) for v in value.reshape(-1)]
        return None if any(t is None for t in texts) else [t for t in texts if t is not None]
    return None


def _scalar_text(value: object) -> str | None:
    """Text of a string, or of a one-element number, for comparing against an enumeration."""
    text = _as_text(value)
    if text is not None:
        return text
    array = np.asarray(value)
    if array.size == 1 and array.dtype.kind in "biuf":
        return str(array.reshape(-1)[0].item())
    return None


def _is_string(dataset: h5py.Dataset) -> bool:
    return h5py.check_string_dtype(dataset.dtype) is not None


def _shape(dataset: h5py.Dataset) -> tuple[int, ...]:
    return tuple(dataset.shape or ())


def _value_text(dataset: h5py.Dataset) -> str | None:
    """The one value of a scalar or 1-element dataset as text; None if it holds more."""
    if dataset.shape is None or math.prod(_shape(dataset)) != 1:
        return None
    return _scalar_text(dataset[()])


def _nx_class(node: Node) -> str | None:
    return _as_text(node.attrs.get("NX_class"))


def _dtype_text(dataset: h5py.Dataset) -> str:
    info = h5py.check_string_dtype(dataset.dtype)
    if info is None:
        return str(dataset.dtype)
    return "string (str)" if info.encoding == "utf-8" else "string (bytes)"


def _quoted(items: Sequence[str]) -> str:
    return ", ".join(repr(i) for i in items)


def _one_of(items: Sequence[str]) -> str:
    return repr(items[0]) if len(items) == 1 else f"one of {_quoted(items)}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


# --- Checking one NXentry ----------------------------------------------------------------


class _Binding(NamedTuple):
    path: str
    dimension: int
    length: int


class _Matched(NamedTuple):
    spec: GroupSpec
    group: h5py.Group
    path: str


class _DataShape(NamedTuple):
    path: str
    name: str
    shape: tuple[int, ...]
    dataset: h5py.Dataset


@dataclass
class _Entry:
    """What the check of one NXentry collects: problems, symbol lengths, matched groups."""

    nxdl: Nxdl
    problems: list[NexusProblem]
    bindings: dict[str, list[_Binding]] = field(default_factory=dict)
    groups: list[_Matched] = field(default_factory=list)

    def add(self, severity: str, path: str, message: str) -> None:
        self.problems.append(NexusProblem(path, severity, message))

    def error(self, path: str, message: str) -> None:
        self.add(ERROR, path, message)

    def warning(self, path: str, message: str) -> None:
        self.add(WARNING, path, message)

    def bind(self, symbol: str, binding: _Binding) -> None:
        self.bindings.setdefault(symbol, []).append(binding)

    def symbol_value(self, symbol: str) -> int | None:
        """The length most fields give ``symbol`` (the first seen on a tie)."""
        bound = self.bindings.get(symbol)
        if not bound:
            return None
        lengths = [b.length for b in bound]
        counts = Counter(lengths)
        return max(counts, key=lambda length: (counts[length], -lengths.index(length)))


def _check_entry(group: h5py.Group, path: str, nxdl: Nxdl, problems: list[NexusProblem]) -> None:
    entry = _Entry(nxdl, problems)
    _check_group(group, path, nxdl.entry, entry)
    _check_symbols(entry)
    shapes = _check_nxdata_groups(entry)
    _check_monitors(entry, shapes)
    _check_point_count(entry, shapes)


def _check_group(group: h5py.Group, path: str, spec: GroupSpec, entry: _Entry) -> None:
    entry.groups.append(_Matched(spec, group, path))
    children = _children(group, path, entry)
    _check_attributes(group, path, spec.attributes, entry)
    for field_spec in spec.fields:
        _check_field_presence(children, path, field_spec, entry)
    _check_subgroups(children, path, spec, entry)


def _children(group: h5py.Group, path: str, entry: _Entry) -> dict[str, Node]:
    children: dict[str, Node] = {}
    for name in _names(group):
        node = _get(group, name)
        if node is None:
            entry.warning(
                _join(path, name),
                "is a link whose target cannot be found: fix or remove the link",
            )
        else:
            children[name] = node
    return children


def _field_expectation(spec: FieldSpec, nxdl: Nxdl) -> str:
    parts = [spec.nx_type] if spec.nx_type else []
    if spec.enumeration:
        parts.append(_one_of(spec.enumeration))
    if spec.dimensions is not None:
        parts.append(f"shape {_shape_text(spec.dimensions, nxdl)}")
    return ", ".join(parts) if parts else "any value"


def _shape_text(dimensions: Dimensions, nxdl: Nxdl) -> str:
    by_index = {d.index: nxdl.symbol_name(d.value) for d in dimensions.dims}
    rank = dimensions.rank
    known = max([rank or 0, *by_index])
    labels = [by_index.get(i, "?") for i in range(1, known + 1)]
    if rank is None:
        labels.append("...")
    return f"({labels[0]},)" if len(labels) == 1 else f"({', '.join(labels)})"


def _check_field_presence(
    children: dict[str, Node], path: str, spec: FieldSpec, entry: _Entry
) -> None:
    field_path = _join(path, spec.name)
    node = children.get(spec.name)
    expected = _field_expectation(spec, entry.nxdl)
    severity = ERROR if spec.required else WARNING
    if node is None:
        if spec.required or spec.recommended:
            word = "required" if spec.required else "recommended"
            entry.add(
                severity,
                field_path,
                f"{word} field '{spec.name}' is missing: add a dataset '{spec.name}' ({expected})",
            )
    elif isinstance(node, h5py.Group):
        entry.add(
            severity,
            field_path,
            f"is a group, but {entry.nxdl.name} expects a field (dataset) '{spec.name}' "
            f"here ({expected})",
        )
    else:
        _check_field(node, field_path, spec, entry)


def _check_field(dataset: h5py.Dataset, path: str, spec: FieldSpec, entry: _Entry) -> None:
    type_ok = _check_type(dataset, path, spec, entry)
    if spec.enumeration and type_ok:
        _check_enumeration(dataset, path, spec, entry)
    if spec.dimensions is not None:
        _check_dimensions(dataset, path, spec.dimensions, entry)
    _check_attributes(dataset, path, spec.attributes, entry)


def _check_type(dataset: h5py.Dataset, path: str, spec: FieldSpec, entry: _Entry) -> bool:
    """Check the NX type; False if it is wrong (and reported)."""
    nx_type = spec.nx_type
    if nx_type in _STRING_TYPES:
        problem = _string_problem(dataset, nx_type)
        if problem is not None:
            entry.error(path, problem)
            return False
        if nx_type == "NX_DATE_TIME":
            _check_date_time(_value_text(dataset) or "", path, entry)
        return True
    if nx_type in _NUMERIC_TYPES:
        kinds, requirement, advice = _NUMERIC_TYPES[nx_type]
        if _is_string(dataset) or dataset.dtype.kind not in kinds:
            entry.error(
                path,
                f"has dtype {_dtype_text(dataset)}; {nx_type} requires {requirement}: "
                f"store {advice}",
            )
            return False
    return True


def _string_problem(dataset: h5py.Dataset, nx_type: str) -> str | None:
    if not _is_string(dataset):
        return (
            f"has dtype {_dtype_text(dataset)}; {nx_type} requires a string (str or bytes): "
            "store it as text, e.g. np.array([b'...'])"
        )
    if dataset.shape is None:
        return f"is empty (null dataspace); {nx_type} requires one string"
    shape = _shape(dataset)
    if len(shape) > 1 or math.prod(shape) != 1:
        return (
            f"holds {math.prod(shape)} strings (shape {shape}); {nx_type} requires one "
            "string, stored as a scalar or a 1-element array"
        )
    return None


def _check_date_time(text: str, path: str, entry: _Entry) -> None:
    value = text.strip()
    if _DATE_ONLY.match(value):
        entry.error(
            path,
            f"is {text!r}, a date without a time; NX_DATE_TIME needs an ISO 8601 date and "
            f"time, {_DATE_TIME_EXAMPLE}",
        )
        return
    parsed = None
    if _HAS_DATE_AND_TIME.match(value):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            parsed = None
    if parsed is None:
        entry.error(
            path,
            f"is {text!r}, not an ISO 8601 date and time: write NX_DATE_TIME values as "
            f"{_DATE_TIME_EXAMPLE}",
        )
    elif parsed.tzinfo is None:
        entry.warning(
            path,
            f"is {text!r}, without a timezone; NeXus recommends one: append the UTC offset "
            "(e.g. '+02:00', or 'Z' for UTC)",
        )


def _check_enumeration(dataset: h5py.Dataset, path: str, spec: FieldSpec, entry: _Entry) -> None:
    text = _value_text(dataset)
    if text is None:
        entry.error(
            path,
            f"holds {_dtype_text(dataset)} values of shape {dataset.shape}; expected one "
            f"value, {_one_of(spec.enumeration)}",
        )
    elif text not in spec.enumeration:
        entry.error(
            path,
            f"is {text!r}; expected {_one_of(spec.enumeration)} (exact spelling and case)",
        )


def _check_dimensions(
    dataset: h5py.Dataset, path: str, dimensions: Dimensions, entry: _Entry
) -> None:
    shape = _shape(dataset)
    expected = _shape_text(dimensions, entry.nxdl)
    if dimensions.rank is not None and len(shape) != dimensions.rank:
        entry.error(
            path,
            f"has rank {len(shape)} (shape {shape}); expected rank {dimensions.rank}, "
            f"shape {expected}",
        )
        return
    for dim in dimensions.dims:
        if dim.index > len(shape):
            entry.error(
                path,
                f"has shape {shape}, with no dimension {dim.index}; expected shape {expected}",
            )
        elif dim.length is not None and shape[dim.index - 1] != dim.length:
            entry.error(
                path,
                f"dimension {dim.index} has length {shape[dim.index - 1]}; expected "
                f"{dim.length} (shape {expected})",
            )
        elif dim.length is None:
            symbol = entry.nxdl.symbol_name(dim.value)
            entry.bind(symbol, _Binding(path, dim.index, shape[dim.index - 1]))


def _check_attributes(
    node: Node, path: str, specs: tuple[AttributeSpec, ...], entry: _Entry
) -> None:
    for spec in specs:
        attribute_path = f"{path}@{spec.name}"
        if spec.name not in node.attrs:
            if spec.required:
                entry.error(
                    attribute_path,
                    f"required attribute is missing: set attribute '{spec.name}' on {path}",
                )
            continue
        problem = _attribute_problem(node.attrs[spec.name], spec)
        if problem is not None:
            entry.error(attribute_path, problem)


def _attribute_problem(value: object, spec: AttributeSpec) -> str | None:
    if spec.nx_type in _STRING_TYPES and _as_text(value) is None:
        return f"is {value!r}; {spec.nx_type} requires a string"
    if spec.nx_type in _NUMERIC_TYPES:
        kinds, requirement, _ = _NUMERIC_TYPES[spec.nx_type]
        if np.asarray(value).dtype.kind not in kinds:
            return f"is {value!r}; {spec.nx_type} requires {requirement}"
    if spec.enumeration and _scalar_text(value) not in spec.enumeration:
        return f"is {value!r}; expected {_one_of(spec.enumeration)}"
    return None


# --- Groups: classes, names and counts ---------------------------------------------------


def _check_subgroups(children: dict[str, Node], path: str, spec: GroupSpec, entry: _Entry) -> None:
    groups = {name: node for name, node in children.items() if isinstance(node, h5py.Group)}
    classes = {name: _nx_class(group) for name, group in groups.items()}
    assigned = _assign_groups(spec.groups, classes)
    taken = {name for names in assigned for name in names}
    for group_spec, names in zip(spec.groups, assigned, strict=True):
        if group_spec.name is not None and not names:
            _report_missing_named_group(
                children, classes, taken, path, (group_spec.name, group_spec), spec, entry
            )
        elif len(names) < group_spec.min_occurs:
            _report_missing_group(classes, taken, path, group_spec, len(names), entry)
        max_occurs = group_spec.max_occurs
        if max_occurs is not None and len(names) > max_occurs:
            entry.error(
                path,
                f"has {len(names)} {group_spec.nx_class} groups ({', '.join(names)}); "
                f"{entry.nxdl.name} allows at most {max_occurs}: remove or merge the extra "
                "ones",
            )
        for name in names:
            _check_group(groups[name], _join(path, name), group_spec, entry)


def _assign_groups(
    specs: tuple[GroupSpec, ...], classes: dict[str, str | None]
) -> list[list[str]]:
    """Which child groups each spec covers: named specs first, then the unnamed ones."""
    assigned: list[list[str]] = [[] for _ in specs]
    taken: set[str] = set()
    for names, spec in zip(assigned, specs, strict=True):
        if spec.name is not None and classes.get(spec.name) == spec.nx_class:
            names.append(spec.name)
            taken.add(spec.name)
    for names, spec in zip(assigned, specs, strict=True):
        if spec.name is None:
            matching = [n for n, c in classes.items() if c == spec.nx_class and n not in taken]
            names.extend(matching)
            taken.update(matching)
    return assigned


def _contents(spec: GroupSpec) -> str:
    fields = [f.name for f in spec.fields if f.required]
    return f" holding fields {', '.join(fields)}" if fields else ""


def _report_missing_named_group(
    children: dict[str, Node],
    classes: dict[str, str | None],
    taken: set[str],
    path: str,
    named: tuple[str, GroupSpec],
    parent: GroupSpec,
    entry: _Entry,
) -> None:
    """A group the NXDL names is absent: say what stands in its place, or that it is missing."""
    name, spec = named
    nx_class, nxdl = spec.nx_class, entry.nxdl.name
    severity = ERROR if spec.required else WARNING
    hints: list[tuple[str, str]] = []
    node = children.get(name)
    if isinstance(node, h5py.Dataset):
        hints.append((name, f"is a dataset, but {nxdl} expects an {nx_class} group '{name}'"))
    elif isinstance(node, h5py.Group):
        found = classes.get(name)
        what = "has no NX_class attribute" if found is None else f"has NX_class {found!r}"
        hints.append(
            (
                name,
                f"{what}, but {nxdl} expects the group '{name}' to be an {nx_class}: set its "
                f"NX_class attribute to '{nx_class}'",
            )
        )
    unnamed_spec = any(g.name is None and g.nx_class == nx_class for g in parent.groups)
    if not unnamed_spec:
        for other, other_class in classes.items():
            if other_class == nx_class and other not in taken and other != name:
                hints.append(
                    (
                        other,
                        f"is an {nx_class} group named '{other}', but {nxdl} names it "
                        f"'{name}': rename it to '{name}'",
                    )
                )
    for child, message in hints:
        entry.add(severity, _join(path, child), message)
    if not hints and (spec.required or spec.recommended):
        word = "required" if spec.required else "recommended"
        entry.add(
            severity,
            _join(path, name),
            f"{word} {nx_class} group '{name}' is missing: add a group '{name}' with "
            f"NX_class='{nx_class}'{_contents(spec)}",
        )


def _report_missing_group(
    classes: dict[str, str | None],
    taken: set[str],
    path: str,
    spec: GroupSpec,
    found: int,
    entry: _Entry,
) -> None:
    nx_class = spec.nx_class
    if found == 0 and spec.min_occurs == 1:
        what = f"required {nx_class} group is missing"
    else:
        what = f"needs at least {spec.min_occurs} {nx_class} groups, found {found}"
    message = f"{what}: add a group with NX_class='{nx_class}'{_contents(spec)}"
    suspects = [
        name
        for name, group_class in classes.items()
        if name not in taken
        and (
            name.casefold() == nx_class.removeprefix("NX").casefold()
            or (group_class or "").casefold() == nx_class.casefold()
        )
    ]
    named = [n for n, c in classes.items() if c == nx_class and n in taken]
    if named:
        message += f" (not counting {', '.join(named)}, which {entry.nxdl.name} names)"
    for name in suspects:
        found_class = classes[name]
        what = "no NX_class attribute" if found_class is None else f"NX_class {found_class!r}"
        message += f"; group '{name}' has {what}: set NX_class='{nx_class}' if it is the one"
    entry.add(ERROR if spec.required else WARNING, path, message)


# --- Relations the NXDL states in its documentation ---------------------------------------


def _check_symbols(entry: _Entry) -> None:
    """Each symbol (numP, ...) has one length in an NXentry; report the fields that differ."""
    for symbol, bindings in entry.bindings.items():
        value = entry.symbol_value(symbol)
        agree = [b.path for b in bindings if b.length == value]
        declared = entry.nxdl.symbol(symbol)
        about = f" ({declared.doc})" if declared is not None and declared.doc else ""
        for binding in bindings:
            if binding.length != value:
                entry.error(
                    binding.path,
                    f"dimension {binding.dimension} has length {binding.length}, but "
                    f"{symbol}{about} is {value} in {', '.join(agree)}: every dimension "
                    f"{entry.nxdl.name} binds to {symbol} must have the same length within "
                    "one NXentry",
                )


def _check_nxdata_groups(entry: _Entry) -> list[_DataShape]:
    """Signal, axes and scan-type shape of every NXdata group; returns the data shapes."""
    shapes: list[_DataShape] = []
    for matched in entry.groups:
        signal = matched.spec.signal_field
        if matched.spec.nx_class != _NXDATA or signal is None:
            continue
        data = _get(matched.group, signal.name)
        if not isinstance(data, h5py.Dataset):
            continue  # reported as a missing field
        data_path = _join(matched.path, signal.name)
        shape = _shape(data)
        _check_signal(matched, data, signal.name, entry)
        _check_axes(matched, shape, entry)
        _check_scan_type(matched, data_path, shape, entry)
        shapes.append(_DataShape(data_path, signal.name, shape, data))
    return shapes


def _is_one(value: object) -> bool:
    text = _scalar_text(value)
    return text is not None and text.strip() in ("1", "1.0", "True")


def _check_signal(matched: _Matched, data: h5py.Dataset, name: str, entry: _Entry) -> None:
    group_signal = _as_text(matched.group.attrs.get("signal"))
    if group_signal == name:
        return
    if group_signal is not None:
        entry.warning(
            f"{matched.path}@signal",
            f"is {group_signal!r}; the {entry.nxdl.name} signal is '{name}': set "
            f"@signal='{name}' so plotting programs show {name}",
        )
    elif not _is_one(data.attrs.get("signal")):
        entry.warning(
            matched.path,
            f"names no signal: set the group attribute @signal='{name}' (or @signal=1 on "
            f"{_join(matched.path, name)}) so plotting programs show {name}",
        )


def _check_axes(matched: _Matched, shape: tuple[int, ...], entry: _Entry) -> None:
    path = f"{matched.path}@axes"
    raw = matched.group.attrs.get("axes")
    advice = "give one field name (or '.') per dimension of data, e.g. np.array([b'...'])"
    if raw is None:
        entry.warning(path, f"is missing; data has shape {shape}: {advice}")
        return
    names = _as_text_list(raw)
    if names is None:
        entry.error(path, f"is {raw!r}, not a string or an array of strings: {advice}")
        return
    if len(names) != len(shape):
        entry.error(
            path,
            f"has {len(names)} {'entry' if len(names) == 1 else 'entries'} {names}, but "
            f"data has {_plural(len(shape), 'dimension')} (shape {shape}): {advice}",
        )
        return
    for index, (axis, length) in enumerate(zip(names, shape, strict=True), start=1):
        if axis != ".":
            _check_axis(matched, path, axis, index, length, shape, entry)


def _check_axis(
    matched: _Matched,
    axes_path: str,
    axis: str,
    index: int,
    length: int,
    shape: tuple[int, ...],
    entry: _Entry,
) -> None:
    node = _get(matched.group, axis)
    if not isinstance(node, h5py.Dataset):
        group = matched.group
        fields = [n for n in _names(group) if isinstance(_get(group, n), h5py.Dataset)]
        entry.error(
            axes_path,
            f"names {axis!r} for dimension {index} of data, but {matched.path} has no field "
            f"{axis!r} (fields: {', '.join(fields)}): name an existing field, or '.' for no "
            "axis",
        )
        return
    axis_shape = _shape(node)
    if len(axis_shape) <= 1:
        fits = (axis_shape[0] if axis_shape else 1) == length
    else:
        fits = axis_shape == shape
    if not fits:
        entry.error(
            _join(matched.path, axis),
            f"has shape {axis_shape}, but it is the axis of dimension {index} of data "
            f"(shape {shape}), so it needs {length} values",
        )


def _check_scan_type(
    matched: _Matched, data_path: str, shape: tuple[int, ...], entry: _Entry
) -> None:
    """The data rank the NXDL's doc table gives each scan type (``sample image``: 2)."""
    for spec in matched.spec.fields:
        dataset = _get(matched.group, spec.name) if spec.item_shapes else None
        if not isinstance(dataset, h5py.Dataset):
            continue
        scan_type = _value_text(dataset)
        axes = spec.shape_for(scan_type) if scan_type is not None else None
        if axes is None or len(axes) == len(shape):
            continue  # a free-form type ("generic scan"), a bad value (reported), or fits
        fitting = [item for item, labels in spec.item_shapes if len(labels) == len(shape)]
        free = [item for item in spec.enumeration if spec.shape_for(item) is None]
        entry.error(
            data_path,
            f"has shape {shape} (rank {len(shape)}), but {spec.name} {scan_type!r} needs data "
            f"of shape ({', '.join(axes)}) (rank {len(axes)}): store data in that shape, or "
            f"set {spec.name} to the scan measured ({_quoted(fitting + free)})",
        )


def _check_monitors(entry: _Entry, shapes: list[_DataShape]) -> None:
    """NXmonitor data has the shape of the NXdata data (of one of them, if several)."""
    if not shapes:
        return
    for matched in entry.groups:
        if matched.spec.nx_class != _NXMONITOR:
            continue
        for name in dict.fromkeys(s.name for s in shapes):
            monitor = _get(matched.group, name)
            if isinstance(monitor, h5py.Dataset):
                _check_monitor_shape(_join(matched.path, name), _shape(monitor), shapes, entry)


def _check_monitor_shape(
    path: str, shape: tuple[int, ...], shapes: list[_DataShape], entry: _Entry
) -> None:
    if any(s.shape == shape for s in shapes):
        return
    if len(shapes) == 1:
        entry.error(
            path,
            f"has shape {shape}, but {shapes[0].path} has shape {shapes[0].shape}: "
            f"{entry.nxdl.name} requires the monitor data in the shape of the NXdata data "
            "(one normalisation value per data value)",
        )
    else:
        listed = "; ".join(f"{s.path} {s.shape}" for s in shapes)
        entry.warning(
            path,
            f"has shape {shape}, the shape of none of the NXdata data ({listed}): store one "
            "normalisation value per data value",
        )


def _check_point_count(entry: _Entry, shapes: list[_DataShape]) -> None:
    """No NXdata holds more measured values than there are scan points (numP).

    NaN in floating-point data marks a point never measured (a run cut off): not counted.
    """
    symbol = entry.nxdl.symbol(_POINTS_SYMBOL)
    points = entry.symbol_value(symbol.name) if symbol is not None else None
    if symbol is None or points is None:
        return
    where = next(b.path for b in entry.bindings[symbol.name] if b.length == points)
    for data in shapes:
        count = math.prod(data.shape)
        if count <= points:
            continue
        measured = _measured_values(data.dataset)
        if measured > points:
            nan = f", {count - measured} of them NaN" if measured < count else ""
            entry.error(
                data.path,
                f"holds {measured} measured values (shape {data.shape}{nan}), more than the "
                f"{points} scan points ({symbol.name}, the length of {where}): NXdata can "
                "only arrange measured points; check the data shape and the NXinstrument "
                "lists",
            )


def _measured_values(dataset: h5py.Dataset) -> int:
    """Values that are not NaN (all of them, for data that is not floating-point)."""
    if dataset.dtype.kind not in "fc" or dataset.shape is None:
        return math.prod(_shape(dataset))
    return int(np.count_nonzero(~np.isnan(dataset[()])))


# --- Files -------------------------------------------------------------------------------


def check_nexus_file(path: Path, nxdl: Nxdl | None = None) -> list[NexusProblem]:
    """Check every NXstxm entry of an HDF5 file against the NXDL.

    Parameters
    ----------
    path
        The HDF5/NeXus file. It is opened read-only (in SWMR mode when the file allows it, so
        a file another process is writing with SWMR can be checked).
    nxdl
        The definition to check against; None for the packaged NXstxm.

    Returns
    -------
    list of NexusProblem
        Errors and warnings in the order found; empty if the file conforms. A file that
        does not exist, is not HDF5 or cannot be read gives one error (path ``"/"``).
    """
    path = Path(path)
    nxdl = nxdl if nxdl is not None else load_nxdl()
    unopenable = _unopenable(path)
    if unopenable is not None:
        return [NexusProblem("/", ERROR, unopenable)]
    problems: list[NexusProblem] = []
    try:
        with _open_hdf5(path) as file:
            problems.extend(_suffix_problems(path))
            _check_file(file, nxdl, problems)
    except (OSError, KeyError) as exc:
        problems.append(NexusProblem("/", ERROR, f"cannot read the file: {exc}"))
    return problems


def _unopenable(path: Path) -> str | None:
    if not path.exists():
        return "no such file"
    if path.is_dir():
        return "is a directory, not an HDF5 file"
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as exc:
        return f"cannot open: {exc}"
    if not is_hdf5:
        return "not an HDF5 file (no HDF5 signature): NXstxm data is stored in HDF5"
    return None


def _open_hdf5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r", swmr=True)
    except (OSError, ValueError):
        return h5py.File(path, "r")


def _suffix_problems(path: Path) -> list[NexusProblem]:
    if path.suffix.lower() in _GOOD_SUFFIXES:
        return []
    return [
        NexusProblem(
            "/",
            WARNING,
            f"file name {path.name!r} does not end in {', '.join(_GOOD_SUFFIXES)}; "
            f"mantis-xray opens only {', '.join(_MANTIS_SUFFIXES)}: rename the file",
        )
    ]


def _check_file(file: h5py.File, nxdl: Nxdl, problems: list[NexusProblem]) -> None:
    entry_class = nxdl.entry.nx_class
    entries: list[tuple[str, h5py.Group]] = []
    others: list[str] = []
    for name in _names(file):
        node = _get(file, name)
        if not isinstance(node, h5py.Group) or _nx_class(node) != entry_class:
            continue
        definition = _get(node, "definition")
        if not isinstance(definition, h5py.Dataset):
            others.append(f"/{name} has no 'definition' field")
        elif not _is_string(definition):
            others.append(f"/{name} has a definition of dtype {definition.dtype}, not text")
        elif (text := _value_text(definition)) is None:
            others.append(f"/{name} has a definition of shape {definition.shape}, not one string")
        elif text.strip().casefold() == nxdl.name.casefold():
            entries.append((name, node))
        else:
            others.append(f"/{name} has definition {text!r}")
    if not entries:
        problems.append(NexusProblem("/", ERROR, _no_entry_message(nxdl, entry_class, others)))
    for name, group in entries:
        _check_entry(group, f"/{name}", nxdl, problems)


def _no_entry_message(nxdl: Nxdl, entry_class: str, others: list[str]) -> str:
    found = "; ".join(others) if others else f"no top-level group has NX_class='{entry_class}'"
    return (
        f"no {entry_class} declares definition '{nxdl.name}' ({found}): write "
        f"definition = np.array([b'{nxdl.name}']) in an {entry_class} group (mantis-xray "
        "needs this 1-element byte-string array)"
    )


def format_problems(path: Path | str, problems: Sequence[NexusProblem]) -> str:
    """The report for one file: a headline, then one problem per line.

    Parameters
    ----------
    path
        The file, as the user named it.
    problems
        What :func:`check_nexus_file` returned for it.

    Returns
    -------
    str
        ``"<file>: conforms to NXstxm"``, or a headline counting errors and warnings
        followed by each problem (``"  error: /entry1/...: message"``), without a trailing
        newline.
    """
    errors = sum(p.severity == ERROR for p in problems)
    warnings = len(problems) - errors
    if not problems:
        return f"{path}: conforms to {_DEFINITION_NAME}"
    if errors:
        counts = _plural(errors, "error") + (f", {_plural(warnings, 'warning')}" * bool(warnings))
        head = f"{path}: does not conform to {_DEFINITION_NAME}: {counts}"
    else:
        head = f"{path}: conforms to {_DEFINITION_NAME}, with {_plural(warnings, 'warning')}"
    return "\n".join([head, *(f"  {p}" for p in problems)])


def run_check_nexus(paths: Sequence[Path], out: TextIO) -> int:
    """Check files against NXstxm and print a report (``stxm check-nexus FILE...``).

    Parameters
    ----------
    paths
        Files to check.
    out
        Where the report goes: one block per file (:func:`format_problems`), then a summary
        line.

    Returns
    -------
    int
        1 if any file has an error (a file that is missing or not HDF5 included), else 0;
        warnings alone give 0.
    """
    nxdl = load_nxdl()
    failed = warned = 0
    for path in paths:
        problems = check_nexus_file(Path(path), nxdl)
        print(format_problems(path, problems), file=out)
        if any(p.severity == ERROR for p in problems):
            failed += 1
        elif problems:
            warned += 1
    passed = len(paths) - failed
    summary = f"{_plural(len(paths), 'file')} checked against {nxdl.name}: {passed} conform"
    if warned:
        summary += f" ({warned} with warnings)"
    summary += f", {failed} do not"
    print(summary, file=out)
    return 1 if failed else 0
