"""Each caproto 1.3 server problem handled in sim_iocs.server, with a test that needs the fix.

Each test also runs against stock caproto and expects the problem there, so it would fail
if the fix stopped being needed or stopped being applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from caproto import ChannelType
from caproto.asyncio.server import Context as StockContext
from caproto.server import PVGroup, pvproperty
from caproto.threading.client import Context as ClientContext

from sim_iocs.server import HIGH_LOAD_TIMEOUT_S, low_latency_context_class
from stxm_ctrl.processes import free_tcp_port


class _OnePV(PVGroup):
    value = pvproperty(value=0.0, name="VALUE")


class _Records(PVGroup):
    energy = pvproperty(value=700.0, name="ENERGY", record="ao")
    shutter = pvproperty(
        value="Closed", name="SHUTTER", dtype=ChannelType.ENUM, enum_strings=["Closed", "Open"]
    )


@contextlib.contextmanager
def _serving(context_class, monkeypatch, group: PVGroup | None = None) -> Iterator[Any]:
    """Serve ``group`` (one PV by default) with ``context_class`` in a thread; yield it."""
    port = free_tcp_port()
    monkeypatch.setenv("EPICS_CA_SERVER_PORT", str(port))
    monkeypatch.setenv("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    pvdb = (group or _OnePV("TEST:")).pvdb

    async def make():
        context = context_class(pvdb, interfaces=["127.0.0.1"])
        return context, asyncio.get_running_loop().create_task(context.run())

    context, task = asyncio.run_coroutine_threadsafe(make(), loop).result(timeout=5)
    try:
        yield context, port
    finally:
        loop.call_soon_threadsafe(task.cancel)
        time.sleep(0.1)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def _accepted_socket_nodelay(context_class, monkeypatch) -> int:
    """Serve one PV with ``context_class``, connect, return TCP_NODELAY of the accepted socket."""
    with _serving(context_class, monkeypatch) as (context, port):
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
        # The fix is in caproto's fan-out loop: driven here directly, with its send replaced.
        context._subscription_queue_send = send  # noqa: SLF001
        await context._subscription_queue_iteration((spec,), None, [0.0], 0, None)  # noqa: SLF001

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


def _string_puts(context_class, monkeypatch) -> dict[str, Any]:
    """Put strings that do not convert (as EPICS base's caput sends them) with completion,
    from caproto's threading client; the answer (or the exception) for each PV."""
    answers: dict[str, Any] = {}
    with _serving(context_class, monkeypatch, _Records("TEST:")) as (_, port):
        monkeypatch.setenv("EPICS_CA_ADDR_LIST", f"127.0.0.1:{port}")
        monkeypatch.setenv("EPICS_CA_AUTO_ADDR_LIST", "NO")
        client = ClientContext()
        try:
            for name, text in (("TEST:ENERGY", b"abc"), ("TEST:SHUTTER", b"Ajar")):
                (pv,) = client.get_pvs(name, timeout=5)
                pv.wait_for_connection(timeout=10)
                started = time.monotonic()
                try:
                    answer = pv.write([text], data_type=ChannelType.STRING, wait=True, timeout=3)
                except Exception as exc:  # the problem: no answer
                    answer = exc
                answers[name] = (answer, time.monotonic() - started)
            answers["values"] = [client.get_pvs(n)[0].read().data[0] for n in ("TEST:ENERGY",)]
        finally:
            client.disconnect()
    return answers


def test_an_unconvertible_string_put_is_answered_with_a_put_failure(monkeypatch):
    stock = _string_puts(StockContext, monkeypatch)
    for name in ("TEST:ENERGY", "TEST:SHUTTER"):
        assert type(stock[name][0]).__name__ == "CaprotoTimeoutError", stock  # the problem
    fixed = _string_puts(low_latency_context_class(), monkeypatch)
    for name in ("TEST:ENERGY", "TEST:SHUTTER"):
        answer, took_s = fixed[name]
        assert answer.status.name == "ECA_PUTFAIL", answer
        assert took_s < 1.0
    assert fixed["values"] == [700.0]


def test_the_fleet_answers_unconvertible_string_puts(sim_config, sim_fleet):
    """The same against the fleet's ENERGY (ao) and SHUTTER (bo), from caproto's threading
    client with the fleet's CA environment: a put failure at once, the values unchanged."""
    prefixes = sim_config.epics.prefixes
    names = (prefixes.beamline + "ENERGY", prefixes.ring + "SHUTTER")
    client = ClientContext()
    try:
        pvs = client.get_pvs(*names, timeout=5)
        before = []
        for pv in pvs:
            pv.wait_for_connection(timeout=10)
            before.append(pv.read(data_type=ChannelType.STRING).data[0])
        for pv, text in zip(pvs, (b"abc", b"Ajar"), strict=True):
            started = time.monotonic()
            answer = pv.write([text], data_type=ChannelType.STRING, wait=True, timeout=5)
            assert answer.status.name == "ECA_PUTFAIL", (pv.name, answer)
            assert time.monotonic() - started < 1.0
        after = [pv.read(data_type=ChannelType.STRING).data[0] for pv in pvs]
        assert after == before
    finally:
        client.disconnect()
