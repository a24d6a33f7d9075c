"""The optics on the simulated beamline, through the session: focus follows energy, the
alignment scans find the simulator's hidden geometry, and the interlocks refuse before
anything moves.

Every test leaves the optics where it found them (the fleet is shared by the session).
"""

from __future__ import annotations

import numpy as np
import pytest
from bluesky import plan_stubs as bps
from conftest import expected_rate_at, truth_model, wait_for

from plans import (
    PlanArgumentError,
    RasterRegion,
    detector_image,
    osa_focus,
    osa_image,
    sample_focus,
    sample_image,
)
from plans.alignment_analysis import edge_width_um
from stxm_ctrl.physics.interlocks import InterlockError
from stxm_ctrl.physics.zone_plate import ZonePlate

pytestmark = pytest.mark.ioc

# A line across the left edge of the pattern's big square (x = 2.5 um), at y = -8 um where
# nothing else is near: one sharp membrane-to-feature edge.
EDGE_LINE = (2.5, 1.2, 61)
EDGE_Y_UM = -8.0


def _zone_plate(config) -> ZonePlate:
    spec = config.optics.selected_zone_plate
    return ZonePlate(spec.diameter_um, spec.outer_zone_width_nm, spec.central_stop_um)


def _true_focus_zp_z(config, energy_eV: float) -> float:
    """ZP z that focuses on the simulated sample (the simulator's hidden truth)."""
    distance = _zone_plate(config).focal_length_um(energy_eV)
    return config.optics.z_sign * (distance + config.sim.optics.sample_z_offset_um)


@pytest.fixture
def optics_restored(session):
    """Put energy, polarisation and every optics axis back where they were."""
    d = session.devices
    energy = d.energy
    # An energy move completes once within [sim.beamline] mono_tolerance_eV (5 meV) and the
    # readback settles after it: a test that starts right after one (the spectromicroscopy
    # fixture's restore) and takes the focus "here" would be 23 nm off the true focus.
    mono = energy.mono
    wait_for(
        lambda: abs(float(mono.readback.get()) - float(mono.setpoint.get())) < 5e-4,
        10,
        "the monochromator to settle on its setpoint",
    )
    saved_motors = [
        (m, float(m.user_readback.get()))
        for m in (
            d.zone_plate.x,
            d.zone_plate.y,
            d.osa.x,
            d.osa.y,
            d.detector.x,
            d.detector.y,
            d.sample_x,
            d.sample_y,
        )
    ]
    saved_z = [
        (d.zone_plate.z, float(d.zone_plate.z.user_readback.get())),
        (d.osa.z, float(d.osa.z.user_readback.get())),
    ]
    saved_energy = float(energy.mono.readback.get())
    saved_offset = energy.focus_offset_um.get()
    saved_follow = energy.focus_follows_energy.get()
    yield d
    energy.focus_follows_energy.put(False)
    if abs(float(energy.mono.readback.get()) - saved_energy) > 0.01:
        energy.move(saved_energy, wait=True)
    for motor, position in saved_motors:
        motor.move(position, wait=True)
    try:
        for motor, position in saved_z:
            motor.move(position, wait=True)
    except InterlockError:
        for motor, position in reversed(saved_z):
            motor.move(position, wait=True)
    energy.focus_offset_um.put(saved_offset)
    energy.focus_follows_energy.put(saved_follow)


def _edge_sigma_um(session, line=EDGE_LINE, dwell_s: float = 0.001) -> float:
    """Edge sigma of a small sample_image across the edge, averaged over its 3 rows."""
    d = session.devices
    center, span, points = line
    uid = session.run(
        sample_image(
            d.apd,
            RasterRegion(d.sample_x, center, span, points, d.sample_y, EDGE_Y_UM, 0.04, 3),
            dwell_s,
        )
    )
    image = session.image(uid)
    sigmas = [edge_width_um(image.x_um, row)[0] for row in image.counts]
    return float(np.mean(sigmas))


def _optics_readings(d) -> dict[str, float]:
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
    return {name: float(m.user_readback.get()) for name, m in axes.items()}


def _measure_line(session, line) -> tuple[np.ndarray, np.ndarray, float]:
    """Readback x, counts (mean of 3 rows) and dwell of a sample_image along the line."""
    d = session.devices
    center, span, points = line
    uid = session.run(
        sample_image(
            d.apd,
            RasterRegion(d.sample_x, center, span, points, d.sample_y, EDGE_Y_UM, 0.04, 3),
            0.001,
        )
    )
    image = session.image(uid)
    return image.x_readback_um.mean(axis=0), image.counts.mean(axis=0), image.dwell_s


def _truth(session, x: np.ndarray, dwell_s: float, *, zp_z_um: float | None = None):
    """The simulator's mean counts along ``x`` for the optics now (or ZP z at ``zp_z_um``)."""
    d = session.devices
    readings = _optics_readings(d)
    if zp_z_um is not None:
        readings["zp_z"] = zp_z_um
    energy_eV = float(d.energy.mono.readback.get())
    rate = expected_rate_at(
        session.config,
        x,
        np.full_like(x, EDGE_Y_UM),
        float(d.ring.current.get()),
        optics=truth_model(session.config).optics_positions(energy_eV, readings),
        gap_mm=float(d.energy.epu_gap.user_readback.get()),
        polarization=d.polarization.position,
    )
    return rate * dwell_s


def _chi2_per_point(measured: np.ndarray, expected: np.ndarray, rows: int = 3) -> float:
    """Poisson chi-square per point of a mean over ``rows`` rows (about 1 if they agree)."""
    return float(np.mean(rows * (measured - expected) ** 2 / expected))


def test_focus_follows_energy_across_the_fe_edge(session, optics_restored):
    """Three energies across Fe L3: sharp with ZP z following, blurred without.

    Tolerance: in focus the fitted edge sigma is the spot's (13 nm for 240/25 at 707 eV)
    broadened by the 20 nm pixels and the counting noise; measured over three rows it
    stays within 35 % of the in-focus value. Without the coupling, 700 and 706.8 eV are 73
    and 40 um out of focus, where the spot is 60 to 100 times wider: along a 12 um line the
    counts agree with the simulator's truth for the optics where they are (Poisson
    chi-square per point below 2) and not with the truth of a focused beam (above 20), and
    the steepest slope of the edge falls more than fivefold.
    """
    d = optics_restored
    config = session.config
    energy = d.energy
    energy.focus_here()
    in_focus = _edge_sigma_um(session)
    assert in_focus < 2.5 * _zone_plate(config).focused_sigma_um

    for energy_eV in (700.0, 706.8, 715.0):
        session.RE(bps.mv(energy, energy_eV))
        zp_z = float(d.zone_plate.z.user_readback.get())
        assert zp_z == pytest.approx(_true_focus_zp_z(config, energy_eV), abs=0.01)
        assert _edge_sigma_um(session) == pytest.approx(in_focus, rel=0.35)

    energy.focus_follows_energy.put(False)
    zp_z_fixed = float(d.zone_plate.z.user_readback.get())  # in focus at 715 eV
    long_line = (2.5, 12.0, 121)  # the square's edge, with 5 um of membrane before it
    for energy_eV in (700.0, 706.8):
        session.RE(bps.mv(energy, energy_eV))
        assert float(d.zone_plate.z.user_readback.get()) == pytest.approx(zp_z_fixed, abs=1e-3)
        x, measured, dwell_s = _measure_line(session, long_line)
        assert _chi2_per_point(measured, _truth(session, x, dwell_s)) < 2.0
        focused = _truth(session, x, dwell_s, zp_z_um=_true_focus_zp_z(config, energy_eV))
        assert _chi2_per_point(measured, focused) > 20.0
        assert _chi2_per_point(measured, focused) > 20.0
        assert np.abs(np.diff(measured)).max() < np.abs(np.diff(focused)).max() / 5


def test_an_energy_move_ends_on_the_energy_asked_for(session, optics_restored):
    # The RunEngine stops every positioner a plan moved when the plan ends; a monochromator
    # stopped in its settle tail used to stay 5 meV off (23 nm of focus at 707 eV).
    d = optics_restored
    mono = d.energy.mono
    for target in (round(float(mono.readback.get()) + 9.0, 3), 706.8):
        session.RE(bps.mv(d.energy, target))
        assert float(mono.setpoint.get()) == pytest.approx(target, abs=1e-9)
        wait_for(
            lambda t=target: abs(float(mono.readback.get()) - t) < 5e-4,
            5,
            f"the energy to settle on {target} eV",
        )
        assert float(d.zone_plate.z.user_setpoint.get()) == pytest.approx(
            d.energy.zp_z_for(target), abs=1e-3
        )


def test_runs_record_energy_and_optics(session, optics_restored):
    d = optics_restored
    documents = []
    token = session.RE.subscribe(lambda name, doc: documents.append((name, doc)))
    try:
        session.run(
            sample_image(
                d.apd, RasterRegion(d.sample_x, 0.0, 1.0, 3, d.sample_y, 0.0, 1.0, 2), 0.001
            )
        )
    finally:
        session.RE.unsubscribe(token)
    start = documents[0][1]
    config = session.config
    assert start["energy_eV"] == pytest.approx(float(d.energy.mono.readback.get()), abs=1e-3)
    assert start["polarization"] == "Circular left"
    assert start["zone_plate"]["name"] == config.optics.zone_plate
    assert start["zone_plate"]["outer_zone_width_nm"] == 25.0
    assert start["osa"] == {"name": "osa50", "diameter_um": 50.0}
    assert start["a0_um"] == pytest.approx(config.optics.a0_um, abs=0.01)
    assert start["focus_follows_energy"] is True
    baseline = [
        doc for name, doc in documents if name == "descriptor" and doc["name"] == "baseline"
    ]
    assert baseline and "energy_eV" in baseline[0]["data_keys"]
    assert "zone_plate_z" in baseline[0]["data_keys"]


def test_sample_focus_finds_the_true_focus(session, optics_restored):
    d = optics_restored
    config = session.config
    energy_eV = float(d.energy.mono.readback.get())
    truth = _true_focus_zp_z(config, energy_eV)
    # The scientist centres the scan on the nominal focus (stxm optics: z_sign f); the
    # sample really sits [sim.optics] sample_z_offset_um further.
    nominal = config.optics.z_sign * _zone_plate(config).focal_length_um(energy_eV)
    d.zone_plate.z.move(nominal + 8.0, wait=True)  # start out of focus
    center, span, points = EDGE_LINE
    d.sample_y.move(EDGE_Y_UM, wait=True)
    result = session.execute(
        sample_focus(
            d.apd,
            d.zone_plate.z,
            nominal,
            10.0,
            11,
            d.sample_x,
            center,
            span,
            points,
            0.001,
            move_to_focus=True,
            energy=d.energy,
        )
    )
    dof = _zone_plate(config).depth_of_focus_um(energy_eV)
    found = result.found[d.zone_plate.z.name]
    assert abs(found - truth) < dof, (found, truth, dof)
    assert result.moved
    assert float(d.zone_plate.z.user_readback.get()) == pytest.approx(found, abs=1e-3)
    # The energy's focus offset now keeps this focus: the offset is the hidden sample z.
    assert float(d.energy.focus_offset_um.get()) == pytest.approx(
        config.sim.optics.sample_z_offset_um, abs=dof
    )
    run = session.catalog[result.uid]
    assert run.metadata["start"]["stxm_scan_type"] == "sample focus"


def test_osa_image_finds_the_hole(session, optics_restored):
    d = optics_restored
    config = session.config
    d.sample_x.move(config.sim.sample.chip_size_um / 2 + 200.0, wait=True)  # open beam
    result = session.execute(
        osa_image(
            d.apd,
            RasterRegion(d.osa.x, 0.0, 120.0, 41, d.osa.y, 0.0, 120.0, 41),
            0.001,
            move_to_center=True,
        )
    )
    pixel = 3.0
    truth = config.sim.optics
    assert result.found["osa_x"] == pytest.approx(truth.osa_center_x_um, abs=pixel)
    assert result.found["osa_y"] == pytest.approx(truth.osa_center_y_um, abs=pixel)
    assert float(d.osa.x.user_readback.get()) == pytest.approx(result.found["osa_x"], abs=1e-3)
    image = session.image(result.uid)
    # The hole passing the first order, bright in the middle; in the corners the hole lets
    # only the zero order through (around the central stop's shadow), far fainter.
    assert image.counts[20, 20] > 5 * max(image.counts[0, 0], 1)


def test_detector_image_finds_the_beam_with_the_osa_out(session, optics_restored):
    d = optics_restored
    config = session.config
    osa_x = float(d.osa.x.user_readback.get())
    detector_start = [
        float(d.detector.x.user_readback.get()),
        float(d.detector.y.user_readback.get()),
    ]
    result = session.execute(
        detector_image(
            d.apd,
            RasterRegion(d.detector.x, 0.0, 2000.0, 21, d.detector.y, 0.0, 2000.0, 21),
            0.001,
            osa=d.osa,
        )
    )
    truth = config.sim.optics
    assert result.found["detector_x"] == pytest.approx(truth.detector_center_x_um, abs=100.0)
    assert result.found["detector_y"] == pytest.approx(truth.detector_center_y_um, abs=100.0)
    assert not result.moved
    # The OSA came back in, and the detector back onto the beam where it started.
    assert float(d.osa.x.user_readback.get()) == pytest.approx(osa_x, abs=1e-3)
    detector_now = [
        float(d.detector.x.user_readback.get()),
        float(d.detector.y.user_readback.get()),
    ]
    assert detector_now == pytest.approx(detector_start, abs=1e-3)
    start = session.catalog[result.uid].metadata["start"]
    assert start["stxm_scan_type"] == "detector image"


def test_osa_focus_finds_the_focus_in_the_osa_plane(session, optics_restored):
    """The X crosses where the focus lies in the OSA plane: ZP z = z_sign (f + A0).

    Tolerance 10 um: the X's arms move 0.025 um across per um of ZP z, so one 3.3 um OSA
    pixel spans 130 um of ZP z; the fit over 21 lines reaches a few percent of that.
    """
    d = optics_restored
    config = session.config
    energy_eV = float(d.energy.mono.readback.get())
    a0 = config.optics.z_sign * float(d.osa.z.user_readback.get())
    crossing = config.optics.z_sign * (_zone_plate(config).focal_length_um(energy_eV) + a0)
    d.sample_x.move(config.sim.sample.chip_size_um / 2 + 200.0, wait=True)  # open beam
    osa_x = float(d.osa.x.user_readback.get())
    result = session.execute(
        osa_focus(d.apd, d.zone_plate.z, crossing, 4000.0, 21, d.osa.x, osa_x, 200.0, 61, 0.001)
    )
    assert result.found["zone_plate_z"] == pytest.approx(crossing, abs=10.0)


def test_interlocks_refuse_before_anything_moves(session, optics_restored):
    d = optics_restored
    config = session.config
    zp_z = float(d.zone_plate.z.user_readback.get())
    osa_z = float(d.osa.z.user_readback.get())
    sign = config.optics.z_sign
    a0 = sign * osa_z
    # The zone plate into the OSA.
    with pytest.raises(InterlockError, match="from the OSA") as info:
        d.zone_plate.z.move(sign * (a0 + 50.0), wait=True)
    assert f"{sign * (a0 + config.optics.min_zp_osa_gap_um):.1f}" in str(info.value)
    # The OSA into the sample, and so far upstream that it clips the first order.
    with pytest.raises(InterlockError, match="within 100 um of the sample"):
        d.a0.move(50.0, wait=True)
    with pytest.raises(InterlockError, match="clip the first order"):
        d.a0.move(760.0, wait=True)
    # An energy at which the OSA, where it stands, would clip the first order.
    with pytest.raises(InterlockError, match="clip the first order"):
        session.RE(bps.mv(d.energy, 450.0))
    with pytest.raises(InterlockError, match="outside the beamline's range"):
        d.energy.move(1200.0, wait=True)
    with pytest.raises(ValueError, match="choose one of"):
        d.polarization.set("Elliptical")
    # A focus scan whose range would bring the zone plate into the OSA.
    with pytest.raises(PlanArgumentError, match="z_center_um/z_range_um"):
        session.run(
            sample_focus(
                d.apd, d.zone_plate.z, zp_z, 2 * abs(zp_z), 5, d.sample_x, 2.5, 1.0, 11, 0.001
            )
        )
    # Nothing moved.
    assert float(d.zone_plate.z.user_readback.get()) == pytest.approx(zp_z, abs=1e-4)
    assert float(d.osa.z.user_readback.get()) == pytest.approx(osa_z, abs=1e-4)


@pytest.mark.parametrize("polarization_first", [True, False])
def test_polarization_and_energy_moved_together_leave_the_gap_tuned_to_both(
    session, optics_restored, polarization_first
):
    """``mv(polarization, p, energy, e)`` in one step: the gap ends on the first harmonic of
    e in p, whichever is named first (it once stayed tuned to the old energy)."""
    d = optics_restored
    here_eV = float(d.energy.mono.readback.get())
    target_eV = here_eV + 5.0
    pairs = [(d.polarization, "Linear horizontal"), (d.energy, target_eV)]
    if not polarization_first:
        pairs.reverse()
    try:
        session.RE(bps.mv(*[item for pair in pairs for item in pair]))
        assert d.polarization.position == "Linear horizontal"
        assert float(d.energy.mono.readback.get()) == pytest.approx(target_eV, abs=0.01)
        tuned = d.energy.undulator.gap_mm(target_eV, "Linear horizontal")
        assert float(d.energy.epu_gap.user_readback.get()) == pytest.approx(tuned, abs=1e-3)
        assert abs(tuned - d.energy.undulator.gap_mm(here_eV, "Linear horizontal")) > 0.02
    finally:
        session.RE(bps.mv(d.polarization, "Circular left", d.energy, here_eV))
    tuned = d.energy.undulator.gap_mm(here_eV, "Circular left")
    assert float(d.energy.epu_gap.user_readback.get()) == pytest.approx(tuned, abs=1e-3)


def test_polarization_change_retunes_the_gap(session, optics_restored):
    d = optics_restored
    energy_eV = float(d.energy.mono.readback.get())
    gap_before = float(d.energy.epu_gap.user_readback.get())
    session.RE(bps.mv(d.polarization, "Linear horizontal"))
    assert d.polarization.position == "Linear horizontal"
    expected = d.energy.undulator.gap_mm(energy_eV, "Linear horizontal")
    assert float(d.energy.epu_gap.user_readback.get()) == pytest.approx(expected, abs=1e-3)
    assert abs(expected - gap_before) > 0.5
    session.RE(bps.mv(d.polarization, "Circular left"))
