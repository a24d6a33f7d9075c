"""The composite STXM: every device built from the beamline configuration, by a table.

:data:`DEVICES` lists the microscope's devices in build order, each a name and a factory
(``"module:function"``) that builds it from a :class:`DeviceContext` (the configuration and
the devices built before it, which it may wire in). :func:`build_devices` builds them all
into :class:`StxmDevices`, where each is an attribute under its name. Adding a device is its
module (the ophyd class and a ``build(context)`` factory) plus one entry.
"""

from __future__ import annotations

import importlib
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

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

__all__ = [
    "DEVICES",
    "DeviceContext",
    "DeviceEntry",
    "StxmDevices",
    "build_devices",
    "load_device_factory",
    "optics_geometry",
    "undulator_model",
]


@dataclass(frozen=True)
class DeviceEntry:
    """One device of the composite: its name and how it is built.

    Parameters
    ----------
    name
        The device's name: its attribute of :class:`StxmDevices`, its ophyd ``name``, the
        ``[epics.prefixes]`` key of its PV prefix (unless its factory reads another).
    factory
        ``"module:function"``; the function takes a :class:`DeviceContext` and returns the
        (unconnected) ophyd device.
    default_prefix
        PV prefix unless ``[epics.prefixes] <name>`` gives one (the beamline's own
        subsystems have theirs in the configuration's defaults).
    """

    name: str
    factory: str
    default_prefix: str = ""


@dataclass(frozen=True)
class DeviceContext:
    """What a device factory gets: the configuration and the devices built before it.

    Attributes
    ----------
    entry
        The device's entry.
    config
        The configuration.
    built
        The devices of the entries before this one, by name (for wiring them together).
    """

    entry: DeviceEntry
    config: BeamlineConfig
    built: Mapping[str, Device]

    @property
    def prefix(self) -> str:
        """``[epics.prefixes] <name>``, or the entry's default.

        Raises
        ------
        ValueError
            If neither gives one.
        """
        name = self.entry.name
        prefix = getattr(self.config.epics.prefixes, name, None) or self.entry.default_prefix
        if not prefix:
            raise ValueError(
                f'device {name!r} has no PV prefix: set [epics.prefixes] {name} = "..." in '
                "the configuration, or give its entry in devices.stxm.DEVICES a default_prefix"
            )
        return prefix

    @property
    def motion(self) -> dict[str, float]:
        """The move timeouts of ``[epics.timeouts]``, as stage devices take them."""
        timeouts = self.config.epics.timeouts
        return {"move_factor": timeouts.move_factor, "move_margin_s": timeouts.move_margin_s}


class StxmDevices:
    """The microscope's devices, by role: one attribute per entry of :data:`DEVICES`.

    The attributes below are typed; a device added to the table is an attribute too
    (``devices.heater``), typed as an ophyd ``Device`` until one is declared here.
    """

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

    def __init__(self, devices: Mapping[str, Device]) -> None:
        missing = sorted(set(typing.get_type_hints(StxmDevices)) - set(devices))
        if missing:
            raise ValueError(f"the device table has no entry for {missing}")
        object.__setattr__(self, "_devices", dict(devices))

    def __getattr__(self, name: str) -> Device:
        devices = self.__dict__.get("_devices", {})
        if name not in devices:
            raise AttributeError(f"no device {name!r}; the devices are: {', '.join(devices)}")
        return devices[name]

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"the devices are fixed once built; cannot set {name!r}")

    @property
    def interlock(self) -> OpticsInterlock:
        """The optics' interlocks (checked by the z axes and the energy before they move)."""
        interlock = self.energy.interlock
        assert interlock is not None
        return interlock

    def all(self) -> list[Device]:
        """Every device, in the order of the table."""
        return list(self.__dict__["_devices"].values())

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


# -- the beamline's own devices ----------------------------------------------------------
def build_sample_axis(context: DeviceContext) -> CoarseStage:
    """A coarse sample axis (``sample_x``, ``sample_y``) on the sample-stage prefix."""
    epics = context.config.epics
    record = getattr(epics.axes, context.entry.name)
    return CoarseStage(
        epics.prefixes.sample_stage + record, name=context.entry.name, **context.motion
    )


def build_apd(context: DeviceContext) -> ApdPointCounter:
    """The APD point counter."""
    timeouts = context.config.epics.timeouts
    return ApdPointCounter(
        context.prefix,
        name="apd",
        count_margin_s=timeouts.count_margin_s,
        put_timeout_s=timeouts.put_s,
    )


def build_ring(context: DeviceContext) -> StorageRing:
    """The storage ring and shutter."""
    return StorageRing(
        context.prefix, name="ring", put_timeout_s=context.config.epics.timeouts.put_s
    )


def build_zone_plate(context: DeviceContext) -> ZonePlate:
    """The zone plate's x/y/z stages, with the selected plate."""
    epics = context.config.epics
    axes = epics.axes
    zone_plate = ZonePlate(
        epics.prefixes.optics,
        axes={"x": axes.zp_x, "y": axes.zp_y, "z": axes.zp_z},
        name="zone_plate",
        **context.motion,
    )
    zone_plate.selected.put(context.config.optics.zone_plate)
    return zone_plate


def build_osa(context: DeviceContext) -> OSA:
    """The OSA's x/y/z stages, with the selected OSA."""
    epics = context.config.epics
    axes = epics.axes
    osa = OSA(
        epics.prefixes.optics,
        axes={"x": axes.osa_x, "y": axes.osa_y, "z": axes.osa_z},
        name="osa",
        **context.motion,
    )
    osa.selected.put(context.config.optics.osa)
    return osa


def build_a0(context: DeviceContext) -> A0:
    """A0, the OSA's distance from the sample, on the OSA z record."""
    epics, optics = context.config.epics, context.config.optics
    a0 = A0(osa_z_pv=epics.prefixes.optics + epics.axes.osa_z, z_sign=optics.z_sign, name="a0")
    timeouts = context.config.epics.timeouts
    a0.z.move_factor, a0.z.move_margin_s = timeouts.move_factor, timeouts.move_margin_s
    return a0


def build_detector(context: DeviceContext) -> DetectorStage:
    """The detector stage."""
    axes = context.config.epics.axes
    return DetectorStage(
        context.prefix,
        axes={"x": axes.detector_x, "y": axes.detector_y},
        name="detector",
        **context.motion,
    )


def build_energy(context: DeviceContext) -> Energy:
    """Monochromator energy, EPU gap and ZP z, with the optics' interlocks on ZP z, OSA z and
    the energy (wired to ``zone_plate``, ``osa`` and ``a0``, built before it)."""
    config = context.config
    epics, optics, timeouts = config.epics, config.optics, config.epics.timeouts
    geometry = optics_geometry(config)
    energy = Energy(
        epics.prefixes.beamline,
        zp_z_pv=epics.prefixes.optics + epics.axes.zp_z,
        optics=geometry.zone_plate,
        undulator=undulator_model(config),
        z_sign=optics.z_sign,
        energy_range_eV=(optics.energy_min_eV, optics.energy_max_eV),
        put_timeout_s=timeouts.put_s,
        name="energy",
    )
    energy.focus_follows_energy.put(optics.focus_follows_energy)
    for motor in (energy.epu_gap, energy.zp_z):
        motor.move_factor, motor.move_margin_s = timeouts.move_factor, timeouts.move_margin_s
    built = context.built
    zone_plate, osa, a0 = built["zone_plate"], built["osa"], built["a0"]
    assert isinstance(zone_plate, ZonePlate) and isinstance(osa, OSA) and isinstance(a0, A0)
    interlock = OpticsInterlock(
        geometry, zone_plate, osa, energy_eV=lambda: float(energy.mono.readback.get())
    )
    interlock.guard_zp_z(energy.zp_z)
    interlock.guard_osa_z(a0.z)
    energy.interlock = interlock
    return energy


def build_polarization(context: DeviceContext) -> Polarization:
    """The EPU polarisation, wired to ``energy`` (the gap follows both)."""
    energy = context.built["energy"]
    assert isinstance(energy, Energy)
    polarization = Polarization(
        context.config.epics.prefixes.beamline,
        name="polarization",
        put_timeout_s=context.config.epics.timeouts.put_s,
    )
    polarization.energy = energy
    energy.polarization_now = lambda: polarization.target  # the one being changed to
    return polarization


def build_fly(context: DeviceContext) -> LineFlyer:
    """The line fly-scan controller and its piezo axes."""
    axes = context.config.epics.axes
    return LineFlyer(
        context.prefix,
        axes={"x": axes.fine_x, "y": axes.fine_y},
        name="fly",
        put_timeout_s=context.config.epics.timeouts.put_s,
        **context.motion,
    )


def build_stage(context: DeviceContext) -> SampleStage:
    """The sample position: coarse stage plus piezo, read by the interferometer."""
    prefixes, axes = context.config.epics.prefixes, context.config.epics.axes
    return SampleStage(
        prefixes.fly,
        coarse_pvs={
            "x": prefixes.sample_stage + axes.sample_x,
            "y": prefixes.sample_stage + axes.sample_y,
        },
        fine_pvs={"x": prefixes.fly + axes.fine_x, "y": prefixes.fly + axes.fine_y},
        name="stage",
        **context.motion,
    )


DEVICES: tuple[DeviceEntry, ...] = (
    DeviceEntry("sample_x", "devices.stxm:build_sample_axis"),
    DeviceEntry("sample_y", "devices.stxm:build_sample_axis"),
    DeviceEntry("apd", "devices.stxm:build_apd"),
    DeviceEntry("ring", "devices.stxm:build_ring"),
    DeviceEntry("zone_plate", "devices.stxm:build_zone_plate"),
    DeviceEntry("osa", "devices.stxm:build_osa"),
    DeviceEntry("a0", "devices.stxm:build_a0"),
    DeviceEntry("detector", "devices.stxm:build_detector"),
    DeviceEntry("energy", "devices.stxm:build_energy"),
    DeviceEntry("polarization", "devices.stxm:build_polarization"),
    DeviceEntry("fly", "devices.stxm:build_fly"),
    DeviceEntry("stage", "devices.stxm:build_stage"),
)
"""The microscope's devices, in build order (a factory may wire in those before it)."""


def load_device_factory(entry: DeviceEntry) -> Callable[[DeviceContext], Device]:
    """Import an entry's factory.

    Raises
    ------
    ValueError
        If it cannot be imported, naming the entry.
    """
    module_name, _, function = entry.factory.partition(":")
    try:
        return getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as exc:
        raise ValueError(
            f"device {entry.name!r}: factory {entry.factory!r} cannot be loaded ({exc}); it "
            "must name 'module:function'"
        ) from exc


def build_devices(config: BeamlineConfig, entries: Iterable[DeviceEntry] = DEVICES) -> StxmDevices:
    """Build (not connect) every device of the table from ``config``.

    Every device's EPICS signals take their write access back by themselves when an IOC
    that stopped answering answers again (:func:`devices.access_rights.follow_access_rights`).

    The Channel Access environment must already be set (see
    :func:`stxm_ctrl.epics_env.apply_ca_client_environment`).

    Parameters
    ----------
    config
        The configuration.
    entries
        The devices to build (default: :data:`DEVICES`).
    """
    built: dict[str, Device] = {}
    for entry in entries:
        if entry.name in built:
            raise ValueError(f"device names must be unique; {entry.name!r} is repeated")
        factory = load_device_factory(entry)
        built[entry.name] = factory(DeviceContext(entry, config, dict(built)))
    for device in built.values():  # write access back after an IOC stopped answering a while
        follow_access_rights(device)
    return StxmDevices(built)
