"""Energy and A0 moves fail, naming the axis, when a real axis fails (ophyd's fake devices).

ophyd's PseudoPositioner finishes its move once every real axis has called back, failed
or not; these moves used to "succeed" with an axis short of its target.
"""

from __future__ import annotations

import pytest
from ophyd.sim import make_fake_device

from devices.energy import A0, Energy
from devices.statuses import AxisFailedError, AxisTimeoutError
from devices.stxm import optics_geometry, undulator_model
from stxm_ctrl.config import load_config


@pytest.fixture
def energy():
    config = load_config()
    device = make_fake_device(Energy)(
        "BL:",
        zp_z_pv="OPT:ZPZ",
        optics=optics_geometry(config).zone_plate,
        undulator=undulator_model(config),
        z_sign=config.optics.z_sign,
        energy_range_eV=(250.0, 1000.0),
        name="energy",
    )
    for motor in (device.epu_gap, device.zp_z):
        motor.user_setpoint.sim_set_limits((-1e5, 1e5))
        motor.velocity.sim_put(1000.0)
        motor.acceleration.sim_put(0.01)
    device.mono.readback.sim_put(710.0)
    device.mono.setpoint.sim_put(710.0)
    real = device.forward(710.0)
    device.zp_z.user_readback.sim_put(real.zp_z)
    device.epu_gap.user_readback.sim_put(real.epu_gap)
    return device


def test_a_real_axis_that_times_out_fails_the_energy_move_naming_it(energy):
    energy.zp_z.move_margin_s = 0.3  # the fake ZP z never arrives: its move times out
    status = energy.set(712.0)
    with pytest.raises(AxisTimeoutError) as info:
        status.wait(10)
    message = str(info.value)
    assert message.startswith(
        "energy did not reach 712 eV: the zone plate's z (focus) (energy_zp_z, OPT:ZPZ): "
        "energy_zp_z did not reach"
    ), message
    assert "within 0.3 s" in message and "is its IOC running?" in message, message
    assert str(status) == message  # what bluesky puts in the run's stop reason
    # The other axes were told to stop.
    assert energy.epu_gap.motor_stop.get() == 1


def test_a_real_axis_that_fails_fails_the_energy_move_at_once(energy):
    status = energy.set(712.0)
    energy.epu_gap._done_moving(success=False)  # noqa: SLF001 - what ophyd runs on a failure
    with pytest.raises(
        AxisFailedError,
        match=r"energy did not reach 712 eV: the EPU gap "
        r"\(energy_epu_gap, BL:EPU:GAP\) failed",
    ):
        status.wait(2)
    assert energy.zp_z.motor_stop.get() == 1


def test_an_energy_move_whose_axes_all_arrive_succeeds(energy):
    status = energy.set(712.0)
    for motor in (energy.epu_gap, energy.zp_z):
        motor._done_moving(success=True)  # noqa: SLF001 - DMOV back to 1
    energy.mono._done_moving(success=True)  # noqa: SLF001 - the put completed
    status.wait(2)
    assert status.success


@pytest.mark.parametrize("given", ["abc", "7", True, None, float("nan"), [700, 710]])
def test_an_energy_that_is_not_a_number_is_refused_before_anything_moves(energy, given):
    with pytest.raises(ValueError) as info:
        energy.set(given)
    message = str(info.value)
    assert message.startswith(
        f"energy = {given!r} is not a position: give an energy in eV from 250 to 1000 eV"
    ), message
    assert "too many" not in message
    assert energy.mono.setpoint.get() == 710.0


def test_a0_refuses_a_string_too():
    a0 = make_fake_device(A0)(osa_z_pv="OPT:OSAZ", z_sign=-1, name="a0")
    with pytest.raises(ValueError, match=r"a0 = 'far' is not a position: give a number in um"):
        a0.set("far")
