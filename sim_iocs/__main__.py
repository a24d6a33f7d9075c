"""Run one simulated IOC of a fleet, or list the simulator's instruments.

``python -m sim_iocs NAME --config-json CONFIG --manifest FLEET_JSON`` is how
:class:`sim_iocs.fleet.SimFleet` (``stxm sim``) starts each IOC: the manifest gives the IOC
its registry entry (factory, world blocks, port) and the world directory.
``python -m sim_iocs --list`` prints the registry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim_iocs.registry import INSTRUMENTS, IocContext, SimInstrument, load_factory
from sim_iocs.server import prepare_environment


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sim_iocs", description=__doc__)
    parser.add_argument("ioc", nargs="?", help="which IOC of the manifest to run")
    parser.add_argument("--list", action="store_true", help="list the simulated instruments")
    parser.add_argument("--config-json", type=Path, help="effective configuration")
    parser.add_argument("--manifest", type=Path, help="the fleet's manifest (fleet.json)")
    parser.add_argument("--ready-file", type=Path, help="written once the IOC serves its PVs")
    args = parser.parse_args(argv)
    if not args.list and not (args.ioc and args.config_json and args.manifest):
        parser.error("give NAME, --config-json and --manifest (or --list)")
    return args


def _print_registry() -> None:
    print(f"{'name':<14} {'port':>5}  {'owns':<16} {'reads':<24} description")
    for i in INSTRUMENTS:
        owns, reads = ", ".join(i.owns) or "-", ", ".join(i.reads) or "-"
        print(f"{i.name:<14} {i.default_port:>5}  {owns:<16} {reads:<24} {i.description}")
        if i.default_prefix or i.settings:
            settings = ", ".join(f"{key} = {value!r}" for key, value in i.settings.items())
            prefix = i.default_prefix or "[epics.prefixes]"
            print(f"{'':<22}prefix {prefix}; settings: {settings or '-'}")


def main(argv: list[str] | None = None) -> int:
    """Start the named IOC and serve until interrupted."""
    args = _parse(argv)
    if args.list:
        _print_registry()
        return 0
    from stxm_ctrl.config import BeamlineConfig
    from stxm_ctrl.fleet_manifest import FleetManifest

    config = BeamlineConfig.model_validate_json(args.config_json.read_text())
    manifest = FleetManifest.read(args.manifest)
    if args.ioc not in manifest.iocs:
        print(f"error: no IOC {args.ioc!r} in {args.manifest}", file=sys.stderr)
        return 2
    entry = manifest.iocs[args.ioc]
    instrument = SimInstrument.from_json(entry)
    port = int(entry["port"])
    prepare_environment(manifest.host)

    # caproto.server is imported only now, after prepare_environment().
    from sim_iocs.server import run_ioc
    from sim_iocs.world import World

    world = World(manifest.world_dir, owns=instrument.owns, reads=instrument.reads)
    groups = list(load_factory(instrument)(IocContext(instrument, config, world)))
    for name, writer in world.owned().items():
        if writer.recovered:
            print(f"{args.ioc} IOC: recovered the {name} block of the world", flush=True)

    pvdb: dict = {}
    for group in groups:
        pvdb.update(group.pvdb)
    from sim_iocs.records import units_follow_egu

    units_follow_egu(pvdb)

    async def startup(async_lib) -> None:
        for group in groups:
            initialise = getattr(group, "initialise", None)
            if initialise is not None:
                await initialise()
        if args.ready_file is not None:
            args.ready_file.write_text("ready\n")

    print(f"{args.ioc} IOC: {len(pvdb)} PVs on {manifest.host}:{port}", flush=True)
    run_ioc(pvdb, host=manifest.host, port=port, startup_hook=startup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
