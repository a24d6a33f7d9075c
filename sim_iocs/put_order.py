"""Put-completion after the monitors it caused, as an EPICS IOC sends them.

On a real IOC a record processes, posts its monitors, and only then completes a put with
callback (``caput -c``, pyepics ``put(wait=True)``, ophyd ``put_complete``): a client that
holds a monitor and reads it right after the completion sees the new value.

caproto 1.3 sends the completion of a put straight after the putter returns, while the
monitor updates the putter posted still wait in two queues (the context's subscription
queue, then each client circuit's); the completion overtakes them, and the client reads the
previous value (measured: a scaler's counts one count stale after ``put(1, wait=True)``).

:func:`ordered_context_class` subclasses a caproto asyncio ``Context`` so that a
``WriteNotifyResponse`` waits until every monitor update queued before it has been written
to that client's socket. It counts, without changing caproto's code paths:

- updates put into the context's subscription queue, and those it has fanned out to the
  circuits (its loop handles one at a time, in order);
- updates put into a circuit's subscription queue, and those its loop has sent (the loop
  takes a batch, sends it, and only then blocks on an empty queue).

Nothing else waits: monitor traffic and plain puts (ophyd's motor moves) are unchanged.

The same records keep a put open for as long as their action lasts (a motor move, a count),
which meets a second caproto behaviour: a read waits until the circuit's writes have
finished, for up to ``CAPROTO_SERVER_WRITE_LOCK_TIMEOUT_SEC`` (1 ms), so that a read after
a put sees the put. With a move in progress every read on that client's circuit (ophyd
reads ``.HLS``/``.LLS`` at the end of each move) would wait the full millisecond. The
ordered circuit considers a write finished for reads once its putter has run up to its
first real wait, which is where these records have already posted the new target; a put
that completes at once is unaffected.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["ordered_context_class"]


class _Progress:
    """A count that only grows, and that tasks can wait on."""

    def __init__(self) -> None:
        self.value = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def advance_to(self, value: int) -> None:
        if value <= self.value:
            return
        self.value = value
        if self._waiters:
            still = []
            for target, future in self._waiters:
                if target <= value:
                    if not future.done():
                        future.set_result(None)
                else:
                    still.append((target, future))
            self._waiters = still

    async def reached(self, target: int) -> None:
        """Return once the count is at least ``target``."""
        if self.value >= target:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((target, future))
        await future


class _CountingQueue(asyncio.Queue):
    """An ``asyncio.Queue`` that counts what has been put into it."""

    def __init__(self, maxsize: int = 0) -> None:
        super().__init__(maxsize)
        self.puts = 0

    def put_nowait(self, item: Any) -> None:  # Queue.put ends in put_nowait too
        super().put_nowait(item)
        self.puts += 1


def ordered_context_class(base: type) -> type:
    """A subclass of caproto asyncio ``Context`` ``base`` whose put completions follow monitors.

    Parameters
    ----------
    base
        A ``caproto.asyncio.server.Context`` (sub)class.

    Returns
    -------
    type
        The subclass; its circuits send a put's completion only after every monitor update
        queued before it has reached the client, and let reads through once a put's putter
        has reached its first wait.
    """
    from caproto import WriteNotifyResponse

    class _OrderedCircuit(base.CircuitClass):
        """Circuit that tracks how far its subscription loop has sent."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.subscription_queue = _CountingQueue(self.subscription_queue.maxsize)
            self._taken = 0
            self._sent = _Progress()

        async def get_from_sub_queue(self, timeout: float | None = None) -> Any:
            if timeout is None:
                # The loop blocks without a timeout only with an empty batch: everything
                # taken so far has been sent (or dropped as expired).
                self._sent.advance_to(self._taken)
            ref = await super().get_from_sub_queue(timeout=timeout)
            if ref is not None:
                self._taken += 1
            return ref

        async def _start_write_task(self, handle_write: Any) -> None:
            await super()._start_write_task(handle_write)
            # The write's task was scheduled first, so this runs once its putter has reached
            # its first wait; reads from then on need not wait for the write to end.
            asyncio.get_running_loop().call_soon(self.write_event.set)

        async def send(self, *commands: Any) -> None:
            if self._sub_task is not None and asyncio.current_task() is self._sub_task:
                taken = self._taken
                await super().send(*commands)
                self._sent.advance_to(taken)
                return
            if any(isinstance(command, WriteNotifyResponse) for command in commands):
                context = self.context
                await context.fanned_out.reached(context.subscription_queue.puts)
                await self._sent.reached(self.subscription_queue.puts)
            await super().send(*commands)

    class _OrderedContext(base):
        """caproto Context whose put completions follow the monitors posted before them."""

        CircuitClass = _OrderedCircuit

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.subscription_queue = _CountingQueue()
            # How many monitor updates the context has fanned out to its circuits (read by
            # the circuits).
            self.fanned_out = _Progress()
            self._handled = 0

        async def _subscription_queue_iteration(self, *args: Any, **kwargs: Any) -> None:
            try:
                await super()._subscription_queue_iteration(*args, **kwargs)
            finally:
                self._handled += 1
                self.fanned_out.advance_to(self._handled)

    return _OrderedContext
