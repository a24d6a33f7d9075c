"""Energy lists for spectra and stacks: regions of different steps, checked before moving."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from plans.validation import PlanArgumentError, is_number
from stxm_ctrl.physics.interlocks import InterlockError
from stxm_ctrl.physics.undulator import UndulatorRangeError

__all__ = ["MAX_ENERGIES", "check_energies_reachable", "energy_points"]

MAX_ENERGIES = 2000
"""Most energies one spectrum or stack takes."""


def _region(index: int, region: Any) -> tuple[float, float, float]:
    if isinstance(region, Mapping):
        try:
            values = (region["start_eV"], region["stop_eV"], region["step_eV"])
        except KeyError as exc:
            raise PlanArgumentError(
                f"energies[{index}] = {dict(region)!r} lacks {exc.args[0]!r}: a region is "
                "{'start_eV': ..., 'stop_eV': ..., 'step_eV': ...} or (start_eV, stop_eV, step_eV)"
            ) from None
    elif isinstance(region, Sequence) and not isinstance(region, str) and len(region) == 3:
        values = tuple(region)
    else:
        raise PlanArgumentError(
            f"energies[{index}] = {region!r}: give an energy in eV or a region "
            "(start_eV, stop_eV, step_eV)"
        )
    if not all(is_number(v) and math.isfinite(float(v)) for v in values):
        raise PlanArgumentError(f"energies[{index}] = {region!r}: start, stop, step are numbers")
    start, stop, step = (float(v) for v in values)
    if step <= 0:
        raise PlanArgumentError(
            f"energies[{index}]: step_eV = {step:g} must be > 0 (e.g. 0.1 across an edge)"
        )
    if stop < start:
        raise PlanArgumentError(
            f"energies[{index}]: stop_eV = {stop:g} is below start_eV = {start:g}; regions run "
            "upwards in energy"
        )
    return start, stop, step


def energy_points(energies: Any) -> np.ndarray:
    """The energies (eV, increasing) of a list of energies and/or regions.

    Parameters
    ----------
    energies
        A sequence whose items are energies in eV or regions ``(start_eV, stop_eV,
        step_eV)`` (or dicts with those keys), e.g. ``[(690, 704, 1), (704, 712, 0.2),
        (712, 730, 1)]``: coarse before the edge, fine across it. A region's stop is
        included when it falls on a step; an energy shared by two regions is taken once.
        An energy given twice in a row is refused.

    Raises
    ------
    PlanArgumentError
        For an empty list, a region that is not three numbers, a step <= 0, regions or
        energies that do not increase, an energy repeated, or more than
        :data:`MAX_ENERGIES` energies.
    """
    if isinstance(energies, (str, bytes)) or not isinstance(energies, Sequence | np.ndarray):
        raise PlanArgumentError(
            f"energies = {energies!r}: give a list of energies (eV) and/or regions "
            "(start_eV, stop_eV, step_eV)"
        )
    if len(energies) == 0:
        raise PlanArgumentError("energies is empty: give at least one energy (eV)")
    points: list[float] = []
    previous_was_energy = False
    for index, item in enumerate(energies):
        if is_number(item):
            value = float(item)
            if not math.isfinite(value):
                raise PlanArgumentError(f"energies[{index}] = {item!r} is not a finite number")
            new = [value]
        else:
            start, stop, step = _region(index, item)
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            if count > MAX_ENERGIES:
                raise PlanArgumentError(
                    f"energies[{index}]: {count} energies; at most {MAX_ENERGIES} per run "
                    "(use a coarser step_eV)"
                )
            new = list(start + step * np.arange(count))
        if points and new[0] < points[-1] - 1e-9:
            raise PlanArgumentError(
                f"energies[{index}] starts at {new[0]:g} eV, below {points[-1]:g} eV before it: "
                "give energies and regions in increasing order"
            )
        if points and abs(new[0] - points[-1]) <= 1e-9:
            if is_number(item) or previous_was_energy:
                raise PlanArgumentError(
                    f"energies[{index}] = {item!r} repeats {points[-1]:g} eV before it: give "
                    "each energy once (to measure one energy several times, run the plan "
                    "again or use a longer dwell_s)"
                )
            new = new[1:]  # a region starting where the one before ended: taken once
        previous_was_energy = is_number(item)
        points += new
        if len(points) > MAX_ENERGIES:
            raise PlanArgumentError(
                f"energies: {len(points)} energies so far; at most {MAX_ENERGIES} per run"
            )
    return np.round(np.asarray(points, dtype=float), 6)


def check_energies_reachable(
    energy: Any,
    energies_eV: np.ndarray,
    polarizations: Sequence[str],
    *,
    focus_offset_um: float | None,
) -> None:
    """Refuse, before anything moves, an energy the beamline or optics cannot take.

    Each energy must lie in the beamline's range, be reachable by the EPU's first harmonic
    in every polarisation the plan uses, and keep the optics' interlocks (the OSA where it
    stands, the zone plate following focus) satisfied. ``focus_offset_um`` is the energy
    device's focus offset if the zone plate follows energy, else None (a plan reads both
    with ``bps.rd``).

    Raises
    ------
    PlanArgumentError
        Naming the energy, the polarisation and the reason.
    """
    low, high = energy.energy_range_eV
    outside = [float(e) for e in energies_eV if not low <= e <= high]
    if outside:
        raise PlanArgumentError(
            f"energies: {outside[0]:g} eV (and {len(outside) - 1} more) outside the beamline's "
            f"range {low:g} to {high:g} eV; keep every energy within it"
        )
    for polarization in polarizations:
        for e in energies_eV:
            try:
                energy.undulator.gap_mm(float(e), polarization)
            except UndulatorRangeError as exc:
                raise PlanArgumentError(
                    f"energies: {float(e):g} eV in {polarization!r}: {exc}; choose energies "
                    "the EPU reaches in that polarisation"
                ) from None
    interlock = energy.interlock
    if interlock is None:
        return
    for e in (float(energies_eV.min()), float(energies_eV.max())):
        try:
            interlock.check_energy(e, focus_offset_um=focus_offset_um)
        except InterlockError as exc:
            raise PlanArgumentError(f"energies: {e:g} eV: {exc}") from None
