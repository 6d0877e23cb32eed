"""Coalescing: many callers, one call for all of them.

At low load each item goes alone, at once. While `max_in_flight` flushes are running, the
items that arrive meanwhile wait and go together in the next flush (as Nagle's algorithm, or
a Kafka producer's linger), so under load one broker confirm or one database transaction
serves many callers, and no caller ever waits for a timer.

A flush may give back one result per item (in order); each caller gets its own.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence


class Overloaded(Exception):
    """Refused at once: too many items wait already, or the flushes in flight have stalled."""


class Batcher[T, R]:
    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[Sequence[R] | None]],
        *,
        max_batch: int = 256,
        max_in_flight: int = 2,
        max_waiting: int | None = None,
        stalled_after: float | None = None,
    ) -> None:
        """`max_waiting`: items waiting for a flush beyond which `submit` raises Overloaded;
        `stalled_after`: seconds a flush may run before the batcher counts as stalled: then new
        items are refused (Overloaded) while a flush is in flight, until one succeeds, so
        callers are not queued behind a dependency that stopped (one flush at a time probes
        whether it is back)."""
        self._flush = flush
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._max_waiting = max_waiting
        self._stalled_after = stalled_after
        self._waiting: list[tuple[T, asyncio.Future[R | None]]] = []
        self._in_flight: dict[asyncio.Task[None], float] = {}
        self._stalled = False

    def __len__(self) -> int:
        """Items waiting for a flush."""
        return len(self._waiting)

    async def submit(self, item: T) -> R | None:
        """Returns once a flush holding `item` succeeded, with the flush's result for it (None
        when the flush gives none); raises what that flush raised."""
        self._check_capacity()
        future: asyncio.Future[R | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if len(self._in_flight) < self._max_in_flight:
            self._start()
        return await future

    def _check_capacity(self) -> None:
        if self._max_waiting is not None and len(self._waiting) >= self._max_waiting:
            raise Overloaded(f"{len(self._waiting)} items are waiting already")
        if self._stalled_after is None or not self._in_flight:
            return
        oldest = time.monotonic() - min(self._in_flight.values())
        if oldest > self._stalled_after:
            self._stalled = True
        if self._stalled:
            raise Overloaded(
                f"the calls stalled (the one in flight has run {oldest:.1f} s); refusing "
                "until one succeeds"
            )

    def _start(self) -> None:
        task = asyncio.create_task(self._run())
        self._in_flight[task] = time.monotonic()
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        if self._waiting and len(self._in_flight) < self._max_in_flight:
            self._start()

    async def _run(self) -> None:
        # A flush takes what is waiting one turn of the event loop after it was scheduled
        # (tasks start eagerly: this is the turn): the items made in the same turn go together
        # even when flushes are quick (a publish without confirm) and so rarely in flight.
        await asyncio.sleep(0)
        batch = self._waiting[: self._max_batch]
        del self._waiting[: self._max_batch]
        if not batch:
            return
        error: BaseException | None = None
        results: Sequence[R] | None = None
        started = time.monotonic()
        try:
            results = await self._flush([item for item, _ in batch])
        except Exception as failure:
            error = failure
            took = time.monotonic() - started
            if self._stalled_after is not None and took > self._stalled_after:
                self._stalled = True
        else:
            self._stalled = False
        for index, (_, future) in enumerate(batch):
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(results[index] if results is not None else None)

    async def close(self) -> None:
        """Wait for the flushes in flight (their callers are still waiting)."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
