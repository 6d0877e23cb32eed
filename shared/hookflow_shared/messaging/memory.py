"""The in-process bus: the same contract as RabbitMQ inside one process (`hookflow run`).

Messages cross it as JSON, as they would cross the broker, so nothing is shared by
reference. It keeps nothing across a restart: that is what RabbitMQ is for.
"""

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from hookflow_shared.errors import BrokerUnavailable
from hookflow_shared.messaging.base import (
    Broker,
    ConnectionHandler,
    Consumer,
    Delivery,
    DeliveryHandler,
    EventHandler,
    Outcome,
    ReplyHandler,
    retry_delay,
)
from hookflow_shared.messaging.topology import MAX_ATTEMPTS
from hookflow_shared.models import (
    EVENT,
    ConfigApplied,
    Event,
    Replies,
    RunReply,
    RunRequest,
    run_batch_json,
)

log = structlog.get_logger("hookflow.bus")


@dataclass(slots=True)
class _Message:
    body: bytes
    attempt: int = 1
    death: str | None = None
    sync: bool = False
    """A sync run, as on RabbitMQ's sync queue: handed back, it goes on as a durable run."""
    resent: bool = False
    """Runs delivered before, sent again (see Delivery.first)."""


class _Queue:
    def __init__(self) -> None:
        self.messages: asyncio.Queue[_Message] = asyncio.Queue()


class MemoryBroker(Broker):
    def __init__(self, *, retry_backoff: float = 0.5) -> None:
        self.retry_backoff = retry_backoff
        self._runs = _Queue()
        self._dead = _Queue()
        self.unreadable: list[tuple[bytes, str]] = []
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

    async def publish_runs(self, runs: Sequence[RunRequest], *, resent: bool = False) -> None:
        if not self._connected:
            raise BrokerUnavailable()
        self._runs.messages.put_nowait(_Message(run_batch_json(runs), resent=resent))

    async def publish_sync_runs(self, runs: Sequence[RunRequest]) -> None:
        if not self._connected:
            raise BrokerUnavailable()
        self._runs.messages.put_nowait(_Message(run_batch_json(runs), sync=True))

    async def consume_runs(self, handler: DeliveryHandler, *, prefetch: int) -> Consumer:
        return _MemoryConsumer(self, self._runs, handler, prefetch)

    async def consume_dead_runs(self, handler: DeliveryHandler, *, prefetch: int) -> Consumer:
        return _MemoryConsumer(self, self._dead, handler, prefetch)

    async def set_aside(self, body: bytes, reason: str) -> None:
        self.unreadable.append((body, reason))

    def _hand_back(self, queue: _Queue, message: _Message) -> None:
        if message.sync:  # moved to the durable runs, where its deliveries start counting
            self._runs.messages.put_nowait(_Message(message.body, resent=True))
        elif queue is self._runs and message.attempt >= MAX_ATTEMPTS:
            log.error("run message dead-lettered", deliveries=message.attempt)
            self._dead.messages.put_nowait(_Message(message.body, death="delivery_limit"))
        else:
            message.attempt += 1
            queue.messages.put_nowait(message)

    def _dead_letter(self, message: _Message) -> None:
        self._dead.messages.put_nowait(_Message(message.body, death="rejected"))

    async def publish_event(self, event: Event) -> None:
        if not self._connected:
            raise BrokerUnavailable()
        body = event.model_dump_json()
        for handler in list(self._event_handlers):
            try:
                await handler(EVENT.validate_json(body))
            except Exception:
                log.exception("event handler failed")

    async def subscribe_events(
        self,
        handler: EventHandler,
        *,
        on_lost: ConnectionHandler | None = None,
        on_resync: ConnectionHandler | None = None,
    ) -> Consumer:
        self._event_handlers.append(handler)
        return _MemorySubscription(self._event_handlers, handler)

    async def open_replies(
        self, handler: ReplyHandler, on_lost: Callable[[], None] | None = None
    ) -> str:
        address = f"memory.replies.{len(self._reply_handlers)}"
        self._reply_handlers[address] = handler
        return address

    async def publish_replies(
        self, reply_to: str, replies: Sequence[RunReply | ConfigApplied]
    ) -> None:
        handler = self._reply_handlers.get(reply_to)
        if handler is not None:
            body = Replies(replies=list(replies)).model_dump_json()
            for reply in Replies.model_validate_json(body).replies:
                handler(reply)


class _MemorySubscription(Consumer):
    def __init__(self, handlers: list[EventHandler], handler: EventHandler) -> None:
        self._handlers, self._handler = handlers, handler

    async def stop(self, grace: float) -> None:
        with contextlib.suppress(ValueError):
            self._handlers.remove(self._handler)


class _MemoryConsumer(Consumer):
    def __init__(
        self, bus: MemoryBroker, queue: _Queue, handler: DeliveryHandler, prefetch: int
    ) -> None:
        self._bus = bus
        self._queue = queue
        self._handler = handler
        self._busy = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._workers = [asyncio.create_task(self._work()) for _ in range(prefetch)]

    async def _work(self) -> None:
        while True:
            message = await self._queue.messages.get()
            self._busy += 1
            self._idle.clear()
            try:
                await self._deliver(message)
            finally:
                self._busy -= 1
                if not self._busy and self._queue.messages.empty():
                    self._idle.set()

    async def _deliver(self, message: _Message) -> None:
        delivery = Delivery(
            message.body,
            attempt=message.attempt,
            death=message.death,
            first=message.attempt == 1 and not message.resent and message.death is None,
        )
        try:
            outcome = await self._handler(delivery)
        except asyncio.CancelledError:
            self._bus._hand_back(self._queue, message)
            raise
        except Exception:
            log.exception("run message failed; handing it back")
            outcome = Outcome.RETRY
        match outcome:
            case Outcome.DONE:
                pass
            case Outcome.RETRY:
                await asyncio.sleep(retry_delay(message.attempt, self._bus.retry_backoff))
                self._bus._hand_back(self._queue, message)
            case Outcome.REJECT:
                self._bus._dead_letter(message)
            case Outcome.RELEASE:
                self._bus._hand_back(self._queue, message)

    async def stop(self, grace: float) -> None:
        """Nothing outlives this process on the in-process bus: drain what is queued first."""
        if self._busy or not self._queue.messages.empty():
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
