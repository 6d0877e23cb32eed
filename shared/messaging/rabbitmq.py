"""The RabbitMQ adapter (aio-pika): quorum queue, publisher confirms, manual acks, dead-letters."""

import asyncio
import contextlib
import os
import secrets
from collections.abc import Callable, Sequence

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from pamqp.commands import Basic
from pydantic import ValidationError

from hookflow.shared.errors import BrokerUnavailable
from hookflow.shared.messaging.base import (
    Broker,
    Consumer,
    EventHandler,
    ReplyHandler,
    ResyncHandler,
    RunHandler,
)
from hookflow.shared.messaging.topology import DELIVERY_LIMIT, Topology
from hookflow.shared.models import (
    EVENT,
    ConfigEvent,
    GatewayHeartbeat,
    RunBatch,
    RunReplies,
    RunReply,
    RunRequest,
)

log = structlog.get_logger("hookflow.broker")


def _retry_delay(message: AbstractIncomingMessage, backoff: float) -> float:
    """Back off before handing a failed message back: a storage outage should not burn
    through the delivery limit in a few milliseconds."""
    count = message.headers.get("x-delivery-count", 0)
    attempt = count if isinstance(count, int) else 0
    return float(min(backoff * 2**attempt, 30.0))


class RabbitBroker(Broker):
    def __init__(
        self,
        url: str,
        topology: Topology,
        *,
        publish_timeout: float = 5.0,
        retry_backoff: float = 0.5,
    ) -> None:
        self._url = url
        self._retry_backoff = retry_backoff
        self._topology = topology
        self._publish_timeout = publish_timeout
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._reply_channel: AbstractChannel | None = None
        self._runs_exchange: AbstractExchange | None = None
        self._events_exchange: AbstractExchange | None = None

    @property
    def is_connected(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def connect(self) -> None:
        self._connection = await aio_pika.connect_robust(
            self._url,
            client_properties={
                "connection_name": f"hookflow {self._topology.namespace} {os.getpid()}"
            },
        )
        self._channel = await self._connection.channel(publisher_confirms=True)
        # Replies need no confirm: nothing durable rides on them (a lost one is a 504).
        self._reply_channel = await self._connection.channel(publisher_confirms=False)
        self._runs_exchange, self._events_exchange = await self._declare(self._channel)

    async def _declare(self, channel: AbstractChannel) -> tuple[AbstractExchange, AbstractExchange]:
        t = self._topology
        runs = await channel.declare_exchange(
            t.runs_exchange, aio_pika.ExchangeType.DIRECT, durable=True
        )
        dead = await channel.declare_exchange(
            t.dead_exchange, aio_pika.ExchangeType.FANOUT, durable=True
        )
        events = await channel.declare_exchange(
            t.events_exchange, aio_pika.ExchangeType.FANOUT, durable=True
        )
        queue = await self._declare_runs_queue(channel)
        await queue.bind(runs, routing_key=t.runs_queue)
        dead_queue = await channel.declare_queue(
            t.dead_queue, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead_queue.bind(dead)
        return runs, events

    async def _declare_runs_queue(self, channel: AbstractChannel) -> AbstractQueue:
        return await channel.declare_queue(
            self._topology.runs_queue,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-dead-letter-exchange": self._topology.dead_exchange,
                "x-delivery-limit": DELIVERY_LIMIT,
            },
        )

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._channel = self._reply_channel = None

    async def publish_runs(self, runs: Sequence[RunRequest]) -> None:
        if self._runs_exchange is None or not self.is_connected:
            raise BrokerUnavailable()
        message = aio_pika.Message(
            RunBatch(runs=list(runs)).model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=runs[0].execution_id,
        )
        try:
            confirmation = await self._runs_exchange.publish(
                message,
                routing_key=self._topology.runs_queue,
                mandatory=True,
                timeout=self._publish_timeout,
            )
        except Exception as error:  # unroutable, nacked, timed out, connection lost
            log.warning("publish not confirmed", reason=repr(error), runs=len(runs))
            raise BrokerUnavailable() from error
        if not isinstance(confirmation, Basic.Ack):
            log.warning("publish not confirmed", reason=type(confirmation).__name__, runs=len(runs))
            raise BrokerUnavailable()

    async def consume_runs(self, handler: RunHandler, *, prefetch: int) -> Consumer:
        assert self._connection is not None, "connect() first"
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        queue = await self._declare_runs_queue(channel)
        consumer = _RunConsumer(channel, queue, handler, self._retry_backoff)
        await consumer.start()
        return consumer

    async def publish_event(self, event: ConfigEvent | GatewayHeartbeat) -> None:
        if self._events_exchange is None or not self.is_connected:
            raise BrokerUnavailable()
        try:
            await self._events_exchange.publish(
                aio_pika.Message(event.model_dump_json().encode(), content_type="application/json"),
                routing_key="",
                timeout=self._publish_timeout,
            )
        except Exception as error:
            raise BrokerUnavailable() from error

    async def subscribe_events(
        self, handler: EventHandler, on_resync: ResyncHandler | None = None
    ) -> Consumer:
        assert self._connection is not None, "connect() first"
        channel = await self._connection.channel()
        exchange = await channel.declare_exchange(
            self._topology.events_exchange, aio_pika.ExchangeType.FANOUT, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange)

        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                event = EVENT.validate_json(message.body)
            except ValidationError:
                log.error("malformed config event dropped", body_bytes=len(message.body))
                return
            try:
                await handler(event)
            except Exception:
                log.exception("event handler failed", event_type=event.type)

        tag = await queue.consume(on_message, no_ack=True)
        if on_resync is not None:
            resync = on_resync

            async def on_reconnect(*_: object) -> None:
                await resync()

            self._connection.reconnect_callbacks.add(on_reconnect)
        return _EventSubscription(channel, queue, tag)

    async def open_replies(
        self, handler: ReplyHandler, on_lost: Callable[[], None] | None = None
    ) -> str:
        assert self._connection is not None, "connect() first"
        channel = await self._connection.channel()
        # A name of our own (not server-named), so a robust reconnection declares it again.
        name = f"{self._topology.namespace}.replies.{secrets.token_hex(8)}"
        queue = await channel.declare_queue(name, exclusive=True, auto_delete=True)

        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                replies = RunReplies.model_validate_json(message.body).replies
            except ValidationError:
                log.error("malformed reply dropped", body_bytes=len(message.body))
                return
            for reply in replies:
                handler(reply)

        await queue.consume(on_message, no_ack=True)
        if on_lost is not None:
            lost = on_lost

            def on_reconnect(*_: object) -> None:
                lost()

            self._connection.reconnect_callbacks.add(on_reconnect)
        return name

    async def publish_replies(self, reply_to: str, replies: Sequence[RunReply]) -> None:
        if self._reply_channel is None or not self.is_connected:
            raise BrokerUnavailable()
        message = aio_pika.Message(
            RunReplies(replies=list(replies)).model_dump_json().encode(),
            content_type="application/json",
            correlation_id=replies[0].execution_id,
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
        )
        try:
            # Not mandatory: when the caller's queue is gone, the broker drops the reply.
            await self._reply_channel.default_exchange.publish(
                message, routing_key=reply_to, mandatory=False, timeout=self._publish_timeout
            )
        except Exception as error:
            raise BrokerUnavailable() from error


class _EventSubscription(Consumer):
    def __init__(self, channel: AbstractChannel, queue: AbstractQueue, tag: str) -> None:
        self._channel, self._queue, self._tag = channel, queue, tag

    async def stop(self, grace: float) -> None:
        with contextlib.suppress(Exception):
            await self._queue.cancel(self._tag)
        with contextlib.suppress(Exception):
            await self._channel.close()


class _RunConsumer(Consumer):
    """Acks a delivery only after its handler returned (so after the records are written);
    a failing handler hands the delivery back; a malformed message is dead-lettered."""

    def __init__(
        self, channel: AbstractChannel, queue: AbstractQueue, handler: RunHandler, backoff: float
    ) -> None:
        self._backoff = backoff
        self._channel = channel
        self._queue = queue
        self._handler = handler
        self._tag: str | None = None
        self._active: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self) -> None:
        self._tag = await self._queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._active.add(task)
        self._idle.clear()
        try:
            await self._process(message)
        finally:
            self._active.discard(task)
            if not self._active:
                self._idle.set()

    async def _process(self, message: AbstractIncomingMessage) -> None:
        try:
            batch = RunBatch.model_validate_json(message.body)
        except ValidationError as error:
            log.error("malformed run message dead-lettered", errors=error.error_count())
            await message.reject(requeue=False)
            return
        try:
            await self._handler(batch)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            raise
        except Exception:
            delay = _retry_delay(message, self._backoff)
            log.exception("run message failed; handing it back", retry_in=delay)
            await asyncio.sleep(delay)
            await message.nack(requeue=True)
            return
        await message.ack()

    async def stop(self, grace: float) -> None:
        if self._tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
            self._tag = None
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            log.warning("shutdown grace over; handing back unfinished runs", held=len(self._active))
            for task in list(self._active):
                task.cancel()
            await asyncio.gather(*self._active, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._channel.close()
