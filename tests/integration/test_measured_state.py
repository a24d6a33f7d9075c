"""The data say what was measured: the optics state and the sample at each frame, not the
state the plan found before it moved (in the NXstxm file, the documents and `stxm runs`)."""

from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np
import pytest
from bluesky import plan_stubs as bps
from conftest import config_toml, wait_for

from devices.stxm import undulator_model
from plans import RasterRegion, image_stack, line_spectrum, point_spectrum, xmcd_image
from stxm_ctrl.data.run_documents import RunDocuments
from stxm_ctrl.data.writers import read_spool_file, spool_file_for
from stxm_ctrl.physics.magnetic_samples import magnetic_sample
from stxm_ctrl.physics.zone_plate import focal_length_um

pytestmark = pytest.mark.ioc

FE_L3 = 706.8
ABOVE_CU_L3 = 964.0
ZP_Z_TOLERANCE_UM = 0.5  # the zone plate's in-position band is a few tens of nm
GAP_TOLERANCE_MM = 0.01


def _sample(config, name):
    s = config.sim.sample
    return magnetic_sample(
        name, config.sim.magnetic_samples[name], s.reference_energy_eV, s.absorption_exponent
    )


@pytest.fixture
def restored(session, sim_config):
    """The devices, in focus on the sample; energy, focus, polarisation and stages put back."""
    d = session.devices
    needed = (d.apd, d.stage, d.energy, d.polarization, d.fly)
    wait_for(lambda: all(device.connected for device in needed), 30, "the devices' PVs")
    energy = float(d.energy.mono.setpoint.get())  # not a settling readback (test_nexus_files)
    offset = float(d.energy.focus_offset_um.get())
    polarization = d.polarization.position
    motors = (d.zone_plate.z, d.stage.x.coarse, d.stage.y.coarse, d.stage.x.fine, d.stage.y.fine)
    kept = [(m, float(m.user_readback.get())) for m in motors]
    motion = [(axis.motion, axis.motion.get()) for axis in (d.stage.x, d.stage.y)]
    d.energy.focus_offset_um.put(sim_config.sim.optics.sample_z_offset_um)
    session.RE(bps.mv(d.polarization, "Circular left"))
    yield d
    d.energy.focus_offset_um.put(offset)
    session.RE(bps.mv(d.polarization, polarization))
    session.RE(bps.mv(d.energy, energy))
    for motor, position in kept:
        motor.move(position, wait=True)
    for signal, value in motion:
        signal.put(value)


def _focus_zp_z_um(config, energy_eV):
    """The simulator's truth: ZP z that focuses on the sample at ``energy_eV``."""
    plate = config.optics.selected_zone_plate
    distance = focal_length_um(energy_eV, plate.diameter_um, plate.outer_zone_width_nm)
    return config.optics.z_sign * (distance + config.sim.optics.sample_z_offset_um)


def _documents(config, uid):
    return RunDocuments.from_documents(
        read_spool_file(spool_file_for(config.data_dir / "spool", uid))
    )


def _assert_measured_state(session, config, uid, energies_eV, polarizations):
    """The file's per-point ZP z and EPU gap, and the frames stream's, are the truth's at the
    energy (and helicity) each point was measured at; the start document says its state is
    the run's start."""
    run = _documents(config, uid)
    assert "start" in run.start["instrument_state_at"]
    frames = run.stream("frames")
    undulator = undulator_model(config)
    want_z = [_focus_zp_z_um(config, e) for e in energies_eV]
    want_gap = [undulator.gap_mm(e, p) for e, p in zip(energies_eV, polarizations, strict=True)]
    np.testing.assert_allclose(frames.floats("energy_zp_z"), want_z, atol=ZP_Z_TOLERANCE_UM)
    np.testing.assert_allclose(frames.floats("energy_epu_gap"), want_gap, atol=GAP_TOLERANCE_MM)
    with h5py.File(session.nexus_file(uid), "r") as file:
        instrument = file["entry1/instrument"]
        energy = np.asarray(instrument["monochromator/energy"][()])
        zp_z = np.asarray(instrument["zone_plate/z"][()])
        gap = np.asarray(instrument["epu/gap"][()])
        polarization = [p.decode() for p in instrument["epu/polarization"][()]]
    assert zp_z.shape == gap.shape == energy.shape and energy.size > len(energies_eV)
    frame = np.argmin(abs(energy[:, None] - np.asarray(energies_eV)[None, :]), axis=1)
    np.testing.assert_allclose(energy, np.asarray(energies_eV)[frame], atol=0.05)
    np.testing.assert_allclose(zp_z, np.asarray(want_z)[frame], atol=ZP_Z_TOLERANCE_UM)
    assert polarization == polarizations
    if len(set(polarizations)) > 1:  # an XMCD pair shares its energy: the frames in turn
        assert energy.size % len(energies_eV) == 0
        frame = np.repeat(np.arange(len(energies_eV)), energy.size // len(energies_eV))
    np.testing.assert_allclose(gap, np.asarray(want_gap)[frame], atol=GAP_TOLERANCE_MM)


def test_each_frame_records_the_optics_it_was_measured_with_not_the_state_before(
    session, sim_config, restored
):
    d = restored
    pillar_x, pillar_y = _sample(sim_config, "pillars").feature_centers_um()[4]
    disc_x, disc_y = _sample(sim_config, "vortex_flat").feature_centers_um()[4]
    # A Cu spectrum above the L3 edge leaves the optics at 964 eV ...
    session.run(
        point_spectrum(
            d.apd,
            d.energy,
            d.polarization,
            d.stage.x,
            pillar_x,
            d.stage.y,
            pillar_y,
            [ABOVE_CU_L3],
            0.002,
        )
    )
    before = float(d.zone_plate.z.user_readback.get())
    assert before == pytest.approx(_focus_zp_z_um(sim_config, ABOVE_CU_L3), abs=0.5)
    # ... then an XMCD image at the Fe L3 edge on a permalloy disc.
    xmcd = session.run(
        xmcd_image(
            d.apd,
            d.energy,
            d.polarization,
            RasterRegion(d.stage.x, disc_x, 1.0, 4, d.stage.y, disc_y, 1.0, 3),
            FE_L3,
            0.002,
            mode="step",
        )
    )
    start = _documents(sim_config, xmcd).start
    # The start document holds the state at the start (964 eV) and says so.
    assert start["zp_z_um"] == pytest.approx(before, abs=0.01)
    _assert_measured_state(
        session, sim_config, xmcd, [FE_L3, FE_L3], ["Circular left", "Circular right"]
    )
    # A stack in the polarisation the XMCD pair ended in: every frame at its own ZP z and gap
    # (the focus moves ~5 um per eV).
    assert d.polarization.position == "Circular right"
    energies = [700.0, 712.0, 725.0]
    stack = session.run(
        image_stack(
            d.apd,
            d.energy,
            d.polarization,
            RasterRegion(d.stage.x, disc_x, 1.0, 3, d.stage.y, disc_y, 1.0, 2),
            energies,
            0.002,
            mode="step",
        )
    )
    _assert_measured_state(session, sim_config, stack, energies, ["Circular right"] * 3)
    flown = session.run(
        image_stack(
            d.apd,
            d.energy,
            d.polarization,
            RasterRegion(d.stage.x, disc_x, 2.0, 16, d.stage.y, disc_y, 1.0, 3),
            [FE_L3, ABOVE_CU_L3],
            0.001,
            flyer=d.fly,
        )
    )
    _assert_measured_state(
        session, sim_config, flown, [FE_L3, ABOVE_CU_L3], ["Circular right"] * 2
    )
    # A point spectrum after it: one ZP z per energy, not the one it started at.
    spectrum = session.run(
        point_spectrum(
            d.apd,
            d.energy,
            d.polarization,
            d.stage.x,
            disc_x,
            d.stage.y,
            disc_y,
            [700.0, 712.0, 725.0],
            0.002,
        )
    )
    run = _documents(sim_config, spectrum)
    assert run.start["zp_z_um"] == pytest.approx(_focus_zp_z_um(sim_config, ABOVE_CU_L3), abs=0.5)
    with h5py.File(session.nexus_file(spectrum), "r") as file:
        zp_z = np.asarray(file["entry1/instrument/zone_plate/z"][()])
    np.testing.assert_allclose(
        zp_z, [_focus_zp_z_um(sim_config, e) for e in energies], atol=ZP_Z_TOLERANCE_UM
    )


def _runs_table(config, tmp_path, *filters):
    config_file = tmp_path / "beamline.toml"
    config_file.write_text(config_toml(config.model_dump(mode="json")))
    argv = [
        sys.executable,
        "-m",
        "stxm_ctrl.app.cli",
        "runs",
        "--config",
        str(config_file),
        *filters,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_spectrum_is_labelled_with_the_sample_it_was_measured_on(
    session, sim_config, restored, tmp_path
):
    d = restored
    disc_x, disc_y = _sample(sim_config, "vortex_flat").feature_centers_um()[4]
    pillar_x, pillar_y = _sample(sim_config, "pillars").feature_centers_um()[4]
    # The stage on the resolution pattern; a spectrum on a permalloy disc ...
    session.RE(bps.mv(d.sample_x, 0.0, d.sample_y, 0.0))
    assert sim_config.sim.sample_name_at(0.0, 0.0) == sim_config.sim.sample.name
    on_disc = session.run(
        point_spectrum(
            d.apd,
            d.energy,
            d.polarization,
            d.stage.x,
            disc_x + 0.5,
            d.stage.y,
            disc_y,
            [FE_L3, 708.0],
            0.002,
        )
    )
    # ... then, the stage on that disc, a spectrum on a Co pillar and a line across pillars.
    on_pillar = session.run(
        point_spectrum(
            d.apd,
            d.energy,
            d.polarization,
            d.stage.x,
            pillar_x,
            d.stage.y,
            pillar_y,
            [778.0, 779.0],
            0.002,
        )
    )
    line = session.run(
        line_spectrum(
            d.apd,
            d.energy,
            d.polarization,
            d.stage.x,
            d.stage.y,
            (pillar_x - 1.0, pillar_y),
            (pillar_x + 1.0, pillar_y),
            3,
            [778.0],
            0.002,
        )
    )
    expected = {
        on_disc: "vortex_flat (vortex_discs)",
        on_pillar: "pillars (cocu_pillars)",
        line: "pillars (cocu_pillars)",
    }
    for uid, sample in expected.items():
        assert _documents(sim_config, uid).start["sample_name"] == sample
        with h5py.File(session.nexus_file(uid), "r") as file:
            assert file["entry1/sample/name"][()].decode() == sample
            assert file["entry1/title"][()].decode().endswith(f"of {sample}")
    for uid, sample in expected.items():
        table = _runs_table(sim_config, tmp_path, "--sample", sample.split()[0])
        rows = [row for row in table.splitlines() if row.rstrip().endswith(uid[:8])]
        assert len(rows) == 1 and sample.split()[0] in rows[0], table
    pattern = _runs_table(sim_config, tmp_path, "--sample", "resolution pattern")
    assert not any(uid[:8] in pattern for uid in expected), pattern
