"""ophyd devices of the STXM, one instrument per module, and the composite that builds them.

Each device speaks EPICS Channel Access through pyepics, so the same classes drive the
simulated IOCs (``sim_iocs``) and a real beamline's IOCs.
"""

from devices.apd import ApdPointCounter
from devices.ring import StorageRing
from devices.stages import SampleStage
from devices.stxm import StxmDevices, build_devices

__all__ = ["ApdPointCounter", "SampleStage", "StorageRing", "StxmDevices", "build_devices"]
