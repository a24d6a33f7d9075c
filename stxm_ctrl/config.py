"""Beamline configuration: load, merge over the defaults, validate.

The configuration is a TOML file whose keys name their unit (``velocity_um_per_s``). A user
file only needs the keys it changes; everything else keeps its default. The defaults and the
description of every key live here, in the pydantic models, and nowhere else: the shipped
default file (``stxm_ctrl/default_config.toml``) and the reference page
(``docs/reference/configuration.md``) are generated from them by
:mod:`stxm_ctrl.config_docs`.

The file has two halves. ``[beamline]``, ``[epics]``, ``[ring]`` and ``[catalog]`` describe the
beamline as the control system sees it; a file for real IOCs holds only those. ``[sim]`` and
its sub-tables describe the simulated instrument (ports, sample, detector physics, stage
motion) and are read only by the simulator, and by the session when it runs against it.

Validation errors are rewritten into one message per problem that names the key, the allowed
range and the fix; keys that moved get a message naming their new place.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from stxm_ctrl.errors import UsageError

__all__ = [
    "CONFIG_ENV_VAR",
    "ApdPhysicsConfig",
    "BeamConfig",
    "BeamlineConfig",
    "BeamlineSection",
    "CatalogConfig",
    "ConfigError",
    "EpicsAxes",
    "EpicsConfig",
    "EpicsPrefixes",
    "EpicsTimeouts",
    "ExperimentConfig",
    "FlyConfig",
    "InterferometerConfig",
    "NexusConfig",
    "RingConfig",
    "RingFillConfig",
    "SampleConfig",
    "SimConfig",
    "SimIocConfig",
    "SimStagesConfig",
    "StageMotionConfig",
    "OpticsConfig",
    "OsaSpec",
    "SimBeamlineConfig",
    "SimOpticsConfig",
    "ZonePlateSpec",
    "is_loopback",
    "load_config",
]

CONFIG_ENV_VAR = "STXM_CONFIG"

# Unit suffixes used in key names, to recognise a key given in the wrong unit.
_UNIT_SUFFIXES = (
    "_um_per_s",
    "_um_per_h",
    "_nm_per_h",
    "_mm_per_s",
    "_nm",
    "_um",
    "_mm",
    "_m",
    "_s",
    "_ms",
    "_us",
    "_ns",
    "_h",
    "_eV",
    "_keV",
    "_mA",
    "_A",
    "_Hz",
    "_kHz",
    "_MHz",
)

LOOPBACK = "127.0.0.1"


class ConfigError(UsageError):
    """A configuration file that cannot be used; the message lists every problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Port = Annotated[int, Field(ge=1024, le=65535)]
IocName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


def is_loopback(host: str) -> bool:
    """True for a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _clashes(ports: dict[str, int]) -> str:
    by_port: dict[int, list[str]] = {}
    for name, port in ports.items():
        by_port.setdefault(port, []).append(name)
    return "; ".join(
        f"{' and '.join(names)} are all {port}"
        for port, names in by_port.items()
        if len(names) > 1
    )


# -- beamline half --------------------------------------------------------------------------
class BeamlineSection(_Section):
    """Beamline identity and where data goes."""

    name: str = Field(
        default="stxm_ctrl simulated STXM",
        description="Beamline name, recorded as beamline_id in every run.",
    )
    data_dir: Path = Field(
        default=Path("stxm_data"),
        description="Where catalogs, API key, images, spooled documents and simulator files "
        "go. A relative path is taken from the directory the command is started in.",
    )


class EpicsPrefixes(_Section):
    """PV prefix of each subsystem, or of an instrument added to the simulator (by its name)."""

    # Further keys (heater = "STXM:HEATER:") are checked against the simulator's registry
    # by its fleet, which refuses one it has no instrument for.

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, Annotated[str, Field(min_length=1)]] = Field(init=False)  # pyright: ignore[reportIncompatibleVariableOverride]

    sample_stage: str = Field(
        default="STXM:SMP:", min_length=1, description="Sample stage motors."
    )
    apd: str = Field(default="STXM:APD:", min_length=1, description="APD point counter.")
    ring: str = Field(default="STXM:RING:", min_length=1, description="Storage ring and shutter.")
    optics: str = Field(
        default="STXM:OPT:", min_length=1, description="Zone plate and OSA stages."
    )
    detector: str = Field(default="STXM:DET:", min_length=1, description="Detector stage.")
    beamline: str = Field(
        default="STXM:BL:", min_length=1, description="Monochromator energy and EPU."
    )
    fly: str = Field(
        default="STXM:FLY:",
        min_length=1,
        description="Fine piezo stage, laser interferometer and line fly-scan controller.",
    )


class EpicsAxes(_Section):
    """Motor-record names of the stage axes, after their subsystem's prefix."""

    sample_x: str = Field(default="X", min_length=1, description="Sample stage x (STXM:SMP: + X).")
    sample_y: str = Field(default="Y", min_length=1, description="Sample stage y.")
    zp_x: str = Field(default="ZPX", min_length=1, description="Zone plate x (STXM:OPT: + ZPX).")
    zp_y: str = Field(default="ZPY", min_length=1, description="Zone plate y.")
    zp_z: str = Field(default="ZPZ", min_length=1, description="Zone plate z (focus).")
    osa_x: str = Field(default="OSAX", min_length=1, description="OSA x.")
    osa_y: str = Field(default="OSAY", min_length=1, description="OSA y.")
    osa_z: str = Field(default="OSAZ", min_length=1, description="OSA z (sets A0).")
    detector_x: str = Field(default="X", min_length=1, description="Detector x (STXM:DET: + X).")
    detector_y: str = Field(default="Y", min_length=1, description="Detector y.")
    fine_x: str = Field(default="FX", min_length=1, description="Fine piezo x (STXM:FLY: + FX).")
    fine_y: str = Field(default="FY", min_length=1, description="Fine piezo y.")


class EpicsTimeouts(_Section):
    """How long devices may take before a run ends with a reason (nothing waits forever)."""

    move_factor: float = Field(
        default=2.0,
        ge=1,
        le=100,
        description="A stage move may take this many times what its distance, velocity and "
        "acceleration imply, plus move_margin_s, before the run ends and the stage is sent "
        "STOP.",
    )
    move_margin_s: float = Field(
        default=2.0, ge=0, le=600, description="Added to every move's allowed time."
    )
    count_margin_s: float = Field(
        default=5.0,
        ge=0,
        le=600,
        description="A count may take its dwell plus this before the run ends.",
    )
    put_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Any other put that waits for completion (shutter, dwell, an EPU "
        "polarisation change) may take this; an energy move's monochromator this plus 0.5 s "
        "per eV. Beyond it the move fails, naming what did not answer.",
    )


class EpicsConfig(_Section):
    """Channel Access client settings."""

    ca_addr_list: list[str] = Field(
        default_factory=list,
        description='Channel Access servers to search, "host" or "host:port" each. Empty: '
        "the simulated IOC fleet of this data directory (stxm sim), on loopback.",
    )
    ca_max_array_bytes: int = Field(
        default=10_000_000,
        ge=16384,
        le=1_000_000_000,
        description="Largest array a client accepts.",
    )
    connection_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="How long a session waits for every device to connect.",
    )
    prefixes: EpicsPrefixes = EpicsPrefixes()
    axes: EpicsAxes = EpicsAxes()
    timeouts: EpicsTimeouts = EpicsTimeouts()

    @model_validator(mode="after")
    def _addresses_have_ports(self) -> EpicsConfig:
        for address in self.ca_addr_list:
            if not re.fullmatch(r"[A-Za-z0-9_.\-]+(:\d{1,5})?", address):
                raise ValueError(f"ca_addr_list entry {address!r} is not 'host' or 'host:port'")
        return self


class RingConfig(_Section):
    """The storage ring the beamline is at: RF and harmonic number (timing needs them)."""

    name: str = Field(default="BESSY II", description="Storage ring name.")
    rf_frequency_MHz: float = Field(default=499.654, ge=50, le=1000, description="RF frequency.")
    harmonic_number: int = Field(default=400, ge=1, le=10_000, description="RF buckets per turn.")

    @property
    def revolution_frequency_Hz(self) -> float:
        """Revolution frequency f_RF / h."""
        return self.rf_frequency_MHz * 1e6 / self.harmonic_number


class CatalogConfig(_Section):
    """Where runs are stored: a Tiled server."""

    uri: str = Field(
        default="",
        description="Tiled server that stores the runs. Empty: the embedded server, started "
        "on demand with a SQLite catalog in data_dir, listening on host:port and protected "
        "by an API key generated on first use (data_dir/tiled_api_key, owner-only).",
    )
    host: str = Field(
        default=LOOPBACK,
        description="Embedded server: listening address (loopback unless allow_remote).",
    )
    allow_remote: bool = Field(
        default=False,
        description="Let the embedded server listen on a non-loopback address: anyone who "
        "reaches it and holds the API key can read and write every run.",
    )
    port: Port = Field(default=8765, description="Embedded server: listening port.")
    batch_size: int = Field(
        default=100,
        ge=1,
        le=100_000,
        description="Events per write to the catalog (1 streams each point but costs ~30 ms "
        "per point).",
    )
    start_timeout_s: float = Field(
        default=300.0,
        ge=10.0,
        le=3600.0,
        description="Embedded server: how long a start may take while the server process "
        "is alive (it imports tiled's server, ~12 s of CPU: 40-60 s on a loaded 2-core "
        "machine); a message every 15 s says it is still starting.",
    )
    api_key_env: str = Field(
        default="TILED_API_KEY",
        min_length=1,
        description="External server (uri set): the environment variable holding its API key.",
    )

    @property
    def embedded(self) -> bool:
        """True when the session starts its own Tiled server (``uri`` left empty)."""
        return not self.uri

    @model_validator(mode="after")
    def _loopback_unless_allowed(self) -> CatalogConfig:
        if not self.allow_remote and not is_loopback(self.host):
            raise ValueError(
                f"host = {self.host!r} would let the catalog listen beyond this machine, "
                "where anyone with the API key reads and writes every run; use 127.0.0.1, "
                "or set [catalog] allow_remote = true to do it on purpose"
            )
        return self


# -- optics ---------------------------------------------------------------------------------
class ZonePlateSpec(_Section):
    """One installed zone plate, ``[optics.zone_plates.<name>]``."""

    diameter_um: float = Field(ge=20, le=1000, description="Zone plate diameter D.")
    outer_zone_width_nm: float = Field(
        ge=5, le=200, description="Outermost zone width drN (sets resolution and focal length)."
    )
    central_stop_um: float = Field(ge=1, le=1000, description="Central stop diameter.")
    first_order_efficiency: float = Field(
        default=0.1, gt=0, le=0.5, description="Fraction of the light on the plate focused."
    )
    zero_order_efficiency: float = Field(
        default=0.25, ge=0, le=1, description="Fraction that goes straight on (zero order)."
    )

    @model_validator(mode="after")
    def _stop_inside_plate(self) -> ZonePlateSpec:
        if self.central_stop_um >= self.diameter_um:
            raise ValueError(
                f"central_stop_um ({self.central_stop_um}) must be smaller than "
                f"diameter_um ({self.diameter_um})"
            )
        return self


class OsaSpec(_Section):
    """One installed order-sorting aperture, ``[optics.osas.<name>]``."""

    diameter_um: float = Field(ge=5, le=500, description="Diameter of the OSA's hole.")


OpticsName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]

_ZONE_PLATES = {  # D um / central stop um / drN nm of the plates at one STXM (physics.md)
    "zp240_25": ZonePlateSpec(diameter_um=240, central_stop_um=95, outer_zone_width_nm=25),
    "zp250_25": ZonePlateSpec(diameter_um=250, central_stop_um=100, outer_zone_width_nm=25),
    "zp240_35": ZonePlateSpec(diameter_um=240, central_stop_um=90, outer_zone_width_nm=35),
    "zp240_40": ZonePlateSpec(diameter_um=240, central_stop_um=90, outer_zone_width_nm=40),
    "zp140_40": ZonePlateSpec(diameter_um=140, central_stop_um=60, outer_zone_width_nm=40),
    "zp100_60": ZonePlateSpec(diameter_um=100, central_stop_um=45, outer_zone_width_nm=60),
    "zp280_50": ZonePlateSpec(diameter_um=280, central_stop_um=100, outer_zone_width_nm=50),
}
_OSAS = {name: OsaSpec(diameter_um=float(name[3:])) for name in ("osa30", "osa50", "osa60")}


class OpticsConfig(_Section):
    """The focusing optics: installed zone plates and OSAs, the pair in use, the interlocks."""

    zone_plate: str = Field(default="zp240_25", description="The zone plate in the beam.")
    osa: str = Field(default="osa50", description="The OSA in the beam.")
    z_sign: Literal[-1, 1] = Field(
        default=-1,
        description="ZP z and OSA z read z_sign x (distance upstream of the sample): -1 "
        "makes them z coordinates along the beam with the sample at 0, +1 distances.",
    )
    a0_um: float = Field(
        default=500.0,
        ge=10,
        le=20_000,
        description="A0 (OSA to sample) a session starts with; the simulator starts there.",
    )
    min_a0_um: float = Field(
        default=100.0, ge=0, le=5000, description="Closest the OSA may come to the sample."
    )
    min_zp_osa_gap_um: float = Field(
        default=200.0, ge=0, le=5000, description="Closest the zone plate may come to the OSA."
    )
    energy_min_eV: float = Field(
        default=250.0, ge=50, le=20_000, description="Lowest energy the beamline delivers."
    )
    energy_max_eV: float = Field(
        default=1000.0, ge=50, le=20_000, description="Highest energy the beamline delivers."
    )
    focus_follows_energy: bool = Field(
        default=True,
        description="Energy moves move ZP z with it (df = A1 dE) to keep the sample in focus.",
    )
    zone_plates: dict[OpticsName, ZonePlateSpec] = Field(
        default_factory=lambda: dict(_ZONE_PLATES),
        description="Installed zone plates by name; a file that gives this table replaces "
        "the whole list.",
    )
    osas: dict[OpticsName, OsaSpec] = Field(
        default_factory=lambda: dict(_OSAS),
        description="Installed OSAs by name; a file that gives this table replaces the list.",
    )

    @model_validator(mode="after")
    def _selection_installed(self) -> OpticsConfig:
        if self.zone_plate not in self.zone_plates:
            raise ValueError(
                f"zone_plate = {self.zone_plate!r} is not installed; installed: "
                f"{', '.join(sorted(self.zone_plates))}"
            )
        if self.osa not in self.osas:
            raise ValueError(
                f"osa = {self.osa!r} is not installed; installed: {', '.join(sorted(self.osas))}"
            )
        stop = self.zone_plates[self.zone_plate].central_stop_um
        hole = self.osas[self.osa].diameter_um
        if hole >= stop:
            raise ValueError(
                f"osa = {self.osa!r} ({hole:g} um) passes the zero order around the central "
                f"stop of {self.zone_plate!r} ({stop:g} um); select an OSA smaller than "
                f"{stop:g} um"
            )
        if self.energy_min_eV >= self.energy_max_eV:
            raise ValueError(
                f"energy_min_eV ({self.energy_min_eV}) must be below energy_max_eV "
                f"({self.energy_max_eV})"
            )
        return self

    @property
    def selected_zone_plate(self) -> ZonePlateSpec:
        """The zone plate in the beam."""
        return self.zone_plates[self.zone_plate]

    @property
    def selected_osa(self) -> OsaSpec:
        """The OSA in the beam."""
        return self.osas[self.osa]


class XmcdConfig(_Section):
    """Spectromicroscopy and XMCD: which helicity this beamline calls "+"."""

    plus_polarization: Literal["Circular left", "Circular right"] = Field(
        default="Circular left",
        description="The EPU polarisation whose images are I+ in XMCD plans and analysis "
        "(which helicity is '+' differs between beamlines); the other circular one is I-.",
    )

    @property
    def minus_polarization(self) -> str:
        """The other circular polarisation."""
        return "Circular right" if self.plus_polarization == "Circular left" else "Circular left"


NEXUS_PLACEHOLDERS = (
    "proposal",
    "user",
    "date",
    "scan_id",
    "plan_name",
    "scan_type",
    "uid",
    "sample",
)
"""Names ``[nexus] file_template`` may use."""
NEXUS_SUFFIXES = (".nxs", ".hdf5", ".stxm")
"""File endings analysis programs (mantis-xray) recognise as NXstxm."""


class ExperimentConfig(_Section):
    """Who measures: recorded in every run, used to file the NeXus files and to find runs."""

    proposal_id: str = Field(
        default="",
        max_length=100,
        description="Proposal (or beamtime) identifier recorded as proposal_id in every run; "
        "empty: none (set it per beamtime, or per run with md={'proposal_id': ...}).",
    )
    user: str = Field(
        default="",
        max_length=100,
        description="Who runs the experiment, recorded as user in every run; empty: none.",
    )


class NexusConfig(_Section):
    """NXstxm files: one per run, written when the run ends."""

    enabled: bool = Field(
        default=True,
        description="Write an NXstxm file for every run when it ends (`stxm export` writes "
        "them later from the catalog or a spool file either way).",
    )
    directory: Path = Field(
        default=Path("nexus"),
        description="Where the files go; a relative path is taken inside data_dir.",
    )
    file_template: str = Field(
        default="{proposal}/{date}/{scan_id:05d}_{plan_name}.nxs",
        min_length=5,
        description="Path of each file under directory, with placeholders {proposal} "
        "(proposal_id, else user, else 'no_proposal'), {user}, {date} (YYYY-MM-DD, local, of "
        "the run's start), {scan_id}, {plan_name}, {scan_type}, {uid} (first 8 characters) and "
        "{sample}; it must end in .nxs, .hdf5 or .stxm (what mantis-xray opens).",
    )

    @model_validator(mode="after")
    def _template_is_usable(self) -> NexusConfig:
        template = self.file_template
        if not template.endswith(NEXUS_SUFFIXES):
            raise ValueError(
                f"file_template = {template!r} must end in one of {', '.join(NEXUS_SUFFIXES)} "
                "(analysis programs such as mantis-xray open NXstxm files by their ending)"
            )
        if template.startswith("/") or ".." in Path(template).parts:
            raise ValueError(
                f"file_template = {template!r} must stay inside [nexus] directory: no leading "
                "'/' and no '..'"
            )
        sample = dict.fromkeys(NEXUS_PLACEHOLDERS, "x") | {"scan_id": 1}
        try:
            template.format(**sample)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"file_template = {template!r} cannot be filled ({exc}); use only the "
                f"placeholders {', '.join('{' + n + '}' for n in NEXUS_PLACEHOLDERS)}"
            ) from None
        return self


# -- simulator half -------------------------------------------------------------------------
class SimIocConfig(_Section):
    """One simulated IOC (``[sim.iocs.<name>]``; names: ``python -m sim_iocs --list``).

    Keys beyond ``port`` are the IOC's own settings (``tau_s = 4.0``), which its registry
    entry declares with their defaults; the fleet refuses one the entry does not declare.
    """

    model_config = ConfigDict(extra="allow", frozen=True)
    __pydantic_extra__: dict[str, bool | int | float | str] = Field(init=False)  # pyright: ignore[reportIncompatibleVariableOverride]

    port: Port | None = Field(
        default=None,
        ge=1024,
        le=65535,
        description="Channel Access port (TCP and UDP) of this IOC.",
    )

    @model_validator(mode="after")
    def _port_not_misspelt(self) -> SimIocConfig:
        for key in self.model_extra or {}:
            if difflib.get_close_matches(key, ["port"], n=1, cutoff=0.75):
                raise PydanticCustomError(
                    "unknown_key", "{key}: unknown key; did you mean 'port'?", {"key": key}
                )
        return self


class StageMotionConfig(_Section):
    """How a simulated motor-record stage moves (positions: dial = physical, OFF starts at 0)."""

    low_limit_um: float = Field(
        default=-2000.0, ge=-100_000, le=100_000, description="Soft low limit (DLLM) at start."
    )
    high_limit_um: float = Field(
        default=2000.0, ge=-100_000, le=100_000, description="Soft high limit (DHLM) at start."
    )
    low_limit_switch_um: float = Field(
        default=-2100.0,
        ge=-100_000,
        le=100_000,
        description="Where the stage hits its low limit switch (LLS): the end of its travel. "
        "Moves past it stop there.",
    )
    high_limit_switch_um: float = Field(
        default=2100.0,
        ge=-100_000,
        le=100_000,
        description="High limit switch (HLS): end of travel.",
    )
    home_switch_um: float = Field(
        default=0.0,
        ge=-100_000,
        le=100_000,
        description="Position of the home switch that HOMF/HOMR search for.",
    )
    velocity_um_per_s: float = Field(
        default=2000.0, gt=0, le=100_000, description="Cruise velocity (VELO) at start."
    )
    base_velocity_um_per_s: float = Field(
        default=0.0,
        ge=0,
        le=100_000,
        description="Base velocity (VBAS): the slowest speed the record accepts for VELO, "
        "JVEL and HVEL.",
    )
    max_velocity_um_per_s: float = Field(
        default=10000.0,
        gt=0,
        le=100_000,
        description="Maximum velocity (VMAX): faster VELO, JVEL and HVEL are clamped to it.",
    )
    jog_velocity_um_per_s: float = Field(
        default=200.0, gt=0, le=100_000, description="Jog velocity (JVEL) at start."
    )
    home_velocity_um_per_s: float = Field(
        default=500.0, gt=0, le=100_000, description="Home search velocity (HVEL) at start."
    )
    acceleration_time_s: float = Field(
        default=0.005, ge=0, le=10, description="Time to reach cruise velocity (ACCL)."
    )
    resolution_um: float = Field(
        default=0.0001,
        gt=0,
        le=10,
        description="Motor step size (MRES): targets are rounded to whole steps, RVAL and "
        "RRBV count them. Fixed by the simulated controller.",
    )
    precision_digits: int = Field(default=4, ge=0, le=9, description="Display precision (PREC).")

    @model_validator(mode="after")
    def _limits_ordered(self) -> StageMotionConfig:
        if self.low_limit_um >= self.high_limit_um:
            raise ValueError(
                f"low_limit_um ({self.low_limit_um}) must be below high_limit_um "
                f"({self.high_limit_um})"
            )
        if self.low_limit_switch_um >= self.high_limit_switch_um:
            raise ValueError(
                f"low_limit_switch_um ({self.low_limit_switch_um}) must be below "
                f"high_limit_switch_um ({self.high_limit_switch_um})"
            )
        if not self.low_limit_switch_um < self.home_switch_um < self.high_limit_switch_um:
            raise ValueError(
                f"home_switch_um ({self.home_switch_um}) must lie between the limit switches "
                f"({self.low_limit_switch_um} to {self.high_limit_switch_um}); move it inside "
                "the travel"
            )
        speeds = {
            "velocity_um_per_s": self.velocity_um_per_s,
            "jog_velocity_um_per_s": self.jog_velocity_um_per_s,
            "home_velocity_um_per_s": self.home_velocity_um_per_s,
        }
        for key, speed in speeds.items():
            if not self.base_velocity_um_per_s <= speed <= self.max_velocity_um_per_s:
                raise ValueError(
                    f"{key} ({speed}) must lie between base_velocity_um_per_s "
                    f"({self.base_velocity_um_per_s}) and max_velocity_um_per_s "
                    f"({self.max_velocity_um_per_s})"
                )
        return self


def _stage(**values: float) -> StageMotionConfig:
    return StageMotionConfig.model_validate(values)


class SimStagesConfig(_Section):
    """The simulated motor-record stages (defaults for the default ``[optics] z_sign = -1``)."""

    sample_x: StageMotionConfig = StageMotionConfig()
    sample_y: StageMotionConfig = StageMotionConfig()
    zp_x: StageMotionConfig = _stage(
        low_limit_um=-1000,
        high_limit_um=1000,
        low_limit_switch_um=-1100,
        high_limit_switch_um=1100,
        velocity_um_per_s=1000,
        acceleration_time_s=0.02,
    )
    zp_y: StageMotionConfig = _stage(
        low_limit_um=-1000,
        high_limit_um=1000,
        low_limit_switch_um=-1100,
        high_limit_switch_um=1100,
        velocity_um_per_s=1000,
        acceleration_time_s=0.02,
    )
    zp_z: StageMotionConfig = _stage(
        low_limit_um=-15_000,
        high_limit_um=-300,
        low_limit_switch_um=-15_100,
        high_limit_switch_um=-250,
        home_switch_um=-5000,
        velocity_um_per_s=2000,
        acceleration_time_s=0.02,
    )
    osa_x: StageMotionConfig = _stage(
        low_limit_um=-3000,
        high_limit_um=3000,
        low_limit_switch_um=-3100,
        high_limit_switch_um=3100,
        velocity_um_per_s=1000,
        acceleration_time_s=0.02,
    )
    osa_y: StageMotionConfig = _stage(
        low_limit_um=-3000,
        high_limit_um=3000,
        low_limit_switch_um=-3100,
        high_limit_switch_um=3100,
        velocity_um_per_s=1000,
        acceleration_time_s=0.02,
    )
    osa_z: StageMotionConfig = _stage(
        low_limit_um=-5000,
        high_limit_um=-20,
        low_limit_switch_um=-5100,
        high_limit_switch_um=-10,
        home_switch_um=-300,
        velocity_um_per_s=1000,
        acceleration_time_s=0.02,
    )
    detector_x: StageMotionConfig = _stage(
        low_limit_um=-5000,
        high_limit_um=5000,
        low_limit_switch_um=-5100,
        high_limit_switch_um=5100,
        velocity_um_per_s=5000,
        acceleration_time_s=0.02,
    )
    detector_y: StageMotionConfig = _stage(
        low_limit_um=-5000,
        high_limit_um=5000,
        low_limit_switch_um=-5100,
        high_limit_switch_um=5100,
        velocity_um_per_s=5000,
        acceleration_time_s=0.02,
    )
    fine_x: StageMotionConfig = _stage(
        low_limit_um=-50,
        high_limit_um=50,
        low_limit_switch_um=-52,
        high_limit_switch_um=52,
        home_switch_um=0,
        velocity_um_per_s=1000,
        max_velocity_um_per_s=5000,
        acceleration_time_s=0.002,
        resolution_um=0.0001,
        precision_digits=4,
    )
    fine_y: StageMotionConfig = _stage(
        low_limit_um=-50,
        high_limit_um=50,
        low_limit_switch_um=-52,
        high_limit_switch_um=52,
        home_switch_um=0,
        velocity_um_per_s=1000,
        max_velocity_um_per_s=5000,
        acceleration_time_s=0.002,
        resolution_um=0.0001,
        precision_digits=4,
    )


class RingFillConfig(_Section):
    """Simulated top-up operation: the current decays with the lifetime and is refilled."""

    fill_current_mA: float = Field(
        default=300.0, gt=0, le=1000, description="Current after a top-up."
    )
    beam_lifetime_h: float = Field(default=8.0, gt=0, le=1000, description="1/e beam lifetime.")
    topup_interval_s: float = Field(
        default=120.0, gt=0, le=86_400, description="Time between top-up injections."
    )
    low_alarm_mA: float = Field(
        default=280.0,
        gt=0,
        le=1000,
        description="Ring current below which CURRENT is in MINOR alarm (LOW), e.g. a missed "
        "top-up.",
    )
    lolo_alarm_mA: float = Field(
        default=50.0,
        gt=0,
        le=1000,
        description="Ring current below which CURRENT is in MAJOR alarm (LOLO); a dumped "
        "beam (0 mA) is always below it.",
    )

    @model_validator(mode="after")
    def _alarm_limits_ordered(self) -> RingFillConfig:
        if not self.lolo_alarm_mA < self.low_alarm_mA < self.fill_current_mA:
            raise ValueError(
                f"the ring current alarm limits must satisfy lolo_alarm_mA "
                f"({self.lolo_alarm_mA}) < low_alarm_mA ({self.low_alarm_mA}) < "
                f"fill_current_mA ({self.fill_current_mA}); lower the alarm limits"
            )
        return self


class BeamConfig(_Section):
    """The simulated focused beam on the sample."""

    energy_eV: float = Field(
        default=706.8,
        ge=100,
        le=3000,
        description="Energy of the simulated monochromator when the fleet starts (Fe L3).",
    )
    photon_flux_per_mA_Hz: float = Field(
        default=600_000.0,
        gt=0,
        le=1e10,
        description="Photons per second per mA of ring current on the zone plate's open area "
        "with the EPU tuned to the energy (its first-order efficiency focuses a tenth of it).",
    )
    drift_x_um_per_h: float = Field(
        default=0.05,
        ge=-10,
        le=10,
        description="Slow (thermal) drift of the beam on the sample, x.",
    )
    drift_y_um_per_h: float = Field(default=-0.03, ge=-10, le=10, description="Beam drift, y.")


class InterferometerConfig(_Section):
    """The simulated laser interferometer and the sample's motion it sees (fine stage)."""

    noise_nm: float = Field(
        default=3.0,
        ge=0,
        le=1000,
        description="RMS position noise of the sample (vibration), seen by both the counter "
        "and the interferometer.",
    )
    drift_x_nm_per_h: float = Field(
        default=30.0,
        ge=-1e6,
        le=1e6,
        description="Slow thermal drift of the sample relative to the zone plate, x, from the "
        "world's start; the interferometer sees it (unlike [sim.beam] drift).",
    )
    drift_y_nm_per_h: float = Field(
        default=-20.0,
        ge=-1e6,
        le=1e6,
        description="Sample drift seen by the interferometer, y.",
    )


class FlyConfig(_Section):
    """The simulated line fly-scan controller (closed loop on the interferometer)."""

    settle_s: float = Field(
        default=0.006,
        ge=0,
        le=1,
        description="Piezo settle before each line starts (after the y step or flyback).",
    )
    run_up_s: float = Field(
        default=0.002,
        ge=0,
        le=1,
        description="Acceleration to line speed before the first pixel.",
    )
    turnaround_s: float = Field(
        default=0.002, ge=0, le=1, description="Deceleration after the last pixel."
    )
    flyback_speed_um_per_s: float = Field(
        default=2000.0,
        gt=0,
        le=100_000,
        description="Speed of the return to the line start (unidirectional lines) and of "
        "the y step between lines.",
    )
    max_line_speed_um_per_s: float = Field(
        default=2000.0,
        gt=0,
        le=100_000,
        description="Fastest sweep (pixel step / dwell) the controller accepts.",
    )
    samples_per_pixel: int = Field(
        default=8,
        ge=1,
        le=1000,
        description="Sub-samples of the trajectory per pixel dwell (motion blur within a pixel).",
    )
    max_pixels: int = Field(
        default=4096, ge=2, le=65_536, description="Largest NX and NY (waveform length)."
    )


class SimOpticsConfig(_Section):
    """The simulated optics' hidden truth: what the alignment scans are there to find."""

    osa_center_x_um: float = Field(
        default=4.0,
        ge=-500,
        le=500,
        description="OSA x reading at which the OSA hole is on the zone plate's axis.",
    )
    osa_center_y_um: float = Field(
        default=-2.5, ge=-500, le=500, description="OSA y reading with the hole on axis."
    )
    sample_z_offset_um: float = Field(
        default=0.0,
        ge=-1000,
        le=1000,
        description="Sample surface this far upstream of where the z stages' zero puts it: "
        "the true focus is at ZP distance f + this (sample_focus finds it).",
    )
    osa_plate_half_width_um: float = Field(
        default=1000.0,
        ge=50,
        le=10_000,
        description="The OSA plate blocks light within this distance of the beam; further "
        "off (OSA x or y) the OSA is out of the beam.",
    )
    detector_center_x_um: float = Field(
        default=150.0, ge=-3000, le=3000, description="Detector x reading centred on the beam."
    )
    detector_center_y_um: float = Field(
        default=-80.0, ge=-3000, le=3000, description="Detector y reading centred on the beam."
    )


class SimBeamlineConfig(_Section):
    """The simulated monochromator and elliptically polarising undulator (EPU)."""

    mono_speed_eV_per_s: float = Field(
        default=50.0, gt=0, le=10_000, description="Monochromator slew rate."
    )
    mono_overhead_s: float = Field(
        default=0.3, ge=0, le=60, description="Dead time of every energy move."
    )
    mono_settle_s: float = Field(
        default=0.15,
        ge=0,
        le=60,
        description="Time constant with which the energy readback settles onto the target.",
    )
    mono_tolerance_eV: float = Field(
        default=0.005, gt=0, le=10, description="The energy move is done within this."
    )
    electron_energy_GeV: float = Field(
        default=1.7, gt=0, le=10, description="Storage ring electron energy (undulator)."
    )
    epu_period_mm: float = Field(default=26.0, gt=5, le=300, description="EPU magnetic period.")
    epu_peak_field_T: float = Field(
        default=2.0,
        gt=0,
        le=5,
        description="Halbach amplitude: the on-axis field is this x exp(-pi gap / period).",
    )
    epu_periods: int = Field(
        default=60, ge=5, le=1000, description="Number of periods (sets the harmonic's width)."
    )
    epu_min_gap_mm: float = Field(default=8.0, gt=0, le=100, description="Smallest EPU gap.")
    epu_max_gap_mm: float = Field(default=80.0, gt=0, le=300, description="Largest EPU gap.")
    epu_gap_speed_mm_per_s: float = Field(
        default=2.0, gt=0, le=100, description="EPU gap motor velocity."
    )
    polarization_change_s: float = Field(
        default=3.0,
        ge=0,
        le=600,
        description="Time the EPU takes to change polarisation (shifting its magnet rows).",
    )
    circular_polarization_degree: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="Degree of circular polarisation Pc of the EPU's circular states (XMCD "
        "contrast scales with it).",
    )
    positive_helicity_polarization: Literal["Circular left", "Circular right"] = Field(
        default="Circular left",
        description="The EPU state whose photons the sample sees with positive helicity: "
        "mu = mu_mean (1 - A Pc k.m) (physics.md); the other circular state is negative.",
    )


class ApdPhysicsConfig(_Section):
    """The simulated avalanche photodiode and its counter."""

    quantum_efficiency: float = Field(default=0.8, gt=0, le=1, description="Detection efficiency.")
    dark_count_rate_Hz: float = Field(default=30.0, ge=0, le=1e6, description="Dark count rate.")
    dead_time_ns: float = Field(
        default=6.0, ge=0, le=1000, description="Non-paralysable dead time of the counter chain."
    )
    min_dwell_s: float = Field(
        default=0.0001, gt=0, le=1, description="Shortest preset time (TP) the counter accepts."
    )
    max_dwell_s: float = Field(
        default=10.0, gt=0, le=3600, description="Longest preset time (TP) the counter accepts."
    )
    active_diameter_um: float = Field(
        default=1000.0, ge=10, le=20_000, description="Active area of the APD."
    )
    distance_um: float = Field(
        default=5000.0, ge=100, le=100_000, description="APD distance downstream of the sample."
    )
    clock_frequency_Hz: float = Field(
        default=1e7,
        ge=1e3,
        le=1e9,
        description="Scaler time base (FREQ): channel 1 counts this clock, so S1 / FREQ is "
        "the counting time.",
    )

    @model_validator(mode="after")
    def _dwell_range(self) -> ApdPhysicsConfig:
        if self.min_dwell_s >= self.max_dwell_s:
            raise ValueError(
                f"min_dwell_s ({self.min_dwell_s}) must be below max_dwell_s ({self.max_dwell_s})"
            )
        return self


class SampleConfig(_Section):
    """The sample loaded in the simulator: a resolution test pattern on a SiN window."""

    name: str = Field(
        default="Resolution pattern on 100 nm SiN",
        description="Recorded as sample_name by runs on the simulated beamline that look "
        "into its window (a magnetic window records its own name and kind).",
    )
    kind: Literal["resolution_pattern"] = Field(
        default="resolution_pattern", description="Which sample model."
    )
    center_x_um: float = Field(
        default=0.0, ge=-100_000, le=100_000, description="Pattern centre, x."
    )
    center_y_um: float = Field(
        default=0.0, ge=-100_000, le=100_000, description="Pattern centre, y."
    )
    window_size_um: float = Field(
        default=60.0, ge=20, le=5000, description="Side of the SiN window."
    )
    membrane_od: float = Field(default=0.18, ge=0, le=10, description="OD of the bare membrane.")
    feature_od: float = Field(default=0.7, ge=0, le=10, description="OD the pattern features add.")
    frame_od: float = Field(
        default=9.0, ge=0, le=20, description="OD of the frame around the window."
    )
    chip_size_um: float = Field(
        default=3000.0,
        ge=100,
        le=50_000,
        description="Side of the silicon chip; beyond it there is no sample (open beam).",
    )
    reference_energy_eV: float = Field(
        default=706.8, ge=100, le=3000, description="Energy at which the ODs above hold."
    )
    absorption_exponent: float = Field(
        default=2.64,
        ge=0,
        le=4,
        description="ODs scale as (E / reference_energy_eV) ** -exponent (2.64 fits 100 nm "
        "Si3N4 from 707 to 933 eV; no edges).",
    )


def _box(cx: float, cy: float, side: float) -> tuple[float, float, float, float]:
    """A square of ``side`` around (``cx``, ``cy``) as (x0, x1, y0, y1)."""
    return cx - side / 2, cx + side / 2, cy - side / 2, cy + side / 2


MagneticSampleKind = Literal["vortex_discs", "maze_multilayer", "cocu_pillars"]


class MagneticSampleSpec(_Section):
    """A magnetic sample in its own window of the chip: [sim.magnetic_samples.<name>].

    See :mod:`stxm_ctrl.physics.magnetic_samples` for the models; fields a kind does not use
    are ignored by it.
    """

    kind: MagneticSampleKind = Field(
        description="vortex_discs (permalloy), maze_multilayer (perpendicular Co) or "
        "cocu_pillars (Co on Cu)."
    )
    center_x_um: float = Field(ge=-100_000, le=100_000, description="Window centre, x.")
    center_y_um: float = Field(ge=-100_000, le=100_000, description="Window centre, y.")
    window_size_um: float = Field(default=30.0, ge=5, le=2000, description="Side of the window.")
    tilt_deg: float = Field(
        default=0.0,
        ge=-70,
        le=70,
        description="Sample tilt about the stage y axis (0: normal incidence, sees m_z only).",
    )
    membrane_od: float = Field(
        default=0.18, ge=0, le=10, description="OD of the SiN membrane at the reference energy."
    )
    background_od: float = Field(
        default=0.0,
        ge=0,
        le=10,
        description="OD of non-resonant layers (Pt, seed layers) at the reference energy.",
    )
    rows: int = Field(default=3, ge=1, le=50, description="Discs or pillars per column.")
    columns: int = Field(default=3, ge=1, le=50, description="Discs or pillars per row.")
    feature_diameter_um: float = Field(
        default=2.0, gt=0.05, le=100, description="Disc or pillar diameter."
    )
    pitch_um: float = Field(
        default=4.0, gt=0.1, le=500, description="Centre-to-centre distance of discs/pillars."
    )
    thickness_nm: float = Field(
        default=30.0,
        gt=0,
        le=500,
        description="Magnetic layer: disc permalloy, multilayer total Co, pillar Co.",
    )
    circulation: Literal[-1, 1] = Field(
        default=1, description="Vortex curl: +1 counter-clockwise seen along the beam."
    )
    polarity: Literal[-1, 1] = Field(
        default=1, description="Vortex core: +1 along the beam (towards the detector)."
    )
    core_radius_nm: float = Field(
        default=15.0, gt=1, le=200, description="Vortex core radius (Gaussian sigma of m_z)."
    )
    domain_width_nm: float = Field(
        default=150.0, gt=10, le=10_000, description="Maze: mean domain width."
    )
    wall_width_nm: float = Field(default=10.0, gt=0, le=500, description="Maze: wall width.")
    seed: int = Field(default=1, ge=0, description="Maze: seed of the domain pattern.")
    cu_nm: float = Field(
        default=40.0, ge=0, le=500, description="Pillars: Cu spacer under each pillar and lead."
    )

    @model_validator(mode="after")
    def _features_fit(self) -> MagneticSampleSpec:
        if self.kind != "maze_multilayer" and self.pitch_um <= self.feature_diameter_um:
            raise ValueError(
                f"pitch_um ({self.pitch_um}) must exceed feature_diameter_um "
                f"({self.feature_diameter_um}): the discs/pillars would overlap"
            )
        return self


_MAGNETIC_SAMPLES = {
    "vortex_flat": MagneticSampleSpec(kind="vortex_discs", center_x_um=300.0, center_y_um=0.0),
    "vortex_tilted": MagneticSampleSpec(
        kind="vortex_discs",
        center_x_um=300.0,
        center_y_um=300.0,
        tilt_deg=30.0,
        circulation=-1,
        polarity=-1,
    ),
    "maze": MagneticSampleSpec(
        kind="maze_multilayer",
        center_x_um=0.0,
        center_y_um=300.0,
        thickness_nm=8.0,
        background_od=0.15,
    ),
    "pillars": MagneticSampleSpec(
        kind="cocu_pillars",
        center_x_um=-300.0,
        center_y_um=0.0,
        tilt_deg=30.0,
        feature_diameter_um=0.5,
        pitch_um=1.5,
        rows=5,
        columns=5,
        thickness_nm=10.0,
    ),
}


class SimConfig(_Section):
    """The simulated beamline: where its IOCs listen, and the physics they simulate."""

    host: str = Field(
        default=LOOPBACK,
        description="Address every simulated IOC and the CA repeater listen on (loopback "
        "unless allow_remote).",
    )
    allow_remote: bool = Field(
        default=False,
        description="Let the simulated IOCs listen on a non-loopback address: any host that "
        "reaches it can move the simulated stages and put to every PV, fault injection "
        "included (Channel Access has no authentication here).",
    )
    runtime_dir: str = Field(
        default="",
        description="Where the fleet keeps its world, logs and manifest; empty: data_dir/sim. "
        "Sessions with different data directories share one simulated fleet by naming the "
        "same runtime_dir.",
    )
    repeater_port: Port = Field(
        default=5073, description="The fleet's Channel Access repeater (its clients use it)."
    )
    start_timeout_s: float = Field(
        default=300.0,
        ge=10.0,
        le=3600.0,
        description="How long the fleet's start may take while its processes are alive (each "
        "IOC is a Python process importing caproto: on a loaded 2-core machine a start takes "
        "a minute or more); a message every 15 s says it is still starting.",
    )
    control_prefix: str = Field(
        default="STXM:SIM:",
        pattern=r"^[A-Za-z0-9_:\-]+:$",
        description="PV prefix of the simulator's own controls (fault injection: beam dump, "
        "stalled motors), kept apart from the beamline's PVs; ends in ':'.",
    )
    random_seed: int = Field(
        default=0,
        ge=0,
        le=2**32 - 1,
        description="Seed for the photon noise; 0 draws a fresh seed.",
    )
    iocs: dict[IocName, SimIocConfig] = Field(
        default_factory=dict,
        description="Per-IOC settings, [sim.iocs.<name>] port = N, and the settings the IOC's "
        "registry entry declares (e.g. tau_s = 4.0); an IOC not named here keeps its default "
        "port and settings (python -m sim_iocs --list shows names, ports and settings).",
    )
    stages: SimStagesConfig = SimStagesConfig()
    ring: RingFillConfig = RingFillConfig()
    beam: BeamConfig = BeamConfig()
    optics: SimOpticsConfig = SimOpticsConfig()
    beamline: SimBeamlineConfig = SimBeamlineConfig()
    apd: ApdPhysicsConfig = ApdPhysicsConfig()
    sample: SampleConfig = SampleConfig()
    magnetic_samples: dict[OpticsName, MagneticSampleSpec] = Field(
        default_factory=lambda: dict(_MAGNETIC_SAMPLES),
        description="Magnetic samples, each in its own window of the chip, by name; a file "
        "that gives this table replaces the whole list.",
    )
    interferometer: InterferometerConfig = InterferometerConfig()
    fly: FlyConfig = FlyConfig()

    @model_validator(mode="after")
    def _loopback_unless_allowed(self) -> SimConfig:
        if not self.allow_remote and not is_loopback(self.host):
            raise ValueError(
                f"host = {self.host!r} would let the simulated IOCs listen beyond this "
                "machine, where anyone can move the stages and inject faults; use "
                "127.0.0.1, or set [sim] allow_remote = true to do it on purpose"
            )
        return self

    def windows(self) -> dict[str, tuple[float, float, float, float]]:
        """Each window of the simulated chip as (x0, x1, y0, y1), um, by its config key
        (``sample``, ``magnetic_samples.<name>``)."""
        pattern = self.sample
        windows = {
            "sample": _box(pattern.center_x_um, pattern.center_y_um, pattern.window_size_um)
        }
        windows |= {
            f"magnetic_samples.{name}": _box(m.center_x_um, m.center_y_um, m.window_size_um)
            for name, m in self.magnetic_samples.items()
        }
        return windows

    def sample_name_at(self, x_um: float, y_um: float) -> str:
        """What the beam goes through with the sample stage at (``x_um``, ``y_um``).

        The resolution pattern's ``name``, a magnetic sample as ``<name> (<kind>)``, or the
        chip's silicon frame, or open beam off the chip; runs record it as ``sample_name``.
        """
        for key, (x0, x1, y0, y1) in self.windows().items():
            if x0 <= x_um <= x1 and y0 <= y_um <= y1:
                if key == "sample":
                    return self.sample.name
                name = key.removeprefix("magnetic_samples.")
                return f"{name} ({self.magnetic_samples[name].kind})"
        pattern = self.sample
        x0, x1, y0, y1 = _box(pattern.center_x_um, pattern.center_y_um, pattern.chip_size_um)
        if x0 <= x_um <= x1 and y0 <= y_um <= y1:
            return "silicon frame of the chip (between its windows)"
        return "open beam (off the chip)"

    @model_validator(mode="after")
    def _windows_apart(self) -> SimConfig:
        pattern = self.sample
        windows = self.windows()
        chip = _box(pattern.center_x_um, pattern.center_y_um, pattern.chip_size_um)
        names = list(windows)
        for i, a in enumerate(names):
            ax0, ax1, ay0, ay1 = windows[a]
            if a != "sample" and not (
                chip[0] <= ax0 and ax1 <= chip[1] and chip[2] <= ay0 and ay1 <= chip[3]
            ):
                raise ValueError(
                    f"sim.{a}: its window leaves the chip ([sim.sample] chip_size_um = "
                    f"{pattern.chip_size_um:g} um around the pattern); move it onto the chip"
                )
            for b in names[i + 1 :]:
                bx0, bx1, by0, by1 = windows[b]
                if ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1:
                    raise ValueError(
                        f"sim.{a} and sim.{b}: their windows overlap; place them apart "
                        "(centre_x_um, centre_y_um, window_size_um)"
                    )
        return self

    @model_validator(mode="after")
    def _distinct_ports(self) -> SimConfig:
        ports = {"repeater": self.repeater_port}
        ports |= {
            f"iocs.{name}": ioc.port for name, ioc in self.iocs.items() if ioc.port is not None
        }
        clashes = _clashes(ports)
        if clashes:
            raise ValueError(
                f"sim ports must differ (two IOCs cannot share a UDP port): {clashes}; give "
                "each its own port"
            )
        return self


class BeamlineConfig(_Section):
    """The whole configuration."""

    beamline: BeamlineSection = BeamlineSection()
    epics: EpicsConfig = EpicsConfig()
    ring: RingConfig = RingConfig()
    catalog: CatalogConfig = CatalogConfig()
    optics: OpticsConfig = OpticsConfig()
    xmcd: XmcdConfig = XmcdConfig()
    experiment: ExperimentConfig = ExperimentConfig()
    nexus: NexusConfig = NexusConfig()
    sim: SimConfig = SimConfig()

    source: str = Field(default="<shipped default>", exclude=True)

    @property
    def data_dir(self) -> Path:
        """Absolute data directory."""
        return self.beamline.data_dir.expanduser().resolve()

    @property
    def nexus_dir(self) -> Path:
        """Absolute directory of the NXstxm files (``[nexus] directory`` under data_dir)."""
        return self.data_dir / self.nexus.directory.expanduser()

    @property
    def sim_dir(self) -> Path:
        """Where the simulated fleet keeps its files (``[sim] runtime_dir``, or data_dir/sim)."""
        if self.sim.runtime_dir:
            return Path(self.sim.runtime_dir).expanduser().resolve()
        return self.data_dir / "sim"

    @property
    def simulated(self) -> bool:
        """True when clients talk to the simulated fleet (``[epics] ca_addr_list`` empty)."""
        return not self.epics.ca_addr_list

    @model_validator(mode="after")
    def _catalog_port_not_a_sim_port(self) -> BeamlineConfig:
        if self.catalog.embedded and self.catalog.host == self.sim.host:
            sim_ports = {"sim.repeater_port": self.sim.repeater_port}
            sim_ports |= {
                f"sim.iocs.{n}.port": ioc.port
                for n, ioc in self.sim.iocs.items()
                if ioc.port is not None
            }
            for key, port in sim_ports.items():
                if port == self.catalog.port:
                    raise ValueError(
                        f"catalog.port = {port} is also {key}; give the catalog a port of its own"
                    )
        return self

    @model_validator(mode="after")
    def _z_travel_matches_sign(self) -> BeamlineConfig:
        sign = self.optics.z_sign
        for axis in ("zp_z", "osa_z"):
            stage = getattr(self.sim.stages, axis)
            if sign * stage.low_limit_switch_um < 0 or sign * stage.high_limit_switch_um < 0:
                raise ValueError(
                    f"[sim.stages.{axis}] travel {stage.low_limit_switch_um:g} to "
                    f"{stage.high_limit_switch_um:g} um lies on the wrong side of the sample "
                    f"for [optics] z_sign = {sign}: with that sign z readings are "
                    f"{'negative' if sign < 0 else 'positive'}; flip the stage's limits and "
                    "switches"
                )
        return self

    def with_overrides(self, overrides: dict[str, Any]) -> BeamlineConfig:
        """Return a validated copy with nested ``overrides`` merged in."""
        merged = _deep_merge(self.model_dump(mode="json"), overrides)
        return _validate(merged, source=f"{self.source} + overrides")


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None
) -> BeamlineConfig:
    """Load and validate a beamline configuration.

    Parameters
    ----------
    path
        A TOML file whose keys are merged over the defaults. ``None`` uses the file named
        by the ``STXM_CONFIG`` environment variable, or the defaults alone.
    overrides
        Nested mapping merged last (e.g. ports chosen by a test).

    Returns
    -------
    BeamlineConfig
        The validated configuration.

    Raises
    ------
    ConfigError
        If the file is missing, unreadable or not TOML, has unknown or moved keys, keys in
        the wrong unit, or values out of range; the message names each key and the fix.
    """
    data: dict[str, Any] = {}
    source = "<shipped default>"
    if path is None and os.environ.get(CONFIG_ENV_VAR):
        path = os.environ[CONFIG_ENV_VAR]
    if path is not None:
        file = Path(path)
        source = str(file)
        data = _read_toml(file)
    if overrides:
        data = _deep_merge(data, overrides)
    return _validate(_deep_merge(_default_values(), data), source=source)


def _default_values() -> dict[str, Any]:
    """The defaults as plain data, to merge a file over.

    Merging (rather than letting pydantic fill what a file leaves out) keeps the defaults of
    a table that differ from its model's, e.g. ``[sim.stages.zp_z]``. The tables of installed
    optics are left out: a file that gives them replaces the list.
    """
    values = BeamlineConfig().model_dump(mode="json")
    for key in _REPLACED_TABLES:
        values["optics"].pop(key)
    return values


_REPLACED_TABLES = ("zone_plates", "osas")


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        text = file.read_bytes().decode("utf-8")
        return tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError(
            f"configuration file {file} does not exist; write one with "
            f"`stxm config --write {file}` or leave it out to use the shipped default"
        ) from None
    except IsADirectoryError:
        raise ConfigError(
            f"configuration file {file} is a directory; give the path of a TOML file"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"configuration file {file} is not text (not UTF-8); give a TOML file"
        ) from None
    except PermissionError:
        raise ConfigError(
            f"configuration file {file} cannot be read (permission denied)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"configuration file {file} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}") from None


def _deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _validate(data: dict[str, Any], *, source: str) -> BeamlineConfig:
    try:
        config = BeamlineConfig.model_validate(data)
    except ValidationError as exc:
        problems = list(dict.fromkeys(_explain(error) for error in exc.errors()))
        raise ConfigError(
            f"invalid configuration in {source}:\n" + "\n".join(f"  - {p}" for p in problems)
        ) from None
    return config.model_copy(update={"source": source})


# Keys that moved, by their old location: where they are now.
_MOVED: dict[tuple[str, ...], str] = {
    ("sim", "sample_stage_port"): "[sim.iocs.sample_stage] port",
    ("sim", "apd_port"): "[sim.iocs.apd] port",
    ("sim", "ring_port"): "[sim.iocs.ring] port",
    ("stages",): "[sim.stages.<axis>] (limits, velocity, acceleration, precision of the "
    "simulated stages) and [epics.axes] <axis> (the record name that was pv_suffix)",
    ("apd",): "[sim.apd] (same keys)",
    ("beam",): "[sim.beam] (same keys)",
    ("sample",): "[sim.sample] (same keys)",
    ("zone_plate",): "[optics.zone_plates.<name>] (select it with [optics] zone_plate)",
    ("sim", "zone_plate"): "[optics.zone_plates.<name>] (same keys; select it with [optics] "
    "zone_plate)",
    ("beamline", "energy_eV"): "[sim.beam] energy_eV",
    ("ring", "fill_current_mA"): "[sim.ring] fill_current_mA",
    ("ring", "beam_lifetime_h"): "[sim.ring] beam_lifetime_h",
    ("ring", "topup_interval_s"): "[sim.ring] topup_interval_s",
}


def _explain(error: Any) -> str:
    """One line for one pydantic error: key, what is wrong, allowed range, fix."""
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        for length in range(len(loc), 0, -1):
            moved_to = _MOVED.get(tuple(loc[:length]))
            if moved_to is not None:
                old = ".".join(loc[:length])
                return f"{old}: this key has moved to {moved_to}; move the value there"
        return _unknown_key(loc)
    if kind == "missing":
        return f"{key}: missing; add it (see `stxm config --show` for the default)"
    value = error.get("input")
    bounds = _field_bounds(loc)
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        return f"{key} = {value!r} is out of range; allowed {bounds}"
    if kind == "unknown_key":  # raised by a section that takes further keys of its own
        return f"{key}.{error['msg']}"
    if kind == "value_error":
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        return f"[{key}] {message}" if key else message
    if kind == "string_pattern_mismatch" and loc[:2] == ["sim", "iocs"]:
        return (
            f"sim.iocs.{loc[2]}: IOC names are lower-case identifiers "
            "(python -m sim_iocs --list shows them)"
        )
    hint = f"; allowed {bounds}" if bounds else ""
    return f"{key} = {value!r}: {error['msg']}{hint}"


def _model_at(loc: list[str]) -> type[BaseModel] | None:
    """The section model at ``loc`` (``[sim.iocs.<name>]`` is a :class:`SimIocConfig`)."""
    model: type[BaseModel] | None = BeamlineConfig
    parts = list(loc)
    while parts:
        part = parts.pop(0)
        if model is None or part not in model.model_fields:
            return None
        if model is SimConfig and part == "iocs":
            if not parts:
                return None  # the mapping itself
            parts.pop(0)  # the IOC's name
            model = SimIocConfig
            continue
        annotation = model.model_fields[part].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            model = None
    return model


def _field_bounds(loc: list[str]) -> str:
    if not loc:
        return ""
    parent = _model_at(loc[:-1])
    if parent is None or loc[-1] not in parent.model_fields:
        return ""
    low = high = None
    low_open = high_open = False
    for meta in parent.model_fields[loc[-1]].metadata:
        if isinstance(meta, annotated_types.Ge):
            low = meta.ge
        elif isinstance(meta, annotated_types.Gt):
            low, low_open = meta.gt, True
        elif isinstance(meta, annotated_types.Le):
            high = meta.le
        elif isinstance(meta, annotated_types.Lt):
            high, high_open = meta.lt, True
    if low is None and high is None:
        return ""
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    return f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"


def _strip_unit(name: str) -> str:
    for suffix in sorted(_UNIT_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _unknown_key(loc: list[str]) -> str:
    key = ".".join(loc)
    parent = _model_at(loc[:-1])
    known = sorted(parent.model_fields) if parent is not None else []
    known = [k for k in known if k != "source"]
    name = loc[-1]
    section = ".".join(loc[:-1]) or "top level"
    same_quantity = [k for k in known if _strip_unit(k) == _strip_unit(name) and k != name]
    if same_quantity and _strip_unit(name) != name:
        return (
            f"{key}: wrong unit; [{section}] takes {same_quantity[0]!r} "
            f"(convert the value and rename the key)"
        )
    close = difflib.get_close_matches(name, known, n=1)
    suggestion = f"; did you mean {close[0]!r}?" if close else ""
    return f"{key}: unknown key in [{section}]{suggestion} Known keys: {', '.join(known)}"
