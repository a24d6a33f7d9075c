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
from sim_iocs.registry import INSTRUMENTS, SimInstrument
from sim_iocs.world import BlockLayout, World
from stxm_ctrl.config import load_config
from stxm_ctrl.epics_env import ca_client_environment
from stxm_ctrl.fleet_manifest import running_fleet_manifest

HOW_TO = Path(__file__).parents[2] / "docs" / "how-to" / "add-a-simulated-instrument.md"


def _block_after(marker: str, text: str) -> str:
    match = re.search(re.escape(marker) + r"\s*```python\n(.*?)```", text, re.S)
    assert match, f"no python block after {marker!r} in {HOW_TO}"
    return match.group(1)


@pytest.fixture
def heater(tmp_path, monkeypatch):
    """The how-to's module on the path (of this process and the IOCs), and its entry."""
    text = HOW_TO.read_text()
    (tmp_path / "heater.py").write_text(_block_after("<!-- module: sim_iocs/heater.py -->", text))
    entry_source = _block_after("<!-- registry entry -->", text)
    entry = eval(entry_source, {"SimInstrument": SimInstrument})  # the page's own entry
    # Only the module's location differs: a test does not write into sim_iocs/.
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
    config = load_config(overrides=free_port_overrides(tmp_path / "data", instruments))
    heater_port = config.sim.iocs["heater"].port  # the fixture helper gave it a free port
    with SimFleet(config, instruments=instruments):
        # The manifest, and with it every client's address list, includes the heater.
        manifest = running_fleet_manifest(config.sim_dir)
        assert manifest.ports()["heater"] == heater_port
        env = ca_client_environment(config)
        assert f"127.0.0.1:{heater_port}" in env["EPICS_CA_ADDR_LIST"].split()

        # A stock client reads and writes its PVs, with units and precision.
        client_env = {**os.environ, **env}
        control = _caproto(
            "get",
            client_env,
            "-d",
            "control",
            "--format",
            "{response.metadata}",
            "STXM:HEATER:TEMPERATURE",
        )
        assert "units=b'K'" in control and "precision=2" in control, control
        assert "300" in _caproto("get", client_env, "STXM:HEATER:TEMPERATURE")
        _caproto("put", client_env, "STXM:HEATER:SETPOINT", "350")
        time.sleep(1.0)  # half a time constant
        text = _caproto("get", client_env, "STXM:HEATER:TEMPERATURE").split()[-1]
        reading = float(text.strip("[]"))
        assert 300.0 < reading < 350.0  # on its way, not there: it takes time

        # Its world block is there for any other IOC to read.
        module = __import__("heater")
        layout: BlockLayout = module.HEATER
        approach = World(manifest.world_dir).reader(layout).read()
        assert float(approach["setpoint_K"]) == 350.0
        later = module.temperature_K(approach, time.monotonic() + 30.0)
        assert later == pytest.approx(350.0, abs=0.01)
    assert not (config.sim_dir / "fleet.json").exists()  # withdrawn on stop


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
