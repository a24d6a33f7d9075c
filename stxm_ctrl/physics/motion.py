"""Trapezoidal (or triangular) point-to-point motion of a stage axis.

A motor record moves with constant acceleration for ``acceleration_time_s`` (ACCL) up to
``velocity_um_per_s`` (VELO), cruises, and decelerates symmetrically. Short moves never
reach full speed and follow a triangle profile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Move", "move_duration_s"]


def move_duration_s(
    distance_um: float, velocity_um_per_s: float, acceleration_time_s: float
) -> float:
    """Time a move of ``distance_um`` takes.

    Parameters
    ----------
    distance_um
        Signed or unsigned distance; only its magnitude matters.
    velocity_um_per_s
        Cruise velocity (> 0).
    acceleration_time_s
        Time to reach cruise velocity from rest (>= 0; 0 means instant acceleration).

    Returns
    -------
    float
        Duration in seconds.
    """
    distance = abs(distance_um)
    if distance == 0.0:
        return 0.0
    if acceleration_time_s <= 0.0:
        return distance / velocity_um_per_s
    acceleration = velocity_um_per_s / acceleration_time_s
    ramp_distance = velocity_um_per_s * acceleration_time_s  # accelerate + decelerate
    if distance >= ramp_distance:
        return 2 * acceleration_time_s + (distance - ramp_distance) / velocity_um_per_s
    return 2.0 * math.sqrt(distance / acceleration)


@dataclass(frozen=True)
class Move:
    """One move from ``start_um`` to ``end_um`` beginning at ``t0_s`` (any clock in s)."""

    start_um: float
    end_um: float
    t0_s: float
    velocity_um_per_s: float
    acceleration_time_s: float

    @property
    def duration_s(self) -> float:
        """Time the move takes."""
        return move_duration_s(
            self.end_um - self.start_um, self.velocity_um_per_s, self.acceleration_time_s
        )

    def position_um(self, t_s: float) -> float:
        """Position at time ``t_s`` (clamped to the start before and to the end after)."""
        distance = self.end_um - self.start_um
        total = self.duration_s
        elapsed = t_s - self.t0_s
        if elapsed <= 0.0 or total == 0.0:
            return self.start_um if elapsed <= 0.0 else self.end_um
        if elapsed >= total:
            return self.end_um
        sign = 1.0 if distance >= 0 else -1.0
        travelled = _travelled_um(
            elapsed, abs(distance), total, self.velocity_um_per_s, self.acceleration_time_s
        )
        return self.start_um + sign * travelled


def _travelled_um(
    elapsed: float, distance: float, total: float, velocity: float, acceleration_time: float
) -> float:
    if acceleration_time <= 0.0:
        return velocity * elapsed
    acceleration = velocity / acceleration_time
    ramp = min(acceleration_time, total / 2.0)
    peak = acceleration * ramp
    if elapsed < ramp:
        return 0.5 * acceleration * elapsed**2
    cruise_end = total - ramp
    ramp_distance = 0.5 * acceleration * ramp**2
    if elapsed < cruise_end:
        return ramp_distance + peak * (elapsed - ramp)
    remaining = total - elapsed
    return distance - 0.5 * acceleration * remaining**2
