"""ophyd devices of the STXM, one instrument per module, and the composite that builds them.

Each device speaks EPICS Channel Access through pyepics, so the same classes drive the
simulated IOCs (``sim_iocs``) and a real beamline's IOCs.
"""

from devices.apd import ApdPointCounter
from devices.ring import StorageRing
from devices.sample_stage import SampleAxis, SampleStage
from devices.stages import BoundedMotor, CoarseStage
from devices.stxm import StxmDevices, build_devices

__all__ = [
    "ApdPointCounter",
    "BoundedMotor",
    "CoarseStage",
    "SampleAxis",
    "SampleStage",
    "StorageRing",
    "StxmDevices",
    "build_devices",
]
