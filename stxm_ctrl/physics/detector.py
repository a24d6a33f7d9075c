"""Photon counting with an avalanche photodiode: rates, dead time, the mean over a gate.

These are the ground truth: the simulated counter draws its Poisson counts from
:func:`expected_rate_Hz` averaged over its gate (:func:`gate_average_rate_Hz`), and the tests
compare measured images with the same functions.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "GATE_WEIGHTS",
    "detected_rate_Hz",
    "expected_rate_Hz",
    "gate_average_rate_Hz",
    "gate_sample_times_s",
    "transmitted_rate_Hz",
]

GATE_WEIGHTS = (0.25, 0.5, 0.25)
"""Weights of the rates at the start, middle and end of a gate (the trapezoid rule)."""


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


def expected_rate_Hz(
    optical_density: ArrayLike,
    ring_current_mA: float,
    *,
    photon_flux_per_mA_Hz: float,
    quantum_efficiency: float,
    dark_count_rate_Hz: float,
    dead_time_ns: float,
) -> NDArray:
    """Mean detected count rate through a sample of ``optical_density``.

    Parameters
    ----------
    optical_density
        OD under the beam (any shape).
    ring_current_mA
        Ring current; 0 with the shutter closed or the beam dumped (dark counts only).
    photon_flux_per_mA_Hz
        Photons per second on the sample per mA.
    quantum_efficiency, dark_count_rate_Hz, dead_time_ns
        The counter chain, as in :func:`detected_rate_Hz`.

    Returns
    -------
    ndarray
        Counts per second, the shape of ``optical_density``.
    """
    incident = photon_flux_per_mA_Hz * ring_current_mA
    return detected_rate_Hz(
        transmitted_rate_Hz(incident, optical_density),
        quantum_efficiency,
        dark_count_rate_Hz,
        dead_time_ns,
    )


def gate_sample_times_s(t_start_s: float, t_end_s: float) -> NDArray[np.float64]:
    """The instants a gate's rate is sampled at: its start, middle and end."""
    return np.array([t_start_s, 0.5 * (t_start_s + t_end_s), t_end_s])


def gate_average_rate_Hz(rates_Hz: ArrayLike) -> float:
    """Mean rate over a gate from the rates at :func:`gate_sample_times_s`.

    Exact while the beam stands still (step scans); the trapezoid rule while it moves.
    """
    rates = np.asarray(rates_Hz, dtype=float)
    return float(np.dot(GATE_WEIGHTS, rates))
