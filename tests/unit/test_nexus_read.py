"""NXstxm files of each writer's conventions read into the analysis' images and stacks.

Every file holds known counts (``tests.nexus_conventions.truth``: a different value per
pixel and frame), so a transpose, a wrong axis or a frame out of order shows as a wrong
value at a known (frame, y, x).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from stxm_ctrl.analysis import i0_mask, optical_density, roi_spectrum, xmcd_from_stack
from stxm_ctrl.data.images import StxmImage
from stxm_ctrl.data.nexus_read import NexusReadError, list_nxstxm, read_nxstxm
from stxm_ctrl.data.stacks import StxmStack
from tests import nexus_conventions as nc

RASTER_INDEX = np.arange(12).reshape(3, 4)
"""Point index of each pixel of one raster (acquisition order, rows not snaked)."""


def as_image(result: StxmImage | StxmStack) -> StxmImage:
    assert isinstance(result, StxmImage), f"expected an image, got {type(result).__name__}"
    return result


def as_stack(result: StxmImage | StxmStack) -> StxmStack:
    assert isinstance(result, StxmStack), f"expected a stack, got {type(result).__name__}"
    return result


# --- stxm_ctrl (this project) ---------------------------------------------------------------


def test_stxm_ctrl_image(tmp_path: Path):
    path = nc.stxm_ctrl_image(tmp_path)
    image = as_image(read_nxstxm(path))
    np.testing.assert_array_equal(image.counts, nc.truth(1)[0])
    assert image.counts[2, 1] == 1000 + 10 * 1 + 100 * 2
    np.testing.assert_allclose(image.x_um, nc.X_UM)
    np.testing.assert_allclose(image.y_um, nc.Y_UM)
    pixel_dwell = nc.DWELL_S * (0.99 + 0.01 * (np.arange(4) % 3))
    np.testing.assert_allclose(image.pixel_dwell_s, np.broadcast_to(pixel_dwell, (3, 4)))
    assert image.dwell_s == pytest.approx(np.median(np.broadcast_to(pixel_dwell, (3, 4))))
    np.testing.assert_allclose(image.x_readback_um, nc.X_UM[None, :] + 0.001 * RASTER_INDEX)
    np.testing.assert_allclose(image.y_readback_um, nc.Y_UM[:, None] + 0.001 * RASTER_INDEX)
    start = image.start
    assert start["uid"] == "image-uid-1"  # the run's own uid, from the start document
    assert start["scan_id"] == 17
    assert start["sample_name"] == "vortex disc"
    assert start["dwell_s"] == nc.DWELL_S
    assert start["stxm_scan_type"] == "sample image"
    assert start["source_writer"] == "stxm_ctrl"
    assert start["source_file"] == str(path)
    assert start["source_entry"] == "entry1"
    assert start["source_channel"] == "apd"
    assert start["energy_eV"] == nc.ENERGIES_EV[0]
    assert start["shape"] == [3, 4]
    assert start["extents"] == [[nc.Y_UM[0], nc.Y_UM[-1]], [nc.X_UM[0], nc.X_UM[-1]]]
    assert start["title"] == "vortex disc"
    assert start["start_time"] == "2024-05-06T10:11:12.345+02:00"
    assert start["ring_current_mA"] == [401.5]
    assert image.mode == "step"


def test_stxm_ctrl_snaked_readbacks_are_put_back_in_raster_order(tmp_path: Path):
    """The NXdetector lists points in acquisition order: row 1 right to left."""
    image = as_image(read_nxstxm(nc.stxm_ctrl_image(tmp_path, snake=True)))
    np.testing.assert_allclose(image.x_readback_um, nc.X_UM[None, :] + 0.001 * RASTER_INDEX)
    np.testing.assert_allclose(image.y_readback_um, nc.Y_UM[:, None] + 0.001 * RASTER_INDEX)


def test_stxm_ctrl_stack(tmp_path: Path):
    stack = as_stack(read_nxstxm(nc.stxm_ctrl_stack(tmp_path)))
    np.testing.assert_array_equal(stack.counts, nc.truth())
    assert stack.counts[3, 2, 1] == 1000 + 10 + 200 + 3
    np.testing.assert_allclose(stack.energies_eV, nc.ENERGIES_EV)
    assert stack.polarizations == [None] * 5
    assert stack.uid == "stack-uid-1"
    assert stack.start["stxm_scan_type"] == "sample image stack"
    assert stack.start["sample_name"] == "pillars"
    # Per point over the run, frame after frame.
    np.testing.assert_allclose(
        stack.images[3].x_readback_um, nc.X_UM[None, :] + 0.001 * (RASTER_INDEX + 3 * 12)
    )


def test_stxm_ctrl_xmcd_helicities_become_one_stack_in_the_runs_order(tmp_path: Path):
    stack = as_stack(read_nxstxm(nc.stxm_ctrl_xmcd(tmp_path)))
    run = nc.xmcd_run_frames(nc.ENERGIES_EV[:2] + 6.0)
    assert stack.polarizations == [p for _, p in run]
    np.testing.assert_allclose(stack.energies_eV, [e for e, _ in run])
    plus = nc.truth(2)
    for j, (energy, pol) in enumerate(run):
        k = int(np.flatnonzero(nc.ENERGIES_EV[:2] + 6.0 == energy)[0])
        expected = plus[k] if pol == nc.PLUS else 0.9 * plus[k]
        np.testing.assert_allclose(stack.images[j].counts, expected)
        np.testing.assert_allclose(
            stack.images[j].x_readback_um, nc.X_UM[None, :] + 0.001 * (RASTER_INDEX + 12 * j)
        )
    assert stack.start["source_channels"] == ["apd_plus", "apd_minus"]
    assert stack.start["xmcd"] == {"plus_polarization": nc.PLUS, "minus_polarization": nc.MINUS}
    result = xmcd_from_stack(stack)
    np.testing.assert_allclose(result.asymmetry, 0.1 / 1.9)
    np.testing.assert_allclose(result.energies_eV, nc.ENERGIES_EV[:2] + 6.0)


def test_xmcd_without_start_document_pairs_helicities_by_channel_name(tmp_path: Path):
    stack = as_stack(read_nxstxm(nc.stxm_ctrl_xmcd(tmp_path, with_start_document=False)))
    assert stack.polarizations == [nc.PLUS, nc.MINUS, nc.PLUS, nc.MINUS]
    np.testing.assert_allclose(stack.images[1].counts, 0.9 * nc.truth(2)[0])
    assert stack.uid == "xmcd_bare.hdf5:entry1"
    assert stack.start["xmcd"] == {"plus_polarization": nc.PLUS, "minus_polarization": nc.MINUS}
    np.testing.assert_allclose(xmcd_from_stack(stack).asymmetry, 0.1 / 1.9)


def test_one_helicity_channel_reads_alone(tmp_path: Path):
    stack = as_stack(read_nxstxm(nc.stxm_ctrl_xmcd(tmp_path), channel="apd_minus"))
    assert stack.polarizations == [nc.MINUS, nc.MINUS]
    np.testing.assert_allclose(stack.counts, 0.9 * nc.truth(2))


def test_stxm_ctrl_point_spectrum(tmp_path: Path):
    stack = as_stack(read_nxstxm(nc.stxm_ctrl_point_spectrum(tmp_path)))
    assert stack.counts.shape == (5, 1, 1)
    np.testing.assert_array_equal(stack.counts[:, 0, 0], nc.point_truth())
    np.testing.assert_allclose(stack.x_um, [nc.POINT_X_UM])
    np.testing.assert_allclose(stack.y_um, [nc.POINT_Y_UM])
    assert stack.start["stxm_scan_type"] == "point spectrum"
    assert stack.start["nexus_stxm_scan_type"] == "sample point spectrum"
    assert all(image.dwell_s == nc.DWELL_S for image in stack.images)


def test_stxm_ctrl_line_spectrum(tmp_path: Path):
    stack = as_stack(read_nxstxm(nc.stxm_ctrl_line_spectrum(tmp_path)))
    assert stack.counts.shape == (5, 1, nc.LINE_POINTS)
    np.testing.assert_array_equal(stack.counts[:, 0, :], nc.line_truth())
    np.testing.assert_allclose(stack.x_um, 0.5 * np.arange(nc.LINE_POINTS))
    np.testing.assert_allclose(stack.y_um, [0.0])
    np.testing.assert_allclose(stack.start["line_sample_x_um"], nc.LINE_X_UM)
    np.testing.assert_allclose(stack.start["line_sample_y_um"], nc.LINE_Y_UM)
    assert stack.start["stxm_scan_type"] == "line spectrum"


def test_stxm_ctrl_osa_image_is_an_image_over_the_osa_axes(tmp_path: Path):
    image = as_image(read_nxstxm(nc.stxm_ctrl_osa_image(tmp_path)))
    np.testing.assert_array_equal(image.counts, nc.truth(1)[0])
    np.testing.assert_allclose(image.x_um, nc.X_UM)
    np.testing.assert_allclose(image.y_um, nc.Y_UM)
    assert (image.start["x_axis"], image.start["y_axis"]) == ("osa_x", "osa_y")
    assert image.start["stxm_scan_type"] == "osa image"
    assert np.isnan(image.x_readback_um).all()


def test_stxm_ctrl_focus_is_an_image_of_zoneplate_z_against_line_position(tmp_path: Path):
    image = as_image(read_nxstxm(nc.stxm_ctrl_focus(tmp_path)))
    assert image.shape == (5, nc.LINE_POINTS)
    np.testing.assert_array_equal(image.counts, nc.truth(1, 5, nc.LINE_POINTS)[0])
    np.testing.assert_allclose(image.y_um, nc.ZONEPLATE_Z_UM)
    np.testing.assert_allclose(image.x_um, 0.5 * np.arange(nc.LINE_POINTS))
    assert (image.start["x_axis"], image.start["y_axis"]) == ("line_position", "zoneplate_z")
    assert image.start["stxm_scan_type"] == "sample focus"


# --- Pixelator ------------------------------------------------------------------------------


def test_pixelator_stack_first_region_and_channel(tmp_path: Path):
    path = nc.pixelator_stack(tmp_path)
    stack = as_stack(read_nxstxm(path))
    np.testing.assert_array_equal(stack.counts, nc.truth())
    np.testing.assert_allclose(stack.energies_eV, nc.ENERGIES_EV)
    np.testing.assert_allclose(stack.x_um, nc.X_UM)
    assert [image.dwell_s for image in stack.images] == [nc.DWELL_S] * 5
    start = stack.start
    assert start["source_writer"] == "Pixelator"
    assert (start["source_entry"], start["source_channel"]) == ("entry1", "counter0")
    assert start["uid"] == f"{path.name}:entry1"
    assert start["start_time"] == "2024-05-06T10:11:12+02:00"
    assert start["title"] == "Sample"
    assert start["ring_current_mA"] == [401.5] * 5
    np.testing.assert_allclose(
        stack.images[2].y_readback_um, nc.Y_UM[:, None] + 0.001 * (RASTER_INDEX + 24)
    )


def test_pixelator_other_region_and_channel(tmp_path: Path):
    path = nc.pixelator_stack(tmp_path)
    stack = as_stack(read_nxstxm(path, entry="entry2", channel="counter1"))
    np.testing.assert_array_equal(stack.counts, 2 * nc.truth())
    np.testing.assert_allclose(stack.x_um, nc.X_UM + 100.0)
    assert stack.start["source_entry"] == "entry2"


@pytest.mark.parametrize("xy_order", [False, True], ids=["yx", "xy-by-axis-attributes"])
def test_pixelator_image_old_axis_attributes(tmp_path: Path, xy_order: bool):
    image = as_image(read_nxstxm(nc.pixelator_image(tmp_path, xy_order=xy_order)))
    np.testing.assert_array_equal(image.counts, nc.truth(1)[0])
    assert image.counts[1, 3] == 1000 + 30 + 100
    np.testing.assert_allclose(image.x_um, nc.X_UM)
    np.testing.assert_allclose(image.y_um, nc.Y_UM)
    assert image.start["energy_eV"] == 705.0
    assert image.dwell_s == nc.DWELL_S
    assert image.start["source_writer"] == "Pixelator"  # counter0 + 1-element definition


def test_axes_listed_on_the_signal_field(tmp_path: Path):
    """NeXus before 2014: data@signal = 1, data@axes = "sample_x:sample_y" (stored x, y)."""

    def old_nexus(f: h5py.File) -> None:
        group = f["entry1/counter0"]
        assert isinstance(group, h5py.Group)
        for name in ("sample_x", "sample_y"):
            del group[name].attrs["axis"]
        group["data"].attrs["signal"] = np.int32(1)
        group["data"].attrs["axes"] = "sample_x:sample_y"

    image = as_image(read_nxstxm(edited(nc.pixelator_image(tmp_path, xy_order=True), old_nexus)))
    np.testing.assert_array_equal(image.counts, nc.truth(1)[0])
    assert "nexus_read_notes" not in image.start  # read by the attribute, not by lengths


def test_pixelator_point_spectrum(tmp_path: Path):
    stack = as_stack(read_nxstxm(nc.pixelator_point_spectrum(tmp_path)))
    np.testing.assert_array_equal(stack.counts[:, 0, 0], nc.point_truth())
    np.testing.assert_allclose(stack.energies_eV, nc.ENERGIES_EV)
    np.testing.assert_allclose((stack.x_um, stack.y_um), ([nc.POINT_X_UM], [nc.POINT_Y_UM]))
    assert stack.start["stxm_scan_type"] == "point spectrum"


@pytest.mark.parametrize("modern", [True, False], ids=["line_position", "x-and-y-share-axis"])
def test_pixelator_line_spectrum(tmp_path: Path, modern: bool):
    stack = as_stack(read_nxstxm(nc.pixelator_line_spectrum(tmp_path, modern=modern)))
    np.testing.assert_array_equal(stack.counts[:, 0, :], nc.line_truth())
    # the points are 0.5 um apart along the line (0.3 in x, 0.4 in y)
    np.testing.assert_allclose(stack.x_um, 0.5 * np.arange(nc.LINE_POINTS))
    np.testing.assert_allclose(stack.start["line_sample_y_um"], nc.LINE_Y_UM)
    assert stack.start["stxm_scan_type"] == "line spectrum"


# --- pystxmcontrol --------------------------------------------------------------------------


def test_pystxmcontrol_image(tmp_path: Path):
    path = nc.pystxmcontrol_image(tmp_path)
    image = as_image(read_nxstxm(path))
    np.testing.assert_array_equal(image.counts, nc.truth(1)[0])
    np.testing.assert_allclose(image.x_um, nc.X_UM)
    np.testing.assert_allclose(image.y_um, nc.Y_UM)
    assert image.dwell_s == nc.DWELL_S
    start = image.start
    assert start["source_writer"] == "pystxmcontrol"
    assert start["stxm_scan_type"] == "sample image"
    assert start["nexus_stxm_scan_type"] == "Image"
    assert start["uid"] == f"{path.name}:entry0"
    assert start["sample_name"] == "golden sample"
    assert start["title"] == "ALS-12345"
    # The NXdetector positions are the fly trajectory's, not one per pixel.
    assert np.isnan(image.x_readback_um).all()


def test_pystxmcontrol_stack_regions(tmp_path: Path):
    path = nc.pystxmcontrol_stack(tmp_path)
    first = as_stack(read_nxstxm(path))
    second = as_stack(read_nxstxm(path, entry="entry1"))
    np.testing.assert_array_equal(first.counts, nc.truth())
    np.testing.assert_array_equal(second.counts, nc.truth() + 5000)
    np.testing.assert_allclose(second.y_um, nc.Y_UM + 100.0)
    assert first.start["stxm_scan_type"] == "sample image stack"  # an "Image" of 5 energies


def test_pystxmcontrol_line_spectrum(tmp_path: Path):
    stack = as_stack(read_nxstxm(nc.pystxmcontrol_line_spectrum(tmp_path)))
    np.testing.assert_array_equal(stack.counts[:, 0, :], nc.line_truth())
    np.testing.assert_allclose(stack.x_um, 0.3 * np.arange(nc.LINE_POINTS))
    np.testing.assert_allclose(stack.y_um, [0.0])
    assert stack.start["stxm_scan_type"] == "line spectrum"


# --- pyStxm ---------------------------------------------------------------------------------


def test_pystxm_image(tmp_path: Path):
    image = as_image(read_nxstxm(nc.pystxm_image(tmp_path)))
    np.testing.assert_array_equal(image.counts, nc.truth(1)[0])
    np.testing.assert_allclose(image.x_um, nc.X_UM)
    np.testing.assert_allclose(image.y_um, nc.Y_UM)
    start = image.start
    assert start["source_writer"] == "pyStxm"
    assert start["stxm_scan_type"] == "sample image"
    assert start["nexus_stxm_scan_type"] == "SAMPLE IMAGE"
    assert (start["x_axis"], start["y_axis"]) == ("dnm_sample_fine_x", "dnm_sample_fine_y")
    assert start["ring_current_mA"] == [220.0]
    # pyStxm writes the start position for every point: not a measurement
    assert np.isnan(image.x_readback_um).all()
    assert any("one value for every point" in note for note in start["nexus_read_notes"])


def test_pystxm_stack(tmp_path: Path):
    stack = as_stack(read_nxstxm(nc.pystxm_stack(tmp_path)))
    np.testing.assert_array_equal(stack.counts, nc.truth())
    np.testing.assert_allclose(stack.energies_eV, nc.ENERGIES_EV)
    assert stack.start["stxm_scan_type"] == "sample image stack"


def test_pystxm_point_spectra_one_entry_per_point(tmp_path: Path):
    path = nc.pystxm_point_spectrum(tmp_path)
    assert [s.entry for s in list_nxstxm(path)] == ["entry0", "entry1"]
    second = as_stack(read_nxstxm(path, entry="entry1"))
    np.testing.assert_array_equal(second.counts[:, 0, 0], nc.point_truth() + 100)
    np.testing.assert_allclose((second.x_um, second.y_um), ([4.25], [-0.5]))
    assert second.start["stxm_scan_type"] == "point spectrum"


@pytest.mark.parametrize("square", [False, True], ids=["by-lengths", "by-writer-layout"])
def test_pystxm_line_spectrum_stored_line_by_energy(tmp_path: Path, square: bool):
    stack = as_stack(read_nxstxm(nc.pystxm_line_spectrum(tmp_path, square=square)))
    points = 5 if square else nc.LINE_POINTS
    np.testing.assert_array_equal(stack.counts[:, 0, :], nc.line_truth(points=points))
    np.testing.assert_allclose(stack.x_um, 0.5 * np.arange(1, points + 1))
    assert stack.start["nexus_read_notes"]


def test_pystxm_osa_image_stored_with_a_leading_frame(tmp_path: Path):
    image = as_image(read_nxstxm(nc.pystxm_osa_image(tmp_path)))
    np.testing.assert_array_equal(image.counts, nc.truth(1)[0])
    assert (image.start["x_axis"], image.start["y_axis"]) == ("dnm_osa_x", "dnm_osa_y")
    assert image.start["stxm_scan_type"] == "osa image"


# --- listing --------------------------------------------------------------------------------


def test_list_nxstxm(tmp_path: Path):
    summaries = list_nxstxm(nc.pixelator_stack(tmp_path))
    assert [(s.entry, s.channels, s.scan_type, s.data_shape) for s in summaries] == [
        ("entry1", ("counter0", "counter1"), "sample image stack", (5, 3, 4)),
        ("entry2", ("counter0", "counter1"), "sample image stack", (5, 3, 4)),
    ]
    assert {s.source_writer for s in summaries} == {"Pixelator"}
    xmcd = list_nxstxm(str(nc.stxm_ctrl_xmcd(tmp_path)))[0]
    assert set(xmcd.channels) == {"apd_plus", "apd_minus"}
    assert xmcd.source_writer == "stxm_ctrl"


# --- files that cannot be read --------------------------------------------------------------


def edited(path: Path, edit: Callable[[h5py.File], None]) -> Path:
    with h5py.File(path, "a") as f:
        edit(f)
    return path


def test_missing_file(tmp_path: Path):
    with pytest.raises(NexusReadError, match="no such file"):
        read_nxstxm(tmp_path / "nothing.hdf5")


def test_not_hdf5(tmp_path: Path):
    path = tmp_path / "notes.hdf5"
    path.write_text("not a NeXus file")
    with pytest.raises(NexusReadError, match=r"notes\.hdf5: not an HDF5 file"):
        read_nxstxm(path)


def test_no_nxstxm_entry(tmp_path: Path):
    path = tmp_path / "mx.h5"
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry["definition"] = "NXmx"
    with pytest.raises(NexusReadError, match=r"mx\.h5: no NXstxm entry.*definition = 'NXstxm'"):
        read_nxstxm(path)
    with pytest.raises(NexusReadError, match="no NXstxm entry"):
        list_nxstxm(path)


def test_no_nxdata_with_data(tmp_path: Path):
    path = edited(nc.stxm_ctrl_image(tmp_path), lambda f: f.__delitem__("entry1/apd/data"))
    with pytest.raises(
        NexusReadError,
        match=r"stxm_ctrl_image\.hdf5: entry 'entry1' has no NXdata group with a 'data' field"
        r".*'apd'.*/entry/<NXdata>/data",
    ):
        read_nxstxm(path)


def test_missing_energy(tmp_path: Path):
    def drop(f: h5py.File) -> None:
        del f["entry1/apd/energy"]
        del f["entry1/instrument/monochromator/energy"]

    path = edited(nc.stxm_ctrl_image(tmp_path), drop)
    with pytest.raises(NexusReadError, match=r"entry 'entry1' NXdata 'apd' has no 'energy'"):
        read_nxstxm(path)


@pytest.mark.parametrize("axis", ["sample_x", "sample_y"])
def test_missing_sample_axis(tmp_path: Path, axis: str):
    path = edited(nc.pixelator_stack(tmp_path), lambda f: f.__delitem__(f"entry1/counter0/{axis}"))
    with pytest.raises(NexusReadError, match=rf"NXdata 'counter0' has no '{axis}' field"):
        read_nxstxm(path)


def test_data_not_fitting_the_axes(tmp_path: Path):
    def widen(f: h5py.File) -> None:
        del f["entry1/apd/data"]
        f["entry1/apd/data"] = np.zeros((1, 3, 7))

    path = edited(nc.stxm_ctrl_image(tmp_path), widen)
    with pytest.raises(
        NexusReadError, match=r"data of shape \(1, 3, 7\) does not fit its axes.*sample_x \(4\)"
    ):
        read_nxstxm(path)


def test_unknown_entry_and_channel(tmp_path: Path):
    path = nc.pixelator_stack(tmp_path)
    with pytest.raises(NexusReadError, match=r"no NXstxm entry 'entry9'.*\['entry1', 'entry2'\]"):
        read_nxstxm(path, entry="entry9")
    with pytest.raises(NexusReadError, match=r"no NXdata group 'apd'.*counter0"):
        read_nxstxm(path, channel="apd")


def test_energy_list_without_an_energy_axis(tmp_path: Path):
    def many_energies(f: h5py.File) -> None:
        del f["entry1/counter0/energy"]
        f["entry1/counter0/energy"] = nc.ENERGIES_EV

    path = edited(nc.pixelator_image(tmp_path), many_energies)
    with pytest.raises(NexusReadError, match="lists 5 energies but no data dimension"):
        read_nxstxm(path)


def test_read_error_is_a_value_error():
    assert issubclass(NexusReadError, ValueError)


# --- the analysis takes what the reader returns ---------------------------------------------

BUILDERS: list[Callable[[Path], Path]] = [
    nc.stxm_ctrl_image,
    nc.stxm_ctrl_stack,
    nc.stxm_ctrl_xmcd,
    nc.stxm_ctrl_point_spectrum,
    nc.stxm_ctrl_line_spectrum,
    nc.stxm_ctrl_osa_image,
    nc.stxm_ctrl_focus,
    nc.pixelator_stack,
    nc.pixelator_image,
    nc.pixelator_point_spectrum,
    nc.pixelator_line_spectrum,
    nc.pystxmcontrol_image,
    nc.pystxmcontrol_stack,
    nc.pystxmcontrol_line_spectrum,
    nc.pystxm_image,
    nc.pystxm_stack,
    nc.pystxm_point_spectrum,
    nc.pystxm_line_spectrum,
    nc.pystxm_osa_image,
]


def dwell_of(result: StxmImage | StxmStack) -> np.ndarray:
    images = [result] if isinstance(result, StxmImage) else result.images
    return np.stack(
        [
            image.pixel_dwell_s
            if image.pixel_dwell_s is not None
            else np.full(image.shape, image.dwell_s)
            for image in images
        ]
    )


@pytest.mark.parametrize("builder", BUILDERS, ids=lambda b: b.__name__)
def test_optical_density_of_every_convention(tmp_path: Path, builder: Callable[[Path], Path]):
    result = read_nxstxm(builder(tmp_path))
    counts = result.counts if isinstance(result, StxmStack) else result.counts[None]
    dwell = dwell_of(result)
    x, y = result.x_um, result.y_um
    # I0: the first column (bare membrane), found from the axes as a scientist would
    mask = i0_mask(x, y, (x[0], x[0], min(y[0], y[-1]), max(y[0], y[-1])))
    od = optical_density(counts, mask, dwell_s=dwell, x_um=x, y_um=y)
    assert od.od.shape == counts.shape
    assert np.isfinite(od.od).all()
    i0_rate = counts[-1][mask].sum() / dwell[-1][mask].sum()
    expected = -np.log(counts[-1, 0, -1] / dwell[-1, 0, -1] / i0_rate)
    assert od.od[-1, 0, -1] == pytest.approx(expected)
    if isinstance(result, StxmStack):
        spectrum = roi_spectrum(
            result.energies_eV,
            counts,
            np.ones(counts.shape[1:], bool),
            dwell_s=dwell,
            i0_region=mask,
        )
        assert spectrum.rate_Hz.shape == result.energies_eV.shape
        assert np.isfinite(spectrum.rate_Hz).all()
