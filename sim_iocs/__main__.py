"""Run one simulated IOC: ``python -m sim_iocs {sample_stage,apd,ring} --config-json ...``.

Normally started by :class:`sim_iocs.fleet.SimFleet` (``stxm sim``), which creates the
world file and writes the effective configuration as JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sim_iocs.server import prepare_environment

IOC_NAMES = ("sample_stage", "apd", "ring")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sim_iocs", description=__doc__)
    parser.add_argument("ioc", choices=IOC_NAMES, help="which IOC to run")
    parser.add_argument("--config-json", required=True, type=Path, help="effective config")
    parser.add_argument("--world", required=True, type=Path, help="shared world file")
    parser.add_argument("--ready-file", type=Path, help="written once the IOC serves its PVs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Start the named IOC and serve until interrupted."""
    args = _parse(argv)
    from stxm_ctrl.config import BeamlineConfig

    config = BeamlineConfig.model_validate_json(args.config_json.read_text())
    prepare_environment(config.sim.host)

    # caproto.server is imported only now, after prepare_environment().
    from sim_iocs.apd import ApdCounter
    from sim_iocs.motor import MotorAxis
    from sim_iocs.ring import StorageRing
    from sim_iocs.server import run_ioc
    from sim_iocs.world import World

    world = World(args.world)
    owned_block = {"sample_stage": "stage", "ring": "ring"}.get(args.ioc)
    if owned_block is not None and world.take_ownership(owned_block):
        print(f"{args.ioc} IOC: recovered the {owned_block} block of the world file", flush=True)
    prefixes = config.epics.prefixes
    if args.ioc == "sample_stage":
        groups = [
            MotorAxis(prefixes.sample_stage + stage.pv_suffix, axis=axis, stage=stage, world=world)
            for axis, stage in (
                ("sample_x", config.stages.sample_x),
                ("sample_y", config.stages.sample_y),
            )
        ]
        port = config.sim.sample_stage_port
    elif args.ioc == "apd":
        groups = [ApdCounter(prefixes.apd, config=config, world=world)]
        port = config.sim.apd_port
    else:
        groups = [StorageRing(prefixes.ring, ring=config.ring, world=world)]
        port = config.sim.ring_port

    pvdb: dict = {}
    for group in groups:
        pvdb.update(group.pvdb)

    async def startup(async_lib) -> None:
        for group in groups:
            await group.initialise()
        if args.ready_file is not None:
            args.ready_file.write_text("ready\n")

    print(f"{args.ioc} IOC: {len(pvdb)} PVs on {config.sim.host}:{port}", flush=True)
    run_ioc(pvdb, host=config.sim.host, port=port, startup_hook=startup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
