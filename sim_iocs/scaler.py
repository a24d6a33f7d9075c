"""The EPICS scaler record's fields, for caproto (which has no scaler record).

The synApps scaler record (``std`` module) is the convention stock clients know for
counting: ophyd's ``EpicsScaler`` and ``ScalerCH``, the synApps ``sscan``, Phoebus/MEDM
scaler screens. A count is a put of 1 to ``.CNT`` (with completion: it completes when the
count is done); ``.TP`` is the preset time, channel 1 counts the time base ``.FREQ`` (so
``.S1`` / ``.FREQ`` is the counting time), channels 2.. count inputs, each with a name
(``.NMn``), a preset (``.PRn``) and a gate (``.Gn`` = Y: the count stops when ``.Sn``
reaches ``.PRn``); a preset > 0 sets its gate, a gate set with no preset gets 1000. After a
count ``.VAL`` holds ``.T``; ``.VERS`` is the record's version, ``.COUT``/``.COUTP`` its
output links.

:func:`scaler_fields` makes the field group (``pvproperty(record=scaler_fields(32))``) with
the fields ophyd's ``ScalerCH`` connects to; :mod:`sim_iocs.apd` gives them behaviour.
"""

from __future__ import annotations

from functools import cache

from caproto import ChannelType
from caproto.server import pvproperty
from caproto.server.records import RecordFieldGroup

from sim_iocs.records import RecordDouble

__all__ = [
    "CNT",
    "CONT",
    "DIRECTION",
    "GATE",
    "SCALER_FIELD_UNITS",
    "SCALER_RECORD_VERSION",
    "scaler_fields",
]

SCALER_RECORD_VERSION = 3.19
"""``.VERS``: the version of the synApps scaler record whose behaviour this follows."""

CNT = ("Done", "Count")
CONT = ("OneShot", "AutoCount")
GATE = ("N", "Y")
DIRECTION = ("Up", "Dn")


def SCALER_FIELD_UNITS(channels: int) -> dict[str, str]:  # noqa: N802 (a table, by unit)
    """Units of the scaler record's numeric fields."""
    units = {"": "counts", "T": "s", "TP": "s", "TP1": "s", "DLY": "s", "DLY1": "s"}
    units |= {"FREQ": "Hz", "RATE": "Hz", "RAT1": "Hz"}
    for n in range(1, channels + 1):
        units |= {f"S{n}": "counts", f"PR{n}": "counts"}
    return units


def _enum(name: str, strings: tuple[str, ...], value: str, doc: str) -> pvproperty:
    return pvproperty(
        name=name, value=value, dtype=ChannelType.ENUM, enum_strings=strings, doc=doc
    )


def _double(name: str, value: float, doc: str, *, read_only: bool = False) -> pvproperty:
    dtype = ChannelType.DOUBLE if read_only else RecordDouble
    return pvproperty(name=name, value=value, dtype=dtype, read_only=read_only, doc=doc)


def _link(name: str, doc: str) -> pvproperty:
    """An output link field (``.COUT``, ``.COUTP``): its target, empty for none.

    The record writes CNT through these when a count starts and ends (COUTP also when CNT
    is put); the simulated record has no database to write to and keeps them empty.
    """
    return pvproperty(name=name, value="", dtype=ChannelType.STRING, read_only=True, doc=doc)


@cache
def scaler_fields(channels: int) -> type[RecordFieldGroup]:
    """The field group of a scaler record with ``channels`` channels (ScalerCH uses 32)."""
    props: dict[str, object] = {
        "_record_type": "scaler",
        "count": _enum("CNT", CNT, "Done", "Count"),
        "count_mode": _enum("CONT", CONT, "OneShot", "OneShot/AutoCount"),
        "delay": _double("DLY", 0.0, "Delay"),
        "auto_count_delay": _double("DLY1", 0.0, "Auto-mode Delay"),
        "freq": _double("FREQ", 1e7, "Time base freq"),
        "elapsed_time": _double("T", 0.0, "Timer", read_only=True),
        "preset_time": _double("TP", 1.0, "Time Preset"),
        "auto_count_time": _double("TP1", 1.0, "Auto Time Preset"),
        "update_rate": _double("RATE", 10.0, "Display Rate (Hz.)"),
        "auto_count_update_rate": _double("RAT1", 10.0, "Auto Display Rate (Hz.)"),
        "engineering_units": pvproperty(
            name="EGU", value="counts", dtype=ChannelType.STRING, doc="Units Name"
        ),
        "display_precision": pvproperty(
            name="PREC", value=5, dtype=ChannelType.INT, doc="Display Precision"
        ),
        "version": pvproperty(
            name="VERS",
            value=SCALER_RECORD_VERSION,
            dtype=ChannelType.DOUBLE,
            precision=2,
            read_only=True,
            doc="Code Version",
        ),
        "count_output": _link("COUT", "CNT Output"),
        "count_output_prompt": _link("COUTP", "CNT Output Prompt"),
        "channel_count": pvproperty(
            name="NCH",
            value=channels,
            dtype=ChannelType.INT,
            read_only=True,
            doc="Number of Channels",
        ),
    }
    for n in range(1, channels + 1):
        props[f"s{n}"] = pvproperty(
            name=f"S{n}", value=0, dtype=ChannelType.LONG, read_only=True, doc=f"Counts {n}"
        )
        props[f"pr{n}"] = pvproperty(
            name=f"PR{n}", value=0, dtype=ChannelType.LONG, doc=f"Preset {n}"
        )
        props[f"g{n}"] = _enum(f"G{n}", GATE, "N", f"Gate Control {n}")
        props[f"d{n}"] = _enum(f"D{n}", DIRECTION, "Up", f"Count Direction {n}")
        props[f"nm{n}"] = pvproperty(
            name=f"NM{n}", value="", dtype=ChannelType.STRING, doc=f"Scaler {n} name"
        )
    return type(f"ScalerFields{channels}", (RecordFieldGroup,), props)
