"""Spectra, stacks and XMCD on the simulated magnetic samples, against the ground truth."""

from __future__ import annotations

import numpy as np
import pytest
from bluesky import plan_stubs as bps
from conftest import beam_drift_um, truth_model, wait_for

from plans import (
    PlanArgumentError,
    RasterRegion,
    image_stack,
    line_spectrum,
    point_spectrum,
    xmcd_image,
    xmcd_stack,
)
from stxm_ctrl.analysis import i0_mask, optical_density, roi_spectrum, xmcd_from_stack
from stxm_ctrl.physics.magnetic_samples import magnetic_sample
from stxm_ctrl.physics.spectra import absorption_per_nm

pytestmark = pytest.mark.ioc

FE_L3, FE_L2, NI_L3, NI_L2 = 706.8, 719.9, 852.7, 870.0


def _sample(config, name):
    s = config.sim.sample
    return magnetic_sample(
        name, config.sim.magnetic_samples[name], s.reference_energy_eV, s.absorption_exponent
    )


def _true_rate(measured_Hz, config):
    """Undo the counter's dead time (non-paralysable): the rate the sample transmitted."""
    tau = config.sim.apd.dead_time_ns * 1e-9
    return measured_Hz / (1.0 - measured_Hz * tau)


@pytest.fixture
def at_fe_edge(session, sim_config):
    """Circular left, in focus on the sample; the energy, focus and polarisation restored.

    The focus offset is the one ``sample_focus`` finds on this fleet (the sample sits
    ``[sim.optics] sample_z_offset_um`` upstream of the stages' zero; test_optics_alignment
    shows the scan finds it), so the plans' energy moves keep the sample in focus.
    """
    d = session.devices
    # Whatever a fault test before restarted must be back (an IOC reconnects in seconds).
    needed = (d.apd, d.stage, d.energy, d.polarization, d.fly)
    wait_for(lambda: all(device.connected for device in needed), 30, "the devices' PVs")
    start = float(d.energy.mono.setpoint.get())  # not a settling readback (test_nexus_files)
    offset = float(d.energy.focus_offset_um.get())
    # The zone plate and the piezo too: the energy move back (focus following with the offset
    # restored) would leave ZP z at the nominal focus, 2 um from the sample's, and the tests
    # after these take the zone plate where they find it for the focus.
    kept = [
        (m, float(m.user_readback.get()))
        for m in (
            d.zone_plate.z,
            d.stage.x.coarse,
            d.stage.y.coarse,
            d.stage.x.fine,
            d.stage.y.fine,
        )
    ]
    d.energy.focus_offset_um.put(sim_config.sim.optics.sample_z_offset_um)
    session.RE(bps.mv(d.polarization, "Circular left"))
    yield d
    d.energy.focus_offset_um.put(offset)
    session.RE(bps.mv(d.polarization, "Circular left"))
    session.RE(bps.mv(d.energy, start))
    for motor, position in kept:
        motor.move(position, wait=True)


def test_point_spectrum_of_permalloy_has_the_fe_and_ni_edges_where_they_belong(
    session, sim_config, at_fe_edge
):
    d = at_fe_edge
    vortex = _sample(sim_config, "vortex_flat")
    cx, cy = vortex.feature_centers_um()[4]
    # 1 eV steps through each edge energy (physics.md): Fe L3, L2, Ni L3, L2.
    energies = [(703.8, 709.8, 1.0), (716.9, 722.9, 1.0), (849.7, 855.7, 1.0), (867, 873, 1.0)]
    on_disc = session.run(
        point_spectrum(
            d.apd,
            d.energy,
            d.polarization,
            d.stage.x,
            cx + 0.5,
            d.stage.y,
            cy,
            energies,
            0.02,
            monitors=[d.ring.current],
        )
    )
    membrane = session.run(
        point_spectrum(
            d.apd, d.energy, d.polarization, d.stage.x, cx + 2.0, d.stage.y, cy, energies, 0.02
        )
    )
    disc, bare = session.stack(on_disc), session.stack(membrane)
    assert disc.start["stxm_scan_type"] == "point spectrum"
    assert disc.counts.shape == (len(disc.energies_eV), 1, 1)
    e = disc.energies_eV
    transmitted = _true_rate(disc.rate_Hz[:, 0, 0], sim_config)
    od = -np.log(transmitted / _true_rate(bare.rate_Hz[:, 0, 0], sim_config))
    # Each white line peaks at its edge energy.
    for edge in (FE_L3, FE_L2, NI_L3, NI_L2):
        window = abs(e - edge) <= 3.5
        assert e[window][np.argmax(od[window])] == pytest.approx(edge), (edge, od[window])
    # The OD of 30 nm permalloy, within photon statistics and the ring's top-up ripple.
    truth = 30.0 * absorption_per_nm("permalloy", e)
    assert np.allclose(od, truth, atol=0.015 + 0.03 * truth), np.c_[e, od, truth]
    assert od[np.argmin(abs(e - FE_L3))] == pytest.approx(0.437, abs=0.03)  # 69 nm abs length


def _truth_positions(config, image):
    """Where the beam really was at each pixel: the interferometer's readback plus the x-ray
    beam's own drift (which the interferometer does not see)."""
    drift_x, drift_y = beam_drift_um(config, float(image.start["time"]))
    return image.x_readback_um + drift_x, image.y_readback_um + drift_y


def _truth_asymmetry(session, sample, x, y, energy_eV):
    """The simulator's XMCD asymmetry with the optics as they are: the focus lands at the
    zone plate's lateral position, and the spot is as wide as the optics make it (the test
    fleet's sample sits 2 um off the nominal focus)."""
    d, config = session.devices, session.config
    axes = {
        "zp_x": d.zone_plate.x,
        "zp_y": d.zone_plate.y,
        "zp_z": d.zone_plate.z,
        "osa_x": d.osa.x,
        "osa_y": d.osa.y,
        "osa_z": d.osa.z,
        "detector_x": d.detector.x,
        "detector_y": d.detector.y,
    }
    readings = {name: float(m.user_readback.get()) for name, m in axes.items()}
    optics = truth_model(config).optics_positions(energy_eV, readings)
    sigma = truth_model(config).beam_path.spot_sigma_um(optics)
    pc = config.sim.beamline.circular_polarization_degree
    return sample.xmcd_asymmetry(x + optics.zp_x_um, y + optics.zp_y_um, energy_eV, pc, sigma)


def test_xmcd_image_of_a_tilted_vortex_shows_the_curl_and_flips_with_the_helicity(
    session, sim_config, at_fe_edge
):
    d = at_fe_edge
    tilted = _sample(sim_config, "vortex_tilted")
    cx, cy = tilted.feature_centers_um()[4]
    uid = session.run(
        xmcd_image(
            d.apd,
            d.energy,
            d.polarization,
            RasterRegion(d.stage.x, cx, 2.4, 13, d.stage.y, cy, 2.4, 13),
            FE_L3,
            0.01,
            pairs=1,
            mode="step",
        )
    )
    stack = session.stack(uid)
    assert stack.polarizations == ["Circular left", "Circular right"]
    assert stack.start["xmcd"]["plus_polarization"] == "Circular left"
    x, y = _truth_positions(sim_config, stack.images[0])
    truth = _truth_asymmetry(session, tilted, x, y, FE_L3)
    radius = np.hypot((x - cx) / np.cos(np.radians(30)), y - cy)
    on_disc = (radius < 0.8) & (radius > 0.2)  # away from the rim and the core
    # Each helicity normalised to the bare membrane around the disc: a top-up of the ring
    # between the two images (0.4 % of the flux) would otherwise read as 0.002 of contrast.
    membrane = radius > 1.2
    dead_time_ns = sim_config.sim.apd.dead_time_ns
    result = xmcd_from_stack(stack, dead_time_ns=dead_time_ns, i0_region=membrane)
    assert abs(result.asymmetry[membrane].mean()) < 1e-4
    # Curl seen on a tilted sample: the halves above and below the core have opposite sign,
    # as the truth says for this circulation and helicity.
    top, bottom = on_disc & (y > cy + 0.2), on_disc & (y < cy - 0.2)
    assert np.sign(result.asymmetry[top].mean()) == np.sign(truth[top].mean()) != 0
    assert np.sign(result.asymmetry[bottom].mean()) == -np.sign(result.asymmetry[top].mean())
    assert abs(truth[top].mean()) > 0.02  # ~A Pc OD sin(30 deg): a few per cent
    # The measured asymmetry is the simulator's within photon statistics.
    residual = (result.asymmetry - truth)[on_disc] / result.asymmetry_error[on_disc]
    assert abs(residual.mean()) < 0.5 and residual.std() < 1.5, (residual.mean(), residual.std())
    # Swapping which helicity is "+" flips the contrast.
    swapped = xmcd_from_stack(
        stack, "Circular right", "Circular left", dead_time_ns=dead_time_ns, i0_region=membrane
    )
    assert np.allclose(swapped.asymmetry[on_disc], -result.asymmetry[on_disc])


def test_xmcd_of_a_flat_vortex_shows_its_core_and_not_its_curl(session, sim_config, at_fe_edge):
    d = at_fe_edge
    flat = _sample(sim_config, "vortex_flat")
    cx, cy = flat.feature_centers_um()[4]
    uid = session.run(
        xmcd_image(
            d.apd,
            d.energy,
            d.polarization,
            RasterRegion(d.stage.x, cx, 0.16, 9, d.stage.y, cy, 0.16, 9),
            FE_L3,
            0.05,
            mode="step",
        )
    )
    stack = session.stack(uid)
    result = xmcd_from_stack(stack, dead_time_ns=sim_config.sim.apd.dead_time_ns)
    x, y = _truth_positions(sim_config, stack.images[0])
    truth = _truth_asymmetry(session, flat, x, y, FE_L3)
    core = np.unravel_index(np.argmax(truth), truth.shape)
    # Polarity +1 with "Circular left" the positive helicity: a bright core. Its peak, blurred
    # by the spot, is ~0.034; the 20 nm pixel grid lands anywhere on it (the sample drifts), so
    # the brightest pixel holds 0.027-0.034 of it: the premise is checked on a 1 nm grid.
    fine = np.linspace(-0.02, 0.02, 41)
    fine_x, fine_y = np.meshgrid(x[core] + fine, y[core] + fine)
    peak = _truth_asymmetry(session, flat, fine_x, fine_y, FE_L3).max()
    assert peak > 0.03
    assert truth[core] > 0.75 * peak
    assert result.asymmetry[core] > 5 * result.asymmetry_error[core]
    # The core's contrast as the truth has it: over the pixels within 40 nm of the core
    # (pixel by pixel the 3 nm vibration of the sample moves a 20 nm core by a lot).
    # Taken against the film around the core (no i0 region: every pixel is on the disc), so
    # a change of the ring current between the two helicity images cancels: a top-up between
    # them (0.4 % at 8 h lifetime and 120 s top-up) shifts every pixel's asymmetry by up to
    # 0.002, which the far-field check below bounds.
    near = np.hypot(x - x[core], y - y[core]) < 0.04
    far = np.hypot(x - cx, y - cy) > 0.07
    measured = result.asymmetry[near].mean() - result.asymmetry[far].mean()
    expected = truth[near].mean() - truth[far].mean()
    error = np.hypot(
        np.sqrt((result.asymmetry_error[near] ** 2).sum()) / near.sum(),
        np.sqrt((result.asymmetry_error[far] ** 2).sum()) / far.sum(),
    )
    assert measured == pytest.approx(expected, abs=4 * error + 0.1 * expected)
    # Far from the core the in-plane curl is invisible at normal incidence.
    assert (
        abs(result.asymmetry[far].mean())
        < 3 * result.asymmetry_error[far].mean() / np.sqrt(far.sum()) + 0.002
    )


def test_image_stack_and_line_spectrum_record_every_energy(session, sim_config, at_fe_edge):
    d = at_fe_edge
    flat = _sample(sim_config, "vortex_flat")
    cx, cy = flat.feature_centers_um()[4]
    energies = [700.0, (705.0, 708.0, 1.0), 712.0]
    uid = session.run(
        image_stack(
            d.apd,
            d.energy,
            d.polarization,
            RasterRegion(d.stage.x, cx, 3.0, 7, d.stage.y, cy, 3.0, 5),
            energies,
            0.005,
            mode="step",
        )
    )
    stack = session.stack(uid)
    assert list(stack.energies_eV) == [700.0, 705.0, 706.0, 707.0, 708.0, 712.0]
    assert stack.counts.shape == (6, 5, 7) and not np.isnan(stack.counts).any()
    assert stack.start["estimate"]["total_s"] > 6 * 35 * 0.005
    mask = i0_mask(stack.x_um, stack.y_um, (cx + 1.2, cx + 1.6, cy - 2, cy + 2))
    disc = i0_mask(stack.x_um, stack.y_um, (cx - 0.6, cx + 0.6, cy - 0.8, cy + 0.8))
    spectrum = roi_spectrum(stack.energies_eV, stack.counts, disc, dwell_s=0.005, i0_region=mask)
    assert spectrum.od is not None and np.argmax(spectrum.od) == 3  # the Fe L3 peak, 707 eV
    od = optical_density(stack.counts, mask, dwell_s=0.005)
    assert od.od.shape == (6, 5, 7)

    line = session.run(
        line_spectrum(
            d.apd,
            d.energy,
            d.polarization,
            d.stage.x,
            d.stage.y,
            (cx - 1.5, cy),
            (cx + 1.5, cy),
            7,
            [706.8, 712.0],
            0.005,
        )
    )
    spectra = session.stack(line)
    assert spectra.start["stxm_scan_type"] == "line spectrum"
    assert spectra.counts.shape == (2, 1, 7)
    # The disc absorbs more at the edge than after it; the membrane at the ends hardly changes.
    assert spectra.rate_Hz[0, 0, 3] < spectra.rate_Hz[1, 0, 3] * 0.8


def _point(energies):
    return lambda d: point_spectrum(
        d.apd, d.energy, d.polarization, d.stage.x, 300.0, d.stage.y, 0.0, energies, 0.01
    )


def _xmcd(plan=xmcd_image, energy=706.8, **kwargs):
    return lambda d: plan(
        d.apd,
        d.energy,
        d.polarization,
        RasterRegion(d.stage.x, 300.0, 1.0, 3, d.stage.y, 0.0, 1.0, 3),
        energy,
        0.01,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (_point([(710, 700, 1)]), "stop_eV"),
        (_point([(700, 710, 0)]), "step_eV"),
        (_point([710, 705]), "increasing order"),
        (_point([20.0]), "outside the beamline's range"),
        (_point([]), "energies is empty"),
        (_point("706.8"), "give a list of energies"),
        (_xmcd(plus_polarization="Linear horizontal"), "plus_polarization"),
        (_xmcd(minus_polarization="Circular left"), "two circular"),
        (_xmcd(plan=xmcd_stack, energy=[706.8], pairs=0), "pairs"),
        (_xmcd(energy=[706.8, 710.0]), "takes one energy"),
        (
            lambda d: point_spectrum(
                d.apd, d.sample_x, d.polarization, d.stage.x, 300.0, d.stage.y, 0.0, [706.8], 0.01
            ),
            "devices.Energy",
        ),
        (
            lambda d: image_stack(
                d.apd,
                d.energy,
                d.polarization,
                RasterRegion(d.stage.x, 300.0, 1.0, 3, d.stage.y, 0.0, 1.0, 3),
                [706.8],
                0.01,
                polarization_name="Circular",
            ),
            "polarization_name",
        ),
    ],
)
def test_bad_energy_lists_and_helicities_are_refused_before_anything_moves(session, call, message):
    d = session.devices

    def where() -> tuple[float, ...]:
        signals = (
            d.stage.x.coarse.user_setpoint,
            d.stage.x.fine.user_setpoint,
            d.energy.mono.setpoint,
            d.energy.epu_gap.user_setpoint,
            d.energy.zp_z.user_setpoint,
        )
        return tuple(float(s.get(use_monitor=False)) for s in signals)

    before, polarization = where(), d.polarization.position
    with pytest.raises(PlanArgumentError, match=message):
        session.RE(call(d))
    assert where() == before  # no setpoint changed: nothing moved
    assert d.polarization.position == polarization


def test_a_flown_xmcd_stack_reads_back_alike_from_catalog_and_spool(
    session, sim_config, at_fe_edge
):
    d = at_fe_edge
    tilted = _sample(sim_config, "vortex_tilted")
    cx, cy = tilted.feature_centers_um()[4]
    uid = session.run(
        xmcd_stack(
            d.apd,
            d.energy,
            d.polarization,
            RasterRegion(d.stage.x, cx, 3.0, 40, d.stage.y, cy, 2.0, 8),
            [700.0, FE_L3],
            0.002,
            mode="fly",
            flyer=d.fly,
        )
    )
    stack = session.stack(uid)
    assert stack.start["scan_mode"] == "fly" and stack.start["plan_name"] == "xmcd_stack"
    # +- at the first energy, -+ at the second: one helicity switch per energy.
    assert stack.polarizations == ["Circular left", "Circular right"] * 1 + [
        "Circular right",
        "Circular left",
    ]
    assert list(stack.energies_eV) == [700.0, 700.0, FE_L3, FE_L3]
    assert stack.counts.shape == (4, 8, 40) and not np.isnan(stack.counts).any()
    # Each line went to its own frame: the disc absorbs far more at the edge than below it.
    disc = (
        np.hypot(
            (stack.images[0].x_readback_um - cx) / np.cos(np.radians(30)),
            stack.images[0].y_readback_um - cy,
        )
        < 0.7
    )
    below, at_edge = stack.rate_Hz[0][disc].mean(), stack.rate_Hz[2][disc].mean()
    assert at_edge < 0.8 * below
    # The spool holds the same run.
    from stxm_ctrl.data.stacks import stack_from_documents
    from stxm_ctrl.data.writers import read_spool_file, spool_file_for

    spooled = stack_from_documents(read_spool_file(spool_file_for(session.spool.spool_dir, uid)))
    assert np.array_equal(spooled.counts, stack.counts)
    result = xmcd_from_stack(stack, dead_time_ns=sim_config.sim.apd.dead_time_ns)
    assert result.asymmetry.shape == (2, 8, 40)
    # Below the edge there is (almost) no dichroism; at it the curl shows.
    assert abs(np.nanmean(result.asymmetry[0][disc])) < abs(result.asymmetry[1][disc]).mean()


def test_a_stack_drifted_by_the_zone_plate_is_registered_to_a_fifth_of_a_pixel(
    session, at_fe_edge
):
    """Drift injected the way it happens: the focus follows the zone plate's lateral
    position, so moving ZP x by 130 nm between frames moves the image by 1.3 pixels."""
    from plans import sample_image
    from stxm_ctrl.analysis import register_frames

    d = at_fe_edge
    flat = _sample(session.config, "vortex_flat")
    cx, cy = flat.feature_centers_um()[4]
    zp_x = float(d.zone_plate.x.position)
    frames = []
    try:
        for shift_um in (0.0, 0.13, -0.08):
            session.RE(bps.mv(d.zone_plate.x, zp_x + shift_um))
            uid = session.run(
                sample_image(
                    d.apd,
                    RasterRegion(d.stage.x, cx + 1.0, 6.3, 64, d.stage.y, cy + 1.0, 6.3, 64),
                    0.001,
                    mode="fly",
                    flyer=d.fly,
                )
            )
            frames.append(session.image(uid).rate_Hz)
    finally:
        session.RE(bps.mv(d.zone_plate.x, zp_x))
    result = register_frames(np.array(frames), upsample=20)
    # The beam 130 nm to +x sees the sample 130 nm further right: the image moves to -x by
    # 1.3 pixels, and the shift that undoes it is +1.3.
    assert result.shifts_px[1] == pytest.approx([0.0, 1.3], abs=0.2)
    assert result.shifts_px[2] == pytest.approx([0.0, -0.8], abs=0.2)


def test_the_apd_ioc_killed_mid_stack_ends_the_run_and_keeps_the_frames_measured(
    session, sim_config, sim_fleet, at_fe_edge, reliability
):
    import threading
    import time

    d = at_fe_edge
    flat = _sample(sim_config, "vortex_flat")
    cx, cy = flat.feature_centers_um()[4]
    killed_at: list[float] = []
    frames_descriptor: set[str] = set()

    def kill_in_the_third_frame(name, doc):
        if name == "descriptor" and doc["name"] == "frames":
            frames_descriptor.add(doc["uid"])
        if name == "event" and doc["descriptor"] in frames_descriptor and doc["seq_num"] == 3:
            killed_at.append(time.monotonic())
            threading.Timer(0.05, sim_fleet.kill, args=("apd",)).start()

    documents: list[tuple[str, dict]] = []
    tokens = [
        session.RE.subscribe(kill_in_the_third_frame),
        session.RE.subscribe(lambda name, doc: documents.append((name, doc))),
    ]
    try:
        with pytest.raises(Exception) as info:
            session.run(
                image_stack(
                    d.apd,
                    d.energy,
                    d.polarization,
                    RasterRegion(d.stage.x, cx, 2.0, 10, d.stage.y, cy, 2.0, 6),
                    [700.0, 704.0, 706.8, 710.0],
                    0.01,
                    mode="step",
                )
            )
        ended_after_s = time.monotonic() - killed_at[0]
    finally:
        for token in tokens:
            session.RE.unsubscribe(token)
        sim_fleet.restart("apd")
    stop = documents[-1][1]
    assert documents[-1][0] == "stop" and stop["exit_status"] == "fail"
    stack = session.stack(documents[0][1]["uid"])
    # The first two energies are whole; the third has what was counted before the kill at
    # most; the last was never reached.
    assert not np.isnan(stack.counts[:2]).any()
    assert np.isnan(stack.counts[3]).all()
    assert list(stack.energies_eV) == [700.0, 704.0, 706.8, 710.0]
    reliability(
        fault="APD IOC killed (SIGKILL) in the third energy of an image stack",
        seen=str(info.value),
        ended_s=ended_after_s,
        kept="every frame and pixel measured before, read back as a stack (the rest NaN); "
        "run closed with exit_status fail and the reason",
    )
    wait_for(lambda: d.apd.connected, 30, "the APD did not reconnect")
    # The next run stages the counter again: the unstaging the dead IOC interrupted is
    # finished then, not refused as RedundantStaging.
    uid = session.run(
        point_spectrum(
            d.apd, d.energy, d.polarization, d.stage.x, cx, d.stage.y, cy, [706.8], 0.01
        )
    )
    assert session.stack(uid).counts[0, 0, 0] > 0
