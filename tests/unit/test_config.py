"""Configuration: the defaults load, bad files get errors that say what to fix, moved keys
say where they went, and the shipped file and reference page match the models."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from stxm_ctrl.config import CONFIG_ENV_VAR, ConfigError, load_config
from stxm_ctrl.config_docs import (
    DEFAULT_TOML_PATH,
    REFERENCE_PATH,
    default_config_text,
    render_default_toml,
    render_reference,
)


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "beamline.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_defaults_are_valid_and_simulated_on_loopback():
    config = load_config()
    assert config.source == "<shipped default>"
    assert config.sim.host == "127.0.0.1"
    assert config.catalog.host == "127.0.0.1"
    assert config.catalog.embedded
    assert config.simulated
    stage = config.sim.stages.sample_x
    assert stage.low_limit_um < stage.high_limit_um
    assert config.epics.prefixes.sample_stage + config.epics.axes.sample_x == "STXM:SMP:X"


def test_file_values_merge_over_the_default(tmp_path):
    config = load_config(write(tmp_path, "[sim.stages.sample_x]\nhigh_limit_um = 150.0\n"))
    assert config.sim.stages.sample_x.high_limit_um == 150.0
    assert config.sim.stages.sample_x.low_limit_um == -2000.0  # kept from the default
    assert config.sim.stages.sample_y.high_limit_um == 2000.0
    assert config.source == str(tmp_path / "beamline.toml")


def test_environment_variable_names_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, '[beamline]\nname = "from the environment"\n')
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
    assert load_config().beamline.name == "from the environment"


def test_a_beamline_file_for_real_iocs_needs_no_sim_section(tmp_path):
    text = (
        '[beamline]\nname = "X07DA"\n[epics]\nca_addr_list = ["10.1.2.3"]\n'
        '[epics.prefixes]\nsample_stage = "X07DA-ES-SMP:"\n'
    )
    config = load_config(write(tmp_path, text))
    assert not config.simulated
    assert config.epics.prefixes.sample_stage == "X07DA-ES-SMP:"


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[sim.ring]\nfill_curent_mA = 250.0\n"))
    message = str(info.value)
    assert "sim.ring.fill_curent_mA: unknown key in [sim.ring]" in message
    assert "did you mean 'fill_current_mA'?" in message


def test_wrong_unit_is_recognised(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[sim.stages.sample_x]\nhigh_limit_mm = 2.0\n"))
    message = str(info.value)
    assert "sim.stages.sample_x.high_limit_mm: wrong unit" in message
    assert "'high_limit_um'" in message


@pytest.mark.parametrize(
    ("text", "old", "new"),
    [
        ("[sim]\napd_port = 6001\n", "sim.apd_port", "[sim.iocs.apd] port"),
        ("[stages.sample_x]\nvelocity_um_per_s = 10.0\n", "stages", "[sim.stages.<axis>]"),
        ("[apd]\ndead_time_ns = 6.0\n", "apd", "[sim.apd]"),
        ("[beamline]\nenergy_eV = 700.0\n", "beamline.energy_eV", "[sim.beam] energy_eV"),
        ("[ring]\ntopup_interval_s = 60.0\n", "ring.topup_interval_s", "[sim.ring]"),
    ],
)
def test_old_keys_say_what_replaced_them(tmp_path, text, old, new):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert f"{old}: this key has moved to {new}" in message
    assert message.count("\n  - ") == 1  # one line per moved key, not one per inner key


def test_out_of_range_value_names_key_and_range(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[sim.apd]\nquantum_efficiency = 1.5\n"))
    message = str(info.value)
    assert "sim.apd.quantum_efficiency = 1.5 is out of range; allowed (0, 1]" in message


def test_every_problem_is_reported_at_once(tmp_path):
    text = "[sim.apd]\nquantum_efficiency = -1\n[sim.ring]\nbeam_lifetime_h = 0\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert "sim.apd.quantum_efficiency" in message
    assert "sim.ring.beam_lifetime_h" in message


def test_crossed_stage_limits_are_refused(tmp_path):
    text = "[sim.stages.sample_y]\nlow_limit_um = 100.0\nhigh_limit_um = -100.0\n"
    with pytest.raises(ConfigError, match=r"sim\.stages\.sample_y\] low_limit_um \(100.0\)"):
        load_config(write(tmp_path, text))


def test_missing_unreadable_and_bad_files_say_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="stxm config --write"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[ring\n"))
    with pytest.raises(ConfigError, match="is a directory; give the path of a TOML file"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="is not text"):
        load_config(write(tmp_path, b"\x89PNG\r\n\x1a\n\x00\xff\xfe"))


def test_ioc_ports_are_per_ioc_and_must_differ():
    config = load_config(overrides={"sim": {"iocs": {"apd": {"port": 6001}}}})
    assert config.sim.iocs["apd"].port == 6001
    with pytest.raises(ConfigError, match="iocs.apd and iocs.ring are all 6001"):
        load_config(overrides={"sim": {"iocs": {"apd": {"port": 6001}, "ring": {"port": 6001}}}})
    with pytest.raises(ConfigError, match=r"repeater and iocs.apd are all 5073"):
        load_config(overrides={"sim": {"iocs": {"apd": {"port": 5073}}}})
    with pytest.raises(ConfigError, match=r"sim.iocs.apd.port = 80 is out of range"):
        load_config(overrides={"sim": {"iocs": {"apd": {"port": 80}}}})
    with pytest.raises(ConfigError, match=r"sim.iocs.apd.prot: unknown key.*did you mean 'port'"):
        load_config(overrides={"sim": {"iocs": {"apd": {"prot": 6001}}}})


def test_catalog_port_cannot_be_a_sim_port():
    with pytest.raises(ConfigError, match="catalog.port = 6001 is also sim.iocs.apd.port"):
        load_config(
            overrides={"sim": {"iocs": {"apd": {"port": 6001}}}, "catalog": {"port": 6001}}
        )


def test_overrides_are_validated_too():
    config = load_config()
    assert config.with_overrides({"catalog": {"port": 9000}}).catalog.port == 9000
    with pytest.raises(ConfigError, match="catalog.port"):
        config.with_overrides({"catalog": {"port": 0}})


def test_default_text_is_commented_toml_that_loads_to_the_defaults():
    text = default_config_text()
    assert text.lstrip().startswith("#")
    assert "energy_eV = 706.8" in text
    from_text = load_config(overrides=tomllib.loads(text))
    assert from_text.model_dump() == load_config().model_dump()


def test_shipped_default_file_and_reference_page_are_generated_and_current():
    assert DEFAULT_TOML_PATH.read_text() == render_default_toml(), (
        "stxm_ctrl/default_config.toml is stale: run `python -m stxm_ctrl.config_docs --write`"
    )
    assert REFERENCE_PATH.read_text() == render_reference(), (
        "docs/reference/configuration.md is stale: run `python -m stxm_ctrl.config_docs --write`"
    )
    reference = REFERENCE_PATH.read_text()
    for key in ("`photon_flux_per_mA_Hz`", "## `[sim.apd]`", "### `[sim.iocs.<name>]`"):
        assert key in reference


@pytest.mark.parametrize("section", ["sim", "catalog"])
def test_listening_beyond_loopback_needs_allow_remote(section, reliability):
    with pytest.raises(ConfigError) as info:
        load_config(overrides={section: {"host": "0.0.0.0"}})
    message = str(info.value)
    assert f"[{section}] host = '0.0.0.0' would let" in message
    assert f"set [{section}] allow_remote = true to do it on purpose" in message
    allowed = load_config(overrides={section: {"host": "0.0.0.0", "allow_remote": True}})
    assert getattr(allowed, section).host == "0.0.0.0"
    reliability(
        fault=f'`[{section}] host = "0.0.0.0"` in the configuration',
        seen=message.splitlines()[-1].strip("- ") + "; exit status 2",
        ended_s=None,
        kept="nothing starts; with allow_remote = true it listens there, as documented",
    )


def test_the_start_limits_are_configurable_within_their_range(tmp_path):
    config = load_config(write(tmp_path, "[catalog]\nstart_timeout_s = 900\n"))
    assert config.catalog.start_timeout_s == 900.0
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[catalog]\nstart_timeout_s = 5\n"))
    assert "catalog.start_timeout_s = 5 is out of range; allowed [10.0, 3600.0]" in str(info.value)
    config = load_config(write(tmp_path, "[sim]\nstart_timeout_s = 600\n"))
    assert config.sim.start_timeout_s == 600.0
