"""The optics' interlocks: which zone-plate, OSA and energy targets are allowed.

One set of rules, used in two places: the devices check a target before they move anything
(and say what is allowed), and the simulated optics and beamline IOCs refuse the same targets
from any client, as a real motion controller's limits would. The rules:

- **Zone plate into the OSA.** The zone plate must stay at least ``min_zp_osa_gap_um``
  upstream of the OSA.
- **OSA into the sample.** A0 (OSA to sample) must stay at least ``min_a0_um``.
- **Second order past the OSA** (a leak). A0 must stay below (f/2)(1 - d_OSA/d_CS) at the
  energy in the beam, or light of the second order reaches the sample.
- **Zero order past the OSA** (a leak). An OSA as wide as the central stop can never block
  the zero order: d_OSA < d_CS.
- **First order clipped** (devices only, ``clip_first_order=True``). A0 at most
  d_OSA f / D, so the whole first order passes. The IOCs allow it: a clipped beam is only
  dimmer, and a scientist may want to see it.

Positions here are distances upstream of the sample; messages also give the motor reading
(``z_sign`` times the distance, ``[optics] z_sign``).
"""

from __future__ import annotations

from dataclasses import dataclass

from stxm_ctrl.physics.zone_plate import ZonePlate

__all__ = ["InterlockError", "OpticsGeometry"]


class InterlockError(ValueError):
    """A target the optics' interlocks refuse; the message names the numbers and the range."""


@dataclass(frozen=True)
class OpticsGeometry:
    """The selected zone plate and OSA with the interlock margins.

    Parameters
    ----------
    zone_plate
        The zone plate in the beam.
    osa_diameter_um
        The OSA's hole.
    min_zp_osa_gap_um
        Closest the zone plate may come to the OSA.
    min_a0_um
        Closest the OSA may come to the sample.
    z_sign
        A z motor reads ``z_sign`` x (distance upstream of the sample): -1 or +1.
    """

    zone_plate: ZonePlate
    osa_diameter_um: float
    min_zp_osa_gap_um: float = 200.0
    min_a0_um: float = 100.0
    z_sign: int = -1

    def motor_z(self, distance_um: float) -> float:
        """Motor reading of a distance upstream of the sample."""
        return self.z_sign * distance_um

    def distance(self, motor_z_um: float) -> float:
        """Distance upstream of the sample of a motor reading."""
        return self.z_sign * motor_z_um

    # -- ranges -----------------------------------------------------------------------
    def zp_distance_min_um(self, a0_um: float) -> float:
        """Closest the zone plate may come to the sample with the OSA at ``a0_um``."""
        return a0_um + self.min_zp_osa_gap_um

    def a0_max_um(self, energy_eV: float, *, clip_first_order: bool) -> float:
        """Largest A0 at ``energy_eV``: second order blocked (and, if asked, first order whole)."""
        zp, osa = self.zone_plate, self.osa_diameter_um
        if clip_first_order:
            return zp.a0_max_um(energy_eV, osa)
        return zp.a0_max_second_order_um(energy_eV, osa)

    def a0_range_um(
        self, zp_distance_um: float, energy_eV: float, *, clip_first_order: bool
    ) -> tuple[float, float]:
        """Allowed A0 with the zone plate at ``zp_distance_um`` and ``energy_eV`` in the beam."""
        high = min(
            zp_distance_um - self.min_zp_osa_gap_um,
            self.a0_max_um(energy_eV, clip_first_order=clip_first_order),
        )
        return self.min_a0_um, high

    # -- checks -----------------------------------------------------------------------
    def check_osa_blocks_zero_order(self) -> None:
        """Refuse an OSA that cannot block the zero order (as wide as the central stop)."""
        stop = self.zone_plate.central_stop_um
        if self.osa_diameter_um >= stop:
            raise InterlockError(
                f"an OSA of {self.osa_diameter_um:g} um passes the zero order around a "
                f"central stop of {stop:g} um; select an OSA smaller than {stop:g} um"
            )

    def check_zp_distance(self, zp_distance_um: float, a0_um: float) -> None:
        """Refuse a zone-plate position that would bring the plate into the OSA."""
        low = self.zp_distance_min_um(a0_um)
        if zp_distance_um < low:
            raise InterlockError(
                f"ZP z = {self.motor_z(zp_distance_um):.1f} um would put the zone plate "
                f"{zp_distance_um - a0_um:.1f} um from the OSA (A0 = {a0_um:.1f} um; at "
                f"least {self.min_zp_osa_gap_um:g} um needed): allowed ZP z "
                f"{self._beyond(low)}; move the OSA closer to the sample first, or focus "
                "less far"
            )

    def check_a0(
        self,
        a0_um: float,
        zp_distance_um: float,
        energy_eV: float,
        *,
        clip_first_order: bool,
    ) -> None:
        """Refuse an A0 that would collide with the sample or the zone plate, or leak."""
        low, high = self.a0_range_um(zp_distance_um, energy_eV, clip_first_order=clip_first_order)
        if low <= a0_um <= high:
            return
        zp, osa = self.zone_plate, self.osa_diameter_um
        if a0_um < low:
            why = f"the OSA would come within {self.min_a0_um:g} um of the sample"
        elif a0_um > zp_distance_um - self.min_zp_osa_gap_um:
            why = (
                f"the OSA would come within {self.min_zp_osa_gap_um:g} um of the zone plate "
                f"(ZP z = {self.motor_z(zp_distance_um):.1f} um)"
            )
        elif a0_um > zp.a0_max_second_order_um(energy_eV, osa):
            why = (
                f"the second order would pass the {osa:g} um OSA at {energy_eV:.2f} eV "
                f"(A0 must stay below (f/2)(1 - d_OSA/d_CS) = "
                f"{zp.a0_max_second_order_um(energy_eV, osa):.1f} um)"
            )
        else:
            why = (
                f"the {osa:g} um OSA would clip the first order at {energy_eV:.2f} eV "
                f"(A0 <= d_OSA f / D = {zp.a0_max_first_order_um(energy_eV, osa):.1f} um)"
            )
        raise InterlockError(
            f"A0 = {a0_um:.1f} um (OSA z = {self.motor_z(a0_um):.1f} um): {why}; allowed A0 "
            f"{low:.1f} to {high:.1f} um"
            + ("" if low <= high else " (empty: move the zone plate or change energy first)")
        )

    def check_energy(
        self,
        energy_eV: float,
        a0_um: float,
        *,
        focus_offset_um: float | None = None,
        clip_first_order: bool,
    ) -> None:
        """Refuse an energy at which the OSA at ``a0_um`` leaks (or clips), or focus collides.

        Parameters
        ----------
        energy_eV
            The energy asked for.
        a0_um
            Where the OSA stays.
        focus_offset_um
            If the zone plate follows energy: its distance is f(E) + this; checked against
            the OSA. None when the zone plate stays where it is.
        clip_first_order
            Also refuse an A0 that clips the first order at this energy.
        """
        high = self.a0_max_um(energy_eV, clip_first_order=clip_first_order)
        if a0_um > high:
            what = "clip the first order" if clip_first_order else "pass the second order"
            raise InterlockError(
                f"energy {energy_eV:.2f} eV: the {self.osa_diameter_um:g} um OSA at A0 = "
                f"{a0_um:.1f} um would {what} (at this energy A0 must be <= {high:.1f} um); "
                f"bring the OSA closer to the sample (smaller A0) first, or choose an energy "
                f">= {self.energy_min_for_a0_eV(a0_um, clip_first_order=clip_first_order):.1f} eV"
            )
        if focus_offset_um is not None:
            zp_distance = self.zone_plate.focal_length_um(energy_eV) + focus_offset_um
            low = self.zp_distance_min_um(a0_um)
            if zp_distance < low:
                raise InterlockError(
                    f"energy {energy_eV:.2f} eV: focusing needs ZP z = "
                    f"{self.motor_z(zp_distance):.1f} um, within "
                    f"{zp_distance - a0_um:.1f} um of the OSA (A0 = {a0_um:.1f} um; at least "
                    f"{self.min_zp_osa_gap_um:g} um needed); bring the OSA closer to the "
                    "sample first"
                )

    def energy_min_for_a0_eV(self, a0_um: float, *, clip_first_order: bool) -> float:
        """Lowest energy at which an OSA at ``a0_um`` neither leaks (nor clips), eV.

        Both A0 limits grow linearly with energy (f = A1 E).
        """
        per_eV = self.a0_max_um(1.0, clip_first_order=clip_first_order)
        return a0_um / per_eV if per_eV > 0 else float("inf")

    def _beyond(self, distance_um: float) -> str:
        """'<= z' or '>= z' for a lower bound on distance, in motor coordinates."""
        return f"{'<=' if self.z_sign < 0 else '>='} {self.motor_z(distance_um):.1f} um"
