"""The NXstxm writer on runs built from documents (no IOCs): content, cut-off runs, layout,
the callback's failures, a full disk."""

from __future__ import annotations

import errno
import logging
import os
import textwrap
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np
import pytest
from event_model import compose_run

from stxm_ctrl.data.nexus_check import check_nexus_file
from stxm_ctrl.data.nexus_files import NexusFileWriter, export_runs, nexus_path_for
from stxm_ctrl.data.nexus_writer import nexus_relative_path, write_nxstxm
from stxm_ctrl.data.writers import DocumentSpool, spool_file_for

from .small_disk import run_on_small_disk

TEMPLATE = "{proposal}/{date}/{scan_id:05d}_{plan_name}.nxs"


def image_run(
    ny: int = 4,
    nx: int = 5,
    *,
    measured: int | None = None,
    scan_id: int = 7,
    md: dict | None = None,
    uid: str | None = None,
) -> list[tuple[str, dict]]:
    """Documents of a step ``sample_image`` of (ny, nx) with counts 1000 + 10 x + 100 y.

    ``measured`` points only, and no stop document, for a run cut off mid-scan.
    """
    start_md = {
        "plan_name": "sample_image",
        "stxm_scan_type": "sample image",
        "scan_id": scan_id,
        "shape": [ny, nx],
        "extents": [[-1.0, 1.0], [10.0, 14.0]],
        "snaking": [False, False],
        "dwell_s": 0.002,
        "counter": "apd",
        "counter_field": "apd_counts",
        "x_field": "sample_x",
        "y_field": "sample_y",
        "energy_eV": 706.8,
        "polarization": "Circular left",
        "sample_name": "test film",
        "num_points": ny * nx,
        "zone_plate": {
            "name": "zp240_25",
            "diameter_um": 240.0,
            "outer_zone_width_nm": 25.0,
            "central_stop_um": 95.0,
        },
        "osa": {"name": "osa50", "diameter_um": 50.0},
        "a0_um": 500.0,
        "zp_z_um": -3422.4,
        "configuration": {"ring": {"name": "BESSY II"}},
        **(md or {}),
    }
    bundle = compose_run(metadata=start_md, uid=uid)
    t0 = bundle.start_doc["time"]
    docs: list[tuple[str, dict]] = [("start", dict(bundle.start_doc))]
    baseline = bundle.compose_descriptor(
        name="baseline",
        data_keys={
            k: {"source": "PV", "dtype": "number", "shape": []}
            for k in ("ring_current", "energy_mono_readback", "osa_x")
        },
    )
    docs.append(("descriptor", baseline.descriptor_doc))
    values = {"ring_current": 300.0, "energy_mono_readback": 706.81, "osa_x": 4.0}
    docs.append(
        (
            "event",
            baseline.compose_event(
                data=values, timestamps=dict.fromkeys(values, t0), time=t0, seq_num=1
            ),
        )
    )
    keys = ("apd_counts", "sample_x", "sample_y")
    primary = bundle.compose_descriptor(
        name="primary",
        data_keys={k: {"source": "PV", "dtype": "number", "shape": []} for k in keys},
    )
    docs.append(("descriptor", primary.descriptor_doc))
    xs, ys = np.linspace(10.0, 14.0, nx), np.linspace(-1.0, 1.0, ny)
    total = ny * nx if measured is None else measured
    for i in range(total):
        iy, ix = divmod(i, nx)
        data = {
            "apd_counts": 1000 + 10 * ix + 100 * iy,
            "sample_x": xs[ix] + 0.001,
            "sample_y": ys[iy] - 0.001,
        }
        t = t0 + 0.01 * (i + 1)
        docs.append(
            (
                "event",
                primary.compose_event(
                    data=data, timestamps=dict.fromkeys(keys, t), time=t, seq_num=i + 1
                ),
            )
        )
    if measured is None:
        end = t0 + 0.01 * (total + 2)
        docs.append(
            (
                "event",
                baseline.compose_event(
                    data={**values, "ring_current": 299.0},
                    timestamps=dict.fromkeys(values, end),
                    time=end,
                    seq_num=2,
                ),
            )
        )
        docs.append(("stop", bundle.compose_stop(exit_status="success")))
    return docs


def test_a_sample_image_is_written_with_its_grid_points_and_monitor(tmp_path):
    path = write_nxstxm(image_run(), tmp_path / "image.nxs")
    assert list(check_nexus_file(path)) == []
    with h5py.File(path, "r") as file:
        entry = file["entry1"]
        assert entry["definition"][()].tolist() == [b"NXstxm"]
        apd = entry["apd"]
        assert apd["stxm_scan_type"][()].tolist() == [b"sample image"]
        assert apd.attrs["axes"].tolist() == [b"sample_y", b"sample_x"]
        expected = 1000 + 10 * np.arange(5)[None, :] + 100 * np.arange(4)[:, None]
        np.testing.assert_array_equal(apd["data"][()], expected)
        np.testing.assert_allclose(apd["sample_x"][()], np.linspace(10, 14, 5))
        np.testing.assert_allclose(apd["sample_y"][()], np.linspace(-1, 1, 4))
        np.testing.assert_allclose(apd["count_time"][()], 0.002)
        np.testing.assert_allclose(apd["energy"][()], [706.81])
        # Every point in the order measured, with the stage's readback.
        np.testing.assert_array_equal(entry["instrument/apd/data"][()], expected.ravel())
        measured_x = entry["instrument/sample_x/data"][:5]
        np.testing.assert_allclose(measured_x, np.linspace(10, 14, 5) + 0.001)
        # The ring current interpolated in time between the baseline's 300 and 299 mA.
        control = entry["control/data"][()]
        assert control.shape == (4, 5)
        assert 299.0 < control[-1, -1] < control[0, 0] < 300.0
        assert entry["instrument/source/name"][()].decode() == "BESSY II"
        a1_um_per_eV = 240 * 0.025 / 1.23984  # D dr / hc
        assert entry["instrument/zone_plate/a1"][()] == pytest.approx(a1_um_per_eV, rel=1e-4)
        assert entry["collection/exit_status"][()].decode() == "success"
        assert entry["title"][()].decode() == "scan 7: sample_image (sample image) of test film"
        start_time = datetime.fromisoformat(entry["start_time"][()].decode())
        assert start_time.tzinfo is not None


def test_a_run_cut_off_mid_scan_is_written_as_far_as_it_got(tmp_path):
    path = write_nxstxm(image_run(measured=7), tmp_path / "cut.nxs")
    assert [p for p in check_nexus_file(path) if p.severity == "error"] == []
    with h5py.File(path, "r") as file:
        entry = file["entry1"]
        data = entry["apd/data"][()]
        assert data.dtype.kind == "f" and np.isfinite(data).sum() == 7
        assert data[1, 1] == 1110 and np.isnan(data[1, 2])
        assert len(entry["instrument/apd/data"]) == 7
        assert entry["collection/exit_status"][()].decode() == "incomplete"


def test_a_run_that_is_no_stxm_scan_is_refused_with_the_types_that_are(tmp_path):
    docs = image_run(md={"stxm_scan_type": "pump probe movie"})
    with pytest.raises(ValueError, match=r"scan type 'pump probe movie'.*'sample image'"):
        write_nxstxm(docs, tmp_path / "x.nxs")
    assert not list(tmp_path.iterdir())


def test_the_layout_files_by_proposal_else_user_and_never_overwrites_another_run(tmp_path):
    start = dict(image_run(md={"proposal_id": "p 42/b", "user": "Ann"})[0][1])
    relative = nexus_relative_path(start, TEMPLATE)
    assert relative.parts[0] == "p_42_b" and relative.name == "00007_sample_image.nxs"
    start_user = dict(image_run(md={"user": "Ann"})[0][1])
    assert nexus_relative_path(start_user, TEMPLATE).parts[0] == "Ann"
    assert nexus_relative_path(dict(image_run()[0][1]), TEMPLATE).parts[0] == "no_proposal"

    first, second = image_run(), image_run()  # same scan id, two runs
    path1 = write_nxstxm(first, nexus_path_for(first[0][1], tmp_path, TEMPLATE))
    path2 = write_nxstxm(second, nexus_path_for(second[0][1], tmp_path, TEMPLATE))
    assert path1 != path2 and path2.name == f"00007_sample_image_{second[0][1]['uid'][:8]}.nxs"
    again = nexus_path_for(first[0][1], tmp_path, TEMPLATE)  # the same run: replaced
    assert again == path1


def _spooled(tmp_path: Path, docs) -> tuple[DocumentSpool, Path]:
    spool = DocumentSpool(tmp_path / "spool")
    for name, doc in docs:
        spool(name, doc)
    return spool, spool_file_for(spool.spool_dir, docs[0][1]["uid"])


def test_the_callback_writes_each_run_at_its_stop_from_the_spool(tmp_path):
    docs = image_run()
    spool = DocumentSpool(tmp_path / "spool")
    writer = NexusFileWriter(tmp_path / "nexus", TEMPLATE, spool.spool_dir)
    for name, doc in docs:
        spool(name, doc)
        writer(name, doc)
        if name != "stop":
            assert not writer.written  # nothing before the run ends
    uid = docs[0][1]["uid"]
    assert writer.written[uid].is_file() and writer.failed == {}
    other = image_run(md={"stxm_scan_type": None, "plan_name": "count"})
    for name, doc in other:
        spool(name, doc)
        writer(name, doc)
    assert list(writer.written) == [uid]  # a run of no STXM scan type gets no file


def test_a_file_that_cannot_be_written_is_reported_and_the_run_goes_on(
    tmp_path, monkeypatch, caplog
):
    docs = image_run()
    spool, spool_file = _spooled(tmp_path, docs)
    writer = NexusFileWriter(tmp_path / "nexus", TEMPLATE, spool.spool_dir)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("stxm_ctrl.data.nexus_files.write_nxstxm", full_disk)
    with caplog.at_level(logging.ERROR):
        for name, doc in docs:
            writer(name, doc)  # never raises into the RunEngine
    uid = docs[0][1]["uid"]
    assert "the disk is full" in writer.failed[uid]
    (message,) = [r.getMessage() for r in caplog.records]
    assert f"stxm export {uid[:8]}" in message and str(spool_file) in message
    monkeypatch.undo()
    (result,) = export_runs(
        [str(spool_file)],
        directory=tmp_path / "nexus",
        template=TEMPLATE,
        spool_dir=spool.spool_dir,
    )
    assert result.path.is_file() and result.source.startswith("spool file")


def test_export_finds_runs_in_the_spool_by_scan_id_and_uid_prefix(tmp_path):
    docs = image_run(scan_id=12)
    spool, _ = _spooled(tmp_path, docs)
    uid = docs[0][1]["uid"]
    out = tmp_path / "out"
    by_id, by_uid = export_runs(
        ["12", uid[:6]], directory=out, template=TEMPLATE, spool_dir=spool.spool_dir
    )
    assert by_id.uid == by_uid.uid == uid and by_id.path == by_uid.path
    # A uid whose first characters are all digits is not taken for a scan id that no run has.
    digits = image_run(scan_id=13, uid="40099700-0000-4000-8000-000000000000")
    for name, doc in digits:
        spool(name, doc)
    (by_digits,) = export_runs(
        ["400997"], directory=out, template=TEMPLATE, spool_dir=spool.spool_dir
    )
    assert by_digits.uid == digits[0][1]["uid"]
    with pytest.raises(LookupError, match=r"no run '99' in the spool .*scan id"):
        list(export_runs(["99"], directory=out, template=TEMPLATE, spool_dir=spool.spool_dir))


REAL_SMALL_DISK = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from tests.unit.test_nexus_writer import image_run
    from stxm_ctrl.data.nexus_writer import write_nxstxm
    target = Path(sys.argv[1]) / "big.nxs"
    result = {}
    try:
        write_nxstxm(image_run(60, 60), target)
    except OSError as exc:
        result["error"] = str(exc)
    result["left"] = sorted(p.name for p in Path(sys.argv[1]).iterdir())
    print(json.dumps(result))
    """
)


def test_a_real_small_disk_leaves_no_half_written_file(tmp_path):
    """A 64 kB tmpfs in a private mount namespace (needs `unshare`; no mount is left)."""
    import json

    _, stdout = run_on_small_disk(tmp_path, REAL_SMALL_DISK)
    outcome = json.loads(stdout.strip().splitlines()[-1])
    assert "No space left on device" in outcome["error"] or "errno = 28" in outcome["error"]
    assert outcome["left"] == []  # no partial file under any name


def test_a_run_whose_file_would_not_fit_is_refused_before_it_opens(
    tmp_path, make_run_engine, monkeypatch
):
    from bluesky.plans import count
    from ophyd.sim import det

    from stxm_ctrl.app.session import wire_data_path
    from stxm_ctrl.config import load_config
    from stxm_ctrl.data.nexus_writer import estimate_nexus_bytes
    from stxm_ctrl.data.writers import estimate_spool_bytes
    from stxm_ctrl.disk import DiskSpaceError

    config = load_config(overrides={"beamline": {"data_dir": str(tmp_path)}})
    RE = make_run_engine({})
    data = wire_data_path(RE, config, catalog=False)
    points = 1000
    # Room for the spool file, not for the spool file and the NXstxm file together.
    free = estimate_spool_bytes(points) + estimate_nexus_bytes(points) // 2
    monkeypatch.setattr("stxm_ctrl.disk.free_bytes", lambda directory: free)
    seen: list[str] = []
    RE.subscribe(lambda name, doc: seen.append(name))
    with pytest.raises(DiskSpaceError, match=rf"a run of {points} points and its file"):
        RE(count([det], num=points, md={"stxm_scan_type": "sample image"}))
    assert seen == []  # refused before the start document: nothing measured, nothing moved
    RE(count([det], num=points))  # no NXstxm file for a plain count: the spool fits
    assert seen[0] == "start"
    data.close()


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{scan_id}_{plan_name}.h5py", "must end in one of .nxs, .hdf5, .stxm"),
        ("../{scan_id}.nxs", "must stay inside [nexus] directory"),
        ("{proposal}/{beamtime}.nxs", "use only the placeholders {proposal}"),
    ],
)
def test_a_bad_file_template_is_refused_with_the_fix(template, message):
    from stxm_ctrl.config import ConfigError, load_config

    with pytest.raises(ConfigError) as info:
        load_config(overrides={"nexus": {"file_template": template}})
    assert "file_template" in str(info.value) and message in str(info.value)
