"""EPICS record conventions shared by the simulated IOCs: values, alarms, units, precision.

caproto's ``pvproperty(record="ai")`` gives a PV the fields of an EPICS record (``.DESC``,
``.EGU``, ``.PREC``, ``.STAT``, ``.SEVR``, alarm limits, ...), but not all of a record's
behaviour: the field values are not tied to the metadata a Channel Access client reads with
the value (units, precision, limits), caproto refuses puts outside the control limits with
an error (a record decides itself what a bad put does), and its own alarm check treats an
unset limit (0) as a live one. The helpers here fill those gaps once for every IOC:

- :class:`RecordDouble` -- a record value whose putter decides about every put;
- :func:`describe` -- DESC, EGU, PREC and display limits, on the field and in the metadata
  of the value, as a stock client (ophyd ``describe()``, Phoebus, ``caget -d CTRL``) sees it;
- :func:`analog_alarm`, :func:`write_with_alarm` and :func:`post_alarm` -- the ai record's
  HIHI/HIGH/LOW/LOLO check, and posting STAT/SEVR only when they change (each alarm post
  is a monitor update);
- :func:`set_value` -- write a field only if its value changed (each write costs ~20 us in
  the IOC and a monitor update per subscribed client);
- :func:`waveform` -- a read-only waveform record whose ``.FTVL`` is its element type and
  ``.NORD`` the number of elements it holds;
- :func:`units_follow_egu` -- a put to a record's ``.EGU`` changes the units clients read
  with its value (caproto keeps the two apart); units cut to what ``DBR_CTRL`` holds
  (:func:`ctrl_units`).

The records of each IOC declare which of their fields carry which unit; the conformance
tests (``tests/integration/conformance``) check what clients see against the same tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

from caproto import (
    AlarmSeverity,
    AlarmStatus,
    ChannelEnum,
    ChannelNumeric,
    ChannelType,
    TimeStamp,
)
from caproto.server import pvproperty
from caproto.server.server import (
    PvpropertyDouble,
    PvpropertyDoubleRO,
    PvpropertyInteger,
    PvpropertyIntegerRO,
)

__all__ = [
    "AI_FIELD_UNITS",
    "AO_FIELD_UNITS",
    "CTRL_UNITS_CHARS",
    "EGU_FIELD_CHARS",
    "BO_FIELD_UNITS",
    "DELAY_FIELD_UNITS",
    "MBBI_FIELD_UNITS",
    "DIMENSIONLESS_FIELDS",
    "FAULT_COUNT_MAX",
    "SEVERITY_NAMES",
    "RecordDouble",
    "RecordInteger",
    "analog_alarm",
    "ctrl_units",
    "describe",
    "describe_fault_count",
    "fault_count",
    "forward_put",
    "long_string",
    "post_alarm",
    "refuse",
    "severity_of",
    "set_value",
    "take_fault",
    "units_follow_egu",
    "waveform",
    "write_with_alarm",
]

SEVERITY_NAMES = ("NO_ALARM", "MINOR", "MAJOR", "INVALID")
"""The menuAlarmSevr strings, indexed by :class:`caproto.AlarmSeverity`."""

_FLOAT_TYPES = (ChannelType.DOUBLE, ChannelType.FLOAT)

DIMENSIONLESS_FIELDS: dict[str, frozenset[str]] = {
    "motor": frozenset({"PCOF", "ICOF", "DCOF", "FRAC", "VERS"}),  # gains, a fraction
    "ai": frozenset({"ASLO", "ESLO", "SMOO"}),  # conversion slopes, smoothing factor
    "ao": frozenset({"ASLO", "ESLO"}),  # conversion slopes
    "scaler": frozenset({"VERS"}),  # the record's code version
    "mbbi": frozenset({"AFVL"}),  # filtered alarm value (a severity)
    "longin": frozenset({"AFVL"}),  # filtered alarm value (a severity)
}
"""Floating-point fields without a unit, by record type; every other one has units."""


def AI_FIELD_UNITS(egu: str) -> dict[str, str]:  # noqa: N802 (a table, by unit)
    """Units of the ai record's floating-point fields when its value is in ``egu``."""
    like_value = "HIHI HIGH LOW LOLO HOPR LOPR MLST LALM ALST SVAL HYST AOFF EGUF EGUL EOFF"
    units = dict.fromkeys(("", *like_value.split(), "ADEL", "MDEL", "AFVL"), egu)
    return units | {"AFTC": "s", "SDLY": "s"}


def AO_FIELD_UNITS(egu: str) -> dict[str, str]:  # noqa: N802 (a table, by unit)
    """Units of the ao record's floating-point fields when its value is in ``egu``."""
    like_value = (
        "DRVH DRVL HOPR LOPR HIHI HIGH LOW LOLO OVAL PVAL IVOV MLST LALM ALST HYST AOFF EGUF "
        "EGUL EOFF ADEL MDEL"
    )
    return dict.fromkeys(("", *like_value.split()), egu) | {"OROC": egu, "SDLY": "s"}


BO_FIELD_UNITS = {"HIGH": "s", "SDLY": "s"}
"""Units of the bo record's floating-point fields (HIGH: seconds to hold high)."""

DELAY_FIELD_UNITS = {"SDLY": "s"}
"""Units of the floating-point fields of bi, mbbo, lsi and stringin records."""

MBBI_FIELD_UNITS = {"SDLY": "s", "AFTC": "s"}
"""Units of the mbbi record's floating-point fields (AFVL is a severity)."""


class RecordDouble(PvpropertyDouble):
    """A double record value (or field) whose putter decides about every put.

    caproto's numeric channels refuse a put outside the control limits with an error and
    compute an alarm from their alarm limits before the putter runs. A record does neither
    by itself: the motor record accepts a target outside its soft limits and answers with
    ``.LVIO`` (the put succeeds, nothing moves), a record posts its own alarm. Puts from
    clients go straight to the putter; writes by the IOC itself bypass it as usual
    (``write(..., verify_value=False)``).
    """

    async def verify_value(self, value: Any) -> Any:
        if self.putter is not None:
            return await self.putter(self, value)
        return value


class RecordInteger(PvpropertyInteger):
    """An integer record value whose putter decides about every put (as :class:`RecordDouble`)."""

    async def verify_value(self, value: Any) -> Any:
        if self.putter is not None:
            return await self.putter(self, value)
        return value


def long_string(name: str, doc: str) -> Any:
    """A read-only long-string (lsi) record of up to 511 characters (a message).

    Longer than the 40 characters of a DBR_STRING: clients read it as a character array
    (pyepics ``caget(..., as_string=True)``, ``caget -S``, ophyd ``EpicsSignalRO(string=True)``).
    """
    return pvproperty(
        name=name,
        value="",
        dtype=ChannelType.CHAR,
        max_length=512,
        record="lsi",
        read_only=True,
        doc=doc,
    )


def forward_put(name: str) -> Callable[..., Any]:
    """A caproto field putter that hands a put to its group: ``put_field(name, channel, value)``.

    Registered for each field a record handles (``pvproperty.fields.<attr>.putter``), so
    that one method of the record's PVGroup dispatches them, instead of one decorated
    function per field.
    """

    async def putter(fields: Any, instance: Any, value: Any) -> Any:
        return await fields.parent.group.put_field(name, instance, value)

    return putter


def refuse(channel: Any, message: str) -> NoReturn:
    """Refuse a put to ``channel``: the client's put fails with ``message``.

    caproto answers an exception from a putter with a failed put (``ECA_PUTFAIL`` and the
    message), and also leaves the channel in WRITE/MAJOR alarm for good. A record that
    refuses a put is not in alarm afterwards, so the alarm the channel had is restored
    once caproto has posted its own (the client sees a transient WRITE alarm).

    Raises
    ------
    ValueError
        Always, with ``message``.
    """
    alarm = channel.alarm
    status, severity = alarm.status, alarm.severity

    def restore() -> None:
        asyncio.ensure_future(alarm.write(status=status, severity=severity))

    asyncio.get_running_loop().call_soon(restore)
    raise ValueError(message)


def severity_of(field: Any) -> AlarmSeverity:
    """The severity a menuAlarmSevr field (``.HSV``, ``.HLSV``, ...) selects."""
    value = field.value
    if isinstance(value, str):
        return AlarmSeverity(SEVERITY_NAMES.index(value))
    return AlarmSeverity(int(value))


def analog_alarm(record: Any, value: float) -> tuple[AlarmStatus, AlarmSeverity]:
    """Alarm of an analog record's value, as the EPICS ai record's ``checkAlarms`` does.

    A limit is live when its severity field is not NO_ALARM; the checks run HIHI, LOLO,
    HIGH, LOW and the first that trips wins. The limits are the record's alarm limits
    (``.HIHI`` and the others are caproto views of the value's alarm metadata).

    Parameters
    ----------
    record
        The record's value (a ``pvproperty(record="ai")`` instance).
    value
        The record's new value.
    """
    fields = record.field_inst
    checks = (
        (record.upper_alarm_limit, fields.hihi_severity, AlarmStatus.HIHI, value.__ge__),
        (record.lower_alarm_limit, fields.lolo_severity, AlarmStatus.LOLO, value.__le__),
        (record.upper_warning_limit, fields.high_severity, AlarmStatus.HIGH, value.__ge__),
        (record.lower_warning_limit, fields.low_severity, AlarmStatus.LOW, value.__le__),
    )
    for limit, severity_field, status, trips in checks:
        severity = severity_of(severity_field)
        if severity != AlarmSeverity.NO_ALARM and trips(float(limit)):
            return status, severity
    return AlarmStatus.NO_ALARM, AlarmSeverity.NO_ALARM


async def write_with_alarm(
    record: Any, value: Any, status: AlarmStatus, severity: AlarmSeverity
) -> None:
    """Write a record's new value with its alarm, in one monitor update.

    The alarm goes with the value only when it changed (STAT/SEVR are posted then too).
    """
    alarm = record.alarm
    changed = alarm.status != status or alarm.severity != severity
    extra = {"status": status, "severity": severity} if changed else {}
    await record.write(value, verify_value=False, **extra)


async def post_alarm(channel: Any, status: AlarmStatus, severity: AlarmSeverity) -> bool:
    """Set a record's alarm (STAT, SEVR, and every channel sharing it) if it changed.

    Returns
    -------
    bool
        True if the alarm changed (and was posted).
    """
    alarm = channel.alarm
    if alarm.status == status and alarm.severity == severity:
        return False
    await alarm.write(status=status, severity=severity)
    return True


async def set_value(channel: Any, value: Any) -> None:
    """Write ``value`` to ``channel`` as the IOC (no putter), only if it changed.

    A numeric or menu field that no client monitors only has its value and timestamp stored: a
    caproto write (~20 us of metadata and publishing bookkeeping) would send nothing, and a
    motor record updates a dozen such fields per move. A read, or a subscription made later,
    gets the stored value as from any write.
    """
    if channel.value == value:
        return
    plain = (isinstance(value, int | float) and isinstance(channel, ChannelNumeric)) or (
        isinstance(channel, ChannelEnum) and value in channel.enum_strings
    )
    # caproto has no public way to store a value without its write machinery: its channel
    # data's own fields, as ChannelData.write fills them.
    if plain:
        if not channel._fill_at_next_write and not _monitored(channel):  # noqa: SLF001
            channel._data["value"] = value  # noqa: SLF001
            channel._data["timestamp"] = TimeStamp.now()  # noqa: SLF001
            return
    await channel.write(value, verify_value=False)


def _monitored(channel: Any) -> bool:
    """True if a client subscribes to ``channel`` (caproto keeps emptied entries)."""
    return any(
        specs
        for by_sync in channel._queues.values()  # noqa: SLF001 - caproto's subscriptions
        for by_type in by_sync.values()
        for specs in by_type.values()
    )


async def describe(
    record: Any,
    *,
    description: str | None = None,
    units: str | None = None,
    precision: int | None = None,
    field_units: Mapping[str, str] | None = None,
    display_limits: Mapping[str, tuple[float, float]] | None = None,
    control_limits: Mapping[str, tuple[float, float]] | None = None,
    publish: bool = True,
) -> None:
    """Give a record and its fields what a stock client reads with their values.

    Parameters
    ----------
    record
        The record's value (a ``pvproperty(record=...)`` instance).
    description
        ``.DESC`` (default: the value's docstring, from ``pvproperty(doc=...)``).
    units
        The record's engineering units: ``.EGU`` and the units of the value.
    precision
        ``.PREC``: the precision of the value and of every floating-point field (a record
        reports its PREC for all of them, as the motor record does); for a record without
        PREC (bo), the precision of its floating-point fields.
    field_units
        Units of fields by field name (``{"VELO": "um/s"}``).
    display_limits
        Display limits (low, high) by field name; ``""`` is the value itself.
    control_limits
        Control limits (low, high) by field name (what ``DBR_CTRL`` reports; ophyd's
        ``limits`` and bluesky descriptors' ``lower_ctrl_limit``/``upper_ctrl_limit``).
    publish
        Post metadata changes to clients. caproto 1.3 sends a metadata change to every
        subscriber of the channel as a value update (it ignores the subscription's event
        mask), so changes that only screens care about can be left unposted.
    """
    fields = record.field_inst
    # caproto serves .DESC from the value's __doc__ on a read, but sends the field's own
    # value to a new subscriber (pyepics' caget subscribes first): keep both.
    if description is not None:
        record.__doc__ = description
    if record.__doc__:
        await set_value(fields.description, record.__doc__)
    if units is not None:
        await fields.engineering_units.write(units[:EGU_FIELD_CHARS], verify_value=False)
        await record.write_metadata(units=ctrl_units(units))
    if precision is not None:
        prec = getattr(fields, "display_precision", None)  # a bo record has no PREC
        if prec is not None:
            await prec.write(precision, verify_value=False)
        for channel in _float_channels(record):
            if channel.precision != precision:
                await channel.write_metadata(precision=precision, publish=publish)
    for name, unit in (field_units or {}).items():
        channel = record.get_field(name)
        if channel.units != ctrl_units(unit):
            await channel.write_metadata(units=ctrl_units(unit), publish=publish)
    for name, (low, high) in (display_limits or {}).items():
        channel = record.get_field(name)
        if (channel.lower_disp_limit, channel.upper_disp_limit) != (low, high):
            await channel.write_metadata(
                lower_disp_limit=low, upper_disp_limit=high, publish=publish
            )
    for name, (low, high) in (control_limits or {}).items():
        channel = record.get_field(name)
        if (channel.lower_ctrl_limit, channel.upper_ctrl_limit) != (low, high):
            await channel.write_metadata(
                lower_ctrl_limit=low, upper_ctrl_limit=high, publish=publish
            )


EGU_FIELD_CHARS = 15
"""Characters an ``.EGU`` field holds (a DBF_STRING of 16 bytes with its NUL)."""

CTRL_UNITS_CHARS = 7
"""Characters of units a ``DBR_CTRL``/``DBR_GR`` value carries (8 bytes with the NUL)."""


def ctrl_units(units: str) -> str:
    """``units`` as a record reports them with a value: cut to :data:`CTRL_UNITS_CHARS`.

    An IOC copies a record's units into the 8-byte units of ``DBR_CTRL`` and cuts them
    there; caproto would instead fail to pack longer units, and every ``DBR_CTRL``/``DBR_GR``
    read of the channel (ophyd's connection, ``caget -d CTRL``) would fail.
    """
    return units.encode("latin-1", "replace")[:CTRL_UNITS_CHARS].decode("latin-1")


def _float_channels(record: Any) -> Iterable[Any]:
    for channel in (record, *record.fields.values()):
        if channel.data_type in _FLOAT_TYPES:
            yield channel


FAULT_COUNT_MAX = 1_000_000
"""Largest number a simulator fault counter (a longout: faults still to inject) takes."""


async def describe_fault_count(record: Any, units: str) -> None:
    """Describe a simulator fault counter: units, its 0..:data:`FAULT_COUNT_MAX` limits."""
    await describe(record, units=units, precision=3, field_units=DELAY_FIELD_UNITS)
    fields = record.field_inst
    await fields.drive_high_limit.write(FAULT_COUNT_MAX, verify_value=False)
    await fields.drive_low_limit.write(0, verify_value=False)
    await record.write_metadata(lower_ctrl_limit=0, upper_ctrl_limit=FAULT_COUNT_MAX)


def fault_count(instance: Any, value: Any, units: str) -> int:
    """A put to a fault counter as an int, or refused naming the allowed range."""
    if not 0 <= int(value) <= FAULT_COUNT_MAX:
        refuse(instance, f"{instance.pvname}: {value} {units}; give 0 to {FAULT_COUNT_MAX}")
    return int(value)


async def take_fault(record: Any) -> bool:
    """True (and one fault less, posted) if the fault counter ``record`` has faults left."""
    left = int(record.value)
    if left <= 0:
        return False
    await record.write(left - 1, verify_value=False)
    return True


class _Waveform:
    """A waveform record's value whose ``.FTVL`` and ``.NORD`` say what it holds."""

    field_inst: Any
    value: Any
    ftvl: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fields = self.field_inst
        # Set before the IOC serves (no loop to await a write on yet): caproto's stored value.
        fields.field_type_of_value._data["value"] = self.ftvl  # noqa: SLF001
        fields.number_elements_read._data["value"] = len(self.value)  # noqa: SLF001

    async def update_fields(self, value: Any) -> None:
        await super().update_fields(value)  # type: ignore[misc]
        await set_value(self.field_inst.number_elements_read, len(value))


class _WaveformLong(_Waveform, PvpropertyIntegerRO):
    ftvl = "LONG"


class _WaveformDouble(_Waveform, PvpropertyDoubleRO):
    ftvl = "DOUBLE"


_WAVEFORMS: dict[ChannelType, type] = {
    ChannelType.LONG: _WaveformLong,
    ChannelType.DOUBLE: _WaveformDouble,
}


def waveform(
    name: str, dtype: ChannelType, value: Any, max_length: int, doc: str, **kwargs: Any
) -> Any:
    """A read-only waveform record of ``max_length`` elements of ``dtype`` (LONG, DOUBLE).

    ``.FTVL`` reads the element type and ``.NORD`` the number of elements of the value (a
    caproto waveform reads 0 and STRING).
    """
    return pvproperty(
        name=name,
        value=[value],
        dtype=_WAVEFORMS[dtype],
        max_length=max_length,
        record="waveform",
        read_only=True,
        doc=doc,
        **kwargs,
    )


_LIKE_VALUE_UNITS: dict[str, Callable[[str], dict[str, str]]] = {
    "ai": AI_FIELD_UNITS,
    "ao": AO_FIELD_UNITS,
}


def units_follow_egu(pvdb: Mapping[str, Any]) -> None:
    """Make a put to ``.EGU`` reach the units of the value (and of the fields in the same
    units, for ai and ao records), for every record of ``pvdb`` whose ``.EGU`` has no putter
    of its own (the motor record handles its own).
    """
    for channel in pvdb.values():
        fields = getattr(channel, "field_inst", None)
        egu = getattr(fields, "engineering_units", None)
        if egu is None or egu.pvspec.put is not None:
            continue
        egu.putter = _egu_putter(channel)


def _egu_putter(record: Any) -> Callable[..., Any]:
    async def putter(instance: Any, value: Any) -> str:
        units = str(value)[:EGU_FIELD_CHARS]
        # caproto names a record's type only in this class attribute.
        table = _LIKE_VALUE_UNITS.get(record.field_inst._record_type)  # noqa: SLF001
        names = [n for n, u in table(units).items() if n and u == units] if table else []
        await record.write_metadata(units=ctrl_units(units))
        for name in names:
            await record.get_field(name).write_metadata(units=ctrl_units(units))
        return units

    return putter
