"""``stxm optics``: the installed zone plates' optics at one energy, with one OSA.

:func:`optics_table` computes (from the configuration and :mod:`stxm_ctrl.physics` only);
:meth:`OpticsTable.as_dict` is what ``--json`` prints and :meth:`OpticsTable.text` the table.
Nothing here connects to anything: it is a calculator for planning a beamtime or checking
a configuration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from stxm_ctrl.config import BeamlineConfig, ZonePlateSpec
from stxm_ctrl.errors import UsageError
from stxm_ctrl.physics.zone_plate import ZonePlate, wavelength_nm

__all__ = ["OpticsTable", "PlateOptics", "optics_table"]

FIRST_ORDER = "first order"
SECOND_ORDER = "second order"
ZP_OSA_GAP = "zone plate to OSA gap"


@dataclass(frozen=True)
class PlateOptics:
    """One zone plate's optics at the table's energy, with the table's OSA.

    The A0 fields are None (and ``problem`` says why) when the OSA cannot be used with this
    plate: it passes the zero order, or no A0 satisfies every limit.
    """

    name: str
    selected: bool
    diameter_um: float
    central_stop_um: float
    outer_zone_width_nm: float
    focal_length_um: float
    a1_um_per_eV: float
    zones: int
    numerical_aperture: float
    resolution_nm: float
    depth_of_focus_um: float
    zp_z_um: float
    """ZP z reading that puts the focus on the sample: z_sign x focal length."""
    a0_min_um: float | None
    a0_max_um: float | None
    a0_max_limited_by: str | None
    """Which limit sets ``a0_max_um``: first order, second order, zone plate to OSA gap."""
    a0_max_first_order_um: float
    a0_max_second_order_um: float
    a0_max_zp_osa_gap_um: float
    problem: str | None


@dataclass(frozen=True)
class OpticsTable:
    """The optics of the installed (or the one chosen) zone plates at one energy."""

    configuration: str
    energy_eV: float
    energy_source: str
    wavelength_nm: float
    osa: str
    osa_diameter_um: float
    osa_source: str
    z_sign: int
    min_a0_um: float
    min_zp_osa_gap_um: float
    selected_zone_plate: str
    zone_plates: list[PlateOptics]

    def as_dict(self) -> dict[str, object]:
        """Plain data for ``--json``: keys carry their units."""
        return asdict(self)

    def text(self) -> str:
        """The human-readable table ``stxm optics`` prints."""
        return _format(self)


def optics_table(
    config: BeamlineConfig,
    *,
    energy_eV: float | None = None,
    zone_plate: str | None = None,
    osa: str | None = None,
) -> OpticsTable:
    """Compute the optics of the installed zone plates.

    Parameters
    ----------
    config
        The beamline configuration (``[optics]``; ``[sim.beam] energy_eV`` for the default
        energy).
    energy_eV
        Photon energy; None for the configured one, ``[sim.beam] energy_eV``.
    zone_plate
        One installed plate by name; None for all of them.
    osa
        The OSA by name; None for the selected one, ``[optics] osa``.

    Returns
    -------
    OpticsTable
        Focal length, A1, zones, NA, resolution, depth of focus, allowed A0 and the ZP z
        reading for focus of each plate.

    Raises
    ------
    UsageError
        An energy outside ``[optics] energy_min_eV..energy_max_eV``, a zone plate or OSA
        that is not installed (the message lists the installed ones), or a single plate
        asked for whose OSA passes its zero order.
    """
    optics = config.optics
    if energy_eV is None:
        energy, energy_source = config.sim.beam.energy_eV, "[sim.beam] energy_eV"
    else:
        energy, energy_source = energy_eV, "--energy-eV"
    low, high = optics.energy_min_eV, optics.energy_max_eV
    if not low <= energy <= high:
        fix = (
            "give another with --energy-eV"
            if energy_eV is not None
            else "give one with --energy-eV, or change [sim.beam] energy_eV"
        )
        raise UsageError(
            f"energy {energy:g} eV ({energy_source}) is outside the beamline's range "
            f"{low:g} to {high:g} eV ([optics] energy_min_eV..energy_max_eV); {fix}"
        )

    osa_name = optics.osa if osa is None else osa
    if osa_name not in optics.osas:
        raise UsageError(
            f"--osa {osa_name}: no such OSA is installed; installed: "
            + ", ".join(f"{n} ({s.diameter_um:g} um)" for n, s in sorted(optics.osas.items()))
            + " ([optics.osas.<name>] in the configuration)"
        )
    osa_um = optics.osas[osa_name].diameter_um

    if zone_plate is None:
        names = list(optics.zone_plates)
    elif zone_plate in optics.zone_plates:
        names = [zone_plate]
    else:
        raise UsageError(
            f"--zone-plate {zone_plate}: no such zone plate is installed; installed: "
            + ", ".join(optics.zone_plates)
            + " ([optics.zone_plates.<name>] in the configuration)"
        )

    plates = [
        _plate(name, optics.zone_plates[name], name == optics.zone_plate, energy, osa_um, config)
        for name in names
    ]
    if zone_plate is not None and plates[0].problem is not None:
        raise UsageError(f"zone plate {zone_plate} with OSA {osa_name}: {plates[0].problem}")
    return OpticsTable(
        configuration=config.source,
        energy_eV=energy,
        energy_source=energy_source,
        wavelength_nm=wavelength_nm(energy),
        osa=osa_name,
        osa_diameter_um=osa_um,
        osa_source="[optics] osa" if osa is None else "--osa",
        z_sign=optics.z_sign,
        min_a0_um=optics.min_a0_um,
        min_zp_osa_gap_um=optics.min_zp_osa_gap_um,
        selected_zone_plate=optics.zone_plate,
        zone_plates=plates,
    )


def _plate(
    name: str,
    spec: ZonePlateSpec,
    selected: bool,
    energy_eV: float,
    osa_um: float,
    config: BeamlineConfig,
) -> PlateOptics:
    optics = config.optics
    zp = ZonePlate(
        diameter_um=spec.diameter_um,
        outer_zone_width_nm=spec.outer_zone_width_nm,
        central_stop_um=spec.central_stop_um,
    )
    f = zp.focal_length_um(energy_eV)
    limits = {
        FIRST_ORDER: zp.a0_max_first_order_um(energy_eV, osa_um),
        SECOND_ORDER: zp.a0_max_second_order_um(energy_eV, osa_um),
        # With the plate at its focus the OSA must stay min_zp_osa_gap_um downstream of it.
        ZP_OSA_GAP: f - optics.min_zp_osa_gap_um,
    }
    limited_by = min(limits, key=lambda key: limits[key])
    a0_min: float | None = optics.min_a0_um
    a0_max: float | None = limits[limited_by]
    problem = None
    if osa_um >= spec.central_stop_um:
        smaller = [n for n, o in optics.osas.items() if o.diameter_um < spec.central_stop_um]
        problem = (
            f"the {osa_um:g} um OSA passes the zero order around the {spec.central_stop_um:g} "
            f"um central stop; use an OSA smaller than {spec.central_stop_um:g} um "
            f"(installed: {', '.join(smaller) if smaller else 'none'})"
        )
        a0_min = a0_max = None
        limited_by = None
    elif limits[limited_by] < optics.min_a0_um:
        problem = (
            f"no A0 works: the {limited_by} limit {limits[limited_by]:.1f} um is below "
            f"[optics] min_a0_um = {optics.min_a0_um:g} um at {energy_eV:g} eV; use a "
            "smaller OSA or a higher energy"
        )
        a0_min = a0_max = None
        limited_by = None
    return PlateOptics(
        name=name,
        selected=selected,
        diameter_um=spec.diameter_um,
        central_stop_um=spec.central_stop_um,
        outer_zone_width_nm=spec.outer_zone_width_nm,
        focal_length_um=f,
        a1_um_per_eV=zp.a1_um_per_eV,
        zones=round(zp.zones),
        numerical_aperture=zp.numerical_aperture(energy_eV),
        resolution_nm=zp.resolution_nm,
        depth_of_focus_um=zp.depth_of_focus_um(energy_eV),
        zp_z_um=optics.z_sign * f,
        a0_min_um=a0_min,
        a0_max_um=a0_max,
        a0_max_limited_by=limited_by,
        a0_max_first_order_um=limits[FIRST_ORDER],
        a0_max_second_order_um=limits[SECOND_ORDER],
        a0_max_zp_osa_gap_um=limits[ZP_OSA_GAP],
        problem=problem,
    )


_COLUMNS = (
    # header, width, cell
    ("zone plate", 0, lambda p: ("* " if p.selected else "  ") + p.name),
    (
        "D/CS/drN",
        0,
        lambda p: f"{p.diameter_um:g}/{p.central_stop_um:g}/{p.outer_zone_width_nm:g}",
    ),
    ("f um", 1, lambda p: f"{p.focal_length_um:.1f}"),
    ("A1 um/eV", 1, lambda p: f"{p.a1_um_per_eV:.4f}"),
    ("zones", 1, lambda p: f"{p.zones}"),
    ("NA", 1, lambda p: f"{p.numerical_aperture:.4f}"),
    ("res nm", 1, lambda p: f"{p.resolution_nm:.1f}"),
    ("DOF um", 1, lambda p: f"+-{p.depth_of_focus_um:.2f}"),
    (
        "A0 um",
        0,
        lambda p: "-" if p.a0_min_um is None else f"{p.a0_min_um:.0f} to {p.a0_max_um:.1f}",
    ),
    ("A0 max set by", 0, lambda p: p.a0_max_limited_by or "see below"),
    ("ZP z um", 1, lambda p: f"{p.zp_z_um:.1f}"),
)


def _format(table: OpticsTable) -> str:
    header = [name for name, _, _ in _COLUMNS]
    rows = [[cell(p) for _, _, cell in _COLUMNS] for p in table.zone_plates]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        out = []
        for (_, right, _), text, width in zip(_COLUMNS, cells, widths, strict=True):
            out.append(text.rjust(width) if right else text.ljust(width))
        return "  ".join(out).rstrip()

    energy_note = (
        "the configured energy, [sim.beam] energy_eV"
        if table.energy_source.startswith("[")
        else "from --energy-eV"
    )
    osa_note = "the selected OSA, [optics] osa" if table.osa_source.startswith("[") else "--osa"
    lines = [
        f"Zone-plate optics at {table.energy_eV:g} eV ({energy_note}), wavelength "
        f"{table.wavelength_nm:.4f} nm",
        f"OSA {table.osa}, {table.osa_diameter_um:g} um ({osa_note}); configuration "
        f"{table.configuration}",
        "",
        line(header),
        *(line(r) for r in rows),
        "",
    ]
    if any(p.selected for p in table.zone_plates):
        lines.append(
            f"* the zone plate in the beam ([optics] zone_plate = {table.selected_zone_plate})"
        )
    lines += [
        "D/CS/drN: diameter um / central stop um / outermost zone width nm. f = A1 E;",
        "res = 1.22 drN (Rayleigh); DOF = +-2 drN^2 / lambda; the monochromator needs "
        "E/dE >= zones.",
        f"A0 (OSA to sample) from [optics] min_a0_um = {table.min_a0_um:g} um up to the "
        "smallest of three limits:",
        "first order (d_OSA f / D: the whole first order passes), second order "
        "((f/2)(1 - d_OSA/d_CS):",
        "it stays blocked) and the zone plate to OSA gap (f - [optics] min_zp_osa_gap_um = "
        f"f - {table.min_zp_osa_gap_um:g} um).",
        f"ZP z = [optics] z_sign ({table.z_sign:+d}) x f: the reading that focuses on a sample "
        "at z = 0.",
    ]
    problems = [p for p in table.zone_plates if p.problem]
    if problems:
        lines.append("")
        lines += [f"{p.name}: {p.problem}" for p in problems]
    return "\n".join(lines)
