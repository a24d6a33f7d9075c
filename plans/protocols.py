"""What the plans need of the devices they are given, as structural types.

bluesky's own protocols (``Readable``, ``Movable``) describe return types that ophyd's
untyped classes cannot be checked against, so a type checker would refuse every ophyd
device. These protocols name only what the plans use; ophyd devices, ``ophyd.sim`` devices
and the project's own devices all satisfy them. The plans check the same at run time
(:mod:`plans.validation`), with a message, before anything moves.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["DwellCounter", "Positioner", "ReadableDevice"]


class ReadableDevice(Protocol):
    """Something a plan reads into an event."""

    @property
    def name(self) -> str: ...

    def read(self) -> Any: ...

    def describe(self) -> Any: ...


class Positioner(ReadableDevice, Protocol):
    """Something a plan moves (a stage axis)."""

    def set(self, value: Any, /) -> Any: ...


class DwellCounter(ReadableDevice, Protocol):
    """A point detector that counts for ``dwell`` seconds on each trigger."""

    @property
    def dwell(self) -> Any: ...

    def trigger(self) -> Any: ...
