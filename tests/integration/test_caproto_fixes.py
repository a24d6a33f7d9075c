"""Each caproto 1.3 server problem handled in sim_iocs.server, with a test that needs the fix.

Each test also runs against stock caproto and expects the problem there, so it would fail
if the fix stopped being needed or stopped being applied.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import pytest
from caproto.asyncio.server import Context as StockContext
from caproto.server import PVGroup, pvproperty

from sim_iocs.server import HIGH_LOAD_TIMEOUT_S, low_latency_context_class
from stxm_ctrl.processes import free_tcp_port


class _OnePV(PVGroup):
    value = pvproperty(value=0.0, name="VALUE")


def _accepted_socket_nodelay(context_class, monkeypatch) -> int:
    """Serve one PV with ``context_class``, connect, return TCP_NODELAY of the accepted socket."""
    port = free_tcp_port()
    monkeypatch.setenv("EPICS_CA_SERVER_PORT", str(port))
    monkeypatch.setenv("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def make():
        context = context_class(_OnePV("TEST:").pvdb, interfaces=["127.0.0.1"])
        return context, asyncio.get_running_loop().create_task(context.run())

    context, task = asyncio.run_coroutine_threadsafe(make(), loop).result(timeout=5)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        with client:
            while not context.circuits and time.monotonic() < deadline:
                time.sleep(0.02)
            (circuit,) = tuple(context.circuits)
            server_side = circuit.client.writer.get_extra_info("socket")
            return server_side.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        loop.call_soon_threadsafe(task.cancel)
        time.sleep(0.1)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def test_accepted_sockets_get_tcp_nodelay(monkeypatch):
    assert _accepted_socket_nodelay(StockContext, monkeypatch) == 0  # the problem
    assert _accepted_socket_nodelay(low_latency_context_class(), monkeypatch) != 0  # the fix


class _Circuit:
    connected = True


class _Subscription:
    def __init__(self) -> None:
        self.circuit = _Circuit()


def _broadcast_while_a_client_disconnects(context_class) -> list:
    """Broadcast one update to two subscribers; the first send disconnects the second."""
    first, second = _Subscription(), _Subscription()
    spec = object()
    sent = []

    async def send(sub_spec, sub, metadata, values, flags):
        sent.append(sub)
        if sub is first:
            # The second client disconnects while the first send is awaited.
            second.circuit.connected = False
            context.subscriptions[spec].remove(second)
        await asyncio.sleep(0)

    async def broadcast():
        nonlocal context
        context = context_class(_OnePV("TEST:").pvdb, interfaces=["127.0.0.1"])
        context.subscriptions = {spec: deque([first, second])}
        context._subscription_queue_send = send
        await context._subscription_queue_iteration((spec,), None, [0.0], 0, None)

    context = None
    asyncio.run(broadcast())
    return sent


def test_disconnect_during_broadcast_does_not_crash_the_server():
    with pytest.raises(RuntimeError, match="deque mutated during iteration"):
        _broadcast_while_a_client_disconnects(StockContext)  # the problem
    sent = _broadcast_while_a_client_disconnects(low_latency_context_class())
    assert len(sent) == 1  # the gone client is skipped, the server carries on


def test_ioc_processes_run_with_low_subscription_batching_latency(sim_fleet):
    for name, pid in sim_fleet.pids().items():
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert f"CAPROTO_SERVER_HIGH_LOAD_TIMEOUT_SEC={HIGH_LOAD_TIMEOUT_S}".encode() in environ, (
            name
        )


def test_prepare_environment_takes_effect_in_caproto():
    code = (
        "from sim_iocs.server import prepare_environment; prepare_environment(); "
        "import caproto.server.common as c; print(c.HIGH_LOAD_TIMEOUT)"
    )
    env = {"PATH": "/usr/bin:/bin"}
    fixed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    stock = subprocess.run(
        [sys.executable, "-c", "import caproto.server.common as c; print(c.HIGH_LOAD_TIMEOUT)"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert float(stock.stdout) == 0.01  # the problem: 10 ms batching
    assert float(fixed.stdout) == HIGH_LOAD_TIMEOUT_S, fixed.stderr
