"""The ``stxm`` command line.

``stxm demo``         the main job: simulated beamline + catalog, one sample image, a PNG
``stxm sim``          run the simulated IOC fleet in the foreground (Ctrl-C stops it)
``stxm serve``        run the embedded Tiled catalog server in the foreground
``stxm config``       show, write or check a beamline configuration
``stxm import-spool`` put a spooled run into the catalog (after a catalog outage)
``stxm optics``       zone-plate optics at an energy: focal length, resolution, allowed A0
``stxm export``       write the NXstxm files of runs (from the catalog, else the spool)
``stxm check-nexus``  check NXstxm files against the application definition
``stxm runs``         find runs by sample, scan type, date, energy, proposal, user
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from stxm_ctrl.config import load_config
from stxm_ctrl.config_docs import default_config_text
from stxm_ctrl.disk import DiskSpaceError
from stxm_ctrl.errors import UsageError
from stxm_ctrl.locks import DataDirInUseError
from stxm_ctrl.processes import ManagedProcess, ProcessStartError

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _runtime_errors() -> tuple[type[BaseException], ...]:
    """Faults reported as one line, exit status 1 (loaded modules only: a command that
    never touched the spool cannot have raised its error, and `stxm config` stays fast)."""
    errors: list[type[BaseException]] = [
        ProcessStartError,
        ConnectionError,
        TimeoutError,
        DataDirInUseError,
        DiskSpaceError,
    ]
    writers = sys.modules.get("stxm_ctrl.data.writers")
    if writers is not None:
        errors.append(writers.SpoolWriteError)
    return tuple(errors)


def _config(args: argparse.Namespace):
    return load_config(args.config)


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="beamline configuration (TOML; default: $STXM_CONFIG or the shipped default)",
    )


def _positive(kind: type, name: str):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number, got {text}")
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{name} must be > 0, got {text}")
        return value

    return parse


def _finite(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{name} must be a finite number, got {text}")
        return value

    return parse


def cmd_demo(args: argparse.Namespace) -> int:
    """Simulated beamline + catalog, one sample image of the test pattern, a PNG."""
    from stxm_ctrl.app.demo import CLI_NAMES, ScanEndedError, run_demo

    config = _config(args)
    try:
        result = run_demo(
            config,
            points=args.points,
            range_um=args.range_um,
            dwell_s=args.dwell_ms / 1000.0,
            energy_eV=args.energy_eV,
            mode=args.mode,
            progress=not args.no_progress,
            say=lambda line: print(line, flush=True),
            names=CLI_NAMES,
        )
    except ScanEndedError as exc:
        print(
            f"{'interrupted' if exc.exit_status == 'abort' else 'error'}: {exc}", file=sys.stderr
        )
        return EXIT_INTERRUPTED if exc.exit_status == "abort" else 1
    image = result.image
    print(f"run:   {result.uid} in the catalog at {result.catalog_uri}")
    print(
        f"image: {image.shape[1]} x {image.shape[0]} px over {result.range_um:g} um, "
        f"at {image.start.get('energy_eV', float('nan')):.2f} eV, "
        f"dwell {result.dwell_s * 1e3:g} ms, {image.mode} scan, {result.points} points in "
        f"{result.elapsed_s:.1f} s "
        f"({result.ms_per_point:.1f} ms per point); counts "
        f"{int(image.counts.min())}..{int(image.counts.max())}"
    )
    print(f"PNG:   {result.png}")
    print(f"NeXus: {result.nexus_file or 'not written (see the error above; stxm export)'}")
    print(f"spool: {result.spool_file}")
    return 0


def run_in_foreground(process_name: str, process: ManagedProcess, stop) -> int:
    """Wait for Ctrl-C, or for the child to die (reported with its log), then stop it.

    Parameters
    ----------
    process_name
        What the messages call the process ("simulated IOC fleet").
    process
        The child, already started.
    stop
        Called without arguments at the end, however it ends.

    Returns
    -------
    int
        The command's exit status: 0 after Ctrl-C, 1 when the child died.
    """
    print(f"{process_name} running; press Ctrl-C to stop", flush=True)
    try:
        while process.is_running():
            time.sleep(0.5)
        print(
            f"error: {process_name} exited unexpectedly with code "
            f"{process.returncode}{process.log_tail()}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print(f"\nstopping {process_name} ...", flush=True)
        return 0
    finally:
        stop()


def cmd_sim(args: argparse.Namespace) -> int:
    """Run the simulated IOC fleet in the foreground."""
    from stxm_ctrl.app.demo import check_data_dir
    from stxm_ctrl.locks import DataDirLock

    config = _config(args)
    check_data_dir(config)
    lock = DataDirLock(config.data_dir, "stxm sim", part="sim").acquire()
    try:
        return _run_sim(config)
    finally:
        lock.release()


def _run_sim(config) -> int:
    from stxm_ctrl.launch import start_sim_fleet

    fleet = start_sim_fleet(config)
    try:
        fleet.wait_ready(config.sim.start_timeout_s, say=lambda line: print(line, flush=True))
        manifest = fleet.manifest()
    except BaseException:
        fleet.stop()
        raise
    iocs = ", ".join(f"{name} :{port}" for name, port in manifest.ports().items())
    print(
        f"simulated IOCs on {manifest.host}: {iocs}\n"
        f"clients need EPICS_CA_ADDR_LIST='{' '.join(manifest.ca_addr_list())}' "
        f"EPICS_CA_AUTO_ADDR_LIST=NO EPICS_CA_REPEATER_PORT={manifest.repeater_port}\n"
        f"logs: {fleet.runtime_dir}"
    )
    return run_in_foreground("simulated IOC fleet", fleet.process, fleet.stop)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the embedded catalog server in the foreground."""
    from stxm_ctrl.data.catalog import API_KEY_FILE, start_catalog_server

    config = _config(args)
    if not config.catalog.embedded:
        print(
            f"error: [catalog] uri is set ({config.catalog.uri}); `stxm serve` runs only the "
            "embedded catalog",
            file=sys.stderr,
        )
        return 2
    from stxm_ctrl.app.demo import check_data_dir
    from stxm_ctrl.locks import DataDirLock

    check_data_dir(config)
    with DataDirLock(config.data_dir, "stxm serve", part="catalog"):
        server = start_catalog_server(config, say=lambda line: print(line, flush=True))
        print(
            f"catalog at {server.uri} (SQLite in {config.data_dir}); API key in "
            f"{config.data_dir / API_KEY_FILE}"
        )
        return run_in_foreground("catalog server", server.process, server.stop)


def cmd_config(args: argparse.Namespace) -> int:
    """Show, write or check a configuration."""
    if args.write is not None:
        if args.write.exists():
            print(
                f"error: {args.write} exists; choose another name or remove it first",
                file=sys.stderr,
            )
            return 2
        if not args.write.parent.is_dir():
            print(
                f"error: cannot write {args.write}: the directory {args.write.parent} does not "
                "exist; create it first or choose another path",
                file=sys.stderr,
            )
            return 2
        try:
            args.write.write_text(default_config_text())
        except OSError as exc:
            print(f"error: cannot write {args.write}: {exc.strerror}", file=sys.stderr)
            return 2
        print(f"wrote the default configuration to {args.write}")
        return 0
    config = _config(args)
    _check_sim_iocs(config)
    if args.show:
        import json

        print(json.dumps(config.model_dump(mode="json"), indent=2))
    else:
        print(f"{config.source}: valid")
    return 0


def _check_sim_iocs(config) -> None:
    """Refuse ``[sim.iocs.<name>]`` entries `stxm sim` would refuse (an IOC the simulator
    does not have, a port clash), asking the simulator's registry in a subprocess: runtime
    code does not import ``sim_iocs``.

    Raises
    ------
    UsageError
        With the simulator's own message.
    """
    import subprocess

    from stxm_ctrl.processes import python_module_argv

    argv = python_module_argv("sim_iocs.fleet", "--config-json", "/dev/stdin", "--check")
    result = subprocess.run(
        argv, input=config.model_dump_json(), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        message = lines[-1].removeprefix("error: ") if lines else f"exit {result.returncode}"
        raise UsageError(f"invalid configuration in {config.source}: {message}")


def cmd_import_spool(args: argparse.Namespace) -> int:
    """Put a spooled run into the configured catalog."""
    from stxm_ctrl.data.catalog import catalog_client
    from stxm_ctrl.data.writers import SpoolImportError, import_spool_file

    config = _config(args)
    problem = _not_a_spool_file(args.file)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        with catalog_client(config) as client:
            result = import_spool_file(client, args.file, batch_size=config.catalog.batch_size)
    except SpoolImportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Counted by reading the catalog back, so the line is true, not hoped for.
    print(result.summary())
    if not result.all_in_catalog:
        print(
            f"error: the catalog does not hold every event of {args.file}; the spool file "
            "keeps them all, try the import again",
            file=sys.stderr,
        )
        return 1
    return 0


def _not_a_spool_file(path: Path) -> str | None:
    """Why ``path`` cannot be a spool file, or None."""
    hint = "give a spool file, data_dir/spool/<uid>.jsonl"
    if not path.exists():
        return f"spool file {path} does not exist; {hint}"
    if path.is_dir():
        return f"{path} is a directory, not a spool file; {hint}"
    if not path.is_file():
        return f"{path} is not a regular file (a fifo, socket or device); {hint}"
    if not os.access(path, os.R_OK):
        return f"spool file {path} cannot be read (permission denied); {hint} you can read"
    return None


def _export_directory(out: Path | None, default: Path) -> Path:
    """Where ``stxm export`` writes: ``--out`` checked before any run is read.

    A file is made and removed at once in ``--out``, or in its nearest existing parent when
    it is still to be created: the only sure test (``/proc`` exists, is a directory, and
    even root's ``access()`` calls it writable). Nothing is created yet.

    Raises
    ------
    UsageError
        If ``--out`` (or a parent) is a file, or no file can be created where it would go.
    """
    import tempfile

    if out is None:
        return default
    directory = out.expanduser().resolve()
    fix = "choose a directory you can write, e.g. --out ~/nexus"
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is a file" if existing == directory else f"is under a file, {existing}"
        raise UsageError(f"--out {out} {what}, not a directory; {fix}")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise UsageError(
            f"--out {out}: cannot create files in {existing} ({exc.strerror or exc}); {fix}"
        ) from None
    return directory


def cmd_export(args: argparse.Namespace) -> int:
    """Write the NXstxm file of each named run."""
    from stxm_ctrl.data.catalog import close_catalog, connect_catalog
    from stxm_ctrl.data.nexus_files import AmbiguousRunError, ExportError, export_runs

    config = _config(args)
    directory = _export_directory(args.out, config.nexus_dir)
    client = None
    if not args.from_spool:
        try:
            client = connect_catalog(config)
        except ConnectionError as exc:
            print(f"warning: {exc}; reading runs from the spool", file=sys.stderr)
    try:
        for result in export_runs(
            args.runs,
            directory=directory,
            template=config.nexus.file_template,
            spool_dir=config.data_dir / "spool",
            client=client,
        ):
            print(result, flush=True)
    except AmbiguousRunError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ExportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. /proc: it exists, is a directory, and refuses files
        print(
            f"error: cannot write under {directory}: {exc.strerror or exc}; choose a directory "
            "you can write with --out",
            file=sys.stderr,
        )
        return 1
    finally:
        if client is not None:
            close_catalog(client)
    return 0


def cmd_check_nexus(args: argparse.Namespace) -> int:
    """Check NXstxm files against the NXDL; non-zero if a required element is wrong."""
    from stxm_ctrl.data.nexus_check import run_check_nexus

    # The check needs nothing configured; the configuration is still checked, as by every
    # command, so a script passing --config to all of them learns of a bad file here too.
    _config(args)

    return run_check_nexus(args.files, sys.stdout)


def cmd_runs(args: argparse.Namespace) -> int:
    """Print a table of the runs in the catalog that match the filters."""
    from stxm_ctrl.data.catalog import catalog_client
    from stxm_ctrl.data.search import runs_command

    with catalog_client(_config(args)) as client:
        try:
            return runs_command(client, args, sys.stdout)
        except ValueError as exc:
            raise UsageError(str(exc)) from None


def cmd_optics(args: argparse.Namespace) -> int:
    """Print the zone-plate optics at an energy (a calculator: nothing is connected)."""
    from stxm_ctrl.app.optics_table import optics_table

    table = optics_table(
        _config(args), energy_eV=args.energy_eV, zone_plate=args.zone_plate, osa=args.osa
    )
    if args.json:
        import json

        _print_to_reader(json.dumps(table.as_dict(), indent=2))
    else:
        _print_to_reader(table.text())
    return 0


def _print_to_reader(text: str) -> None:
    """Print; a reader that stops early (``stxm optics --json | head``) is not an error."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        # Python would report the unflushed rest again at exit: send it nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def build_parser() -> argparse.ArgumentParser:
    """The ``stxm`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="stxm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="acquire a sample image on the simulated beamline")
    _add_config_option(demo)
    demo.add_argument(
        "--points",
        type=_positive(int, "--points"),
        default=64,
        help="pixels per axis (default 64)",
    )
    demo.add_argument(
        "--range-um",
        type=_positive(float, "--range-um"),
        default=22.0,
        help="image width and height in um (default 22)",
    )
    demo.add_argument(
        "--dwell-ms",
        type=_positive(float, "--dwell-ms"),
        default=1.0,
        help="dwell per pixel in ms (default 1)",
    )
    demo.add_argument(
        "--energy-eV",
        dest="energy_eV",
        type=_positive(float, "--energy-eV"),
        default=None,
        help="photon energy to image at, eV (default: where the simulator starts, "
        "[sim.beam] energy_eV); focus follows",
    )
    demo.add_argument(
        "--mode",
        choices=("auto", "fly", "step"),
        default="auto",
        help="fly: line by line on the fly (the default for images 8 pixels wide or more); "
        "step: point by point",
    )
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.set_defaults(func=cmd_demo)

    sim = sub.add_parser("sim", help="run the simulated IOC fleet (foreground)")
    _add_config_option(sim)
    sim.set_defaults(func=cmd_sim)

    serve = sub.add_parser("serve", help="run the embedded catalog server (foreground)")
    _add_config_option(serve)
    serve.set_defaults(func=cmd_serve)

    config = sub.add_parser("config", help="show, write or check a configuration")
    _add_config_option(config)
    group = config.add_mutually_exclusive_group()
    group.add_argument("--show", action="store_true", help="print the effective configuration")
    group.add_argument("--write", type=Path, help="write the commented default to this file")
    config.set_defaults(func=cmd_config)

    spool = sub.add_parser("import-spool", help="put a spooled run into the catalog")
    _add_config_option(spool)
    spool.add_argument("file", type=Path, help="spool file (data_dir/spool/<uid>.jsonl)")
    spool.set_defaults(func=cmd_import_spool)

    optics = sub.add_parser(
        "optics",
        help="zone-plate optics at an energy: focal length, resolution, allowed A0, ZP z",
        description="For each installed zone plate ([optics.zone_plates.<name>]) at one "
        "energy: focal length, A1, zones, NA, resolution, depth of focus, the allowed A0 with "
        "one OSA and the ZP z reading for focus. Connects to nothing.",
    )
    _add_config_option(optics)
    optics.add_argument(
        "--energy-eV",
        dest="energy_eV",
        type=_finite("--energy-eV"),
        default=None,
        help="photon energy in eV (default: the configured [sim.beam] energy_eV); within "
        "[optics] energy_min_eV..energy_max_eV",
    )
    optics.add_argument(
        "--zone-plate", default=None, help="one installed zone plate by name (default: all)"
    )
    optics.add_argument(
        "--osa", default=None, help="an installed OSA by name (default: [optics] osa)"
    )
    optics.add_argument(
        "--json", action="store_true", help="print one JSON object (keys carry their units)"
    )
    optics.set_defaults(func=cmd_optics)

    export = sub.add_parser(
        "export",
        help="write the NXstxm files of runs (from the catalog, else the spool)",
        description="Write (or write again) the NXstxm file of each run, as the session does "
        "when a run ends: under [nexus] directory by [nexus] file_template, or under --out. "
        "Runs are read from the catalog, or from the spool when the catalog does not have "
        "them or does not answer; a run cut off by a crash is written as far as it got.",
    )
    _add_config_option(export)
    export.add_argument(
        "runs", nargs="+", help="scan id, uid (or its first characters) or spool file (.jsonl)"
    )
    export.add_argument("--out", type=Path, default=None, help="directory to write under")
    export.add_argument("--from-spool", action="store_true", help="read runs from the spool only")
    export.set_defaults(func=cmd_export)

    check = sub.add_parser(
        "check-nexus",
        help="check NXstxm files against the application definition",
        description="Check each file against NXstxm (required groups, fields, attributes, "
        "enumerations, dimensions); print each problem with its path in the file. Exit "
        "status 1 if a required element is missing or wrong.",
    )
    _add_config_option(check)
    check.add_argument("files", nargs="+", type=Path, help="NXstxm files")
    check.set_defaults(func=cmd_check_nexus)

    from stxm_ctrl.data.search import add_runs_arguments

    runs = sub.add_parser(
        "runs",
        help="find runs by sample, scan type, date, energy, proposal and user",
        description="Print the runs in the catalog that match every filter, newest first.",
    )
    _add_config_option(runs)
    add_runs_arguments(runs)
    runs.set_defaults(func=cmd_runs)
    return parser


class _RunEndReportedByUs(logging.Filter):
    """Drops bluesky's traceback of an ended run: the command reports it in one line."""

    _DROPPED = ("Run aborted", "No open traces left to close!")

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in self._DROPPED


def _stop_like_ctrl_c(signum: int, frame: FrameType | None) -> None:
    """SIGTERM and SIGHUP (a closed terminal, `timeout`, an ssh drop) end a command as Ctrl-C
    does: a scan is paused and its run closed as aborted, children are stopped.

    Whatever the command inherited: started in the background (``stxm sim &`` from a script,
    ``nohup``), SIGINT is ignored, so re-raising SIGINT would do nothing. The current SIGINT
    handler (the RunEngine's pause during a scan, else Python's) is called directly, and
    with none installed the command stops as Ctrl-C stops it.
    """
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``stxm`` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    # Everything the command writes in the data directory is for its owner only (the key,
    # the catalog, the spool, logs); this is the command's process, not a library's.
    os.umask(0o077)
    if not args.verbose:
        logging.getLogger("bluesky").addFilter(_RunEndReportedByUs())
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, _stop_like_ctrl_c)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        if not isinstance(exc, _runtime_errors()):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
