"""The motor record's settings fields: speeds, acceleration, resolution, units, precision.

:class:`MotorSettings` is a mixin of :class:`sim_iocs.motor.MotorAxis` that handles puts to
the fields which configure the record rather than move it: ``.VELO``, ``.VBAS``, ``.VMAX``,
``.JVEL``, ``.HVEL``, ``.BVEL`` and their revolutions-per-second twins ``.S``, ``.SBAS``,
``.SMAX``, ``.SBAK`` (via ``.UREV``), ``.ACCL``, ``.JAR``, ``.DLY``, ``.MRES``, ``.EGU``,
``.PREC``. Speeds are clamped to ``.VBAS``..``.VMAX`` as the motor record does; puts that make
no sense for a stage (a speed of 0, a negative time) are refused, saying why.
"""

from __future__ import annotations

import math
from typing import Any, NoReturn

from caproto import SkipWrite

from sim_iocs.motor_fields import MOTOR_FIELD_UNITS, SPEEDS
from sim_iocs.records import EGU_FIELD_CHARS, describe, refuse, set_value

__all__ = ["MotorSettings"]


class MotorSettings:
    """Puts to the settings fields of a motor record (mixin of ``MotorAxis``).

    Needs ``self.motor`` (the record's value), ``self._fields`` (its field group) and
    ``self.axis`` (the axis name, for messages).
    """

    motor: Any
    axis: str

    def _mres(self) -> float:  # provided by MotorAxis
        raise NotImplementedError

    def _refuse(self, field: str, message: str) -> None:  # provided by MotorAxis
        raise NotImplementedError

    @property
    def _fields(self) -> Any:
        return self.motor.field_inst

    def _refuse(self, field: str, message: str) -> NoReturn:
        """Fail a put to ``field`` (``""`` for VAL) with ``message`` (see :func:`refuse`)."""
        name = f"{self.motor.pvname}.{field or 'VAL'}"
        refuse(self.motor.get_field(field), f"{name}: {message}")

    # -- speeds -----------------------------------------------------------------------
    def _speed_range(self) -> dict[str, tuple[float, float]]:
        """Display limits of the speeds: VBAS..VMAX."""
        fields = self._fields
        base, top = float(fields.base_velocity.value), float(fields.max_velocity.value)
        return dict.fromkeys(("VELO", "JVEL", "HVEL", "VBAS", "VMAX"), (base, top))

    def _speed_control_limits(self) -> dict[str, tuple[float, float]]:
        """Control limits of VELO, as the motor record reports them: VBAS..VMAX."""
        return {"VELO": self._speed_range()["VELO"]}

    def _clamp_speed(self, name: str, speed: float) -> float:
        if not speed > 0 or not math.isfinite(speed):
            self._refuse(
                name,
                f"{speed} is not a speed the stage can move at (it must be > 0); give one "
                "between .VBAS and .VMAX",
            )
        fields = self._fields
        base, top = float(fields.base_velocity.value), float(fields.max_velocity.value)
        speed = max(speed, base)
        return min(speed, top) if top > 0 else speed

    async def _put_VELO(self, instance, value):
        return await self._set_speed("VELO", self._clamp_speed("VELO", float(value)))

    async def _put_JVEL(self, instance, value):
        return self._clamp_speed("JVEL", float(value))

    async def _put_HVEL(self, instance, value):
        return self._clamp_speed("HVEL", float(value))

    async def _put_BVEL(self, instance, value):
        return await self._set_speed("BVEL", float(value))

    async def _set_speed(self, name: str, speed: float):
        await self.motor.get_field(name).write(speed, verify_value=False)
        if name in SPEEDS:
            await self._post_revs(name, SPEEDS[name])
        return SkipWrite

    async def _post_revs(self, speed: str, revs: str) -> None:
        urev = float(self._fields.egu_s_per_revolution.value) or 1.0
        await set_value(
            self.motor.get_field(revs), float(self.motor.get_field(speed).value) / urev
        )

    async def _put_VBAS(self, instance, value):
        if float(value) < 0:
            self._refuse("VBAS", f"{value} < 0; give a base speed >= 0")
        await self._set_speed("VBAS", float(value))
        await self._reclamp_speeds()
        return SkipWrite

    async def _put_VMAX(self, instance, value):
        if float(value) < 0:
            self._refuse("VMAX", f"{value} < 0; give a maximum speed >= 0 (0: none)")
        await self._set_speed("VMAX", float(value))
        await self._reclamp_speeds()
        return SkipWrite

    async def _reclamp_speeds(self) -> None:
        await describe(
            self.motor,
            display_limits=self._speed_range(),
            control_limits=self._speed_control_limits(),
            publish=False,
        )
        for name in ("VELO", "JVEL", "HVEL"):
            channel = self.motor.get_field(name)
            clamped = self._clamp_speed(name, float(channel.value))
            if clamped != channel.value:
                await self._set_speed(name, clamped)

    async def _put_S(self, instance, value):
        return await self._put_revs("VELO", float(value))

    async def _put_SBAS(self, instance, value):
        return await self._put_revs("VBAS", float(value))

    async def _put_SMAX(self, instance, value):
        return await self._put_revs("VMAX", float(value))

    async def _put_SBAK(self, instance, value):
        return await self._put_revs("BVEL", float(value))

    async def _put_revs(self, speed: str, revs: float):
        urev = float(self._fields.egu_s_per_revolution.value) or 1.0
        channel = self.motor.get_field(speed)
        await getattr(self, f"_put_{speed}")(channel, revs * urev)
        return SkipWrite

    async def _put_UREV(self, instance, value):
        if not float(value) > 0:
            self._refuse("UREV", f"{value}; give the distance per revolution, > 0")
        await instance.write(float(value), verify_value=False)
        for speed, revs in SPEEDS.items():
            await self._post_revs(speed, revs)
        return SkipWrite

    async def _put_ACCL(self, instance, value):
        if not float(value) >= 0:
            self._refuse("ACCL", f"{value} s < 0; give an acceleration time >= 0 s")
        return float(value)

    async def _put_JAR(self, instance, value):
        if not float(value) >= 0:
            self._refuse("JAR", f"{value} < 0; give a jog acceleration >= 0 (0: use ACCL)")
        return float(value)

    async def _put_DLY(self, instance, value):
        if not float(value) >= 0:
            self._refuse("DLY", f"{value} s < 0; give a settle time >= 0 s")
        return float(value)

    async def _put_MRES(self, instance, value):
        if float(value) != self._mres():
            self._refuse(
                "MRES",
                f"the simulated controller's step size is fixed at {self._mres()}; configure "
                f"[sim.stages.{self.axis}] resolution_um instead",
            )
        return value

    # -- display ----------------------------------------------------------------------
    async def _put_EGU(self, instance, value):
        # The field holds 15 characters; clients get at most 7 with a value (ctrl_units).
        units = str(value)[:EGU_FIELD_CHARS]
        await describe(self.motor, units=units, field_units=MOTOR_FIELD_UNITS(units))
        return SkipWrite

    async def _put_PREC(self, instance, value):
        if not 0 <= int(value) <= 17:
            self._refuse("PREC", f"{value} digits; give 0 to 17")
        await describe(self.motor, precision=int(value))
        return SkipWrite
