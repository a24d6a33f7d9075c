"""The sample stage as plans see it: one X and one Y over a coarse stepper and a piezo.

Each axis (:class:`SampleAxis`) moves either the coarse stepper or the fine piezo it
carries, and reads the laser interferometer, which measures where the sample really is
(coarse + piezo + thermal drift): before each move by a Channel Access read; for the record,
from its monitor after a piezo move (the IOC posts it as the move ends), by a read after a
coarse move. A step scan therefore records
interferometer positions, not setpoints, for every pixel, and lands each pixel where it was
asked to within the interferometer's noise: every move corrects by what the interferometer
reads just before it.

Which stage moves is the axis's ``motion`` (``"coarse"`` or ``"fine"``, recorded in the
run's configuration). :meth:`SampleAxis.region` chooses it for a scan: a scan that fits the
piezo's travel (less a margin at each end) is done on the piezo, with the coarse stage first
moved so that the scan's centre sits at the piezo's centre; a larger one steps the coarse
stage with the piezo centred.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, EpicsSignalRO, Signal
from ophyd import FormattedComponent as FCpt
from ophyd.status import StatusBase

from devices.stages import BoundedMotor

__all__ = ["AxisRegion", "SampleAxis", "SampleStage", "coarse_stage_of", "position_um"]

FINE_MARGIN_UM = 2.0
"""Piezo travel kept free at each end of a fine scan (the closed-loop corrections)."""


@dataclass(frozen=True)
class AxisRegion:
    """How one axis will scan a region: which stage moves and where both start.

    Attributes
    ----------
    motion
        ``"fine"`` (the piezo steps, the coarse stage stays) or ``"coarse"``.
    coarse_um, fine_um
        Where the coarse stage and the piezo go before the scan (their own coordinates).
    """

    motion: str
    coarse_um: float
    fine_um: float


class SampleAxis(Device):
    """One sample axis: coarse stepper + piezo, read by the laser interferometer (um).

    Reads as ``<name>`` (the interferometer, hinted), ``<name>_setpoint`` and the two stages'
    readbacks. :meth:`set` moves the stage named by ``motion`` by what the interferometer
    says is still to go, so drift and the coarse stage's steps do not end up in the image.

    Parameters
    ----------
    prefix
        The interferometer's PV (e.g. ``STXM:FLY:IFX``).
    coarse_pv, fine_pv
        Motor records of the coarse stage and the piezo on this axis.
    """

    readback = Cpt(EpicsSignalRO, "", kind="hinted", auto_monitor=True)
    setpoint = Cpt(Signal, value=0.0, kind="normal")
    motion = Cpt(Signal, value="coarse", kind="config")
    coarse = FCpt(BoundedMotor, "{_coarse_pv}", kind="normal")
    fine = FCpt(BoundedMotor, "{_fine_pv}", kind="normal")

    def __init__(
        self,
        prefix: str = "",
        *,
        coarse_pv: str,
        fine_pv: str,
        move_factor: float = 2.0,
        move_margin_s: float = 2.0,
        **kwargs: Any,
    ) -> None:
        self._coarse_pv, self._fine_pv = coarse_pv, fine_pv
        super().__init__(prefix, **kwargs)
        self.readback.name = self.name  # read as ``stage_x``, as EpicsMotor's readback is
        for motor in (self.coarse, self.fine):
            motor.move_factor, motor.move_margin_s = move_factor, move_margin_s
            motor.user_setpoint.kind = "omitted"  # the axis's own setpoint says it once
            motor.user_readback.kind = "normal"  # read, but the axis's hint is the sample's

    # -- positioner -----------------------------------------------------------------------
    def _fresh(self) -> bool:
        # The piezo's IOC posts the interferometer when a piezo move ends, before the move's
        # DMOV = 1: after a fine move the monitor is current. The coarse stage is another
        # IOC, and the interferometer's monitor runs at 10 Hz: after a coarse move, ask.
        return self.motion.get() == "fine"

    def _interferometer_um(self, *, use_monitor: bool) -> float:
        try:
            return float(self.readback.get(use_monitor=use_monitor))
        except Exception as exc:  # noqa: BLE001 - pyepics raises bare errors ("Get failed")
            raise RuntimeError(
                f"{self.name}: the interferometer {self.readback.pvname} did not answer "
                f"({exc}): is its IOC (the fly controller's) running? Every point measured "
                "before is kept"
            ) from exc

    @property
    def position(self) -> float:
        """Where the sample is (the interferometer, now), um."""
        return self._interferometer_um(use_monitor=self._fresh())

    def read(self) -> Any:
        """The interferometer (``<name>``), the setpoint and both stages' readbacks."""
        reading: Any = super().read()
        if not self._fresh():
            reading[self.readback.name] = {"value": self.position, "timestamp": time.time()}
        return reading

    @property
    def limits(self) -> tuple[float, float]:
        """The coarse stage's soft limits, um: where the axis can go."""
        low, high = self.coarse.limits
        return float(low), float(high)

    @property
    def egu(self) -> str:
        """Engineering units."""
        return "um"

    def check_value(self, value: Any, **kwargs: Any) -> None:
        """Refuse a target the axis cannot reach (before anything moves)."""
        self.coarse.check_value(self._target_of(self.coarse, float(value)))

    def _target_of(self, motor: BoundedMotor, target_um: float) -> float:
        """Where ``motor`` must go for the interferometer to read ``target_um``.

        Asks the interferometer (one Channel Access read): the coarse stage may have moved
        since the monitor's last update (placing a scan moves it directly).
        """
        here_um = self._interferometer_um(use_monitor=False)
        return position_um(motor) + (target_um - here_um)

    def mover(self) -> BoundedMotor:
        """The stage that moves now (``motion``)."""
        return self.fine if self.motion.get() == "fine" else self.coarse

    def set(self, value: Any, **kwargs: Any) -> StatusBase:
        """Move the sample to interferometer position ``value`` (um) with ``motion``'s stage.

        Raises
        ------
        ValueError
            Before anything moves, if the stage cannot get there (its limits, or a piezo
            that would leave its travel: prepare the scan with :meth:`region`).
        """
        target_um = float(value)
        motor = self.mover()
        goal = self._target_of(motor, target_um)
        try:
            motor.check_value(goal)
        except ValueError as exc:
            raise ValueError(
                f"{self.name}: {target_um:g} um is out of the {self.motion.get()} stage's reach "
                f"({exc}); scans on the piezo must fit its travel (sample_image chooses the "
                f"stage by scan size)"
            ) from exc
        self.setpoint.put(target_um)
        return motor.set(goal, **kwargs)

    def stop(self, *, success: bool = False) -> None:
        """Stop both stages."""
        self.coarse.stop(success=success)
        self.fine.stop(success=success)

    def expected_move_time_s(self, target_um: float) -> float:
        """Time the move to ``target_um`` takes with the stage ``motion`` names."""
        motor = self.mover()
        return motor.expected_move_time_s(self._target_of(motor, float(target_um)))

    # -- scans ----------------------------------------------------------------------------
    def fine_span_um(self) -> float:
        """Largest scan span done on the piezo: its travel less a margin at each end."""
        low, high = self.fine.limits
        return max(float(high) - float(low) - 2.0 * FINE_MARGIN_UM, 0.0)

    def region(self, low_um: float, high_um: float) -> AxisRegion:
        """Which stage scans ``low_um``..``high_um`` (interferometer) and where both start.

        Fine when the span fits :meth:`fine_span_um`: the coarse stage goes where the
        span's centre is at the piezo's centre. Otherwise coarse, with the piezo centred.
        """
        fine_low, fine_high = (float(v) for v in self.fine.limits)
        fine_centre = 0.5 * (fine_low + fine_high)
        coarse_now, fine_now = position_um(self.coarse), position_um(self.fine)
        drift = self.position - coarse_now - fine_now  # interferometer - stages
        if high_um - low_um <= self.fine_span_um():
            centre = 0.5 * (low_um + high_um)
            return AxisRegion("fine", centre - fine_centre - drift, fine_centre)
        return AxisRegion("coarse", coarse_now, fine_centre)


class SampleStage(Device):
    """The sample stage: :class:`SampleAxis` ``x`` and ``y`` (interferometer coordinates).

    Parameters
    ----------
    interferometer_prefix
        Prefix of the interferometer PVs (``IFX``, ``IFY`` follow).
    coarse_pvs, fine_pvs
        Motor records of the coarse stage and the piezo, ``{"x": ..., "y": ...}``.
    """

    x = FCpt(
        SampleAxis,
        "{_interferometer_prefix}IFX",
        coarse_pv="{_coarse_pvs[x]}",
        fine_pv="{_fine_pvs[x]}",
        add_prefix=("suffix", "coarse_pv", "fine_pv"),
        kind="hinted",
    )
    y = FCpt(
        SampleAxis,
        "{_interferometer_prefix}IFY",
        coarse_pv="{_coarse_pvs[y]}",
        fine_pv="{_fine_pvs[y]}",
        add_prefix=("suffix", "coarse_pv", "fine_pv"),
        kind="hinted",
    )

    def __init__(
        self,
        interferometer_prefix: str,
        *,
        coarse_pvs: dict[str, str],
        fine_pvs: dict[str, str],
        move_factor: float = 2.0,
        move_margin_s: float = 2.0,
        **kwargs: Any,
    ) -> None:
        self._interferometer_prefix = interferometer_prefix
        self._coarse_pvs, self._fine_pvs = coarse_pvs, fine_pvs
        super().__init__("", **kwargs)
        for axis in (self.x, self.y):
            for motor in (axis.coarse, axis.fine):
                motor.move_factor, motor.move_margin_s = move_factor, move_margin_s


def position_um(motor: BoundedMotor) -> float:
    """A motor's readback; raises if it has none yet (not connected)."""
    position = motor.position
    if position is None:
        raise RuntimeError(f"{motor.name}: no position yet; is its IOC running?")
    return float(position)


def coarse_stage_of(positioner: Any) -> Any:
    """The coarse stage under a :class:`SampleAxis`; any other positioner itself."""
    return positioner.coarse if isinstance(positioner, SampleAxis) else positioner
