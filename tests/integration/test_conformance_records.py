"""Every simulated IOC serves EPICS records, and stock clients see what records report.

Runs for every IOC and every record of :data:`sim_iocs.registry.INSTRUMENTS` (see
``conformance_records.py``): no bare PVs; RTYP, NAME, DESC, STAT and SEVR on every record;
units and precision on every floating-point field; read-only fields refuse writes.
"""

from __future__ import annotations

import epics
import numpy as np
from conformance_records import (  # noqa: F401 (pytest_generate_tests is a pytest hook)
    ServedRecord,
    connect,
    pv_name,
    pytest_generate_tests,
    served,
)

from sim_iocs.records import DIMENSIONLESS_FIELDS, SEVERITY_NAMES

_FLOATS = ("DOUBLE", "FLOAT")


def test_ioc_serves_records_not_bare_pvs(ioc, sim_fleet):
    records, bare = served()
    assert not [pv.name for pv in bare if pv.ioc == ioc], "PVs that are not records"
    mine = [r for r in records if r.ioc == ioc]
    assert mine, f"{ioc} serves no records"
    connect([r.name for r in mine])


def test_record_reports_its_identity_and_alarm(record: ServedRecord, sim_fleet):
    pvs = connect([pv_name(record, f) for f in ("RTYP", "NAME", "DESC", "STAT", "SEVR")])
    assert pvs[pv_name(record, "RTYP")].get(as_string=True) == record.rtyp
    assert pvs[pv_name(record, "NAME")].get(as_string=True) == record.name
    assert pvs[pv_name(record, "DESC")].get(as_string=True).strip(), "empty .DESC"
    value = epics.get_pv(record.name)
    assert value.wait_for_connection(10)
    value.get(use_monitor=False)
    # The alarm a client gets with the value is the record's STAT/SEVR.
    assert pvs[pv_name(record, "SEVR")].get(as_string=True) == SEVERITY_NAMES[value.severity]
    assert pvs[pv_name(record, "STAT")].get() == value.status


def test_floating_point_fields_have_units_and_precision(record: ServedRecord, sim_fleet):
    floats = [f for f, kind in record.fields.items() if kind in _FLOATS]
    pvs = connect([pv_name(record, f) for f in floats])
    prec = None
    if "PREC" in record.fields:
        prec = epics.caget(pv_name(record, "PREC"), use_monitor=False)
    dimensionless = DIMENSIONLESS_FIELDS.get(record.rtyp, frozenset())
    problems = []
    for f in floats:
        ctrl = pvs[pv_name(record, f)].get_ctrlvars()
        label = f or "VAL"
        if f not in dimensionless and not ctrl["units"]:
            problems.append(f"{label}: no units")
        if prec is not None and ctrl["precision"] != prec:
            problems.append(f"{label}: precision {ctrl['precision']}, PREC is {prec}")
        if prec is None and ctrl["precision"] < 1:
            problems.append(f"{label}: precision {ctrl['precision']}")
    assert not problems, f"{record.name}: {problems}"


def test_read_only_fields_refuse_writes(record: ServedRecord, sim_fleet):
    pvs = connect([pv_name(record, f) for f in sorted(record.read_only)])
    writable = [name for name, pv in pvs.items() if pv.write_access]
    assert not writable, f"read-only fields a client may write: {writable}"
    if "" not in record.read_only:
        assert epics.get_pv(record.name).wait_for_connection(10)
        assert epics.get_pv(record.name).write_access


def test_waveforms_report_their_element_type_and_length(waveform_record: ServedRecord, sim_fleet):
    name = waveform_record.name
    pvs = connect([name, name + ".FTVL", name + ".NORD", name + ".NELM"])
    value = pvs[name].get(use_monitor=False)
    ftvl = pvs[name + ".FTVL"].get(as_string=True, use_monitor=False)
    assert ftvl == waveform_record.fields[""]  # LONG, DOUBLE: the type clients receive
    nord = pvs[name + ".NORD"].get(use_monitor=False)
    assert 0 < nord <= pvs[name + ".NELM"].get(use_monitor=False)
    assert len(np.atleast_1d(value)) >= nord


def test_an_egu_put_reaches_the_units_clients_read(ai_record: ServedRecord, sim_fleet):
    name = ai_record.name
    value = connect([name])[name]
    egu = epics.caget(name + ".EGU", as_string=True, use_monitor=False)
    try:
        assert epics.caput(name + ".EGU", "counts", wait=True) == 1
        assert value.get_ctrlvars()["units"] == "counts"
        assert epics.get_pv(name + ".HOPR").get_ctrlvars()["units"] == "counts"
    finally:
        epics.caput(name + ".EGU", egu, wait=True)
    assert value.get_ctrlvars()["units"] == egu
