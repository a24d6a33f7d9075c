"""The NXstxm conformance check: good files pass, each kind of defect is named where it is."""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from stxm_ctrl.data.nexus_check import (
    ERROR,
    WARNING,
    NexusProblem,
    check_nexus_file,
    format_problems,
    load_nxdl,
    run_check_nexus,
)

NY, NX, NE = 4, 5, 3
SCAN_TYPES = {
    "image": "sample image",
    "stack": "sample image stack",
    "point": "sample point spectrum",
}
DATA_SHAPES = {"image": (NY, NX), "stack": (NE, NY, NX), "point": (NE,)}
AXES = {
    "image": ["sample_y", "sample_x"],
    "stack": ["energy", "sample_y", "sample_x"],
    "point": ["energy"],
}


def make_group(parent: h5py.Group, name: str, nx_class: str, as_bytes: bool = True) -> h5py.Group:
    group = parent.create_group(name)
    # Writers store NX_class as bytes or as str; both must be accepted.
    group.attrs["NX_class"] = nx_class.encode() if as_bytes else nx_class
    return group


def write_stxm(path: Path, kind: str = "image") -> Path:
    """A minimal conformant NXstxm file: an image (ny, nx), a stack or a point spectrum."""
    shape = DATA_SHAPES[kind]
    num_p = math.prod(shape)
    energies = np.array([706.0]) if kind == "image" else np.linspace(700.0, 710.0, NE)
    ny, nx = (1, 1) if kind == "point" else (NY, NX)
    with h5py.File(path, "w") as f:
        entry = make_group(f, "entry1", "NXentry", as_bytes=False)
        entry["title"] = "test scan"
        entry["start_time"] = "2024-05-01T14:03:07+02:00"
        entry["end_time"] = "2024-05-01T14:05:11+02:00"
        entry["definition"] = np.array([b"NXstxm"])
        instrument = make_group(entry, "instrument", "NXinstrument")
        source = make_group(instrument, "source", "NXsource")
        source["type"] = "Synchrotron X-ray Source"
        source["name"] = "SLS"
        source["probe"] = "x-ray"
        mono = make_group(instrument, "monochromator", "NXmonochromator")
        mono["energy"] = np.resize(energies, num_p)
        make_group(instrument, "apd", "NXdetector")["data"] = np.arange(num_p, dtype=np.int32)
        for axis in ("sample_x", "sample_y"):
            make_group(instrument, axis, "NXdetector")["data"] = np.linspace(-1.0, 1.0, num_p)
        make_group(entry, "sample", "NXsample")["rotation_angle"] = 0.0
        data = make_group(entry, "counts", "NXdata", as_bytes=False)
        data["stxm_scan_type"] = np.array([SCAN_TYPES[kind].encode()])
        data["data"] = np.arange(num_p, dtype=np.int64).reshape(shape)
        data["energy"] = energies
        data["sample_y"] = np.linspace(-1.0, 1.0, ny)
        data["sample_x"] = np.linspace(-1.0, 1.0, nx)
        data.attrs["signal"] = "data"
        data.attrs["axes"] = np.array([a.encode() for a in AXES[kind]])
        make_group(entry, "control", "NXmonitor")["data"] = np.full(shape, 400.0)
    return path


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return write_stxm(tmp_path / "image.hdf5")


def edit(path: Path, change: Callable[[h5py.File], object]) -> Path:
    with h5py.File(path, "r+") as f:
        change(f)
    return path


def replace(f: h5py.File, name: str, value: object) -> None:
    del f[name]
    f[name] = value


def at(problems: list[NexusProblem], path: str, severity: str = ERROR) -> list[str]:
    """Messages of the problems of ``severity`` at ``path``."""
    return [p.message for p in problems if p.path == path and p.severity == severity]


def errors(problems: list[NexusProblem]) -> list[NexusProblem]:
    return [p for p in problems if p.severity == ERROR]


def only_error(problems: list[NexusProblem], path: str) -> str:
    """The message of the one problem, an error at ``path``."""
    assert [(p.path, p.severity) for p in problems] == [(path, ERROR)], problems
    return problems[0].message


# --- The definition --------------------------------------------------------------------


def test_packaged_nxdl_is_parsed_with_application_defaults():
    nxdl = load_nxdl()
    assert (nxdl.name, nxdl.version) == ("NXstxm", "1.1")
    assert [s.name for s in nxdl.symbols] == ["numP", "numE", "numY", "numX"]
    assert nxdl.symbol("NumP") == nxdl.symbols[0]
    entry = nxdl.entry
    fields = {f.name: f for f in entry.fields}
    # No minOccurs in an application definition: required.
    assert fields["title"].min_occurs == 1
    assert fields["start_time"].nx_type == "NX_DATE_TIME"
    assert fields["definition"].enumeration == ("NXstxm",)
    groups = {(g.nx_class, g.name): g for g in entry.groups}
    assert groups[("NXmonitor", "control")].min_occurs == 0
    instrument = {(g.nx_class, g.name): g for g in groups[("NXinstrument", None)].groups}
    assert instrument[("NXdetector", None)].max_occurs is None
    assert instrument[("NXdetector", "sample_x")].min_occurs == 0
    energy = instrument[("NXmonochromator", "monochromator")].fields[0]
    assert energy.dimensions is not None
    assert energy.dimensions.rank == 1
    assert [(d.index, d.value) for d in energy.dimensions.dims] == [(1, "NumP")]
    nxdata = groups[("NXdata", None)]
    assert nxdata.signal_field is not None and nxdata.signal_field.name == "data"
    scan_type = next(f for f in nxdata.fields if f.name == "stxm_scan_type")
    assert len(scan_type.enumeration) == 9
    assert scan_type.shape_for("sample image stack") == ("photon_energy", "sample_y", "sample_x")
    assert scan_type.shape_for("sample line spectrum") == ("photon_energy", "sample_y/sample_x")
    assert scan_type.shape_for("generic scan") is None


def test_packaged_nxdl_is_the_niac_text():
    packaged = Path(__file__).parents[2] / "stxm_ctrl" / "data" / "NXstxm.nxdl.xml"
    text = packaged.read_text()
    assert "GNU Lesser General Public" in text
    assert 'name="NXstxm"' in text


def test_a_custom_nxdl_drives_the_check(tmp_path):
    nxdl_path = tmp_path / "NXtest.nxdl.xml"
    nxdl_path.write_text(
        '<definition name="NXtest" type="group" category="application" '
        'xmlns="http://definition.nexusformat.org/nxdl/3.1">'
        '<group type="NXentry">'
        '<field name="definition"><enumeration><item value="NXtest"/></enumeration></field>'
        '<field name="maybe" type="NX_INT" minOccurs="0"/>'
        '<field name="count" type="NX_INT"><attribute name="units" optional="false"/></field>'
        "</group></definition>"
    )
    nxdl = load_nxdl(nxdl_path)
    path = tmp_path / "t.nxs"
    with h5py.File(path, "w") as f:
        entry = make_group(f, "entry", "NXentry")
        entry["definition"] = "NXtest"
        entry["count"] = 3
    problems = check_nexus_file(path, nxdl)
    assert only_error(problems, "/entry/count@units").startswith("required attribute is missing")
    edit(path, lambda f: f["entry/count"].attrs.create("units", "1"))
    assert check_nexus_file(path, nxdl) == []


def test_a_file_that_is_not_nxdl_is_refused(tmp_path):
    path = tmp_path / "x.xml"
    path.write_text("<notnxdl/>")
    with pytest.raises(ValueError, match="expected an NXDL <definition>"):
        load_nxdl(path)


# --- Good files ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["image", "stack", "point"])
def test_minimal_files_conform(tmp_path, kind):
    path = write_stxm(tmp_path / f"{kind}.hdf5", kind)
    assert check_nexus_file(path) == []


def test_alternative_encodings_and_extras_are_accepted(image):
    def change(f):
        replace(f, "entry1/definition", "NXstxm")  # a scalar str
        replace(f, "entry1/counts/stxm_scan_type", b"sample image")  # scalar bytes
        f["entry1/counts"].attrs["axes"] = np.array(["sample_y", "."], dtype=h5py.string_dtype())
        f["entry1/instrument/apd"].attrs["NX_class"] = "NXdetector"
        f["entry1/extra_field"] = 1
        make_group(f["entry1"], "notes", "NXnote")

    assert check_nexus_file(edit(image, change)) == []


def test_signal_on_the_field_is_accepted(image):
    def change(f):
        del f["entry1/counts"].attrs["signal"]
        f["entry1/counts/data"].attrs["signal"] = 1

    assert check_nexus_file(edit(image, change)) == []


def test_several_nxdata_groups_share_the_points(image):
    """XMCD: one NXdata per helicity, each holding part of the NXinstrument lists."""

    def change(f):
        f.copy("entry1/counts", "entry1/counts_minus")
        for name in ("instrument/monochromator/energy", "instrument/apd/data"):
            replace(f["entry1"], name, np.resize(f["entry1"][name][()], 2 * NY * NX))
        for axis in ("sample_x", "sample_y"):
            replace(f["entry1/instrument"], f"{axis}/data", np.zeros(2 * NY * NX))

    assert check_nexus_file(edit(image, change)) == []


def test_a_file_being_written_with_swmr_can_be_checked(tmp_path):
    path = tmp_path / "live.hdf5"
    with h5py.File(path, "w", libver="latest") as writer:
        with h5py.File(write_stxm(tmp_path / "src.hdf5"), "r") as source:
            source.copy("entry1", writer)
        writer.swmr_mode = True
        writer.flush()
        assert check_nexus_file(path) == []


# --- Groups ----------------------------------------------------------------------------


def test_missing_required_group(image):
    problems = check_nexus_file(edit(image, lambda f: f.__delitem__("entry1/sample")))
    message = only_error(problems, "/entry1")
    assert message.startswith("required NXsample group is missing")
    assert "NX_class='NXsample' holding fields rotation_angle" in message


def test_group_without_nx_class_is_named_as_the_suspect(image):
    problems = check_nexus_file(
        edit(image, lambda f: f["entry1/instrument/source"].attrs.__delitem__("NX_class"))
    )
    message = only_error(problems, "/entry1/instrument")
    assert "required NXsource group is missing" in message
    assert message.endswith(
        "; group 'source' has no NX_class attribute: set NX_class='NXsource' if it is the one"
    )


def test_named_group_with_another_name(image):
    problems = check_nexus_file(
        edit(image, lambda f: f.move("entry1/instrument/monochromator", "entry1/instrument/mono"))
    )
    message = only_error(problems, "/entry1/instrument/mono")
    assert message == (
        "is an NXmonochromator group named 'mono', but NXstxm names it 'monochromator': "
        "rename it to 'monochromator'"
    )


def test_named_group_with_another_nx_class(image):
    problems = check_nexus_file(
        edit(
            image,
            lambda f: f["entry1/instrument/monochromator"].attrs.create("NX_class", b"NXmirror"),
        )
    )
    message = only_error(problems, "/entry1/instrument/monochromator")
    assert message.startswith("has NX_class 'NXmirror', but NXstxm expects")
    assert "set its NX_class attribute to 'NXmonochromator'" in message


def test_optional_named_group_with_another_name_is_a_warning(image):
    problems = check_nexus_file(edit(image, lambda f: f.move("entry1/control", "entry1/i0")))
    assert errors(problems) == []
    assert at(problems, "/entry1/i0", WARNING) == [
        "is an NXmonitor group named 'i0', but NXstxm names it 'control': rename it to 'control'"
    ]


def test_too_many_groups(image):
    problems = check_nexus_file(
        edit(image, lambda f: f.copy("entry1/instrument/source", "entry1/instrument/source2"))
    )
    message = only_error(problems, "/entry1/instrument")
    assert message.startswith("has 2 NXsource groups (source, source2); NXstxm allows at most 1")


def test_a_dangling_link_is_a_warning(image):
    def change(f):
        f["entry1/instrument/old"] = h5py.SoftLink("/nowhere")

    problems = check_nexus_file(edit(image, change))
    assert errors(problems) == []
    assert at(problems, "/entry1/instrument/old", WARNING) == [
        "is a link whose target cannot be found: fix or remove the link"
    ]


# --- Fields ----------------------------------------------------------------------------


def test_missing_required_field(image):
    problems = check_nexus_file(
        edit(image, lambda f: f.__delitem__("entry1/instrument/monochromator/energy"))
    )
    message = only_error(problems, "/entry1/instrument/monochromator/energy")
    assert message == "required field 'energy' is missing: add a dataset 'energy' (shape (numP,))"


def test_missing_required_field_says_its_type_and_values(image):
    problems = check_nexus_file(
        edit(image, lambda f: f.__delitem__("entry1/counts/stxm_scan_type"))
    )
    message = only_error(problems, "/entry1/counts/stxm_scan_type")
    assert message.startswith("required field 'stxm_scan_type' is missing")
    assert "one of 'sample point spectrum', 'sample line spectrum'" in message


def test_bad_enumeration_value(image):
    problems = check_nexus_file(
        edit(
            image, lambda f: replace(f, "entry1/counts/stxm_scan_type", np.array([b"sample imag"]))
        )
    )
    message = only_error(problems, "/entry1/counts/stxm_scan_type")
    assert message.startswith("is 'sample imag'; expected one of 'sample point spectrum',")
    assert "'sample image'" in message
    assert "'generic scan'" in message


def test_definition_spelled_wrong_is_named(image):
    problems = check_nexus_file(
        edit(image, lambda f: replace(f, "entry1/definition", np.array([b"nxstxm"])))
    )
    assert only_error(problems, "/entry1/definition") == (
        "is 'nxstxm'; expected 'NXstxm' (exact spelling and case)"
    )


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("instrument/sample_x/data", np.arange(NY * NX), "NX_FLOAT requires a floating-point"),
        ("instrument/apd/data", np.array([b"x"] * NY * NX), "NX_NUMBER requires a numeric"),
        ("sample/rotation_angle", 0, "has dtype int64; NX_FLOAT requires"),
        ("counts/data", np.full((NY, NX), b"x"), "has dtype string (bytes); NX_NUMBER"),
    ],
)
def test_wrong_dtype(image, name, value, expected):
    problems = check_nexus_file(edit(image, lambda f: replace(f["entry1"], name, value)))
    assert expected in only_error(problems, f"/entry1/{name}")


def test_two_strings_where_one_is_expected(image):
    problems = check_nexus_file(
        edit(image, lambda f: replace(f, "entry1/start_time", np.array([b"2024", b"05"])))
    )
    assert only_error(problems, "/entry1/start_time") == (
        "holds 2 strings (shape (2,)); NX_DATE_TIME requires one string, stored as a scalar "
        "or a 1-element array"
    )


@pytest.mark.parametrize(
    ("value", "severity", "expected"),
    [
        ("yesterday", ERROR, "is 'yesterday', not an ISO 8601 date and time"),
        ("2024-13-01T10:00:00+00:00", ERROR, "not an ISO 8601 date and time"),
        ("2024-05-01", ERROR, "is '2024-05-01', a date without a time"),
        ("2024-05-01T14:03:07", WARNING, "without a timezone"),
    ],
)
def test_bad_dates(image, value, severity, expected):
    problems = check_nexus_file(edit(image, lambda f: replace(f, "entry1/end_time", value)))
    assert [(p.path, p.severity) for p in problems] == [("/entry1/end_time", severity)]
    assert expected in problems[0].message
    assert "2024-05-01T14:03:07+02:00" in problems[0].message or severity == WARNING


@pytest.mark.parametrize("value", ["2024-05-01T14:03:07Z", "2024-05-01 14:03:07.123+00:00"])
def test_good_dates(image, value):
    assert check_nexus_file(edit(image, lambda f: replace(f, "entry1/end_time", value))) == []


# --- Dimensions ------------------------------------------------------------------------


def test_wrong_rank(image):
    problems = check_nexus_file(
        edit(image, lambda f: replace(f, "entry1/counts/energy", np.array([[706.0]])))
    )
    assert only_error(problems, "/entry1/counts/energy") == (
        "has rank 2 (shape (1, 1)); expected rank 1, shape (numE,)"
    )


def test_detector_data_needs_a_point_dimension(image):
    problems = check_nexus_file(edit(image, lambda f: replace(f, "entry1/instrument/apd/data", 7)))
    assert only_error(problems, "/entry1/instrument/apd/data") == (
        "has shape (), with no dimension 1; expected shape (numP, ...)"
    )


def test_inconsistent_numP_lengths_name_the_fields(image):
    short = np.arange(NY * NX - 1, dtype=np.int32)
    problems = check_nexus_file(
        edit(image, lambda f: replace(f, "entry1/instrument/apd/data", short))
    )
    message = only_error(problems, "/entry1/instrument/apd/data")
    assert message.startswith(
        f"dimension 1 has length {NY * NX - 1}, but numP (total number of scan points) is "
        f"{NY * NX} in /entry1/instrument/monochromator/energy, "
    )
    assert "/entry1/instrument/sample_x/data" in message


def test_more_data_than_scan_points(image):
    def change(f):
        inst = f["entry1/instrument"]
        for name in ("monochromator/energy", "apd/data", "sample_x/data", "sample_y/data"):
            replace(inst, name, inst[name][:-2])

    problems = check_nexus_file(edit(image, change))
    message = only_error(problems, "/entry1/counts/data")
    assert message.startswith(
        f"holds {NY * NX} measured values (shape ({NY}, {NX})), more than the {NY * NX - 2} "
        "scan points (numP, the length of /entry1/instrument/monochromator/energy)"
    )


def cut_off(f: h5py.File, listed: int, measured: int) -> None:
    """A run cut off: ``listed`` points in the NXinstrument lists, NaN after ``measured``."""
    inst = f["entry1/instrument"]
    for name in ("monochromator/energy", "apd/data", "sample_x/data", "sample_y/data"):
        replace(inst, name, inst[name][:listed])
    grid = np.arange(NY * NX, dtype=np.float64)
    grid[measured:] = np.nan
    replace(f, "entry1/counts/data", grid.reshape(NY, NX))


def test_a_cut_off_run_pads_data_with_nan(image):
    assert check_nexus_file(edit(image, lambda f: cut_off(f, 17, 17))) == []


def test_nan_padded_data_with_more_values_than_points(image):
    problems = check_nexus_file(edit(image, lambda f: cut_off(f, 15, 17)))
    assert only_error(problems, "/entry1/counts/data").startswith(
        f"holds 17 measured values (shape ({NY}, {NX}), 3 of them NaN), more than the 15 "
        "scan points"
    )


# --- NXdata and NXmonitor --------------------------------------------------------------


def test_axes_with_the_wrong_length(image):
    problems = check_nexus_file(
        edit(image, lambda f: f["entry1/counts"].attrs.create("axes", np.array([b"sample_x"])))
    )
    message = only_error(problems, "/entry1/counts@axes")
    assert message.startswith(
        f"has 1 entry ['sample_x'], but data has 2 dimensions (shape ({NY}, {NX}))"
    )
    assert "one field name (or '.') per dimension" in message


def test_axes_naming_a_missing_field(image):
    problems = check_nexus_file(
        edit(
            image, lambda f: f["entry1/counts"].attrs.create("axes", np.array([b"sample_y", b"x"]))
        )
    )
    assert only_error(problems, "/entry1/counts@axes") == (
        "names 'x' for dimension 2 of data, but /entry1/counts has no field 'x' "
        "(fields: data, energy, sample_x, sample_y, stxm_scan_type): name an existing field, "
        "or '.' for no axis"
    )


def test_axis_field_with_the_wrong_length(image):
    problems = check_nexus_file(
        edit(image, lambda f: replace(f, "entry1/counts/sample_x", np.zeros(NX + 1)))
    )
    assert only_error(problems, "/entry1/counts/sample_x") == (
        f"has shape ({NX + 1},), but it is the axis of dimension 2 of data (shape ({NY}, {NX})), "
        f"so it needs {NX} values"
    )


def test_missing_signal_is_a_warning(image):
    problems = check_nexus_file(
        edit(image, lambda f: f["entry1/counts"].attrs.__delitem__("signal"))
    )
    assert errors(problems) == []
    [message] = at(problems, "/entry1/counts", WARNING)
    assert message.startswith("names no signal: set the group attribute @signal='data'")


def test_data_shape_not_fitting_the_scan_type(image):
    problems = check_nexus_file(
        edit(
            image,
            lambda f: replace(
                f, "entry1/counts/stxm_scan_type", np.array([b"sample image stack"])
            ),
        )
    )
    message = only_error(problems, "/entry1/counts/data")
    assert message.startswith(
        f"has shape ({NY}, {NX}) (rank 2), but stxm_scan_type 'sample image stack' needs data "
        "of shape (photon_energy, sample_y, sample_x) (rank 3)"
    )
    assert "'sample image'" in message
    assert "'generic scan'" in message


def test_generic_scan_takes_any_shape(image):
    problems = check_nexus_file(
        edit(
            image,
            lambda f: replace(f, "entry1/counts/stxm_scan_type", np.array([b"generic scan"])),
        )
    )
    assert problems == []


def test_control_shape_mismatch(image):
    problems = check_nexus_file(
        edit(image, lambda f: replace(f, "entry1/control/data", np.ones((NY, NX + 1))))
    )
    message = only_error(problems, "/entry1/control/data")
    assert message.startswith(
        f"has shape ({NY}, {NX + 1}), but /entry1/counts/data has shape ({NY}, {NX})"
    )


def test_control_matching_none_of_several_nxdata_is_a_warning(image):
    def change(f):
        f.copy("entry1/counts", "entry1/counts_minus")
        inst = f["entry1/instrument"]
        for name in ("monochromator/energy", "apd/data", "sample_x/data", "sample_y/data"):
            replace(inst, name, np.resize(inst[name][()], 2 * NY * NX))
        replace(f, "entry1/control/data", np.ones(3))

    problems = check_nexus_file(edit(image, change))
    assert errors(problems) == []
    [message] = at(problems, "/entry1/control/data", WARNING)
    assert "/entry1/counts/data (4, 5); /entry1/counts_minus/data (4, 5)" in message


# --- Entries and files -----------------------------------------------------------------


def test_missing_definition(image):
    problems = check_nexus_file(edit(image, lambda f: f.__delitem__("entry1/definition")))
    message = only_error(problems, "/")
    assert message.startswith("no NXentry declares definition 'NXstxm' (/entry1 has no ")
    assert "definition = np.array([b'NXstxm'])" in message


@pytest.mark.parametrize(
    ("value", "found"),
    [
        (np.array([1]), "/entry1 has a definition of dtype int64, not text"),
        (np.array([b"NXstxm", b"NXarpes"]), "/entry1 has a definition of shape (2,), not one"),
        ("NXarpes", "/entry1 has definition 'NXarpes'"),
    ],
)
def test_an_entry_without_an_nxstxm_definition_is_not_checked(image, value, found):
    problems = check_nexus_file(edit(image, lambda f: replace(f, "entry1/definition", value)))
    assert f"no NXentry declares definition 'NXstxm' ({found}" in only_error(problems, "/")


def test_entries_of_other_definitions_are_skipped(image):
    def change(f):
        other = make_group(f, "arpes", "NXentry")
        other["definition"] = "NXarpes"

    assert check_nexus_file(edit(image, change)) == []


def test_every_nxstxm_entry_is_checked(image):
    def change(f):
        f.copy("entry1", "entry2")
        del f["entry2/sample"]

    problems = check_nexus_file(edit(image, change))
    assert only_error(problems, "/entry2").startswith("required NXsample group is missing")


def test_file_name_mantis_cannot_open_is_a_warning(tmp_path):
    problems = check_nexus_file(write_stxm(tmp_path / "scan.dat"))
    assert [(p.path, p.severity) for p in problems] == [("/", WARNING)]
    assert "mantis-xray opens only .hdf5, .nxs, .stxm: rename the file" in problems[0].message


def test_not_hdf5(tmp_path):
    path = tmp_path / "notes.hdf5"
    path.write_text("not hdf5")
    assert only_error(check_nexus_file(path), "/").startswith("not an HDF5 file")


def test_missing_file(tmp_path):
    assert only_error(check_nexus_file(tmp_path / "nothing.hdf5"), "/") == "no such file"


def test_problem_text():
    problem = NexusProblem("/entry1/title", ERROR, "required field 'title' is missing")
    assert str(problem) == "error: /entry1/title: required field 'title' is missing"
    assert format_problems("a.nxs", [problem]) == (
        "a.nxs: does not conform to NXstxm: 1 error\n"
        "  error: /entry1/title: required field 'title' is missing"
    )


# --- The command -----------------------------------------------------------------------


def test_run_check_nexus_on_a_good_file(image):
    out = io.StringIO()
    assert run_check_nexus([image], out) == 0
    assert out.getvalue() == (
        f"{image}: conforms to NXstxm\n1 file checked against NXstxm: 1 conform, 0 do not\n"
    )


def test_run_check_nexus_warnings_alone_exit_0(tmp_path):
    path = write_stxm(tmp_path / "w.nxs")
    edit(path, lambda f: replace(f, "entry1/end_time", "2024-05-01T14:03:07"))
    out = io.StringIO()
    assert run_check_nexus([path], out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == f"{path}: conforms to NXstxm, with 1 warning"
    assert lines[1].startswith("  warning: /entry1/end_time: is '2024-05-01T14:03:07', without")
    assert lines[2] == "1 file checked against NXstxm: 1 conform (1 with warnings), 0 do not"


def test_run_check_nexus_reports_every_file_and_fails_on_errors(tmp_path):
    good = write_stxm(tmp_path / "good.hdf5")
    bad = edit(write_stxm(tmp_path / "bad.hdf5"), lambda f: f.__delitem__("entry1/title"))
    missing = tmp_path / "missing.hdf5"
    out = io.StringIO()
    assert run_check_nexus([good, bad, missing], out) == 1
    assert out.getvalue().splitlines() == [
        f"{good}: conforms to NXstxm",
        f"{bad}: does not conform to NXstxm: 1 error",
        "  error: /entry1/title: required field 'title' is missing: add a dataset 'title' "
        "(any value)",
        f"{missing}: does not conform to NXstxm: 1 error",
        "  error: /: no such file",
        "3 files checked against NXstxm: 1 conform, 2 do not",
    ]
