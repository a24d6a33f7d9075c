"""Zone plate, order-sorting aperture (OSA) and detector stages, and their interlocks.

Each is an ophyd :class:`~ophyd.Device` of motor-record axes (:class:`BoundedMotor`) whose
record names come from the configuration (``[epics.axes]``). The z axes check every target
against the optics' interlocks (:class:`stxm_ctrl.physics.interlocks.OpticsGeometry`)
*before anything moves*: the zone plate may not come into the OSA, the OSA may not come into
the sample, pass the second order or clip the first. The simulated IOCs refuse the same
collisions and leaks from any client; the devices refuse them first, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, Signal
from ophyd import FormattedComponent as FCpt

from devices.stages import BoundedMotor
from stxm_ctrl.physics.interlocks import OpticsGeometry

__all__ = ["DetectorStage", "OSA", "OpticsInterlock", "ZonePlate"]


class _Stage(Device):
    """A device of bounded motor-record axes named by ``axes`` (attribute -> record name)."""

    def __init__(
        self,
        prefix: str,
        *,
        axes: dict[str, str],
        move_factor: float = 2.0,
        move_margin_s: float = 2.0,
        **kwargs: Any,
    ) -> None:
        self._axes = axes  # read by the FormattedComponents while the device builds
        super().__init__(prefix, **kwargs)
        for name in axes:
            motor = getattr(self, name)
            motor.move_factor, motor.move_margin_s = move_factor, move_margin_s

    def __repr__(self) -> str:
        return f"{type(self).__name__}(prefix={self.prefix!r}, name={self.name!r})"


class ZonePlate(_Stage):
    """The zone plate's x, y and z (focus) axes, um.

    Components
    ----------
    x, y
        Lateral position: the focus on the sample moves with it.
    z
        Along the beam; reads ``[optics] z_sign`` x (distance upstream of the sample).
    selected
        The installed zone plate in the beam (configuration).
    """

    x = FCpt(BoundedMotor, "{prefix}{_axes[x]}", kind="normal")
    y = FCpt(BoundedMotor, "{prefix}{_axes[y]}", kind="normal")
    z = FCpt(BoundedMotor, "{prefix}{_axes[z]}", kind="hinted")
    selected = Cpt(Signal, value="", kind="config")


class OSA(_Stage):
    """The order-sorting aperture's x, y and z axes, um (z sets A0, the OSA-sample distance).

    Components
    ----------
    selected
        The installed OSA in the beam (configuration).
    """

    x = FCpt(BoundedMotor, "{prefix}{_axes[x]}", kind="normal")
    y = FCpt(BoundedMotor, "{prefix}{_axes[y]}", kind="normal")
    z = FCpt(BoundedMotor, "{prefix}{_axes[z]}", kind="normal")
    selected = Cpt(Signal, value="", kind="config")


class DetectorStage(_Stage):
    """The APD's x and y stage, um: it decides whether the beam reaches the detector."""

    x = FCpt(BoundedMotor, "{prefix}{_axes[x]}", kind="hinted")
    y = FCpt(BoundedMotor, "{prefix}{_axes[y]}", kind="hinted")


class OpticsInterlock:
    """The interlocks of one microscope's zone plate, OSA and energy, checked before moves.

    Installs itself as the ``target_check`` of the zone plate's and the OSA's z axes; the
    energy device asks :meth:`check_energy`. Positions are taken from the motors' monitored
    readbacks and setpoints (the worse of the two while a motor moves).

    Parameters
    ----------
    geometry
        The selected zone plate and OSA, margins and sign.
    zone_plate, osa
        The devices.
    energy_eV
        Returns the photon energy in the beam now.
    """

    def __init__(
        self,
        geometry: OpticsGeometry,
        zone_plate: ZonePlate,
        osa: OSA,
        energy_eV: Callable[[], float],
    ) -> None:
        self.geometry = geometry
        self.zone_plate = zone_plate
        self.osa = osa
        self.energy_eV = energy_eV
        self.guard_zp_z(zone_plate.z)
        self.guard_osa_z(osa.z)

    def guard_zp_z(self, motor: BoundedMotor) -> None:
        """Check every target of ``motor`` (an axis on the ZP z record) before it moves."""
        motor.target_check = self.check_zp_z

    def guard_osa_z(self, motor: BoundedMotor) -> None:
        """Check every target of ``motor`` (an axis on the OSA z record) before it moves."""
        motor.target_check = self.check_osa_z

    def _distances(self, motor: BoundedMotor) -> tuple[float, float]:
        """(nearest, farthest) distance upstream of the sample the axis is at or heading to."""
        values = [self.geometry.distance(float(motor.user_readback.get()))]
        setpoint = motor.user_setpoint.get()
        if setpoint is not None:
            values.append(self.geometry.distance(float(setpoint)))
        return min(values), max(values)

    def a0_um(self) -> float:
        """A0 now (from the OSA z readback), um."""
        return self.geometry.distance(float(self.osa.z.user_readback.get()))

    def zp_distance_um(self) -> float:
        """Zone plate upstream of the sample now, um."""
        return self.geometry.distance(float(self.zone_plate.z.user_readback.get()))

    def check_zp_z(self, zp_z_um: float) -> None:
        """Refuse a ZP z target that would bring the zone plate into the OSA."""
        _, a0_far = self._distances(self.osa.z)
        self.geometry.check_zp_distance(self.geometry.distance(zp_z_um), a0_far)

    def check_osa_z(self, osa_z_um: float) -> None:
        """Refuse an OSA z target that collides, leaks the second order or clips the first."""
        zp_near, _ = self._distances(self.zone_plate.z)
        self.geometry.check_a0(
            self.geometry.distance(osa_z_um), zp_near, self.energy_eV(), clip_first_order=True
        )

    def check_energy(self, energy_eV: float, *, focus_offset_um: float | None) -> None:
        """Refuse an energy at which the OSA would clip or leak, or focus would collide."""
        _, a0_far = self._distances(self.osa.z)
        self.geometry.check_energy(
            energy_eV, a0_far, focus_offset_um=focus_offset_um, clip_first_order=True
        )
