"""The in-process bus: the same contract as RabbitMQ inside one process (`hookflow run`).

Messages cross it as JSON, as they would cross the broker, so nothing is shared by
reference. It keeps nothing across a restart: that is what RabbitMQ is for.
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import structlog

from hookflow.shared.errors import BrokerUnavailable
from hookflow.shared.messaging.base import (
    Broker,
    Consumer,
    EventHandler,
    ReplyHandler,
    ResyncHandler,
    RunHandler,
)
from hookflow.shared.messaging.topology import DELIVERY_LIMIT
from hookflow.shared.models import (
    EVENT,
    ConfigEvent,
    GatewayHeartbeat,
    RunBatch,
    RunReplies,
    RunReply,
    RunRequest,
)

log = structlog.get_logger("hookflow.bus")


class MemoryBroker(Broker):
    def __init__(self, *, retry_backoff: float = 0.5) -> None:
        self.retry_backoff = retry_backoff
        self._runs: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue()
        self.dead: list[bytes] = []
        self._event_handlers: list[EventHandler] = []
        self._reply_handlers: dict[str, ReplyHandler] = {}
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    async def connect(self) -> None:
        self._connected = True

    async def close(self) -> None:
        self._connected = False

    async def publish_runs(self, runs: Sequence[RunRequest]) -> None:
        if not self._connected:
            raise BrokerUnavailable()
        self._runs.put_nowait((RunBatch(runs=list(runs)).model_dump_json().encode(), 1))

    async def consume_runs(self, handler: RunHandler, *, prefetch: int) -> Consumer:
        return _MemoryConsumer(self, handler, prefetch)

    def _hand_back(self, body: bytes, deliveries: int) -> None:
        if deliveries >= DELIVERY_LIMIT:
            log.error("run message dead-lettered", deliveries=deliveries)
            self.dead.append(body)
        else:
            self._runs.put_nowait((body, deliveries + 1))

    async def publish_event(self, event: ConfigEvent | GatewayHeartbeat) -> None:
        if not self._connected:
            raise BrokerUnavailable()
        body = event.model_dump_json()
        for handler in list(self._event_handlers):
            try:
                await handler(EVENT.validate_json(body))
            except Exception:
                log.exception("config event handler failed")

    async def subscribe_events(
        self, handler: EventHandler, on_resync: ResyncHandler | None = None
    ) -> Consumer:
        self._event_handlers.append(handler)
        return _MemorySubscription(self._event_handlers, handler)

    async def open_replies(
        self, handler: ReplyHandler, on_lost: Callable[[], None] | None = None
    ) -> str:
        address = f"memory.replies.{len(self._reply_handlers)}"
        self._reply_handlers[address] = handler
        return address

    async def publish_replies(self, reply_to: str, replies: Sequence[RunReply]) -> None:
        handler = self._reply_handlers.get(reply_to)
        if handler is not None:
            body = RunReplies(replies=list(replies)).model_dump_json()
            for reply in RunReplies.model_validate_json(body).replies:
                handler(reply)


class _MemorySubscription(Consumer):
    def __init__(self, handlers: list[EventHandler], handler: EventHandler) -> None:
        self._handlers, self._handler = handlers, handler

    async def stop(self, grace: float) -> None:
        with contextlib.suppress(ValueError):
            self._handlers.remove(self._handler)


class _MemoryConsumer(Consumer):
    def __init__(self, bus: MemoryBroker, handler: RunHandler, prefetch: int) -> None:
        self._bus = bus
        self._handler = handler
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._workers = [asyncio.create_task(self._work()) for _ in range(prefetch)]

    async def _work(self) -> None:
        while True:
            body, deliveries = await self._bus._runs.get()
            self._busy += 1
            self._idle.clear()
            try:
                await self._handler(RunBatch.model_validate_json(body))
            except asyncio.CancelledError:
                self._bus._hand_back(body, deliveries)
                raise
            except Exception:
                log.exception("run message failed; handing it back")
                await asyncio.sleep(min(self._bus.retry_backoff * 2 ** (deliveries - 1), 30.0))
                self._bus._hand_back(body, deliveries)
            finally:
                self._busy -= 1
                if not self._busy and self._bus._runs.empty():
                    self._idle.set()

    async def stop(self, grace: float) -> None:
        """Nothing outlives this process on the in-process bus: drain what is queued first."""
        if self._busy or not self._bus._runs.empty():
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
