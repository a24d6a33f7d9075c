"""bluesky plans for the STXM: rasters, and (to come) spectra, stacks, XMCD, pump/probe."""

from plans.sample_image import sample_image, sample_image_grid
from plans.validation import PlanArgumentError

__all__ = ["PlanArgumentError", "sample_image", "sample_image_grid"]
