"""Configuration: the shipped default loads, and bad files get errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from stxm_ctrl.config import CONFIG_ENV_VAR, ConfigError, default_config_text, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "beamline.toml"
    path.write_text(text)
    return path


def test_shipped_default_is_valid_and_simulated_on_loopback():
    config = load_config()
    assert config.source == "<shipped default>"
    assert config.sim.host == "127.0.0.1"
    assert config.catalog.host == "127.0.0.1"
    assert config.catalog.embedded
    assert config.stages.sample_x.low_limit_um < config.stages.sample_x.high_limit_um
    # Empty epics.ca_addr_list: the fleet's own loopback ports.
    ports = {config.sim.sample_stage_port, config.sim.apd_port, config.sim.ring_port}
    assert set(config.ca_addr_list()) == {f"127.0.0.1:{p}" for p in ports}


def test_file_values_merge_over_the_default(tmp_path):
    config = load_config(write(tmp_path, "[stages.sample_x]\nhigh_limit_um = 150.0\n"))
    assert config.stages.sample_x.high_limit_um == 150.0
    assert config.stages.sample_x.low_limit_um == -2000.0  # kept from the default
    assert config.source == str(tmp_path / "beamline.toml")


def test_environment_variable_names_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, '[beamline]\nname = "from the environment"\n')
    monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
    assert load_config().beamline.name == "from the environment"


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[ring]\nfill_curent_mA = 250.0\n"))
    message = str(info.value)
    assert "ring.fill_curent_mA: unknown key in [ring]" in message
    assert "did you mean 'fill_current_mA'?" in message


def test_wrong_unit_is_recognised(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[stages.sample_x]\nhigh_limit_mm = 2.0\n"))
    message = str(info.value)
    assert "stages.sample_x.high_limit_mm: wrong unit" in message
    assert "'high_limit_um'" in message


def test_out_of_range_value_names_key_and_range(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[apd]\nquantum_efficiency = 1.5\n"))
    message = str(info.value)
    assert "apd.quantum_efficiency = 1.5 is out of range; allowed" in message
    assert "1" in message.split("allowed")[1]


def test_every_problem_is_reported_at_once(tmp_path):
    text = "[apd]\nquantum_efficiency = -1\n[ring]\nbeam_lifetime_h = 0\n"
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert "apd.quantum_efficiency" in message
    assert "ring.beam_lifetime_h" in message


def test_crossed_stage_limits_are_refused(tmp_path):
    text = "[stages.sample_y]\nlow_limit_um = 100.0\nhigh_limit_um = -100.0\n"
    with pytest.raises(ConfigError, match=r"stages\.sample_y"):
        load_config(write(tmp_path, text))


def test_missing_file_and_bad_toml_say_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="stxm config --write"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[ring\n"))


def test_sim_ports_must_differ():
    with pytest.raises(ConfigError, match="port"):
        load_config(overrides={"sim": {"apd_port": 5070, "sample_stage_port": 5070}})


def test_overrides_are_validated_too():
    config = load_config()
    assert config.with_overrides({"catalog": {"port": 9000}}).catalog.port == 9000
    with pytest.raises(ConfigError, match="catalog.port"):
        config.with_overrides({"catalog": {"port": 0}})


def test_default_text_is_commented_toml_matching_the_models():
    text = default_config_text()
    assert text.lstrip().startswith("#")
    assert "energy_eV" in text
