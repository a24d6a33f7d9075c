"""Storage-ring current in top-up operation."""

from __future__ import annotations

import math

__all__ = ["topup_current_mA"]


def topup_current_mA(
    t_s: float, fill_current_mA: float, beam_lifetime_h: float, topup_interval_s: float
) -> float:
    """Ring current ``t_s`` seconds after a top-up cycle began.

    The current decays exponentially with the beam lifetime and is refilled to
    ``fill_current_mA`` every ``topup_interval_s``.

    Parameters
    ----------
    t_s
        Time since the first fill, s (>= 0).
    fill_current_mA
        Current right after each top-up injection.
    beam_lifetime_h
        1/e beam lifetime in hours.
    topup_interval_s
        Time between injections.

    Returns
    -------
    float
        Current in mA.
    """
    since_injection = math.fmod(max(t_s, 0.0), topup_interval_s)
    return fill_current_mA * math.exp(-since_injection / (beam_lifetime_h * 3600.0))
