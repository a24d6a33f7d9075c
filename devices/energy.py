"""Photon energy and polarisation: monochromator, EPU gap and zone-plate focus moving together.

:class:`Energy` is an ophyd :class:`~ophyd.PseudoPositioner` (one pseudo axis, ``eV``, over
three real ones): a move sets the monochromator, the EPU gap for the polarisation in use and,
while ``focus_follows_energy`` is on, ZP z = z_sign (f(E) + ``focus_offset_um``), all at once,
so the sample stays in focus (df = A1 dE) and the OSA, which does not move, keeps A0.
Everything is checked before anything moves: the beamline's energy range, the EPU's first
harmonic in the polarisation in use, and the optics' interlocks at the new energy (the OSA
where it stands must neither clip the first order nor pass the second; focus must not bring
the zone plate into the OSA).

:class:`A0` moves the OSA along the beam to a given OSA-sample distance, with the same checks.
:class:`Polarization` changes the EPU's polarisation and then re-tunes its gap to the energy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ophyd import Component as Cpt
from ophyd import Device, EpicsSignal, EpicsSignalRO, PseudoSingle, Signal
from ophyd import FormattedComponent as FCpt
from ophyd.pseudopos import pseudo_position_argument, real_position_argument
from ophyd.pv_positioner import PVPositionerPC
from ophyd.status import StatusBase
from ophyd.utils import StatusTimeoutError

from devices.optics import OpticsInterlock
from devices.signals import BoundedEpicsSignal
from devices.stages import BoundedMotor
from devices.statuses import (
    AxisFailedError,
    AxisTimeoutError,
    CheckedPseudoPositioner,
    ExplainedStatus,
    failure_of,
    finish_with,
)
from stxm_ctrl.physics.interlocks import InterlockError
from stxm_ctrl.physics.undulator import POLARIZATIONS, Undulator, UndulatorRangeError
from stxm_ctrl.physics.zone_plate import ZonePlate as ZonePlateOptics

__all__ = ["A0", "Energy", "Monochromator", "Polarization"]

_MONO_SECONDS_PER_EV = 0.5  # allowed per eV of an energy move, on top of put_timeout_s


def _number(value: Any) -> float:
    """A signal's value as a float (ophyd's types do not say it is one)."""
    return float(value)


class Monochromator(PVPositionerPC):
    """The monochromator's energy, eV: a put with completion that completes once settled.

    Channel Access also "completes" a put whose IOC went away (libca calls the put callback
    with a disconnect status, which pyepics does not pass on): each completion is therefore
    confirmed by reading ``ENERGY:DMOV``, and a move whose IOC does not answer that read
    fails, naming the record, instead of passing as arrived.

    Components
    ----------
    setpoint
        ``ENERGY`` (its drive limits are the beamline's range; monitored).
    readback
        ``ENERGY:RBV``, settling onto the setpoint after a move.
    dmov
        ``ENERGY:DMOV``, 1 once a move has ended (read to confirm a completion).
    """

    # Monitored, as the readback: reading the energy (the runs' baseline does, as they end)
    # asks the IOC nothing, so an IOC that hangs cannot turn a run's failure into a read
    # timeout that hides its reason.
    setpoint = Cpt(EpicsSignal, "ENERGY", put_complete=True, kind="normal", auto_monitor=True)
    readback = Cpt(EpicsSignalRO, "ENERGY:RBV", kind="hinted", auto_monitor=True)
    dmov = Cpt(EpicsSignalRO, "ENERGY:DMOV", kind="omitted")
    stop_signal = Cpt(EpicsSignal, "ENERGY:STOP", kind="omitted")
    stop_value = 1
    put_timeout_s: float = 10.0
    confirm_timeout_s: float = 2.0

    def move(
        self, position: Any, wait: bool = True, timeout: Any = None, moved_cb: Any = None
    ) -> Any:
        """Move to ``position`` eV; bounded by ``put_timeout_s`` plus 0.5 s per eV."""
        if timeout is None:
            here = self.readback.get()
            distance = abs(float(position) - _number(here)) if here is not None else 100.0
            timeout = self.put_timeout_s + _MONO_SECONDS_PER_EV * distance
        return super().move(position, wait=wait, timeout=timeout, moved_cb=moved_cb)

    def _setup_move(self, position: Any) -> None:
        """Put the setpoint with completion; confirm the completion before the move ends."""

        def done_moving(**_: Any) -> None:
            try:
                self.dmov.get(use_monitor=False, timeout=self.confirm_timeout_s)
            except Exception as exc:  # noqa: BLE001 - pyepics raises bare errors
                self._fail_pending(
                    AxisFailedError(
                        f"{self.name}: the move to {float(position):g} eV ended without the "
                        f"IOC confirming it ({self.dmov.pvname} did not answer: {exc}): is the "
                        "beamline IOC running?"
                    )
                )
                return
            self._done_moving(success=True)

        self.setpoint.put(position, wait=False, callback=done_moving)

    def _fail_pending(self, exc: AxisFailedError) -> None:
        """Fail the pending move statuses with ``exc`` (ophyd's own failure has no reason)."""
        pending = list(self._unwrapped_callbacks[self._SUB_REQ_DONE].values())
        self._reset_sub(self._SUB_REQ_DONE)
        for callback in pending:
            status = getattr(callback, "__self__", None)
            if isinstance(status, StatusBase):
                finish_with(status, exc)


class Energy(CheckedPseudoPositioner):
    """Photon energy, eV (see the module docstring).

    A move ends when all three real axes have arrived; if one of them fails or does not
    arrive within its allowed time, the move fails at once, naming it (the run ends with
    that reason), and the other two are stopped.

    Components
    ----------
    eV
        The pseudo axis: ``mv(energy, 710)``; its reading is ``energy_eV``.
    mono, epu_gap, zp_z
        The real axes (monochromator ``ENERGY``, EPU ``EPU:GAP`` in mm, ZP z in um).
    focus_offset_um
        ZP distance minus the focal length (0: the nominal focus); set it where the focus
        scan found the sample (:meth:`focus_here`). Recorded in every run.
    focus_follows_energy
        True: ZP z follows energy. False: ZP z stays (for tests of focus, or a fixed plate).

    Parameters
    ----------
    prefix
        The beamline IOC's prefix (``STXM:BL:``).
    zp_z_pv
        Full record name of the zone plate's z axis.
    optics
        The selected zone plate.
    undulator
        The EPU model that gives the gap for an energy.
    z_sign
        ``[optics] z_sign``.
    energy_range_eV
        The beamline's range (low, high).
    """

    eV = Cpt(PseudoSingle, kind="hinted")
    mono = Cpt(Monochromator, "", kind="normal")
    epu_gap = Cpt(BoundedMotor, "EPU:GAP", kind="normal")
    zp_z = FCpt(BoundedMotor, "{_zp_z_pv}", kind="normal")
    focus_offset_um = Cpt(Signal, value=0.0, kind="config")
    focus_follows_energy = Cpt(Signal, value=True, kind="config")
    axis_roles = {
        "mono": "the monochromator",
        "epu_gap": "the EPU gap",
        "zp_z": "the zone plate's z (focus)",
    }
    pseudo_units = "eV"

    def __init__(
        self,
        prefix: str,
        *,
        zp_z_pv: str,
        optics: ZonePlateOptics,
        undulator: Undulator,
        z_sign: int,
        energy_range_eV: tuple[float, float],
        put_timeout_s: float = 10.0,
        **kwargs: Any,
    ) -> None:
        self._zp_z_pv = zp_z_pv
        # Set before connecting: the real axes' callbacks may run forward()/inverse() at once.
        self.optics = optics
        self.undulator = undulator
        self.z_sign = z_sign
        self.energy_range_eV = energy_range_eV
        self.interlock: OpticsInterlock | None = None
        self.polarization_now: Callable[[], str] = lambda: POLARIZATIONS[0]
        super().__init__(prefix, **kwargs)
        self.mono.put_timeout_s = put_timeout_s
        self.epu_gap.units = "mm"

    def __repr__(self) -> str:
        return f"Energy(prefix={self.prefix!r}, name={self.name!r})"

    def position_hint(self) -> str:
        """An energy in eV within the beamline's range."""
        low, high = self.energy_range_eV
        return f"an energy in eV from {low:g} to {high:g} eV"

    # -- the transform ----------------------------------------------------------------
    def zp_z_for(self, energy_eV: float) -> float:
        """ZP z that focuses on the sample at ``energy_eV`` with the current focus offset."""
        distance = self.optics.focal_length_um(energy_eV) + _number(self.focus_offset_um.get())
        return self.z_sign * distance

    @pseudo_position_argument
    def forward(self, pseudo_pos: Any) -> Any:
        """Real positions (mono eV, EPU gap mm, ZP z um) for an energy."""
        energy = float(pseudo_pos.eV)
        gap = self.undulator.gap_mm(energy, self.polarization_now())
        if self.focus_follows_energy.get():
            zp_z = self.zp_z_for(energy)
        else:
            setpoint = self.zp_z.user_setpoint.get()
            zp_z = _number(setpoint if setpoint is not None else self.zp_z.position)
        return self.RealPosition(mono=energy, epu_gap=gap, zp_z=zp_z)

    @real_position_argument
    def inverse(self, real_pos: Any) -> Any:
        """The energy is the monochromator's."""
        return self.PseudoPosition(eV=real_pos.mono)

    def check_value(self, pseudo_pos: Any) -> None:
        """Refuse, before anything moves, an energy the beamline or the optics cannot take.

        Raises
        ------
        InterlockError
            Naming the energy, the allowed range and what to change.
        """
        pseudo_pos = self.PseudoPosition(*pseudo_pos)
        energy = float(pseudo_pos.eV)
        low, high = self.energy_range_eV
        if not low <= energy <= high:
            raise InterlockError(
                f"energy {energy:g} eV is outside the beamline's range {low:g} to {high:g} eV "
                "([optics] energy_min_eV, energy_max_eV)"
            )
        try:
            self.undulator.gap_mm(energy, self.polarization_now())
        except UndulatorRangeError as exc:
            raise InterlockError(f"{exc}; choose another energy or polarisation") from None
        if self.interlock is not None:
            follows = bool(self.focus_follows_energy.get())
            offset = _number(self.focus_offset_um.get()) if follows else None
            self.interlock.check_energy(energy, focus_offset_um=offset)
        super().check_value(pseudo_pos)

    def focus_here(self) -> float:
        """Make the zone plate's current position the focus at the current energy.

        Sets ``focus_offset_um`` to (ZP distance - f(E)) and returns it; energy moves then
        keep this focus.
        """
        distance = self.z_sign * float(self.zp_z.user_readback.get())
        offset = distance - self.optics.focal_length_um(float(self.mono.readback.get()))
        self.focus_offset_um.put(offset)
        return offset


class A0(CheckedPseudoPositioner):
    """A0, the OSA-sample distance in um, moved by the OSA's z axis (``a0_um`` in readings).

    Checked before the OSA moves: not into the sample, not into the zone plate, not past the
    second order, not clipping the first (:class:`devices.optics.OpticsInterlock`).
    """

    um = Cpt(PseudoSingle, kind="hinted")
    z = FCpt(BoundedMotor, "{_osa_z_pv}", kind="normal")
    axis_roles = {"z": "the OSA's z"}
    pseudo_units = "um"

    def __init__(self, *, osa_z_pv: str, z_sign: int, **kwargs: Any) -> None:
        self._osa_z_pv = osa_z_pv
        self.z_sign = z_sign  # before connecting: readback callbacks call inverse() at once
        super().__init__("", **kwargs)

    def __repr__(self) -> str:
        return f"A0(osa_z={self._osa_z_pv!r}, name={self.name!r})"

    @pseudo_position_argument
    def forward(self, pseudo_pos: Any) -> Any:
        """OSA z for an A0."""
        return self.RealPosition(z=self.z_sign * float(pseudo_pos.um))

    @real_position_argument
    def inverse(self, real_pos: Any) -> Any:
        """A0 from OSA z."""
        return self.PseudoPosition(um=self.z_sign * float(real_pos.z))


class Polarization(Device):
    """The EPU's polarisation; a change re-tunes the gap to the energy in the beam.

    ``mv(polarization, "Circular right")``: the EPU shifts its magnet rows (seconds), then
    the gap moves to the first harmonic, in the new polarisation, of the energy the
    monochromator is set to. ``mv(polarization, p, energy, e)`` moves both at once: the
    energy move tunes the gap for ``p`` (:attr:`target`) and the re-tune for ``e``.

    Components
    ----------
    setpoint
        ``EPU:POLARIZATION`` (put with completion: completes when the EPU has changed).
    readback
        ``EPU:POLARIZATION:RBV``; its reading is ``polarization``.
    busy
        ``EPU:BUSY``, 1 while the magnet rows move.
    """

    setpoint = Cpt(
        BoundedEpicsSignal, "EPU:POLARIZATION", string=True, put_complete=True, kind="omitted"
    )
    readback = Cpt(
        EpicsSignalRO, "EPU:POLARIZATION:RBV", string=True, kind="hinted", auto_monitor=True
    )
    busy = Cpt(EpicsSignalRO, "EPU:BUSY", kind="omitted", auto_monitor=True)

    def __init__(self, *args: Any, put_timeout_s: float = 10.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setpoint.timeout_s = put_timeout_s
        self.readback.name = self.name  # read as ``polarization``, as EpicsMotor does
        self.energy: Energy | None = None  # re-tuned after a change (set by the composite)
        self._changing_to: str | None = None

    def __repr__(self) -> str:
        return f"Polarization(prefix={self.prefix!r}, name={self.name!r})"

    @property
    def position(self) -> str:
        """The polarisation in the beam."""
        return str(self.readback.get())

    @property
    def target(self) -> str:
        """The polarisation being changed to, else the one in the beam.

        An energy move made while the polarisation changes (``mv(polarization, p, energy,
        e)``) tunes the gap for this one, the polarisation the beam will have.
        """
        return self._changing_to or self.position

    def set(self, value: Any, **kwargs: Any) -> StatusBase:  # pyright: ignore[reportIncompatibleMethodOverride]
        """Change to ``value`` (one of :data:`POLARIZATIONS`), then re-tune the EPU gap.

        Raises
        ------
        ValueError
            Before anything moves, for an unknown polarisation or one whose first harmonic
            does not reach the energy in the beam.
        """
        if value not in POLARIZATIONS:
            raise ValueError(
                f"polarization {value!r}: choose one of {', '.join(map(repr, POLARIZATIONS))}"
            )
        energy = self.energy
        if energy is not None:
            try:
                energy.undulator.gap_mm(float(energy.mono.readback.get()), value)
            except UndulatorRangeError as exc:
                raise InterlockError(f"{exc}; change energy first") from None
        status = ExplainedStatus(self)
        self._changing_to = value
        try:
            changed = self.setpoint.set(value)
        except Exception:
            self._changing_to = None
            raise
        status.add_callback(lambda _: setattr(self, "_changing_to", None))

        def retune(done: StatusBase) -> None:
            if not done.success:
                finish_with(status, self._change_failed(value, done))
                return
            if energy is None:
                finish_with(status)
                return
            # The gap for the energy the monochromator is set to now: an energy move made
            # meanwhile (to a new setpoint) tuned the gap for this polarisation too.
            try:
                gap = energy.undulator.gap_mm(float(energy.mono.setpoint.get()), value)
                moved = energy.epu_gap.move(gap, wait=False)
            except Exception as exc:  # noqa: BLE001 - the status carries it to the plan
                finish_with(status, self._retune_failed(value, f"could not start: {exc}"))
                return
            moved.add_callback(
                lambda m: finish_with(
                    status,
                    None if m.success else self._retune_failed(value, failure_of(m, "the gap")),
                )
            )

        changed.add_callback(retune)
        return status

    def _retune_failed(self, value: str, why: object) -> AxisFailedError:
        return AxisFailedError(
            f"{self.name}: changed to {value!r}, but the EPU gap did not re-tune to the "
            f"energy: {why}"
        )

    def _change_failed(self, value: str, done: StatusBase) -> AxisFailedError:
        """The error of a polarisation change whose put did not complete (or failed)."""
        if isinstance(done.exception(), StatusTimeoutError):
            return AxisTimeoutError(
                f"{self.name}: the EPU did not report the change to {value!r} within "
                f"{float(done.timeout or 0.0):.1f} s ({self.setpoint.pvname}, a put with "
                "completion; [epics.timeouts] put_s): is the beamline IOC running and "
                "answering? If the EPU is only slower than that, raise put_s. The EPU gap was "
                "not re-tuned"
            )
        return AxisFailedError(
            f"{self.name}: the change to {value!r} failed: {done.exception()!r}; the EPU gap "
            "was not re-tuned"
        )
