"""The how-to for adding an instrument, run as written: a module and one table entry on
each side (simulated IOC, ophyd device), and the fleet, its manifest, the CA address list,
the fixtures and build_devices pick the instrument up with no other edit; its PV prefix and
settings come from the configuration."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pytest
from conftest import free_port_overrides

from devices.stxm import DeviceEntry
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
    said = re.search(r"Adding an instrument takes\s+(\w+)\s+edits", text)
    assert said, f"{HOW_TO} no longer says how many edits an instrument takes"
    edits = _edits(text)
    assert len(edits) == _NUMBERS[said.group(1)], (
        f"the page says {said.group(1)} edits but marks {sorted(edits)}"
    )
    # On each side a new module and one entry in the table: nothing else to touch.
    tables = {"sim_iocs/registry.py", "devices/stxm.py"}
    assert tables <= set(edits), sorted(edits)
    modules = sorted(set(edits) - tables)
    assert [m.split("/")[0] for m in modules] == ["devices", "sim_iocs"], modules


@dataclass(frozen=True)
class Heater:
    """The page's heater: its registry entry and its device entry, modules on the path."""

    instrument: SimInstrument
    device: DeviceEntry


def _module_name(path: str) -> str:
    """Where a marked module goes in the test: ``sim_iocs/heater.py`` -> ``sim_iocs_heater``
    (a test does not write into the project's packages)."""
    return path.removesuffix(".py").replace("/", "_")


@pytest.fixture
def heater(tmp_path, monkeypatch) -> Heater:
    """Every block the page marks, in place: its modules on the path (of this process, the
    IOCs and the clients), its entries evaluated with the modules' test locations."""
    edits = _edits(HOW_TO.read_text())
    for path, source in edits.items():
        if path not in ("sim_iocs/registry.py", "devices/stxm.py"):
            (tmp_path / f"{_module_name(path)}.py").write_text(source)
    moved = {path.removesuffix(".py").replace("/", "."): _module_name(path) for path in edits}

    def relocated(factory: str) -> str:
        module, _, function = factory.partition(":")
        return f"{moved.get(module, module)}:{function}"

    instrument = eval(edits["sim_iocs/registry.py"], {"SimInstrument": SimInstrument})
    instrument = replace(instrument, factory=relocated(instrument.factory))
    device = eval(edits["devices/stxm.py"], {"DeviceEntry": DeviceEntry})
    device = replace(device, factory=relocated(device.factory))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return Heater(instrument, device)


_READ_WITH_OPHYD = """
import json, sys
from devices.stxm import DEVICES, DeviceEntry, build_devices
from stxm_ctrl.config import BeamlineConfig

config = BeamlineConfig.model_validate_json(open(sys.argv[1]).read())
devices = build_devices(config, entries=(*DEVICES, DeviceEntry(**json.loads(sys.argv[2]))))
heater = devices.heater
heater.wait_for_connection(timeout=30)
heater.setpoint.set(330.0).wait(timeout=10)
reading = heater.read()
try:
    devices.hetaer
except AttributeError as exc:
    unknown = str(exc)
print(json.dumps({
    "names": list(devices.by_name()),
    "wired": [
        devices.polarization.energy is devices.energy,
        devices.interlock is devices.energy.interlock,
        devices.a0.z.move_factor == config.epics.timeouts.move_factor,
    ],
    "unknown": unknown,
    "prefix": heater.prefix,
    "reading": sorted(reading),
    "temperature": reading["heater_temperature"]["value"],
    "setpoint": heater.setpoint.get(),
    "units": heater.describe()["heater_temperature"]["units"],
    "configuration": sorted(heater.read_configuration()),
}))
"""


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


def test_a_new_instrument_needs_a_module_and_an_entry_on_each_side(heater, tmp_path):
    instruments = (*INSTRUMENTS, heater.instrument)
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
            "get",
            client_env,
            "-d",
            "control",
            "--format",
            "{response.metadata}",
            "TEST:OVEN:TEMPERATURE",
        )
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
        module = __import__("sim_iocs_heater")
        layout: BlockLayout = module.HEATER
        approach = World(manifest.world_dir).reader(layout).read()
        assert float(approach["setpoint_K"]) == 350.0
        assert float(approach["tau_s"]) == 4.0
        later = module.temperature_K(approach, time.monotonic() + 60.0)
        assert later == pytest.approx(350.0, abs=0.01)

        # Stock ophyd drives it through build_devices (a client process of its own, as a
        # session is), under the same configured prefix.
        config_json = tmp_path / "config.json"
        config_json.write_text(config.model_dump_json())
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                _READ_WITH_OPHYD,
                str(config_json),
                json.dumps(asdict(heater.device)),
            ],
            capture_output=True,
            text=True,
            env=client_env,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        seen = json.loads(result.stdout.splitlines()[-1])
        # The composite keeps the beamline's devices, typed and wired, and adds the heater.
        beamline = [
            "sample_x",
            "sample_y",
            "apd",
            "ring",
            "zone_plate",
            "osa",
            "a0",
            "detector",
            "energy",
            "polarization",
            "fly",
            "stage",
        ]
        assert seen["names"] == [*beamline, "heater"]
        assert seen["wired"] == [True, True, True]
        assert seen["unknown"].startswith("no device 'hetaer'; the devices are: sample_x")
        assert seen["prefix"] == "TEST:OVEN:"
        assert seen["reading"] == ["heater_temperature"]
        assert seen["configuration"] == ["heater_setpoint"]
        assert seen["setpoint"] == 330.0 and seen["units"] == "K"
        assert 300.0 < seen["temperature"] < 350.0
        assert float(World(manifest.world_dir).reader(layout).read()["setpoint_K"]) == 330.0
    assert not (config.sim_dir / "fleet.json").exists()  # withdrawn on stop


def test_prefix_and_settings_come_from_the_configuration_or_the_entry(heater):
    instrument, device = heater.instrument, heater.device
    assert instrument_prefix(load_config(), instrument) == "STXM:HEATER:"  # the default
    assert device.default_prefix == instrument.default_prefix  # both sides serve one name
    assert instrument_settings(load_config(), instrument) == {"tau_s": 2.0}
    configured = load_config(
        overrides={
            "epics": {"prefixes": {"heater": "X07DA-ES-OVEN:"}},
            "sim": {"iocs": {"heater": {"tau_s": 5}}},
        }
    )
    assert instrument_prefix(configured, instrument) == "X07DA-ES-OVEN:"
    assert instrument_settings(configured, instrument) == {"tau_s": 5.0}
    # The beamline's own subsystems keep their keys and defaults.
    ring = next(i for i in INSTRUMENTS if i.name == "ring")
    assert instrument_prefix(load_config(), ring) == "STXM:RING:"
    renamed = load_config(overrides={"epics": {"prefixes": {"ring": "X07DA-RING:"}}})
    assert instrument_prefix(renamed, ring) == "X07DA-RING:"


def test_an_inconsistent_table_is_refused_before_anything_starts(heater, tmp_path):
    reader = SimInstrument("probe", "sim_iocs_heater:build", 5090, reads=("cryostat",))
    config = load_config(overrides=free_port_overrides(tmp_path / "data"))
    with pytest.raises(ValueError, match="reads world block 'cryostat', which no IOC"):
        SimFleet(config, instruments=(*INSTRUMENTS, reader))
    twin = SimInstrument("heater2", "sim_iocs_heater:build", 5091, owns=("ring",))
    with pytest.raises(ValueError, match="'ring' is owned by both 'ring' and 'heater2'"):
        SimFleet(config, instruments=(*INSTRUMENTS, twin))
    unknown = load_config(
        overrides={
            **free_port_overrides(tmp_path / "data"),
            "sim": {"iocs": {"hetaer": {"port": 6000}}},
        }
    )
    with pytest.raises(ValueError, match=r"\[sim.iocs.hetaer\] \(did you mean 'heater'\?\)"):
        SimFleet(unknown, instruments=(*INSTRUMENTS, heater.instrument))
    fleet = (*INSTRUMENTS, heater.instrument)
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
    nameless = SimInstrument("oven", "sim_iocs_heater:build", 5092)
    with pytest.raises(ValueError, match=r'no PV prefix: set \[epics.prefixes\] oven = "..."'):
        SimFleet(config, instruments=(*INSTRUMENTS, nameless))
