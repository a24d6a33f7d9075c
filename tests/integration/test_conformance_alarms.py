"""Analog records alarm as EPICS ai records do, and the simulator's faults raise alarms.

Runs for every ai record any IOC of the registry serves: its alarm limits travel with the
value (DBR_CTRL), and a value beyond a live limit puts the record in alarm with the
limit's severity, which STAT/SEVR and the value's own alarm report alike.
"""

from __future__ import annotations

import epics
import pytest
from conformance_records import (  # noqa: F401 (pytest_generate_tests is a pytest hook)
    ServedRecord,
    pytest_generate_tests,
    records,
    wait_for,
)


def _alarm(name: str) -> tuple[str, str]:
    return (
        epics.caget(name + ".STAT", as_string=True, use_monitor=False),
        epics.caget(name + ".SEVR", as_string=True, use_monitor=False),
    )


@pytest.mark.parametrize(
    ("limit", "severity_field", "severity", "status"),
    [("LOW", "LSV", "MINOR", "LOW"), ("LOLO", "LLSV", "MAJOR", "LOLO")],
)
def test_a_value_below_a_live_limit_is_in_alarm(
    ai_record: ServedRecord, sim_fleet, limit, severity_field, severity, status
):
    name = ai_record.name
    saved = {
        f: epics.caget(f"{name}.{f}", as_string=f.endswith("SV"), use_monitor=False)
        for f in (limit, severity_field)
    }
    before = _alarm(name)
    others = {
        r.name: _alarm(r.name) for r in records() if r.ioc == ai_record.ioc and r != ai_record
    }
    value = epics.caget(name, use_monitor=False)
    try:
        epics.caput(f"{name}.{severity_field}", severity, wait=True)
        epics.caput(f"{name}.{limit}", abs(value) * 2 + 10, wait=True)
        wait_for(lambda: _alarm(name) == (status, severity), 3, f"{name} in {status} alarm")
        # The alarm is this record's own: the other records of the IOC are as they were.
        assert {r: _alarm(r) for r in others} == others
        pv = epics.get_pv(name)
        assert pv.wait_for_connection(5)
        ctrl = pv.get_ctrlvars()
        key = "lower_warning_limit" if limit == "LOW" else "lower_alarm_limit"
        assert ctrl[key] == pytest.approx(abs(value) * 2 + 10)
        assert ctrl["severity"] == ("NO_ALARM", "MINOR", "MAJOR").index(severity)
    finally:
        for field, old in saved.items():
            epics.caput(f"{name}.{field}", old, wait=True)
    wait_for(lambda: _alarm(name) == before, 3, f"{name} back to {before}")


def test_a_dumped_beam_is_a_major_alarm(sim_config, sim_fleet):
    current = sim_config.epics.prefixes.ring + "CURRENT"
    dump = sim_config.sim.control_prefix + "RING:BEAM_DUMP"
    assert _alarm(current) == ("NO_ALARM", "NO_ALARM")
    epics.caput(dump, "Dumped", wait=True)
    try:
        assert epics.caget(current, use_monitor=False) == 0.0
        assert _alarm(current) == ("LOLO", "MAJOR")
    finally:
        epics.caput(dump, "Stored", wait=True)
    assert _alarm(current) == ("NO_ALARM", "NO_ALARM")
