"""Trapezoidal (or triangular) point-to-point motion of a stage axis.

A motor record moves with constant acceleration for ``acceleration_time_s`` (ACCL) up to
``velocity_um_per_s`` (VELO), cruises, and decelerates symmetrically. Short moves never
reach full speed and follow a triangle profile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["MOVE_FIELDS", "Move", "move_duration_s", "positions_um"]

MOVE_FIELDS = ("start_um", "end_um", "t0_s", "velocity_um_per_s", "acceleration_time_s")
"""The numbers that define a :class:`Move`, in the order the simulator stores them."""


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


def positions_um(
    start_um: ArrayLike,
    end_um: ArrayLike,
    t0_s: ArrayLike,
    velocity_um_per_s: ArrayLike,
    acceleration_time_s: ArrayLike,
    t_s: ArrayLike,
) -> NDArray[np.float64]:
    """Positions of moves at times ``t_s``, vectorised (all arguments broadcast together).

    The same profile as :meth:`Move.position_um`, for many instants (a fly-scan line needs
    hundreds) or many axes at once, without a Python loop.
    """
    start, end, t0, velocity, accel_time, t = np.broadcast_arrays(
        *(
            np.asarray(a, dtype=float)
            for a in (start_um, end_um, t0_s, velocity_um_per_s, acceleration_time_s, t_s)
        )
    )
    distance = np.abs(end - start)
    sign = np.where(end >= start, 1.0, -1.0)
    velocity = np.maximum(velocity, 1e-300)
    has_ramp = accel_time > 0.0
    accel = np.where(has_ramp, velocity / np.where(has_ramp, accel_time, 1.0), np.inf)
    ramp_distance = velocity * accel_time
    full_speed = distance >= ramp_distance
    with np.errstate(divide="ignore", invalid="ignore"):
        total = np.where(
            ~has_ramp,
            distance / velocity,
            np.where(
                full_speed,
                2 * accel_time + (distance - ramp_distance) / velocity,
                2.0 * np.sqrt(distance / accel),
            ),
        )
        elapsed = np.clip(t - t0, 0.0, total)
        ramp = np.minimum(accel_time, total / 2.0)
        peak = accel * ramp
        ramp_travel = 0.5 * accel * ramp**2
        remaining = total - elapsed
        travelled = np.where(
            ~has_ramp,
            velocity * elapsed,
            np.where(
                elapsed < ramp,
                0.5 * accel * elapsed**2,
                np.where(
                    elapsed < total - ramp,
                    ramp_travel + peak * (elapsed - ramp),
                    distance - 0.5 * accel * remaining**2,
                ),
            ),
        )
    travelled = np.where(distance == 0.0, 0.0, np.clip(travelled, 0.0, distance))
    return start + sign * travelled
