"""Analysis of STXM data: optical density, XMCD, drift registration, spectra from regions.

Functions take arrays with their axes and return them with theirs; they work on runs read
from the catalog or a spool file (:mod:`stxm_ctrl.data.stacks`) and on plain arrays alike,
and are what live views use.
"""

from stxm_ctrl.analysis.optical_density import OpticalDensity, i0_mask, optical_density
from stxm_ctrl.analysis.registration import Registered, apply_shifts, register_frames
from stxm_ctrl.analysis.spectra import Spectrum, roi_spectrum
from stxm_ctrl.analysis.xmcd import XmcdImage, xmcd, xmcd_from_stack

__all__ = [
    "OpticalDensity",
    "Registered",
    "Spectrum",
    "XmcdImage",
    "apply_shifts",
    "i0_mask",
    "optical_density",
    "register_frames",
    "roi_spectrum",
    "xmcd",
    "xmcd_from_stack",
]
