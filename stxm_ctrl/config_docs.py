"""The default configuration file and the configuration reference, generated from the models.

Keys, defaults, ranges and descriptions are written once, in :mod:`stxm_ctrl.config`; this
module renders them as the commented TOML file that ``stxm config --write`` writes (also
shipped as ``stxm_ctrl/default_config.toml``) and as the Markdown page
``docs/reference/configuration.md``. Tests check that both files match their rendering, so
neither can go stale. Regenerate both with::

    uv run python -m stxm_ctrl.config_docs --write
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import typing
from pathlib import Path
from typing import Any

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from stxm_ctrl.config import BeamlineConfig, SimConfig, SimIocConfig

__all__ = [
    "DEFAULT_TOML_PATH",
    "REFERENCE_PATH",
    "default_config_text",
    "render_default_toml",
    "render_reference",
]

_PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_TOML_PATH = _PACKAGE_DIR / "default_config.toml"
REFERENCE_PATH = _PACKAGE_DIR.parent / "docs" / "reference" / "configuration.md"

_HEADER = """\
# stxm_ctrl configuration: the defaults, a simulated STXM on this machine.
#
# Generated from stxm_ctrl/config.py (python -m stxm_ctrl.config_docs --write); do not edit.
# Every key names its unit. Copy this file (`stxm config --write my_beamline.toml`), keep
# the keys you change, and pass it with --config or STXM_CONFIG; keys you leave out keep
# these values. A file for real IOCs needs only [beamline], [epics], [ring] and [catalog]:
# everything under [sim] is read by the simulator alone.
"""


def _sections(instance: BaseModel, path: tuple[str, ...] = ()):
    """(path, model, default instance) of every section, depth first, parents first.

    Tables of named entries (``dict[str, Model]``, e.g. ``[optics.zone_plates.<name>]``)
    yield one section per default entry.
    """
    model = type(instance)
    yield path, model, instance
    for name, field in model.model_fields.items():
        value = getattr(instance, name)
        if isinstance(value, BaseModel):
            yield from _sections(value, (*path, name))
        elif _is_named_table(field) and value:
            for key, entry in value.items():
                yield from _sections(entry, (*path, name, key))


def _is_named_table(field: FieldInfo) -> bool:
    args = typing.get_args(field.annotation)
    return (
        typing.get_origin(field.annotation) is dict
        and len(args) == 2
        and isinstance(args[1], type)
        and issubclass(args[1], BaseModel)
    )


def _scalar_fields(model: type[BaseModel]) -> list[tuple[str, FieldInfo]]:
    out = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if name == "source" or (
            isinstance(annotation, type) and issubclass(annotation, BaseModel)
        ):
            continue
        if _is_named_table(field):
            continue
        out.append((name, field))
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        return text if any(c in text for c in ".eEn") else text + ".0"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def _comment(text: str, width: int = 92) -> list[str]:
    return [f"# {line}" for line in textwrap.wrap(text, width)]


def render_default_toml() -> str:
    """The commented default configuration as TOML text."""
    lines = [_HEADER.rstrip("\n")]
    for path, model, instance in _sections(BeamlineConfig()):
        fields = _scalar_fields(model)
        if not fields:
            continue  # only sub-tables: TOML needs no header for it
        if path:
            lines.append("")
            lines += _comment((model.__doc__ or "").strip().splitlines()[0])
            lines.append(f"[{'.'.join(path)}]")
        for name, field in fields:
            if field.description:
                lines += _comment(field.description)
            lines.append(f"{name} = {_toml_value(getattr(instance, name))}")
        for name, field in model.model_fields.items():
            if _is_named_table(field) and name != "iocs" and field.description:
                lines += _comment(f"[{'.'.join((*path, name))}.<name>]: {field.description}")
        if model is SimConfig:
            ioc_field = SimConfig.model_fields["iocs"]
            lines += _comment(ioc_field.description or "")
            lines.append("# [sim.iocs.apd]")
            lines.append("# port = 5071")
    return "\n".join(lines).rstrip() + "\n"


def default_config_text() -> str:
    """The commented default configuration, as ``stxm config --write`` writes it."""
    return render_default_toml()


def _allowed(field: FieldInfo) -> str:
    low = high = None
    left, right = "[", "]"
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Ge):
            low = meta.ge
        elif isinstance(meta, annotated_types.Gt):
            low, left = meta.gt, "("
        elif isinstance(meta, annotated_types.Le):
            high = meta.le
        elif isinstance(meta, annotated_types.Lt):
            high, right = meta.lt, ")"
    if low is not None or high is not None:
        low_text = "-inf" if low is None else f"{low:g}"
        high_text = "inf" if high is None else f"{high:g}"
        return f"{left}{low_text}, {high_text}{right}"
    if typing.get_origin(field.annotation) is typing.Literal:
        return ", ".join(f"`{v}`" for v in typing.get_args(field.annotation))
    return ""


def _type_name(field: FieldInfo) -> str:
    annotation = field.annotation
    if typing.get_origin(annotation) is typing.Literal:
        values = typing.get_args(annotation)
        return "integer" if all(isinstance(v, int) for v in values) else "string"
    if typing.get_origin(annotation) is list:
        return "list of strings"
    names = {int: "integer", float: "number", str: "string", Path: "path", bool: "boolean"}
    return names.get(annotation, str(annotation)) if isinstance(annotation, type) else "string"


def render_reference() -> str:
    """The configuration reference page (Markdown)."""
    out = [
        "# Configuration reference",
        "",
        "Generated from `stxm_ctrl/config.py` by `python -m stxm_ctrl.config_docs --write`; "
        "a test keeps it current. The same keys, with these defaults and comments, are in "
        "`stxm_ctrl/default_config.toml` (`stxm config --write FILE` writes a copy).",
        "",
        "A user file holds only the keys it changes; the rest keep their defaults. Keys that "
        "hold a quantity name its unit. Unknown keys, keys in the wrong unit, keys that moved "
        "and values out of range are refused with the key, the allowed range and the fix. "
        "A file for real IOCs needs only `[beamline]`, `[epics]`, `[ring]` and `[catalog]`; "
        "everything under `[sim]` is read by the simulator alone (and, while "
        "`[epics] ca_addr_list` is empty, by the session for the metadata it records).",
    ]
    for path, model, instance in _sections(BeamlineConfig()):
        fields = _scalar_fields(model)
        if not path or not (fields or model is SimConfig):
            continue
        out += ["", f"## `[{'.'.join(path)}]`", "", (model.__doc__ or "").strip(), ""]
        tables = [
            (name, field)
            for name, field in model.model_fields.items()
            if _is_named_table(field) and name != "iocs"
        ]
        for name, field in tables:
            out += [f"`[{'.'.join((*path, name))}.<name>]`: {field.description}", ""]
        if fields:
            out += ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
            for name, field in fields:
                default = _toml_value(getattr(instance, name))
                description = (field.description or "").replace("|", "\\|")
                out.append(
                    f"| `{name}` | {_type_name(field)} | `{default}` | {_allowed(field)} | "
                    f"{description} |"
                )
        if model is SimConfig:
            port = SimIocConfig.model_fields["port"]
            out += [
                "",
                "### `[sim.iocs.<name>]`",
                "",
                (SimConfig.model_fields["iocs"].description or "").replace("|", "\\|"),
                "",
                "| key | type | default | allowed | description |",
                "|---|---|---|---|---|",
                f"| `port` | integer | the IOC's own | {_allowed(port)} | {port.description} |",
            ]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (``--write``) or check (``--check``) the generated files."""
    parser = argparse.ArgumentParser(prog="python -m stxm_ctrl.config_docs", description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite both files")
    args = parser.parse_args(argv)
    stale = []
    for path, text in (
        (DEFAULT_TOML_PATH, render_default_toml()),
        (REFERENCE_PATH, render_reference()),
    ):
        if not path.exists() or path.read_text() != text:
            stale.append(path)
            if args.write:
                path.write_text(text)
    if stale and not args.write:
        print("stale: " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
