"""The composite STXM: every device built from the beamline configuration."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ophyd import Device

from devices.access_rights import follow_access_rights
from devices.apd import ApdPointCounter
from devices.energy import A0, Energy, Polarization
from devices.fly import LineFlyer
from devices.optics import OSA, DetectorStage, OpticsInterlock, ZonePlate
from devices.ring import StorageRing
from devices.sample_stage import SampleStage
from devices.stages import CoarseStage
from stxm_ctrl.config import BeamlineConfig
from stxm_ctrl.physics.interlocks import OpticsGeometry
from stxm_ctrl.physics.undulator import Undulator
from stxm_ctrl.physics.zone_plate import ZonePlate as ZonePlateOptics

__all__ = ["StxmDevices", "build_devices", "optics_geometry", "undulator_model"]


@dataclass(frozen=True)
class StxmDevices:
    """The microscope's devices, by role."""

    sample_x: CoarseStage
    sample_y: CoarseStage
    apd: ApdPointCounter
    ring: StorageRing
    zone_plate: ZonePlate
    osa: OSA
    a0: A0
    detector: DetectorStage
    energy: Energy
    polarization: Polarization
    fly: LineFlyer
    stage: SampleStage

    @property
    def interlock(self) -> OpticsInterlock:
        """The optics' interlocks (checked by the z axes and the energy before they move)."""
        interlock = self.energy.interlock
        assert interlock is not None
        return interlock

    def all(self) -> list[Device]:
        """Every device, in the order the fields are declared."""
        return [getattr(self, f.name) for f in fields(self)]

    def by_name(self) -> dict[str, Device]:
        """Every device under its name (``sample_x``, ``apd``, ...)."""
        return {device.name: device for device in self.all()}

    def wait_for_connection(self, timeout_s: float) -> None:
        """Connect every device, or raise naming the PVs that did not answer.

        Raises
        ------
        TimeoutError
            With the names of the unconnected devices and a hint on what to check.
        """
        missing = []
        for device in self.all():
            try:
                device.wait_for_connection(timeout=timeout_s)
            except TimeoutError as exc:
                missing.append(f"{device.name} ({device.prefix}): {exc}")
        if missing:
            raise TimeoutError(
                "could not connect to: " + "; ".join(missing) + ". Are the IOCs running "
                "(`stxm sim` for the simulated beamline) and is [epics] ca_addr_list right?"
            )


def optics_geometry(config: BeamlineConfig) -> OpticsGeometry:
    """The selected zone plate and OSA with the configured interlock margins."""
    optics = config.optics
    spec = optics.selected_zone_plate
    return OpticsGeometry(
        zone_plate=ZonePlateOptics(
            spec.diameter_um, spec.outer_zone_width_nm, spec.central_stop_um
        ),
        osa_diameter_um=optics.selected_osa.diameter_um,
        min_zp_osa_gap_um=optics.min_zp_osa_gap_um,
        min_a0_um=optics.min_a0_um,
        z_sign=optics.z_sign,
    )


def undulator_model(config: BeamlineConfig) -> Undulator:
    """The EPU model from ``[sim.beamline]`` (its figures describe the beamline's EPU)."""
    epu = config.sim.beamline
    return Undulator(
        electron_energy_GeV=epu.electron_energy_GeV,
        period_mm=epu.epu_period_mm,
        peak_field_T=epu.epu_peak_field_T,
        periods=epu.epu_periods,
        min_gap_mm=epu.epu_min_gap_mm,
        max_gap_mm=epu.epu_max_gap_mm,
    )


def build_devices(config: BeamlineConfig) -> StxmDevices:
    """Build (not connect) every device from ``config``.

    Every device's EPICS signals take their write access back by themselves when an IOC
    that stopped answering answers again (:func:`devices.access_rights.follow_access_rights`).

    The Channel Access environment must already be set (see
    :func:`stxm_ctrl.epics_env.apply_ca_client_environment`).
    """
    prefixes = config.epics.prefixes
    axes = config.epics.axes
    timeouts = config.epics.timeouts
    optics = config.optics
    motion = {"move_factor": timeouts.move_factor, "move_margin_s": timeouts.move_margin_s}
    geometry = optics_geometry(config)
    zone_plate = ZonePlate(
        prefixes.optics,
        axes={"x": axes.zp_x, "y": axes.zp_y, "z": axes.zp_z},
        name="zone_plate",
        **motion,
    )
    osa = OSA(
        prefixes.optics,
        axes={"x": axes.osa_x, "y": axes.osa_y, "z": axes.osa_z},
        name="osa",
        **motion,
    )
    zone_plate.selected.put(optics.zone_plate)
    osa.selected.put(optics.osa)
    energy = Energy(
        prefixes.beamline,
        zp_z_pv=prefixes.optics + axes.zp_z,
        optics=geometry.zone_plate,
        undulator=undulator_model(config),
        z_sign=optics.z_sign,
        energy_range_eV=(optics.energy_min_eV, optics.energy_max_eV),
        put_timeout_s=timeouts.put_s,
        name="energy",
    )
    energy.focus_follows_energy.put(optics.focus_follows_energy)
    a0 = A0(osa_z_pv=prefixes.optics + axes.osa_z, z_sign=optics.z_sign, name="a0")
    polarization = Polarization(
        prefixes.beamline, name="polarization", put_timeout_s=timeouts.put_s
    )
    polarization.energy = energy
    energy.polarization_now = lambda: polarization.target  # the one being changed to
    for motor in (energy.epu_gap, energy.zp_z, a0.z):
        motor.move_factor, motor.move_margin_s = timeouts.move_factor, timeouts.move_margin_s
    interlock = OpticsInterlock(
        geometry, zone_plate, osa, energy_eV=lambda: float(energy.mono.readback.get())
    )
    interlock.guard_zp_z(energy.zp_z)
    interlock.guard_osa_z(a0.z)
    energy.interlock = interlock
    devices = StxmDevices(
        sample_x=CoarseStage(prefixes.sample_stage + axes.sample_x, name="sample_x", **motion),
        sample_y=CoarseStage(prefixes.sample_stage + axes.sample_y, name="sample_y", **motion),
        apd=ApdPointCounter(
            prefixes.apd,
            name="apd",
            count_margin_s=timeouts.count_margin_s,
            put_timeout_s=timeouts.put_s,
        ),
        ring=StorageRing(prefixes.ring, name="ring", put_timeout_s=timeouts.put_s),
        zone_plate=zone_plate,
        osa=osa,
        a0=a0,
        detector=DetectorStage(
            prefixes.detector,
            axes={"x": axes.detector_x, "y": axes.detector_y},
            name="detector",
            **motion,
        ),
        energy=energy,
        polarization=polarization,
        fly=LineFlyer(
            prefixes.fly,
            axes={"x": axes.fine_x, "y": axes.fine_y},
            name="fly",
            put_timeout_s=timeouts.put_s,
            **motion,
        ),
        stage=SampleStage(
            prefixes.fly,
            coarse_pvs={
                "x": prefixes.sample_stage + axes.sample_x,
                "y": prefixes.sample_stage + axes.sample_y,
            },
            fine_pvs={"x": prefixes.fly + axes.fine_x, "y": prefixes.fly + axes.fine_y},
            name="stage",
            **motion,
        ),
    )
    for device in devices.all():  # write access back after an IOC stopped answering a while
        follow_access_rights(device)
    return devices
