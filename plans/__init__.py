"""bluesky plans for the STXM: rasters, and (to come) spectra, stacks, XMCD, pump/probe."""

from plans.sample_image import sample_image, sample_image_grid
from plans.validation import PlanArgumentError

__all__ = ["PLANS", "PlanArgumentError", "sample_image", "sample_image_grid"]

PLANS = ("sample_image",)
"""Names of the plans a queue server or a session offers (the rest are helpers)."""
