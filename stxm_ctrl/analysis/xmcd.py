"""XMCD contrast of helicity pairs: asymmetry and log ratio with Poisson error maps."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from stxm_ctrl.analysis.registration import apply_shifts, register_frames

__all__ = ["XmcdImage", "dead_time_corrected", "xmcd", "xmcd_from_stack"]


@dataclass(frozen=True)
class XmcdImage:
    """XMCD of one energy (or a stack of them), on the images' axes.

    Attributes
    ----------
    asymmetry, asymmetry_error
        (I+ - I-) / (I+ + I-) of the rates, and its Poisson error 2 sqrt(N+ N- / (N+ + N-)^3)
        (counts; equal counting times).
    log_ratio, log_ratio_error
        ln(I+ / I-) and sqrt(1/N+ + 1/N-).
    plus_rate_Hz, minus_rate_Hz
        The two helicities' rates.
    energies_eV
        The energy of each image (stacks), else None.
    x_um, y_um
        Axes, if known.
    shifts_px
        Registration shifts (dy, dx) applied to the I- images (and to the frames of a stack),
        recorded with the result; None when not registered.
    """

    asymmetry: NDArray[np.float64]
    asymmetry_error: NDArray[np.float64]
    log_ratio: NDArray[np.float64]
    log_ratio_error: NDArray[np.float64]
    plus_rate_Hz: NDArray[np.float64]
    minus_rate_Hz: NDArray[np.float64]
    energies_eV: NDArray[np.float64] | None = None
    x_um: NDArray[np.float64] | None = None
    y_um: NDArray[np.float64] | None = None
    shifts_px: dict[str, NDArray[np.float64]] | None = field(default=None)


def xmcd(
    plus_counts: ArrayLike,
    minus_counts: ArrayLike,
    *,
    plus_dwell_s: ArrayLike = 1.0,
    minus_dwell_s: ArrayLike = 1.0,
    dead_time_ns: float = 0.0,
    i0_region: ArrayLike | None = None,
    x_um: ArrayLike | None = None,
    y_um: ArrayLike | None = None,
) -> XmcdImage:
    """XMCD asymmetry and log ratio of I+ and I- (any equal shapes), with error maps.

    With ``i0_region`` (a (ny, nx) mask of non-magnetic pixels, e.g. bare membrane), each
    helicity's rates are divided by their mean over it, so a change of the incident flux
    between the two images (a top-up of the ring, a different undulator flux) does not
    show as contrast.

    Rates (counts / dwell) make the contrast, corrected for the counter's non-paralysable
    dead time (``dead_time_ns``; at 10 MHz a 6 ns dead time loses 6 % of the photons, and
    the contrast with them); the errors are those of the counts.
    """
    p = np.asarray(plus_counts, dtype=float)
    m = np.asarray(minus_counts, dtype=float)
    if p.shape != m.shape:
        raise ValueError(f"I+ has shape {p.shape}, I- {m.shape}: give images of one shape")
    rp = dead_time_corrected(p / np.asarray(plus_dwell_s, dtype=float), dead_time_ns)
    rm = dead_time_corrected(m / np.asarray(minus_dwell_s, dtype=float), dead_time_ns)
    if i0_region is not None:
        mask = np.asarray(i0_region, dtype=bool)
        if mask.shape != p.shape[-2:] or not mask.any():
            raise ValueError(f"i0_region must be a non-empty mask of shape {p.shape[-2:]}")
        rp = rp / np.nanmean(rp[..., mask], axis=-1)[..., None, None]
        rm = rm / np.nanmean(rm[..., mask], axis=-1)[..., None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        asym = (rp - rm) / (rp + rm)
        asym_err = 2.0 * np.sqrt(p * m / (p + m) ** 3)
        log_ratio = np.log(rp / rm)
        log_err = np.sqrt(1.0 / p + 1.0 / m)
    return XmcdImage(
        asymmetry=asym,
        asymmetry_error=asym_err,
        log_ratio=log_ratio,
        log_ratio_error=log_err,
        plus_rate_Hz=rp,
        minus_rate_Hz=rm,
        x_um=None if x_um is None else np.asarray(x_um, dtype=float),
        y_um=None if y_um is None else np.asarray(y_um, dtype=float),
    )


def dead_time_corrected(rate_Hz: ArrayLike, dead_time_ns: float) -> NDArray[np.float64]:
    """The true rate of a measured one, non-paralysable dead time: N = N_m / (1 - N_m tau)."""
    measured = np.asarray(rate_Hz, dtype=float)
    if dead_time_ns <= 0:
        return measured
    with np.errstate(divide="ignore", invalid="ignore"):
        return measured / (1.0 - measured * dead_time_ns * 1e-9)


def xmcd_from_stack(
    stack: object,
    plus_polarization: str | None = None,
    minus_polarization: str | None = None,
    *,
    register: bool = False,
    upsample: int = 20,
    dead_time_ns: float = 0.0,
    i0_region: ArrayLike | None = None,
) -> XmcdImage:
    """XMCD per energy of an :class:`stxm_ctrl.data.stacks.StxmStack` (an XMCD run).

    The frames of each helicity at one energy are summed (counts and counting times); with
    ``register`` every frame is first aligned to the run's first frame
    (:func:`register_frames`), and the shifts are recorded in the result. The helicities
    default to the run's ``xmcd`` metadata (``plus_polarization``, ``minus_polarization``);
    ``dead_time_ns`` is the counter's dead time and ``i0_region`` the pixels each helicity
    is normalised to (:func:`xmcd`).

    Returns
    -------
    XmcdImage
        Arrays (energies, ny, nx) for a stack; (ny, nx) for one energy.
    """
    from stxm_ctrl.data.stacks import StxmStack

    if not isinstance(stack, StxmStack):
        raise TypeError(f"xmcd_from_stack takes a StxmStack, not {type(stack).__name__}")
    meta = stack.start.get("xmcd") or {}
    plus = plus_polarization or meta.get("plus_polarization")
    minus = minus_polarization or meta.get("minus_polarization")
    if plus is None or minus is None:
        raise ValueError(
            f"run {stack.uid} records no XMCD helicities; give plus_polarization and "
            "minus_polarization"
        )
    counts = stack.counts
    dwell = np.stack(
        [
            image.pixel_dwell_s
            if image.pixel_dwell_s is not None
            else np.full(image.counts.shape, image.dwell_s)
            for image in stack.images
        ]
    )
    shifts = None
    if register:
        rates = counts / dwell
        reg = register_frames(rates, upsample=upsample)
        counts = apply_shifts(counts, reg.shifts_px)
        dwell = apply_shifts(dwell, reg.shifts_px)
        shifts = {"frames": reg.shifts_px}
    energies = np.unique(stack.energies_eV)
    sums = {}
    for pol in (plus, minus):
        c, d = [], []
        for e in energies:
            frames = zip(stack.energies_eV, stack.polarizations, strict=True)
            pick = [i for i, (ee, pp) in enumerate(frames) if ee == e and pp == pol]
            if not pick:
                raise ValueError(f"run {stack.uid} has no {pol!r} frame at {e:g} eV")
            c.append(counts[pick].sum(axis=0))
            d.append(dwell[pick].sum(axis=0))
        sums[pol] = (np.stack(c), np.stack(d))
    result = xmcd(
        sums[plus][0],
        sums[minus][0],
        plus_dwell_s=sums[plus][1],
        minus_dwell_s=sums[minus][1],
        dead_time_ns=dead_time_ns,
        i0_region=i0_region,
        x_um=stack.x_um,
        y_um=stack.y_um,
    )
    squeeze = len(energies) == 1

    def shaped(a: NDArray[np.float64]) -> NDArray[np.float64]:
        return a[0] if squeeze else a

    return XmcdImage(
        asymmetry=shaped(result.asymmetry),
        asymmetry_error=shaped(result.asymmetry_error),
        log_ratio=shaped(result.log_ratio),
        log_ratio_error=shaped(result.log_ratio_error),
        plus_rate_Hz=shaped(result.plus_rate_Hz),
        minus_rate_Hz=shaped(result.minus_rate_Hz),
        energies_eV=energies,
        x_um=result.x_um,
        y_um=result.y_um,
        shifts_px=shifts,
    )
