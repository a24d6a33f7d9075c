"""The stxm command: argument errors, configuration commands."""

from __future__ import annotations

import tomllib

import pytest

from stxm_ctrl.app.cli import build_parser, main
from stxm_ctrl.config import load_config


def test_demo_defaults():
    args = build_parser().parse_args(["demo"])
    assert (args.points, args.range_um, args.dwell_ms) == (64, 22.0, 1.0)
    assert args.config is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--points", "0"], "--points must be > 0, got 0"),
        (["demo", "--dwell-ms", "fast"], "--dwell-ms must be a number, got 'fast'"),
        (["demo", "--range-um", "-5"], "--range-um must be > 0, got -5"),
    ],
)
def test_bad_demo_options_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_config_write_then_check(tmp_path, capsys):
    path = tmp_path / "beamline.toml"
    assert main(["config", "--write", str(path)]) == 0
    assert tomllib.loads(path.read_text())["sim"]["sample"]["kind"] == "resolution_pattern"
    assert main(["config", "--config", str(path)]) == 0
    assert f"{path}: valid" in capsys.readouterr().out
    # Never overwrites a file.
    assert main(["config", "--write", str(path)]) == 2
    assert "exists" in capsys.readouterr().err


def test_invalid_configuration_is_an_error_not_a_traceback(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("[sim.apd]\ndead_time_ns = -3\n")
    assert main(["config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid configuration in")
    assert "sim.apd.dead_time_ns = -3 is out of range" in err


def test_config_show_prints_the_effective_values(tmp_path, capsys):
    path = tmp_path / "beamline.toml"
    path.write_text("[catalog]\nport = 9123\n")
    assert main(["config", "--show", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert '"port": 9123' in out
    assert load_config(path).catalog.port == 9123


def test_demo_refuses_a_configuration_that_names_real_iocs(tmp_path, capsys):
    path = tmp_path / "beamline.toml"
    path.write_text('[epics]\nca_addr_list = ["10.0.0.5:5064"]\n')
    assert main(["demo", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "runs only on the simulated beamline" in err
    assert "ca_addr_list" in err


def test_foreground_command_reports_a_child_that_dies(tmp_path, capsys):
    import sys

    from stxm_ctrl.app.cli import run_in_foreground
    from stxm_ctrl.processes import ManagedProcess

    code = "import sys; print('IOC crashed: segfault in the driver'); sys.exit(4)"
    child = ManagedProcess("fake fleet", [sys.executable, "-c", code], tmp_path / "f.log")
    child.start()
    stopped = []
    assert run_in_foreground("simulated IOC fleet", child, lambda: stopped.append(True)) == 1
    err = capsys.readouterr().err
    assert "simulated IOC fleet exited unexpectedly with code 4" in err
    assert "IOC crashed: segfault in the driver" in err
    assert stopped == [True]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--dwell-ms", "1e9"],
            "--dwell-ms = 1e+09 ms is out of range; the APD counts for 0.1 to",
        ),
        (["--dwell-ms", "0.01"], "--dwell-ms = 0.01 ms is out of range"),
        (["--points", "100000"], "--points = 100000 is out of range; allowed 1 to 4096"),
        (["--range-um", "5000"], "--range-um = 5000 um: the image from -2500 to 2500 um leaves"),
    ],
)
def test_demo_refuses_bad_arguments_before_starting_anything(
    tmp_path, capsys, options, message, reliability
):
    config = tmp_path / "beamline.toml"
    config.write_text(f'[beamline]\ndata_dir = "{tmp_path / "data"}"\n')
    assert main(["demo", "--config", str(config), *options]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err  # one line
    assert not (tmp_path / "data" / "sim").exists()  # no IOC was started
    reliability(
        fault=f"`stxm demo {' '.join(options)}`",
        seen=err.strip() + "; exit status 2",
        ended_s=None,
        kept="nothing was started or moved",
    )


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_demo_refuses_non_finite_numbers(value, capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--dwell-ms", value])
    assert info.value.code == 2
    assert f"--dwell-ms must be a finite number, got {value}" in capsys.readouterr().err


def test_unusable_config_files_and_data_dirs_get_one_line(tmp_path, capsys):
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe\x00")
    assert main(["config", "--config", str(tmp_path)]) == 2
    assert "is a directory; give the path of a TOML file" in capsys.readouterr().err
    assert main(["config", "--config", str(binary)]) == 2
    assert "is not text" in capsys.readouterr().err

    a_file = tmp_path / "not_a_dir"
    a_file.write_text("x")
    config = tmp_path / "beamline.toml"
    config.write_text(f'[beamline]\ndata_dir = "{a_file}"\n')
    assert main(["demo", "--config", str(config)]) == 2
    assert f"data directory {a_file} is a file" in capsys.readouterr().err

    assert main(["config", "--write", str(tmp_path / "missing" / "b.toml")]) == 2
    err = capsys.readouterr().err
    assert "the directory" in err and "does not exist; create it first" in err


def _subcommands() -> dict:
    import argparse

    parser = build_parser()
    # argparse lists a parser's subcommands and options only in its private actions.
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))  # noqa: SLF001
    return dict(sub.choices)


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_command_takes_config_as_the_readme_says(command):
    options = {o for a in _subcommands()[command]._actions for o in a.option_strings}  # noqa: SLF001
    assert "--config" in options


def test_check_nexus_takes_config_and_reports_a_bad_one(tmp_path, capsys):
    missing = tmp_path / "missing.nxs"
    config = tmp_path / "beamline.toml"
    config.write_text(f'[beamline]\ndata_dir = "{tmp_path / "data"}"\n')
    assert main(["check-nexus", "--config", str(config), str(missing)]) == 1
    with_config = capsys.readouterr().out
    assert main(["check-nexus", str(missing)]) == 1
    assert capsys.readouterr().out == with_config  # the check itself uses nothing configured
    assert str(missing) in with_config
    assert main(["check-nexus", "--config", str(tmp_path), str(missing)]) == 2
    assert "is a directory; give the path of a TOML file" in capsys.readouterr().err


def one_line_error(capsys) -> str:
    """The command's stderr, which must be one line starting 'error: ' (no traceback)."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def data_dir_config(tmp_path, extra: str = "") -> str:
    from stxm_ctrl.processes import free_tcp_port

    path = tmp_path / "beamline.toml"
    path.write_text(
        f'[beamline]\ndata_dir = "{tmp_path / "data"}"\n[catalog]\nport = {free_tcp_port()}\n'
        + extra
    )
    return str(path)


def test_import_spool_of_a_directory_or_fifo_says_what_it_is(tmp_path, capsys):
    import os

    config = data_dir_config(tmp_path)
    assert main(["import-spool", str(tmp_path), "--config", config]) == 2
    assert f"{tmp_path} is a directory, not a spool file" in one_line_error(capsys)
    fifo = tmp_path / "run.jsonl"
    os.mkfifo(fifo)
    assert main(["import-spool", str(fifo), "--config", config]) == 2
    assert f"{fifo} is not a regular file (a fifo, socket or device)" in one_line_error(capsys)
    missing = tmp_path / "gone.jsonl"
    assert main(["import-spool", str(missing), "--config", config]) == 2
    assert f"spool file {missing} does not exist" in one_line_error(capsys)


def test_config_refuses_an_ioc_the_simulator_does_not_have(tmp_path, capsys, reliability):
    config = data_dir_config(tmp_path, "[sim.iocs.apdd]\nport = 5099\n")
    assert main(["config", "--config", config]) == 2
    line = one_line_error(capsys)
    assert f"invalid configuration in {config}" in line
    assert "[sim.iocs.apdd] (did you mean 'apd'?) but the simulator has no such IOC" in line
    assert main(["config", "--show", "--config", config]) == 2
    one_line_error(capsys)
    reliability(
        fault="`stxm config` of a configuration with [sim.iocs.apdd] (a misspelt IOC)",
        seen=line + "; exit status 2 (as `stxm sim` would refuse it)",
        ended_s=None,
        kept="nothing was started",
    )


def test_serve_refuses_a_key_file_others_can_read_in_one_line(tmp_path, capsys):
    config = data_dir_config(tmp_path)
    key = tmp_path / "data" / "tiled_api_key"
    key.parent.mkdir(mode=0o700)
    key.write_text("0123456789abcdef\n")
    key.chmod(0o644)
    assert main(["serve", "--config", config]) == 2
    line = one_line_error(capsys)
    assert f"the catalog's API key file {key} is open to other users (mode 0644)" in line
    assert f"`chmod 600 {key}`" in line
    assert not (tmp_path / "data" / "catalog.db").exists()  # no server was started


@pytest.mark.parametrize("kind", ["proc", "file", "under a file"])
def test_export_refuses_an_out_it_cannot_write_before_reading_runs(tmp_path, capsys, kind):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    out = {"proc": "/proc", "file": str(a_file), "under a file": str(a_file / "nexus")}[kind]
    config = data_dir_config(tmp_path)
    assert main(["export", "6", "--out", out, "--config", config]) == 2
    line = one_line_error(capsys)
    assert f"--out {out}" in line and "choose a directory you can write" in line
