"""Puts of long-running records, as pyepics sees them (sim_iocs.put_order).

- A client holding a monitor on a result and putting with completion to a trigger reads the
  monitored result right after ``put(..., wait=True)`` returns. On an EPICS IOC that is the
  new result; with stock caproto 1.3 the completion overtakes the monitor.
- While a put stays open (a move, a count), reads on the same circuit should not wait for
  it; stock caproto makes each wait ``CAPROTO_SERVER_WRITE_LOCK_TIMEOUT_SEC`` (1 ms).

Each test runs the same IOC with caproto's context and with the ordered one, so it fails if
the fix stops being needed or stops being applied.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import threading
import time

from caproto.server import PVGroup, pvproperty

from sim_iocs.put_order import ordered_context_class
from sim_iocs.server import low_latency_context_class
from stxm_ctrl.processes import free_tcp_port, tcp_answers

_ROUNDS = 60


class _Counter(PVGroup):
    """TRIGGER: a put computes a new RESULT (the next integer) before it completes.

    SLOW: a put that stays open for 0.3 s (as a motor move does).
    """

    trigger = pvproperty(value=0, name="TRIGGER")
    result = pvproperty(value=0, name="RESULT", read_only=True)
    slow = pvproperty(value=0, name="SLOW")

    @trigger.putter
    async def trigger(self, instance, value):
        await self.result.write(self.result.value + 1)
        return 0

    @slow.putter
    async def slow(self, instance, value):
        await asyncio.sleep(0.3)
        return value


_STALE_READS = textwrap.dedent(
    """
    import sys
    import epics

    rounds = int(sys.argv[1])
    result = epics.PV("ORDER:RESULT", auto_monitor=True)
    trigger = epics.PV("ORDER:TRIGGER")
    assert result.wait_for_connection(10) and trigger.wait_for_connection(10)
    result.get()
    stale = 0
    for _ in range(rounds):
        before = result.get(use_monitor=False)
        trigger.put(1, wait=True, timeout=5)
        if result.get() != before + 1:  # the monitored value, right after completion
            stale += 1
    print(stale)
    """
)


_READ_TIME = textwrap.dedent(
    """
    import statistics
    import time
    import epics

    result = epics.PV("ORDER:RESULT", auto_monitor=False)
    slow = epics.PV("ORDER:SLOW")
    assert result.wait_for_connection(10) and slow.wait_for_connection(10)
    result.get(use_monitor=False)
    slow.put(1)  # no completion wanted; the IOC keeps the put open for 0.3 s
    times = []
    for _ in range(40):
        started = time.perf_counter()
        result.get(use_monitor=False)
        times.append(time.perf_counter() - started)
    slow.put(2, wait=True)  # leave no put open behind
    print(statistics.median(times))
    """
)


def _run_client(context_class, script: str, *args: str) -> str:
    """Serve _Counter with ``context_class``; run a pyepics ``script``; return its last word."""
    port = free_tcp_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPICS_CA")}
    env.update(
        EPICS_CA_ADDR_LIST=f"127.0.0.1:{port}",
        EPICS_CA_AUTO_ADDR_LIST="NO",
        EPICS_CA_SERVER_PORT=str(port),
    )
    old = {k: os.environ.get(k) for k in ("EPICS_CA_SERVER_PORT", "EPICS_CAS_INTF_ADDR_LIST")}
    os.environ["EPICS_CA_SERVER_PORT"] = str(port)
    os.environ["EPICS_CAS_INTF_ADDR_LIST"] = "127.0.0.1"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def make():
        context = context_class(_Counter("ORDER:").pvdb, interfaces=["127.0.0.1"])
        return asyncio.get_running_loop().create_task(context.run())

    task = asyncio.run_coroutine_threadsafe(make(), loop).result(timeout=5)
    try:
        deadline = time.monotonic() + 10
        while not tcp_answers("127.0.0.1", port):  # the client searches once it listens
            assert time.monotonic() < deadline, "test IOC did not listen"
            time.sleep(0.02)
        done = subprocess.run(
            [sys.executable, "-c", script, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()[-1]
    finally:
        loop.call_soon_threadsafe(task.cancel)
        time.sleep(0.1)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _stale_reads(context_class) -> int:
    return int(_run_client(context_class, _STALE_READS, str(_ROUNDS)))


def _median_read_s(context_class) -> float:
    return float(_run_client(context_class, _READ_TIME))


def test_put_completion_follows_the_monitors_it_caused():
    stock = low_latency_context_class()
    assert _stale_reads(stock) > _ROUNDS // 2  # the problem: completion before the monitor
    assert _stale_reads(ordered_context_class(stock)) == 0  # the fix


def test_reads_do_not_wait_for_a_put_that_stays_open():
    stock = low_latency_context_class()
    waiting = _median_read_s(stock)
    assert waiting >= 0.001  # the problem: each read waits out caproto's write lock
    assert _median_read_s(ordered_context_class(stock)) < waiting - 0.0005  # the fix
