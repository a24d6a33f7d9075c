"""bluesky plans for the STXM: rasters, alignment, spectra, stacks, XMCD (pump/probe next)."""

from plans.alignment import (
    AlignmentResult,
    detector_image,
    osa_focus,
    osa_image,
    sample_focus,
)
from plans.energy_list import energy_points
from plans.raster_grid import RasterRegion
from plans.sample_image import sample_image, sample_image_grid
from plans.spectromicroscopy import (
    image_stack,
    line_spectrum,
    point_spectrum,
    xmcd_image,
    xmcd_stack,
)
from plans.validation import PlanArgumentError

__all__ = [
    "PLANS",
    "AlignmentResult",
    "PlanArgumentError",
    "RasterRegion",
    "detector_image",
    "energy_points",
    "image_stack",
    "line_spectrum",
    "osa_focus",
    "osa_image",
    "point_spectrum",
    "sample_focus",
    "sample_image",
    "sample_image_grid",
    "xmcd_image",
    "xmcd_stack",
]

PLANS = (
    "sample_image",
    "detector_image",
    "osa_image",
    "osa_focus",
    "sample_focus",
    "point_spectrum",
    "line_spectrum",
    "image_stack",
    "xmcd_image",
    "xmcd_stack",
)
"""Names of the plans a queue server or a session offers (the rest are helpers)."""
