"""The motor record's fields as the simulated axis uses them: status bits, units, names.

:class:`Msta` names the bits of ``.MSTA`` (motor.h ``msta_field``); :func:`MOTOR_FIELD_UNITS`
gives every numeric field of the record its unit; :data:`FIELD_ATTRS` maps field names to
caproto's attribute names for them; :class:`MotorRecordFields` is the field group served.
"""

from __future__ import annotations

import enum

from caproto.server import pvproperty
from caproto.server.records import MotorFields

from sim_iocs.records import RecordDouble

__all__ = ["FIELD_ATTRS", "MOTOR_FIELD_UNITS", "SPEEDS", "MotorRecordFields", "Msta"]


class MotorRecordFields(MotorFields):
    """caproto's motor record fields, with ``.DVAL`` and ``.VELO`` deciding about every put.

    Both carry control limits (the dial limits; VBAS..VMAX), and caproto refuses a put
    outside a channel's control limits before its putter runs; the motor record takes such
    a put (a DVAL beyond a limit: ``.LVIO``; a VELO beyond VMAX: clamped).
    """

    dial_desired_value = pvproperty(
        name="DVAL", dtype=RecordDouble, value=0.0, doc="Dial Desired Value (EGU"
    )
    velocity = pvproperty(name="VELO", dtype=RecordDouble, value=0.0, doc="Velocity (EGU/s)")


class Msta(enum.IntFlag):
    """Bits of the motor record's ``.MSTA`` (motor.h ``msta_field``)."""

    DIRECTION = 1 << 0  # RA_DIRECTION: last raw direction was positive
    DONE = 1 << 1  # RA_DONE: motion is complete
    PLUS_LS = 1 << 2  # RA_PLUS_LS: plus limit switch hit
    HOME = 1 << 3  # RA_HOME: home switch on
    POSITION = 1 << 5  # EA_POSITION: position maintenance (closed loop) enabled
    PROBLEM = 1 << 9  # RA_PROBLEM: driver reports a problem
    MOVING = 1 << 10  # RA_MOVING: non-zero velocity
    GAIN_SUPPORT = 1 << 11  # GAIN_SUPPORT: closed-loop control (CNEN) supported
    MINUS_LS = 1 << 13  # RA_MINUS_LS: minus limit switch hit
    HOMED = 1 << 14  # RA_HOMED: the axis has been homed


_USER_POSITIONS = ("", "RBV", "HLM", "LLM", "OFF", "RLV", "LRLV", "LVAL")
_DIAL_POSITIONS = ("DVAL", "DRBV", "DHLM", "DLLM", "LDVL")
_LENGTHS = ("TWV", "DIFF", "RDBD", "SPDB", "BDST", "MRES", "ERES", "RRES", "ADEL", "MDEL")
_ALARM_POSITIONS = ("HOPR", "LOPR", "HIHI", "HIGH", "LOW", "LOLO", "ALST", "MLST")
SPEEDS = {"VELO": "S", "VBAS": "SBAS", "VMAX": "SMAX", "BVEL": "SBAK"}
"""Speeds in EGU/s and the fields with the same speeds in revolutions/s."""
_OTHER_SPEEDS = ("JVEL", "HVEL")
_RAW = ("RVAL", "RRBV", "RMP", "REP", "RDIF", "LRVL")


def MOTOR_FIELD_UNITS(egu: str) -> dict[str, str]:  # noqa: N802 (a table, by unit)
    """Units of the motor record's numeric fields when positions are in ``egu``."""
    units = dict.fromkeys((*_USER_POSITIONS, *_DIAL_POSITIONS, *_LENGTHS), egu)
    units |= dict.fromkeys(_ALARM_POSITIONS, egu)
    units |= dict.fromkeys((*SPEEDS, *_OTHER_SPEEDS), f"{egu}/s")
    units |= dict.fromkeys(SPEEDS.values(), "rev/s")
    units |= {"ACCL": "s", "BACC": "s", "DLY": "s", "JAR": f"{egu}/s/s"}
    units |= {"UREV": f"{egu}/rev", "SREV": "steps/rev", "RVEL": "steps/s"}
    units |= dict.fromkeys(_RAW, "steps")
    return units


FIELD_ATTRS = {prop.pvspec.name: attr for attr, prop in MotorFields._pvs_.items()}
"""caproto's attribute name of each motor-record field (``"VELO"``: ``"velocity"``)."""
