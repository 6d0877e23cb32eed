"""Queues accepted webhooks on the broker, several to a message when they arrive together.

At low load each request is published at once. While publishes are in flight, the requests
that arrive meanwhile wait and go together in the next message (as Nagle's algorithm, or a
Kafka producer's linger): one confirmed publish then answers many callers, which is what
lets a gateway take more webhooks per second than it could publish messages.
"""

import asyncio

import structlog

from hookflow.shared.errors import BrokerUnavailable
from hookflow.shared.messaging import Broker
from hookflow.shared.models import RunRequest

log = structlog.get_logger("hookflow.gateway")


class RunSubmitter:
    def __init__(self, broker: Broker, *, max_batch: int = 256, max_in_flight: int = 2) -> None:
        self._broker = broker
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._waiting: list[tuple[RunRequest, asyncio.Future[None]]] = []
        self._in_flight: set[asyncio.Task[None]] = set()

    async def submit(self, run: RunRequest) -> None:
        """Returns once the broker has durably taken the run; raises BrokerUnavailable if not."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((run, future))
        if len(self._in_flight) < self._max_in_flight:
            self._publish_next()
        await future

    def _publish_next(self) -> None:
        batch = self._waiting[: self._max_batch]
        del self._waiting[: self._max_batch]
        task = asyncio.create_task(self._publish(batch))
        self._in_flight.add(task)
        task.add_done_callback(self._published)

    def _published(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if self._waiting and len(self._in_flight) < self._max_in_flight:
            self._publish_next()

    async def _publish(self, batch: list[tuple[RunRequest, asyncio.Future[None]]]) -> None:
        confirmed = False
        try:
            await self._broker.publish_runs([run for run, _ in batch])
            confirmed = True
        except BrokerUnavailable:
            pass
        except Exception:
            log.exception("publish failed")
        for _, future in batch:
            if future.done():
                continue
            if confirmed:
                future.set_result(None)
            else:
                future.set_exception(BrokerUnavailable())

    async def close(self) -> None:
        """Wait for the publishes in flight (their callers are still waiting for an answer)."""
        while self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
