"""Sample coarse stages: stock motor records."""

from __future__ import annotations

from ophyd import EpicsMotor

__all__ = ["SampleStage"]


class SampleStage(EpicsMotor):
    """One sample coarse-stage axis (a motor record, positions in um).

    A plain :class:`ophyd.EpicsMotor`; it exists so that the stage axes have a class of
    their own to grow with (interferometer readback, coarse/fine handoff) without changing
    the plans that use them.
    """

    def __repr__(self) -> str:
        # ophyd's Device repr walks every component (~0.25 ms) and MoveStatus builds it on
        # every move; prefix and name identify the axis just as well.
        return f"{type(self).__name__}(prefix={self.prefix!r}, name={self.name!r})"
