"""The composite STXM: every device built from the beamline configuration."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ophyd import Device

from devices.apd import ApdPointCounter
from devices.ring import StorageRing
from devices.stages import SampleStage
from stxm_ctrl.config import BeamlineConfig

__all__ = ["StxmDevices", "build_devices"]


@dataclass(frozen=True)
class StxmDevices:
    """The microscope's devices, by role."""

    sample_x: SampleStage
    sample_y: SampleStage
    apd: ApdPointCounter
    ring: StorageRing

    def all(self) -> list[Device]:
        """Every device, in the order the fields are declared."""
        return [getattr(self, f.name) for f in fields(self)]

    def by_name(self) -> dict[str, Device]:
        """Every device under its name (``sample_x``, ``apd``, ...)."""
        return {device.name: device for device in self.all()}

    def wait_for_connection(self, timeout_s: float) -> None:
        """Connect every device, or raise naming the PVs that did not answer.

        Raises
        ------
        TimeoutError
            With the names of the unconnected devices and a hint on what to check.
        """
        missing = []
        for device in self.all():
            try:
                device.wait_for_connection(timeout=timeout_s)
            except TimeoutError as exc:
                missing.append(f"{device.name} ({device.prefix}): {exc}")
        if missing:
            raise TimeoutError(
                "could not connect to: " + "; ".join(missing) + ". Are the IOCs running "
                "(`stxm sim` for the simulated beamline) and is [epics] ca_addr_list right?"
            )


def build_devices(config: BeamlineConfig) -> StxmDevices:
    """Build (not connect) every device from ``config``.

    The Channel Access environment must already be set (see
    :func:`stxm_ctrl.epics_env.apply_ca_client_environment`).
    """
    prefixes = config.epics.prefixes
    axes = config.epics.axes
    timeouts = config.epics.timeouts
    motion = {"move_factor": timeouts.move_factor, "move_margin_s": timeouts.move_margin_s}
    return StxmDevices(
        sample_x=SampleStage(prefixes.sample_stage + axes.sample_x, name="sample_x", **motion),
        sample_y=SampleStage(prefixes.sample_stage + axes.sample_y, name="sample_y", **motion),
        apd=ApdPointCounter(
            prefixes.apd,
            name="apd",
            count_margin_s=timeouts.count_margin_s,
            put_timeout_s=timeouts.put_s,
        ),
        ring=StorageRing(prefixes.ring, name="ring", put_timeout_s=timeouts.put_s),
    )
