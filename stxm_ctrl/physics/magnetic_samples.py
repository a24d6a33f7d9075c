"""Magnetic samples of the simulated beamline: material, thickness and magnetisation maps.

Each sample sits in its own SiN window on the simulated chip (next to the resolution
pattern's window, :mod:`stxm_ctrl.physics.sample`) and is a set of layers: a material of
:mod:`stxm_ctrl.physics.spectra`, the path length through it and the projection k . m of its
magnetisation on the beam, at any beam position. Its optical density at energy E for a
helicity h of circular degree Pc adds, per layer, path x (mu(E) - h Pc (k . m) mu_mag(E)) to
the membrane's; a tilt (``tilt_deg``) foreshortens the sample and turns in-plane
magnetisation towards the beam; a Gaussian spot averages what it covers. Shipped kinds:
``vortex_discs``, ``maze_multilayer``, ``cocu_pillars``. The simulator and the tests' truth
use these same functions.

The formula, the geometry of a tilted sample, how the spot blurs each feature and the
shipped kinds: ``docs/explanation/magnetic-samples.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import erf

from stxm_ctrl.physics.spectra import MATERIALS

if TYPE_CHECKING:
    from stxm_ctrl.config import MagneticSampleSpec

__all__ = ["Layer", "MagneticSample", "magnetic_sample"]

_SQRT2 = np.sqrt(2.0)
_MAZE_WAVES = 24


@dataclass(frozen=True)
class Layer:
    """What the beam crosses of one material at a set of positions.

    Attributes
    ----------
    material
        A name of :data:`stxm_ctrl.physics.spectra.MATERIALS`.
    path_nm
        Path length through the material along the beam, nm.
    projection
        k . m, the magnetisation's component along the beam (-1 to 1; 0: non-magnetic).
    """

    material: str
    path_nm: NDArray[np.float64]
    projection: NDArray[np.float64]


@dataclass(frozen=True)
class MagneticSample:
    """A magnetic sample in a window of the chip (see the module docstring).

    Parameters
    ----------
    name
        The configuration's name of it (``[sim.magnetic_samples.<name>]``).
    kind
        ``vortex_discs``, ``maze_multilayer`` or ``cocu_pillars``.
    center_x_um, center_y_um
        Stage position of the window's centre.
    window_size_um
        Side of the square SiN window.
    tilt_deg
        Tilt of the sample about the stage y axis.
    membrane_od, background_od
        OD of the SiN membrane and of non-resonant layers (e.g. Pt), at ``reference_energy_eV``.
    reference_energy_eV, absorption_exponent
        The non-resonant ODs scale as (E / reference) ** -exponent.
    rows, columns, feature_diameter_um, pitch_um
        The array of discs or pillars (centred in the window).
    thickness_nm
        Magnetic layer: the discs' permalloy, the multilayer's total Co, a pillar's Co.
    circulation, polarity
        Vortex discs: in-plane curl (+1 counter-clockwise seen along the beam) and core
        direction (+1 along the beam).
    core_radius_nm
        Vortex core radius (sigma of its Gaussian m_z profile).
    domain_width_nm, wall_width_nm, seed
        Maze: mean domain width, domain-wall width, random-field seed.
    cu_nm
        Pillars: Cu under each pillar (spacer) and as the lead over the window.
    """

    name: str
    kind: str
    center_x_um: float
    center_y_um: float
    window_size_um: float
    tilt_deg: float
    membrane_od: float
    background_od: float
    reference_energy_eV: float
    absorption_exponent: float
    rows: int = 3
    columns: int = 3
    feature_diameter_um: float = 2.0
    pitch_um: float = 4.0
    thickness_nm: float = 30.0
    circulation: int = 1
    polarity: int = 1
    core_radius_nm: float = 15.0
    domain_width_nm: float = 150.0
    wall_width_nm: float = 10.0
    seed: int = 1
    cu_nm: float = 40.0
    _cos: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cos", float(np.cos(np.radians(self.tilt_deg))))

    # -- placement -------------------------------------------------------------------------
    def bounds_um(self) -> tuple[float, float, float, float]:
        """(x0, x1, y0, y1) of the window in stage coordinates."""
        half = self.window_size_um / 2.0
        cx, cy = self.center_x_um, self.center_y_um
        return cx - half, cx + half, cy - half, cy + half

    def window_coverage(self, x_um: NDArray, y_um: NDArray, sigma_um: float) -> NDArray:
        """Fraction of a spot at (x, y) that falls in the window (the rest is frame)."""
        x0, x1, y0, y1 = self.bounds_um()
        return _edge(x_um, x0, x1, sigma_um) * _edge(y_um, y0, y1, sigma_um)

    def _plane(self, x_um: ArrayLike, y_um: ArrayLike) -> tuple[NDArray, NDArray]:
        """Sample-plane coordinates (u, v), um from the centre, of stage positions."""
        x = np.asarray(x_um, dtype=float) - self.center_x_um
        y = np.asarray(y_um, dtype=float) - self.center_y_um
        x, y = np.broadcast_arrays(x, y)
        return x / self._cos, y

    def _nearest_feature(self, u: NDArray, v: NDArray) -> tuple[NDArray, NDArray, NDArray]:
        """Offsets (du, dv) from the nearest disc/pillar centre, and its index (row-major)."""
        col = np.clip(np.rint(u / self.pitch_um + (self.columns - 1) / 2.0), 0, self.columns - 1)
        row = np.clip(np.rint(v / self.pitch_um + (self.rows - 1) / 2.0), 0, self.rows - 1)
        cu = (col - (self.columns - 1) / 2.0) * self.pitch_um
        cv = (row - (self.rows - 1) / 2.0) * self.pitch_um
        return u - cu, v - cv, (row * self.columns + col).astype(int)

    def feature_centers_um(self) -> list[tuple[float, float]]:
        """Stage (x, y) of each disc or pillar centre, row-major from -y, -x."""
        centres = []
        for row in range(self.rows):
            for col in range(self.columns):
                u = (col - (self.columns - 1) / 2.0) * self.pitch_um
                v = (row - (self.rows - 1) / 2.0) * self.pitch_um
                centres.append((self.center_x_um + u * self._cos, self.center_y_um + v))
        return centres

    # -- the truth -------------------------------------------------------------------------
    def magnetization(
        self, x_um: ArrayLike, y_um: ArrayLike, spot_sigma_um: float = 0.0
    ) -> tuple[NDArray, NDArray, NDArray]:
        """Unit magnetisation (m_x, m_y, m_z) of the magnetic layer at stage positions.

        With ``spot_sigma_um`` > 0: as averaged by a spot of that sigma (not a unit vector).
        Outside the magnetic material it is that of the nearest feature (the layers' path
        length is what says where the material is).
        """
        u, v = self._plane(x_um, y_um)
        s = float(spot_sigma_um)
        if self.kind == "vortex_discs":
            du, dv, _ = self._nearest_feature(u, v)
            r = np.hypot(du, dv)
            rc = self.core_radius_nm / 1000.0
            mz_raw = self.polarity * np.exp(-(r**2) / (2 * rc**2))
            in_plane = np.sqrt(np.clip(1.0 - mz_raw**2, 0.0, 1.0))
            with np.errstate(invalid="ignore", divide="ignore"):
                ux = np.where(r > 0, -dv / r, 0.0)
                uy = np.where(r > 0, du / r, 0.0)
            if s > 0:
                widened = rc**2 + s**2
                mz = self.polarity * rc**2 / widened * np.exp(-(r**2) / (2 * widened))
                in_plane = in_plane * r / np.sqrt(r**2 + s**2)
            else:
                mz = mz_raw
            return self.circulation * ux * in_plane, self.circulation * uy * in_plane, mz
        if self.kind == "maze_multilayer":
            g, gu, gv = self._maze_field(u, v)
            slope = np.hypot(gu, gv) + 1e-9
            width = np.hypot(self.wall_width_nm / 1000.0, s)
            mz = np.tanh(g / slope / width)
            zero = np.zeros_like(mz)
            return zero, zero.copy(), mz
        if self.kind == "cocu_pillars":
            _, _, index = self._nearest_feature(u, v)
            row, col = np.divmod(index, self.columns)
            mx = np.where((row + col) % 2 == 0, 1.0, -1.0)
            zero = np.zeros_like(mx)
            return mx, zero, zero.copy()
        raise ValueError(f"unknown magnetic sample kind {self.kind!r}")

    def beam_projection(
        self, x_um: ArrayLike, y_um: ArrayLike, spot_sigma_um: float = 0.0
    ) -> NDArray[np.float64]:
        """k . m = m_z cos(tilt) + m_x sin(tilt) at stage positions."""
        mx, _, mz = self.magnetization(x_um, y_um, spot_sigma_um)
        return mz * self._cos + mx * float(np.sin(np.radians(self.tilt_deg)))

    def layers(self, x_um: ArrayLike, y_um: ArrayLike, spot_sigma_um: float = 0.0) -> list[Layer]:
        """The materials a spot at stage positions (x, y) crosses (window content only)."""
        u, v = self._plane(x_um, y_um)
        s = max(float(spot_sigma_um), 1e-6)
        path = 1.0 / self._cos
        projection = self.beam_projection(x_um, y_um, spot_sigma_um)
        zero = np.zeros(u.shape)
        if self.kind == "maze_multilayer":
            return [Layer("Co", np.full(u.shape, self.thickness_nm * path), projection)]
        du, dv, _ = self._nearest_feature(u, v)
        r = np.hypot(du, dv)
        with np.errstate(invalid="ignore", divide="ignore"):
            # The spot is s wide along stage x, s / cos(tilt) along the plane's u.
            s_r = np.where(r > 0, s * np.hypot(du / r / self._cos, dv / r), s)
        cover = 0.5 * (1.0 - erf((r - self.feature_diameter_um / 2.0) / (_SQRT2 * s_r)))
        if self.kind == "vortex_discs":
            return [Layer("permalloy", self.thickness_nm * path * cover, projection)]
        if self.kind == "cocu_pillars":
            return [
                Layer("Co", self.thickness_nm * path * cover, projection),
                Layer("Cu", self.cu_nm * path * (1.0 + cover), zero),
            ]
        raise ValueError(f"unknown magnetic sample kind {self.kind!r}")

    def non_resonant_od(self, energy_eV: float) -> float:
        """The membrane's and background layers' OD at ``energy_eV``."""
        scale = (energy_eV / self.reference_energy_eV) ** -self.absorption_exponent
        return (self.membrane_od + self.background_od) * scale / self._cos

    def optical_density(
        self,
        x_um: ArrayLike,
        y_um: ArrayLike,
        energy_eV: float,
        helicity_pc: float = 0.0,
        spot_sigma_um: float = 0.0,
    ) -> NDArray[np.float64]:
        """OD of the window's content at stage positions (docs/explanation/magnetic-samples.md).

        Parameters
        ----------
        x_um, y_um
            Beam positions (broadcast together).
        energy_eV
            Photon energy.
        helicity_pc
            Photon helicity times the degree of circular polarisation (0: linear light).
        spot_sigma_um
            Gaussian sigma of the spot (0: a point).
        """
        od = np.full(np.broadcast_shapes(np.shape(x_um), np.shape(y_um)), 0.0)
        od += self.non_resonant_od(energy_eV)
        for layer in self.layers(x_um, y_um, spot_sigma_um):
            material = MATERIALS[layer.material]
            mu = float(material.mu_per_nm(energy_eV))
            mu_mag = float(material.mu_magnetic_per_nm(energy_eV))
            od = od + layer.path_nm * (mu - helicity_pc * layer.projection * mu_mag)
        return od

    def magnetic_phase(
        self, x_um: ArrayLike, y_um: ArrayLike, energy_eV: float, spot_sigma_um: float = 0.0
    ) -> NDArray[np.float64]:
        """X = sum of path * mu_mag * (k . m): OD(-h) - OD(+h) = 2 h Pc X."""
        total = np.zeros(np.broadcast_shapes(np.shape(x_um), np.shape(y_um)))
        for layer in self.layers(x_um, y_um, spot_sigma_um):
            mu_mag = float(MATERIALS[layer.material].mu_magnetic_per_nm(energy_eV))
            total = total + layer.path_nm * mu_mag * layer.projection
        return total

    def xmcd_asymmetry(
        self,
        x_um: ArrayLike,
        y_um: ArrayLike,
        energy_eV: float,
        circular_degree: float,
        spot_sigma_um: float = 0.0,
    ) -> NDArray[np.float64]:
        """(I+ - I-) / (I+ + I-) of a helicity pair: tanh(Pc X) (photons of the window only)."""
        return np.tanh(circular_degree * self.magnetic_phase(x_um, y_um, energy_eV, spot_sigma_um))

    # -- maze ------------------------------------------------------------------------------
    @cached_property
    def _maze_waves(self) -> tuple[NDArray, NDArray, NDArray]:
        rng = np.random.default_rng(self.seed)
        k = np.pi / (self.domain_width_nm / 1000.0)  # period = two domain widths
        angle = rng.uniform(0.0, np.pi, _MAZE_WAVES)
        phase = rng.uniform(0.0, 2 * np.pi, _MAZE_WAVES)
        return k * np.cos(angle), k * np.sin(angle), phase

    def _maze_field(self, u: NDArray, v: NDArray) -> tuple[NDArray, NDArray, NDArray]:
        """The random field g (walls where g = 0) and its gradient."""
        ku, kv, phase = self._maze_waves
        arg = u[..., None] * ku + v[..., None] * kv + phase
        g = np.cos(arg).sum(axis=-1)
        s = -np.sin(arg)
        return g, (s * ku).sum(axis=-1), (s * kv).sum(axis=-1)


def _edge(u: NDArray, u0: float, u1: float, sigma_um: float) -> NDArray:
    s = _SQRT2 * max(sigma_um, 1e-6)
    return 0.5 * (erf((u - u0) / s) - erf((u - u1) / s))


def magnetic_sample(
    name: str, spec: MagneticSampleSpec, reference_energy_eV: float, absorption_exponent: float
) -> MagneticSample:
    """Build a :class:`MagneticSample` from ``[sim.magnetic_samples.<name>]``."""
    return MagneticSample(
        name=name,
        kind=spec.kind,
        center_x_um=spec.center_x_um,
        center_y_um=spec.center_y_um,
        window_size_um=spec.window_size_um,
        tilt_deg=spec.tilt_deg,
        membrane_od=spec.membrane_od,
        background_od=spec.background_od,
        reference_energy_eV=reference_energy_eV,
        absorption_exponent=absorption_exponent,
        rows=spec.rows,
        columns=spec.columns,
        feature_diameter_um=spec.feature_diameter_um,
        pitch_um=spec.pitch_um,
        thickness_nm=spec.thickness_nm,
        circulation=spec.circulation,
        polarity=spec.polarity,
        core_radius_nm=spec.core_radius_nm,
        domain_width_nm=spec.domain_width_nm,
        wall_width_nm=spec.wall_width_nm,
        seed=spec.seed,
        cu_nm=spec.cu_nm,
    )
