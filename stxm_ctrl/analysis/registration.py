"""Sub-pixel drift registration of stack frames and helicity pairs.

scikit-image's ``phase_cross_correlation`` (upsampled DFT, Guizar-Sicairos et al. 2008) finds
each frame's shift against a reference to 1 / ``upsample`` of a pixel; ``scipy.ndimage``'s
Fourier shift applies it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage
from skimage.filters import window
from skimage.registration import phase_cross_correlation

__all__ = ["Registered", "apply_shifts", "register_frames"]


@dataclass(frozen=True)
class Registered:
    """Frames aligned to a reference.

    Attributes
    ----------
    frames
        The aligned frames, (n, ny, nx).
    shifts_px
        (n, 2): the (dy, dx) shift applied to each frame, pixels (the drift was its negative).
    reference
        Index of the reference frame.
    """

    frames: NDArray[np.float64]
    shifts_px: NDArray[np.float64]
    reference: int


def _filled(frame: NDArray[np.float64]) -> NDArray[np.float64]:
    # Unmeasured pixels (NaN) take the frame's mean: no false edge for the correlation.
    return np.where(np.isnan(frame), np.nanmean(frame), frame)


def _windowed(frame: NDArray[np.float64]) -> NDArray[np.float64]:
    # The correlation is periodic and an image is not: mean removed and a Hann window taper
    # the edges, whose jump would otherwise pull the peak towards zero shift.
    filled = _filled(frame)
    return (filled - filled.mean()) * window("hann", filled.shape)


def register_frames(frames: ArrayLike, *, reference: int = 0, upsample: int = 20) -> Registered:
    """Shift every frame onto ``frames[reference]`` (sub-pixel, 1/``upsample`` px).

    Works best on contrast that does not change between frames (OD, or rates across a small
    energy range); register a stack across an edge on the pre- or post-edge frames and apply
    their shifts (:func:`apply_shifts`).

    Raises
    ------
    ValueError
        For fewer than 2 dimensions per frame or a reference out of range.
    """
    stack = np.asarray(frames, dtype=float)
    if stack.ndim != 3:
        raise ValueError(f"frames has shape {stack.shape}; give (n, ny, nx)")
    if not 0 <= reference < len(stack):
        raise ValueError(f"reference = {reference}: choose 0 to {len(stack) - 1}")
    ref = _windowed(stack[reference])
    shifts = np.zeros((len(stack), 2))
    for i, frame in enumerate(stack):
        if i == reference:
            continue
        # No phase normalisation: with Poisson noise the plain cross-correlation is the
        # more robust estimator (scikit-image's own advice for noisy images).
        normalization: Any = None
        shift, _, _ = phase_cross_correlation(
            ref, _windowed(frame), upsample_factor=upsample, normalization=normalization
        )
        shifts[i] = shift
    return Registered(frames=apply_shifts(stack, shifts), shifts_px=shifts, reference=reference)


def apply_shifts(frames: ArrayLike, shifts_px: ArrayLike) -> NDArray[np.float64]:
    """Shift each frame by its (dy, dx) (Fourier shift; wraps at the edges)."""
    stack = np.asarray(frames, dtype=float)
    out = np.empty_like(stack)
    for i, (frame, shift) in enumerate(zip(stack, np.asarray(shifts_px), strict=True)):
        if not np.any(shift):
            out[i] = frame
            continue
        filled = _filled(frame)
        out[i] = np.fft.ifftn(ndimage.fourier_shift(np.fft.fftn(filled), shift)).real
    return out
