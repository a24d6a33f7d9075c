"""`stxm optics` as a user runs it: the numbers of physics.md, a readable table, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stxm_ctrl.app.cli import main
from stxm_ctrl.config import CONFIG_ENV_VAR

# physics.md, 240 um / 25 nm plate with a 50 um OSA: E, f (um), DOF (+- um), max A0 (um).
TABLE = [(706.8, 3420, 0.71, 713), (778.1, 3766, 0.78, 784), (852.7, 4127, 0.86, 860)]
SHIPPED_PLATES = [
    "zp240_25",
    "zp250_25",
    "zp240_35",
    "zp240_40",
    "zp140_40",
    "zp100_60",
    "zp280_50",
]


@pytest.fixture(autouse=True)
def _shipped_default(monkeypatch):
    """The shipped configuration unless a test gives --config, whatever the environment."""
    monkeypatch.delenv(CONFIG_ENV_VAR, raising=False)


def run_json(capsys, *argv: str) -> dict:
    assert main(["optics", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def plate(data: dict, name: str) -> dict:
    (found,) = [p for p in data["zone_plates"] if p["name"] == name]
    return found


def refused(capsys, *argv: str) -> str:
    assert main(["optics", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


class TestJson:
    def test_defaults_give_the_worked_example_at_the_configured_energy(self, capsys):
        data = run_json(capsys)
        assert data["energy_eV"] == 706.8
        assert data["energy_source"] == "[sim.beam] energy_eV"
        assert round(data["wavelength_nm"], 4) == 1.7542
        assert (data["osa"], data["osa_diameter_um"], data["osa_source"]) == (
            "osa50",
            50.0,
            "[optics] osa",
        )
        assert data["z_sign"] == -1
        assert [p["name"] for p in data["zone_plates"]] == SHIPPED_PLATES
        zp = plate(data, "zp240_25")
        assert zp["selected"] is True
        assert [p["name"] for p in data["zone_plates"] if p["selected"]] == ["zp240_25"]
        assert zp["focal_length_um"] == pytest.approx(3420, abs=0.5)
        assert round(zp["a1_um_per_eV"], 3) == 4.839
        assert zp["zones"] == 2400
        assert zp["numerical_aperture"] == pytest.approx(1.7542 / 50, rel=1e-4)
        assert zp["resolution_nm"] == pytest.approx(30.5)
        assert round(zp["depth_of_focus_um"], 2) == 0.71
        assert zp["a0_min_um"] == 100.0
        assert round(zp["a0_max_um"]) == 713
        assert zp["a0_max_limited_by"] == "first order"
        assert round(zp["a0_max_second_order_um"], 1) == 810.1
        assert zp["zp_z_um"] == pytest.approx(-3420.44, abs=0.01)
        assert zp["problem"] is None

    @pytest.mark.parametrize(("energy", "f", "dof", "a0_max"), TABLE)
    def test_table_rows_of_the_reference(self, capsys, energy, f, dof, a0_max):
        data = run_json(capsys, "--energy-eV", str(energy), "--zone-plate", "zp240_25")
        assert data["energy_source"] == "--energy-eV"
        (zp,) = data["zone_plates"]
        assert zp["focal_length_um"] == pytest.approx(f, abs=0.6)  # the reference rounds
        assert round(zp["depth_of_focus_um"], 2) == dof
        assert round(zp["a0_max_um"]) == a0_max

    def test_a_wide_osa_is_limited_by_the_second_order(self, capsys):
        data = run_json(capsys, "--osa", "osa60")
        assert data["osa_source"] == "--osa"
        zp = plate(data, "zp240_25")
        assert zp["a0_max_limited_by"] == "second order"
        assert zp["a0_max_um"] == pytest.approx(0.5 * zp["focal_length_um"] * (1 - 60 / 95))

    def test_an_osa_that_passes_the_zero_order_is_reported_per_plate(self, capsys):
        data = run_json(capsys)  # osa50 against zp100_60's 45 um stop
        bad = plate(data, "zp100_60")
        assert bad["a0_min_um"] is None and bad["a0_max_um"] is None
        assert bad["problem"] == (
            "the 50 um OSA passes the zero order around the 45 um central stop; use an OSA "
            "smaller than 45 um (installed: osa30)"
        )
        assert bad["focal_length_um"] == pytest.approx(3420.44, abs=0.01)  # the rest is there
        assert plate(data, "zp240_25")["problem"] is None

    def test_the_cli_script_as_a_user_runs_it(self):
        stxm = Path(sys.executable).with_name("stxm")
        command = [str(stxm)] if stxm.exists() else [sys.executable, "-m", "stxm_ctrl.app.cli"]
        result = subprocess.run(
            [*command, "optics", "--json", "--energy-eV", "932.7", "--zone-plate", "zp240_25"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        (zp,) = json.loads(result.stdout)["zone_plates"]
        assert round(zp["focal_length_um"]) == 4514
        assert round(zp["a0_max_um"]) == 940


def test_a_reader_that_stops_early_is_not_an_error():
    # `stxm optics --json | head`: the pipe closes before the output is written.
    stxm = Path(sys.executable).with_name("stxm")
    command = [str(stxm)] if stxm.exists() else [sys.executable, "-m", "stxm_ctrl.app.cli"]
    child = subprocess.Popen(
        [*command, "optics", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()
    with child.stderr:
        err = child.stderr.read().decode()
    assert child.wait(timeout=60) == 0
    assert err == ""


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "beamline.toml"
    path.write_text(text)
    return str(path)


class TestConfiguration:
    def test_a_file_that_gives_the_plates_replaces_the_list(self, tmp_path, capsys):
        config = write_config(
            tmp_path,
            """
[optics]
zone_plate = "mine"
osa = "osa30"

[optics.zone_plates.mine]
diameter_um = 200
central_stop_um = 80
outer_zone_width_nm = 30

[sim.beam]
energy_eV = 778.1
""",
        )
        data = run_json(capsys, "--config", config)
        assert data["configuration"] == config
        assert data["energy_eV"] == 778.1  # the configured energy
        (zp,) = data["zone_plates"]
        assert (zp["name"], zp["selected"]) == ("mine", True)
        a1 = 200 * 30 / 1239.84
        assert zp["a1_um_per_eV"] == pytest.approx(a1)
        assert zp["focal_length_um"] == pytest.approx(a1 * 778.1)
        assert zp["zones"] == round(200_000 / 120)
        assert zp["a0_max_um"] == pytest.approx(30 * a1 * 778.1 / 200)

    def test_z_sign_plus_one_gives_positive_readings(self, tmp_path, capsys):
        config = write_config(
            tmp_path,
            """
[optics]
z_sign = 1

[sim.stages.zp_z]
low_limit_um = 300
high_limit_um = 15000
low_limit_switch_um = 250
high_limit_switch_um = 15100
home_switch_um = 5000

[sim.stages.osa_z]
low_limit_um = 20
high_limit_um = 5000
low_limit_switch_um = 10
high_limit_switch_um = 5100
home_switch_um = 2000
""",
        )
        data = run_json(capsys, "--config", config, "--zone-plate", "zp240_25")
        assert data["z_sign"] == 1
        assert data["zone_plates"][0]["zp_z_um"] == pytest.approx(3420.44, abs=0.01)

    def test_margins_from_the_configuration(self, tmp_path, capsys):
        config = write_config(tmp_path, "[optics]\nmin_a0_um = 250\nmin_zp_osa_gap_um = 3000\n")
        zp = run_json(capsys, "--config", config, "--zone-plate", "zp240_25")["zone_plates"][0]
        assert zp["a0_min_um"] == 250
        # At focus the plate is 3420 um upstream: the OSA must stay 3000 um clear of it.
        assert zp["a0_max_limited_by"] == "zone plate to OSA gap"
        assert zp["a0_max_um"] == pytest.approx(zp["focal_length_um"] - 3000)


class TestTable:
    def test_table_is_readable(self, capsys):
        assert main(["optics"]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == (
            "Zone-plate optics at 706.8 eV (the configured energy, [sim.beam] energy_eV), "
            "wavelength 1.7542 nm"
        )
        assert lines[1] == (
            "OSA osa50, 50 um (the selected OSA, [optics] osa); configuration <shipped default>"
        )
        header = lines[3].split("  ")
        for column in ("f um", "A1 um/eV", "zones", "NA", "res nm", "DOF um", "A0 um", "ZP z um"):
            assert column in [h.strip() for h in header if h.strip()]
        (selected,) = [line for line in lines if line.startswith("* zp")]
        assert selected.split() == [
            "*",
            "zp240_25",
            "240/95/25",
            "3420.4",
            "4.8393",
            "2400",
            "0.0351",
            "30.5",
            "+-0.71",
            "100",
            "to",
            "712.6",
            "first",
            "order",
            "-3420.4",
        ]
        rows = lines[4 : lines.index("", 4)]
        assert len(rows) == len(SHIPPED_PLATES)
        # Columns line up: every row as long as the header, or shorter only by trailing space.
        assert {len(row) for row in rows} <= {len(lines[3])}
        assert "* the zone plate in the beam ([optics] zone_plate = zp240_25)" in lines
        assert (
            "zp100_60: the 50 um OSA passes the zero order around the 45 um central stop; use "
            "an OSA smaller than 45 um (installed: osa30)"
        ) in lines
        assert any("second order ((f/2)(1 - d_OSA/d_CS)" in line for line in lines)
        assert any(line.startswith("ZP z = [optics] z_sign (-1) x f") for line in lines)

    def test_energy_from_the_command_line_is_said_so(self, capsys):
        assert main(["optics", "--energy-eV", "852.7", "--zone-plate", "zp240_25"]) == 0
        out = capsys.readouterr().out
        assert out.startswith(
            "Zone-plate optics at 852.7 eV (from --energy-eV), wavelength 1.4540"
        )
        assert "4126.5" in out and "+-0.86" in out and "100 to 859.7" in out


class TestErrors:
    @pytest.mark.parametrize("energy", ["2000", "100"])
    def test_energy_outside_the_beamline_range(self, capsys, energy):
        err = refused(capsys, "--energy-eV", energy)
        assert err == (
            f"error: energy {energy} eV (--energy-eV) is outside the beamline's range 250 to "
            "1000 eV ([optics] energy_min_eV..energy_max_eV); give another with --energy-eV\n"
        )

    def test_configured_energy_outside_the_range_names_the_key(self, tmp_path, capsys):
        config = write_config(tmp_path, "[optics]\nenergy_max_eV = 700\n")
        err = refused(capsys, "--config", config)
        assert "energy 706.8 eV ([sim.beam] energy_eV) is outside the beamline's range 250" in err
        assert "give one with --energy-eV, or change [sim.beam] energy_eV" in err

    @pytest.mark.parametrize("value", ["fast", "nan", "inf"])
    def test_energy_not_a_number(self, capsys, value):
        with pytest.raises(SystemExit) as info:
            main(["optics", "--energy-eV", value])
        assert info.value.code == 2
        assert "--energy-eV must be a" in capsys.readouterr().err

    def test_unknown_zone_plate_lists_the_installed(self, capsys):
        err = refused(capsys, "--zone-plate", "zp999")
        assert err == (
            "error: --zone-plate zp999: no such zone plate is installed; installed: "
            + ", ".join(SHIPPED_PLATES)
            + " ([optics.zone_plates.<name>] in the configuration)\n"
        )

    def test_unknown_osa_lists_the_installed(self, capsys):
        err = refused(capsys, "--osa", "osa45")
        assert err == (
            "error: --osa osa45: no such OSA is installed; installed: osa30 (30 um), osa50 "
            "(50 um), osa60 (60 um) ([optics.osas.<name>] in the configuration)\n"
        )

    def test_one_plate_asked_for_whose_zero_order_the_osa_passes(self, capsys):
        err = refused(capsys, "--zone-plate", "zp100_60")
        assert err == (
            "error: zone plate zp100_60 with OSA osa50: the 50 um OSA passes the zero order "
            "around the 45 um central stop; use an OSA smaller than 45 um (installed: osa30)\n"
        )

    def test_bad_configuration_is_one_line(self, tmp_path, capsys):
        err = refused(capsys, "--config", str(tmp_path / "missing.toml"))
        assert err.startswith("error: configuration file")
        assert "does not exist" in err


DOC = Path(__file__).resolve().parents[2] / "docs" / "explanation" / "optics.md"


@pytest.mark.parametrize(
    "command", ["uv run stxm optics", "uv run stxm optics --zone-plate zp240_25 --json"]
)
def test_the_examples_in_the_optics_explanation_are_what_the_command_prints(capsys, command):
    text = DOC.read_text()
    start = text.index(f"$ {command}\n") + len(command) + 3
    shown = text[start : text.index("\n```", start)]
    assert main(command.split()[3:]) == 0
    assert capsys.readouterr().out.rstrip("\n") == shown, (
        f"{DOC} is stale: paste the output of `{command}` into it"
    )
