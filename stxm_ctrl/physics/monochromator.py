"""The monochromator's energy move: dead time, a slew, and a first-order settle.

A move from ``start_eV`` to ``target_eV`` requested at ``t0_s``:

- for ``overhead_s`` nothing moves (the controller's dead time);
- the grating angle is then commanded along a ramp at ``speed_eV_per_s``, reaching the
  target after ``|target - start| / speed``;
- the energy in the beam follows the command as a first-order lag of time constant
  ``settle_s`` (the mechanics and the angle encoder's servo): during the ramp it trails the
  command by up to ``speed x settle_s``, and after the ramp it approaches the target
  exponentially, ``target - L exp(-(t - t_ramp_end) / settle_s)``.

The move is *done* once the energy is within a tolerance of the target for good
(:meth:`EnergyMove.done_s`): ``overhead + |dE| / speed`` at the soonest, plus
``settle_s ln(L / tolerance)`` when the lag L left at the end of the ramp exceeds the
tolerance. With ``settle_s`` = 0 the energy follows the ramp exactly.

Every function is pure; a simulated beamline IOC publishes the move, and any other IOC
evaluates the energy at the instants it needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ENERGY_MOVE_FIELDS", "EnergyMove"]

ENERGY_MOVE_FIELDS = ("start_eV", "target_eV", "t0_s", "speed_eV_per_s", "overhead_s", "settle_s")
"""The numbers that define an :class:`EnergyMove`, in the order the simulator stores them."""


@dataclass(frozen=True)
class EnergyMove:
    """One monochromator move (see the module docstring).

    Parameters
    ----------
    start_eV, target_eV
        Energy when the move was requested, and where it goes.
    t0_s
        When it was requested (any clock, s).
    speed_eV_per_s
        Slew rate of the commanded energy (> 0).
    overhead_s
        Dead time before the slew starts.
    settle_s
        Time constant of the lag of the energy behind the command (0: none).
    """

    start_eV: float
    target_eV: float
    t0_s: float
    speed_eV_per_s: float
    overhead_s: float
    settle_s: float

    @classmethod
    def at_rest(cls, energy_eV: float) -> EnergyMove:
        """A monochromator standing at ``energy_eV`` (a move that has long ended)."""
        return cls(energy_eV, energy_eV, 0.0, 1.0, 0.0, 0.0)

    @property
    def ramp_start_s(self) -> float:
        """When the commanded energy starts to move."""
        return self.t0_s + self.overhead_s

    @property
    def ramp_s(self) -> float:
        """Duration of the commanded ramp."""
        return abs(self.target_eV - self.start_eV) / self.speed_eV_per_s

    @property
    def ramp_end_s(self) -> float:
        """When the commanded energy reaches the target."""
        return self.ramp_start_s + self.ramp_s

    @property
    def lag_at_ramp_end_eV(self) -> float:
        """How far the energy trails the target when the ramp ends (signed, eV)."""
        if self.settle_s <= 0 or self.target_eV == self.start_eV:
            return 0.0
        rate = math.copysign(self.speed_eV_per_s, self.target_eV - self.start_eV)
        return rate * self.settle_s * -math.expm1(-self.ramp_s / self.settle_s)

    def done_s(self, tolerance_eV: float) -> float:
        """When the energy is within ``tolerance_eV`` of the target from then on."""
        lag = abs(self.lag_at_ramp_end_eV)
        if lag <= tolerance_eV:
            return self.ramp_end_s
        return self.ramp_end_s + self.settle_s * math.log(lag / tolerance_eV)

    def energy_eV(self, t_s: float) -> float:
        """Energy in the beam at time ``t_s`` (scalar; see :meth:`energies_eV`)."""
        elapsed = t_s - self.ramp_start_s
        if elapsed <= 0.0 or self.target_eV == self.start_eV:
            return self.start_eV if elapsed <= 0.0 else self.target_eV
        tau = self.settle_s
        rate = math.copysign(self.speed_eV_per_s, self.target_eV - self.start_eV)
        ramp = self.ramp_s
        if elapsed <= ramp:
            if tau <= 0:
                return self.start_eV + rate * elapsed
            return self.start_eV + rate * (elapsed + tau * math.expm1(-elapsed / tau))
        if tau <= 0:
            return self.target_eV
        return self.target_eV - self.lag_at_ramp_end_eV * math.exp(-(elapsed - ramp) / tau)

    def energies_eV(self, t_s: ArrayLike) -> NDArray[np.float64]:
        """Energy at each of the instants ``t_s`` (vectorised over a few or many)."""
        times = np.asarray(t_s, dtype=float)
        return np.array([self.energy_eV(float(t)) for t in times.ravel()]).reshape(times.shape)
