"""Coalescing: many callers, one call for all of them.

At low load each item goes alone, at once. While `max_in_flight` flushes are running, the
items that arrive meanwhile wait and go together in the next flush (as Nagle's algorithm, or
a Kafka producer's linger), so under load one broker confirm or one database transaction
serves many callers, and no caller ever waits for a timer.
"""

import asyncio
from collections.abc import Awaitable, Callable


class Batcher[T]:
    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[None]],
        *,
        max_batch: int = 256,
        max_in_flight: int = 2,
    ) -> None:
        self._flush = flush
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self._in_flight: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> None:
        """Returns once a flush holding `item` succeeded; raises what that flush raised."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if len(self._in_flight) < self._max_in_flight:
            self._start()
        await future

    def _start(self) -> None:
        task = asyncio.create_task(self._run())
        self._in_flight.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if self._waiting and len(self._in_flight) < self._max_in_flight:
            self._start()

    async def _run(self) -> None:
        # A flush takes what is waiting when it starts, one turn of the event loop after it
        # was scheduled: the items made in the same turn go together even when flushes are
        # quick (a publish without confirm) and so rarely in flight.
        batch = self._waiting[: self._max_batch]
        del self._waiting[: self._max_batch]
        if not batch:
            return
        error: BaseException | None = None
        try:
            await self._flush([item for item, _ in batch])
        except Exception as failure:
            error = failure
        for _, future in batch:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

    async def close(self) -> None:
        """Wait for the flushes in flight (their callers are still waiting)."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
