"""Beamline configuration: load, merge over the shipped default, validate.

The configuration is a TOML file whose keys name their unit (``velocity_um_per_s``). A user
file only needs the keys it changes; everything else keeps the shipped default
(``stxm_ctrl/default_config.toml``). Validation is done by pydantic models; their errors are
rewritten into one message per problem that names the key, the allowed range and the fix.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "ApdConfig",
    "BeamConfig",
    "BeamlineConfig",
    "CatalogConfig",
    "ConfigError",
    "EpicsConfig",
    "RingConfig",
    "SampleConfig",
    "SimConfig",
    "StageConfig",
    "ZonePlateConfig",
    "default_config_text",
    "load_config",
]

CONFIG_ENV_VAR = "STXM_CONFIG"

# Unit suffixes used in key names, to recognise a key given in the wrong unit.
_UNIT_SUFFIXES = (
    "_um_per_s",
    "_um_per_h",
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


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message lists every problem."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Port = Annotated[int, Field(ge=1024, le=65535)]


class EpicsPrefixes(_Section):
    """PV prefix of each subsystem."""

    sample_stage: str = Field(min_length=1)
    apd: str = Field(min_length=1)
    ring: str = Field(min_length=1)


class EpicsConfig(_Section):
    """Channel Access client settings."""

    ca_addr_list: list[str]
    ca_max_array_bytes: int = Field(ge=16384, le=1_000_000_000)
    connection_timeout_s: float = Field(gt=0, le=120)
    prefixes: EpicsPrefixes

    @model_validator(mode="after")
    def _addresses_have_ports(self) -> EpicsConfig:
        for address in self.ca_addr_list:
            if not re.fullmatch(r"[A-Za-z0-9_.\-]+(:\d{1,5})?", address):
                raise ValueError(f"ca_addr_list entry {address!r} is not 'host' or 'host:port'")
        return self


class SimConfig(_Section):
    """Where the simulated IOC fleet listens."""

    host: str
    sample_stage_port: Port
    apd_port: Port
    ring_port: Port
    repeater_port: Port
    random_seed: int = Field(ge=0, le=2**32 - 1)

    @model_validator(mode="after")
    def _distinct_ports(self) -> SimConfig:
        ports = [self.sample_stage_port, self.apd_port, self.ring_port, self.repeater_port]
        if len(set(ports)) != len(ports):
            raise ValueError(
                f"sim ports must differ (two IOCs cannot share a UDP port), got {ports}"
            )
        return self


class StageConfig(_Section):
    """One motor-record stage axis."""

    pv_suffix: str = Field(min_length=1)
    low_limit_um: float = Field(ge=-100_000, le=100_000)
    high_limit_um: float = Field(ge=-100_000, le=100_000)
    velocity_um_per_s: float = Field(gt=0, le=100_000)
    acceleration_time_s: float = Field(ge=0, le=10)
    precision_digits: int = Field(ge=0, le=9)

    @model_validator(mode="after")
    def _limits_ordered(self) -> StageConfig:
        if self.low_limit_um >= self.high_limit_um:
            raise ValueError(
                f"low_limit_um ({self.low_limit_um}) must be below high_limit_um "
                f"({self.high_limit_um})"
            )
        return self


class StagesConfig(_Section):
    """The sample coarse stages."""

    sample_x: StageConfig
    sample_y: StageConfig


class RingConfig(_Section):
    """Storage ring: RF, harmonic number and top-up current."""

    name: str
    rf_frequency_MHz: float = Field(ge=50, le=1000)
    harmonic_number: int = Field(ge=1, le=10_000)
    fill_current_mA: float = Field(gt=0, le=1000)
    beam_lifetime_h: float = Field(gt=0, le=1000)
    topup_interval_s: float = Field(gt=0, le=86_400)

    @property
    def revolution_frequency_Hz(self) -> float:
        """Revolution frequency f_RF / h."""
        return self.rf_frequency_MHz * 1e6 / self.harmonic_number


class BeamConfig(_Section):
    """Focused beam on the sample."""

    photon_flux_per_mA_Hz: float = Field(gt=0, le=1e9)
    drift_x_um_per_h: float = Field(ge=-10, le=10)
    drift_y_um_per_h: float = Field(ge=-10, le=10)


class ZonePlateConfig(_Section):
    """Fresnel zone plate geometry."""

    diameter_um: float = Field(ge=20, le=1000)
    outer_zone_width_nm: float = Field(ge=5, le=200)
    central_stop_um: float = Field(ge=0, le=1000)

    @model_validator(mode="after")
    def _stop_inside_plate(self) -> ZonePlateConfig:
        if self.central_stop_um >= self.diameter_um:
            raise ValueError(
                f"central_stop_um ({self.central_stop_um}) must be smaller than "
                f"diameter_um ({self.diameter_um})"
            )
        return self


class ApdConfig(_Section):
    """Avalanche photodiode point counter."""

    quantum_efficiency: float = Field(gt=0, le=1)
    dark_count_rate_Hz: float = Field(ge=0, le=1e6)
    dead_time_ns: float = Field(ge=0, le=1000)
    min_dwell_s: float = Field(gt=0, le=1)
    max_dwell_s: float = Field(gt=0, le=3600)

    @model_validator(mode="after")
    def _dwell_range(self) -> ApdConfig:
        if self.min_dwell_s >= self.max_dwell_s:
            raise ValueError(
                f"min_dwell_s ({self.min_dwell_s}) must be below max_dwell_s ({self.max_dwell_s})"
            )
        return self


class SampleConfig(_Section):
    """The sample loaded in the simulator."""

    name: str
    kind: Literal["resolution_pattern"]
    center_x_um: float = Field(ge=-100_000, le=100_000)
    center_y_um: float = Field(ge=-100_000, le=100_000)
    window_size_um: float = Field(ge=20, le=5000)
    membrane_od: float = Field(ge=0, le=10)
    feature_od: float = Field(ge=0, le=10)
    frame_od: float = Field(ge=0, le=20)


class CatalogConfig(_Section):
    """Where runs are stored: a Tiled server."""

    uri: str
    host: str
    port: Port
    batch_size: int = Field(ge=1, le=100_000)
    api_key_env: str = Field(min_length=1)

    @property
    def embedded(self) -> bool:
        """True when the session starts its own Tiled server (``uri`` left empty)."""
        return not self.uri


class BeamlineSection(_Section):
    """Beamline identity and data location."""

    name: str
    data_dir: Path
    energy_eV: float = Field(ge=100, le=3000)


class BeamlineConfig(_Section):
    """The whole beamline configuration."""

    beamline: BeamlineSection
    epics: EpicsConfig
    sim: SimConfig
    stages: StagesConfig
    ring: RingConfig
    beam: BeamConfig
    zone_plate: ZonePlateConfig
    apd: ApdConfig
    sample: SampleConfig
    catalog: CatalogConfig

    source: str = Field(default="<shipped default>", exclude=True)

    @property
    def data_dir(self) -> Path:
        """Absolute data directory."""
        return self.beamline.data_dir.expanduser().resolve()

    def ca_addr_list(self) -> list[str]:
        """Channel Access servers to search: configured, or the simulated fleet's."""
        if self.epics.ca_addr_list:
            return list(self.epics.ca_addr_list)
        sim = self.sim
        return [
            f"{sim.host}:{port}" for port in (sim.sample_stage_port, sim.apd_port, sim.ring_port)
        ]

    def with_overrides(self, overrides: dict[str, Any]) -> BeamlineConfig:
        """Return a validated copy with nested ``overrides`` merged in."""
        merged = _deep_merge(self.model_dump(mode="json"), overrides)
        return _validate(merged, source=f"{self.source} + overrides")


def default_config_text() -> str:
    """Text of the shipped default configuration (a commented TOML file)."""
    return resources.files("stxm_ctrl").joinpath("default_config.toml").read_text()


def load_config(
    path: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None
) -> BeamlineConfig:
    """Load and validate a beamline configuration.

    Parameters
    ----------
    path
        A TOML file whose keys are merged over the shipped default. ``None`` uses the file
        named by the ``STXM_CONFIG`` environment variable, or the shipped default alone.
    overrides
        Nested mapping merged last (e.g. ports chosen by a test).

    Returns
    -------
    BeamlineConfig
        The validated configuration.

    Raises
    ------
    ConfigError
        If the file is missing or not TOML, has unknown keys, keys in the wrong unit, or
        values out of range; the message names each key and the allowed range.
    """
    data = tomllib.loads(default_config_text())
    source = "<shipped default>"
    if path is None and os.environ.get(CONFIG_ENV_VAR):
        path = os.environ[CONFIG_ENV_VAR]
    if path is not None:
        file = Path(path)
        source = str(file)
        try:
            user = tomllib.loads(file.read_text())
        except FileNotFoundError:
            raise ConfigError(
                f"configuration file {file} does not exist; write one with "
                f"`stxm config --write {file}` or leave it out to use the shipped default"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file} is not valid TOML: {exc}") from None
        data = _deep_merge(data, user)
    if overrides:
        data = _deep_merge(data, overrides)
    return _validate(data, source=source)


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
        problems = [_explain(error, data) for error in exc.errors()]
        raise ConfigError(
            f"invalid configuration in {source}:\n" + "\n".join(f"  - {p}" for p in problems)
        ) from None
    return config.model_copy(update={"source": source})


def _explain(error: dict[str, Any], data: dict[str, Any]) -> str:
    """One line for one pydantic error: key, what is wrong, allowed range, fix."""
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "missing":
        return f"{key}: missing; add it (see `stxm config --show` for the default)"
    value = error.get("input")
    bounds = _field_bounds(loc)
    if kind in {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}:
        return f"{key} = {value!r} is out of range; allowed {bounds}"
    if kind == "value_error":
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        return f"[{key}] {message}" if key else message
    hint = f"; allowed {bounds}" if bounds else ""
    return f"{key} = {value!r}: {error['msg']}{hint}"


def _model_at(loc: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = BeamlineConfig
    for part in loc:
        if model is None or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return model


def _field_bounds(loc: list[str]) -> str:
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
