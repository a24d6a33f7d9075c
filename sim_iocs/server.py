"""Entry point shared by the simulated IOCs, with the caproto 1.3 server problems handled.

Three measured problems of the caproto asyncio server are handled here:

1. Accepted TCP sockets never get ``TCP_NODELAY``, so Nagle's algorithm holds back small
   monitor updates behind unacknowledged ones (~40 ms stalls per motor move).
   :func:`low_latency_context_class` sets the option on every accepted client socket.
2. The subscription queue batches updates for ``CAPROTO_SERVER_HIGH_LOAD_TIMEOUT_SEC``
   (10 ms by default) once two arrive close together. caproto reads this documented
   environment variable when ``caproto.server`` is first imported, so
   :func:`prepare_environment` sets it (to 0) before that import; an explicit value in
   the environment is left alone. With 0 no update waits for company: each is sent as
   soon as the circuit's loop runs (measured: the DMOV=1 of a short move arrives ~1 ms
   sooner than with 0.001, at the price of one send per update).
3. The context's broadcast loop iterates the deque of subscriptions of a PV while awaiting
   sends; a client that disconnects meanwhile removes its subscription from that deque and
   the server dies with ``RuntimeError: deque mutated during iteration``.
   :func:`low_latency_context_class` iterates over a snapshot and skips subscriptions whose
   circuit has gone.
4. A put with completion that fails before or in its putter (a string that does not convert
   to the channel's type, ``b'abc'`` to a double or ``b'Ajar'`` to an enum, as EPICS base's
   ``caput`` sends strings; or a put the record refuses) is answered with an
   ``ErrorResponse`` only. libca and caproto's sync client take that as the put's failure;
   caproto's threading client (ophyd's caproto control layer) waits for a
   ``WriteNotifyResponse`` and hangs until its timeout. An EPICS IOC (rsrv) answers a failed
   put with completion with a ``WriteNotifyResponse`` carrying ``ECA_PUTFAIL``: the circuit
   of :func:`low_latency_context_class` sends that too, right after the error (with its
   message), so every client gets its answer.

No caproto module is patched: the fixes are a subclass of its asyncio ``Context`` and an
environment variable it documents. Two more, about puts that stay open while a record acts
(put completion after the monitors it caused, reads that need not wait for such a put),
are a further subclass in :mod:`sim_iocs.put_order`, which :func:`run_ioc` serves with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

__all__ = ["HIGH_LOAD_TIMEOUT_S", "low_latency_context_class", "prepare_environment", "run_ioc"]

HIGH_LOAD_TIMEOUT_S = 0.0
"""Subscription batching latency limit the simulated IOCs run with."""

log = logging.getLogger(__name__)


def prepare_environment(
    host: str = "127.0.0.1", environ: MutableMapping[str, str] | None = None
) -> None:
    """Environment for a caproto server on loopback; call before importing caproto.server.

    Values already present are kept (an explicit setting wins).

    Parameters
    ----------
    host
        Interface the server binds, and the only beacon address.
    environ
        Mapping to fill (``os.environ`` by default; a child's environment for launchers).
    """
    env = os.environ if environ is None else environ
    env.setdefault("CAPROTO_SERVER_HIGH_LOAD_TIMEOUT_SEC", str(HIGH_LOAD_TIMEOUT_S))
    env.setdefault("EPICS_CAS_INTF_ADDR_LIST", host)
    env.setdefault("EPICS_CAS_BEACON_ADDR_LIST", host)
    env.setdefault("EPICS_CAS_AUTO_BEACON_ADDR_LIST", "NO")
    env.setdefault("EPICS_CA_AUTO_ADDR_LIST", "NO")


def low_latency_context_class() -> type:
    """The caproto asyncio ``Context`` subclass with the fixes in the module docstring."""
    # Imported lazily so that prepare_environment() runs before caproto.server is loaded.
    from caproto import CAStatus, ErrorResponse, WriteNotifyResponse
    from caproto.asyncio.server import Context

    write_notify = 19  # CA_PROTO_WRITE_NOTIFY

    class _AnsweringCircuit(Context.CircuitClass):
        """Circuit that answers a failed put with completion as an EPICS IOC does."""

        async def send(self, *commands: Any) -> None:
            answers = [
                WriteNotifyResponse(
                    data_type=command.original_request.data_type,
                    data_count=command.original_request.data_count,
                    status=CAStatus.ECA_PUTFAIL,
                    ioid=command.original_request.parameter2,
                )
                for command in commands
                if isinstance(command, ErrorResponse)
                and command.original_request.command == write_notify
            ]
            await super().send(*commands, *answers)

    class _LowLatencyContext(Context):
        """caproto asyncio server context with TCP_NODELAY, a safe broadcast loop and an
        answer to every failed put with completion."""

        CircuitClass = _AnsweringCircuit

        async def tcp_handler(self, client: Any, addr: Any) -> None:
            sock = client.writer.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):  # a client that already left
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await super().tcp_handler(client, addr)

        async def _subscription_queue_iteration(
            self, sub_specs, metadata, values, flags, sub
        ) -> None:
            if sub is not None:
                await super()._subscription_queue_iteration(
                    sub_specs, metadata, values, flags, sub
                )
                return
            for sub_spec in sub_specs:
                # Snapshot: a disconnecting client mutates this deque while we await sends.
                for subscription in tuple(self.subscriptions[sub_spec]):
                    if not getattr(subscription.circuit, "connected", True):
                        continue
                    await self._subscription_queue_send(
                        sub_spec, subscription, metadata=metadata, values=values, flags=flags
                    )

    return _LowLatencyContext


def run_ioc(
    pvdb: Mapping[str, Any],
    *,
    host: str,
    port: int,
    startup_hook: Callable[..., Any] | None = None,
) -> None:
    """Serve ``pvdb`` on ``host:port`` (TCP and UDP) until interrupted.

    Parameters
    ----------
    pvdb
        The PV database of a PVGroup (``group.pvdb``).
    host
        Interface to bind; loopback unless configured otherwise.
    port
        Channel Access server port (TCP and UDP search port).
    startup_hook
        Optional ``async def hook(async_lib)`` run once the server listens.
    """
    os.environ["EPICS_CAS_INTF_ADDR_LIST"] = host
    os.environ["EPICS_CA_SERVER_PORT"] = str(port)
    os.environ["EPICS_CAS_SERVER_PORT"] = str(port)
    from sim_iocs.put_order import ordered_context_class

    context_class = ordered_context_class(low_latency_context_class())

    async def serve() -> None:
        context = context_class(pvdb, interfaces=[host])
        await context.run(log_pv_names=False, startup_hook=startup_hook)

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
