"""The how-to for adding a simulated instrument, run as written: one module and one
registry entry, and the fleet, its manifest, the CA address list and the fixtures pick the
instrument up with no other edit."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import free_port_overrides

from sim_iocs.fleet import SimFleet
from sim_iocs.registry import (
    INSTRUMENTS,
    SimInstrument,
    instrument_prefix,
    instrument_settings,
)
from sim_iocs.world import BlockLayout, World
from stxm_ctrl.config import load_config
from stxm_ctrl.epics_env import ca_client_environment
from stxm_ctrl.fleet_manifest import running_fleet_manifest

HOW_TO = Path(__file__).parents[2] / "docs" / "how-to" / "add-a-simulated-instrument.md"
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}


def _edits(text: str) -> dict[str, str]:
    """The page's code blocks by the file each goes into (its marker comment)."""
    marked = re.findall(r"<!-- (?:new file|edit): (\S+)[^>]*-->\s*```python\n(.*?)```", text, re.S)
    return dict(marked)


def test_the_page_marks_as_many_files_as_it_says_an_instrument_takes():
    text = HOW_TO.read_text()
    said = re.search(r"Adding an instrument takes (\w+)\s+edits", text)
    assert said, f"{HOW_TO} no longer says how many edits an instrument takes"
    edits = _edits(text)
    assert len(edits) == _NUMBERS[said.group(1)], (
        f"the page says {said.group(1)} edits but marks {sorted(edits)}"
    )
    # One new module beside the IOCs, and one entry in the registry: nothing else to touch.
    assert "sim_iocs/registry.py" in edits
    modules = [path for path in edits if path != "sim_iocs/registry.py"]
    assert len(modules) == 1 and modules[0].startswith("sim_iocs/"), modules


@pytest.fixture
def heater(tmp_path, monkeypatch):
    """Every block the page marks, in place: its module on the path (of this process and
    the IOCs), its registry entry evaluated."""
    entry = None
    for path, source in _edits(HOW_TO.read_text()).items():
        if path == "sim_iocs/registry.py":
            entry = eval(source, {"SimInstrument": SimInstrument})  # the page's own entry
        else:  # a test does not write into sim_iocs/: the module goes on the path instead
            (tmp_path / Path(path).name).write_text(source)
    assert isinstance(entry, SimInstrument), "the page has no registry entry block"
    # Only the module's location differs.
    entry = SimInstrument.from_json({**entry.to_json(), "factory": "heater:build"})
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return entry


def _caproto(verb: str, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", f"caproto.commandline.{verb}", "--no-repeater", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_new_instrument_needs_one_module_and_one_registry_entry(heater, tmp_path):
    instruments = (*INSTRUMENTS, heater)
    overrides = free_port_overrides(tmp_path / "data", instruments)
    # The beamline's own name for it and a slower heater: configuration, not code.
    overrides["epics"] = {"prefixes": {"heater": "TEST:OVEN:"}}
    overrides["sim"]["iocs"]["heater"]["tau_s"] = 4.0
    config = load_config(overrides=overrides)
    heater_port = config.sim.iocs["heater"].port  # the fixture helper gave it a free port
    with SimFleet(config, instruments=instruments):
        # The manifest, and with it every client's address list, includes the heater.
        manifest = running_fleet_manifest(config.sim_dir)
        assert manifest.ports()["heater"] == heater_port
        env = ca_client_environment(config)
        assert f"127.0.0.1:{heater_port}" in env["EPICS_CA_ADDR_LIST"].split()

        # A stock client reads and writes its records under the configured prefix, with
        # units, precision and a description.
        client_env = {**os.environ, **env}
        control = _caproto(
            "get", client_env, "-d", "control", "--format", "{response.metadata}",
            "TEST:OVEN:TEMPERATURE",
        )  # fmt: skip
        assert "units=b'K'" in control and "precision=2" in control, control
        assert "Sample temperature" in _caproto("get", client_env, "TEST:OVEN:TEMPERATURE.DESC")
        assert "300" in _caproto("get", client_env, "TEST:OVEN:TEMPERATURE")
        _caproto("put", client_env, "TEST:OVEN:SETPOINT", "350")
        time.sleep(1.0)  # a quarter of the configured time constant
        text = _caproto("get", client_env, "TEST:OVEN:TEMPERATURE").split()[-1]
        reading = float(text.strip("[]"))
        assert 300.0 < reading < 350.0  # on its way, not there: it takes time
        # The entry's default prefix is not served when the configuration gives another.
        unserved = _caproto("get", client_env, "--timeout", "2", "STXM:HEATER:TEMPERATURE")
        assert "Timed out while awaiting a response from the search" in unserved, unserved

        # Its world block is there for any other IOC to read, with the configured setting.
        module = __import__("heater")
        layout: BlockLayout = module.HEATER
        approach = World(manifest.world_dir).reader(layout).read()
        assert float(approach["setpoint_K"]) == 350.0
        assert float(approach["tau_s"]) == 4.0
        later = module.temperature_K(approach, time.monotonic() + 60.0)
        assert later == pytest.approx(350.0, abs=0.01)
    assert not (config.sim_dir / "fleet.json").exists()  # withdrawn on stop


def test_prefix_and_settings_come_from_the_configuration_or_the_entry(heater):
    assert instrument_prefix(load_config(), heater) == "STXM:HEATER:"  # the entry's default
    assert instrument_settings(load_config(), heater) == {"tau_s": 2.0}
    configured = load_config(
        overrides={
            "epics": {"prefixes": {"heater": "X07DA-ES-OVEN:"}},
            "sim": {"iocs": {"heater": {"tau_s": 5}}},
        }
    )
    assert instrument_prefix(configured, heater) == "X07DA-ES-OVEN:"
    assert instrument_settings(configured, heater) == {"tau_s": 5.0}
    # The beamline's own subsystems keep their keys and defaults.
    ring = next(i for i in INSTRUMENTS if i.name == "ring")
    assert instrument_prefix(load_config(), ring) == "STXM:RING:"
    renamed = load_config(overrides={"epics": {"prefixes": {"ring": "X07DA-RING:"}}})
    assert instrument_prefix(renamed, ring) == "X07DA-RING:"


def test_an_inconsistent_table_is_refused_before_anything_starts(heater, tmp_path):
    reader = SimInstrument("probe", "heater:build", 5090, reads=("cryostat",))
    config = load_config(overrides=free_port_overrides(tmp_path / "data"))
    with pytest.raises(ValueError, match="reads world block 'cryostat', which no IOC"):
        SimFleet(config, instruments=(*INSTRUMENTS, reader))
    twin = SimInstrument("heater2", "heater:build", 5091, owns=("ring",))
    with pytest.raises(ValueError, match="'ring' is owned by both 'ring' and 'heater2'"):
        SimFleet(config, instruments=(*INSTRUMENTS, twin))
    unknown = load_config(
        overrides={
            **free_port_overrides(tmp_path / "data"),
            "sim": {"iocs": {"hetaer": {"port": 6000}}},
        }
    )
    with pytest.raises(ValueError, match=r"\[sim.iocs.hetaer\] \(did you mean 'heater'\?\)"):
        SimFleet(unknown, instruments=(*INSTRUMENTS, heater))
    fleet = (*INSTRUMENTS, heater)
    for overrides, message in (
        (
            {"epics": {"prefixes": {"haeter": "T:"}}},
            r"\[epics.prefixes\] haeter: no simulated IOC .*\(did you mean 'heater'\?\)",
        ),
        (
            {"sim": {"iocs": {"heater": {"tua_s": 4.0}}}},
            r"\[sim.iocs.heater\] tua_s: .* no such setting \(did you mean 'tau_s'\?\); "
            r"its keys are: port, tau_s",
        ),
        (
            {"sim": {"iocs": {"heater": {"tau_s": "slow"}}}},
            r"\[sim.iocs.heater\] tau_s = 'slow': give a float \(the default is 2.0\)",
        ),
    ):
        bad = load_config(overrides=free_port_overrides(tmp_path / "data", fleet))
        bad = bad.with_overrides(overrides)
        with pytest.raises(ValueError, match=message):
            SimFleet(bad, instruments=fleet)
    nameless = SimInstrument("oven", "heater:build", 5092)
    with pytest.raises(ValueError, match=r'no PV prefix: set \[epics.prefixes\] oven = "..."'):
        SimFleet(config, instruments=(*INSTRUMENTS, nameless))
