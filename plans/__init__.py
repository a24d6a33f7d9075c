"""bluesky plans for the STXM: rasters, and (to come) spectra, stacks, XMCD, pump/probe."""

from plans.alignment import (
    AlignmentResult,
    detector_image,
    osa_focus,
    osa_image,
    sample_focus,
)
from plans.sample_image import sample_image, sample_image_grid
from plans.validation import PlanArgumentError

__all__ = [
    "PLANS",
    "AlignmentResult",
    "PlanArgumentError",
    "detector_image",
    "osa_focus",
    "osa_image",
    "sample_focus",
    "sample_image",
    "sample_image_grid",
]

PLANS = ("sample_image", "detector_image", "osa_image", "osa_focus", "sample_focus")
"""Names of the plans a queue server or a session offers (the rest are helpers)."""
