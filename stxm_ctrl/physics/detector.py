"""Photon counting with an avalanche photodiode: rates, dead time, Poisson counts."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["detected_rate_Hz", "transmitted_rate_Hz"]


def transmitted_rate_Hz(incident_rate_Hz: float, optical_density: ArrayLike) -> NDArray:
    """Beer-Lambert transmission I = I0 * exp(-OD)."""
    return incident_rate_Hz * np.exp(-np.asarray(optical_density, dtype=float))


def detected_rate_Hz(
    photon_rate_Hz: ArrayLike,
    quantum_efficiency: float,
    dark_count_rate_Hz: float,
    dead_time_ns: float,
) -> NDArray:
    """Mean count rate a counter chain records for photons arriving at ``photon_rate_Hz``.

    Non-paralysable dead time: N_m = N / (1 + N * tau), with N the true rate of detected
    photons plus dark counts.
    """
    true_rate = np.asarray(photon_rate_Hz, dtype=float) * quantum_efficiency + dark_count_rate_Hz
    return true_rate / (1.0 + true_rate * dead_time_ns * 1e-9)
