"""The RabbitMQ adapter (aio-pika): quorum queue, publisher confirms, manual acks, dead-letters.

It carries out what the handlers decide (shared.messaging.base.Outcome); it decides nothing
about runs itself.
"""

import asyncio
import contextlib
import os
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import aio_pika
import aiormq
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from pamqp.commands import Basic
from pamqp.common import FieldTable
from pydantic import TypeAdapter, ValidationError

from hookflow_shared.errors import BrokerUnavailable, ForeignInstallation
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
from hookflow_shared.messaging.topology import ExchangeSpec, QueueSpec, Topology
from hookflow_shared.models import (
    EVENT,
    ConfigApplied,
    Event,
    Replies,
    RunReply,
    RunRequest,
    run_batch_json,
)

log = structlog.get_logger("hookflow.broker")

RESENT_HEADER = "x-hookflow-resent"
"""On a message whose runs were delivered before (see Delivery.first)."""

_OWNER = re.compile(r"but current is '[^']*\.installation\.([^']+)'")

type Mover = Callable[[AbstractIncomingMessage], Awaitable[None]]
"""Takes a delivery elsewhere (a redelivered sync run to the quorum queue); raises
BrokerUnavailable when it could not."""


class RabbitBroker(Broker):
    def __init__(
        self,
        url: str,
        topology: Topology,
        *,
        installation: str | None = None,
        publish_timeout: float = 5.0,
        retry_backoff: float = 0.5,
    ) -> None:
        self._url = url
        self._retry_backoff = retry_backoff
        self._topology = topology
        self._installation = installation
        self._publish_timeout = publish_timeout
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._reply_channel: AbstractChannel | None = None
        self._runs_exchange: AbstractExchange | None = None
        self._events_exchange: AbstractExchange | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._closing = False

    @property
    def is_connected(self) -> bool:
        return (
            self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        )

    async def connect(self) -> None:
        self._closing = False
        self._connection = await aio_pika.connect_robust(
            self._url,
            client_properties={
                "connection_name": f"hookflow {self._topology.namespace} {os.getpid()}"
            },
        )
        try:
            await self._claim_namespace()
            self._channel = await self._connection.channel(publisher_confirms=True)
            # Replies and sync runs need no confirm: nothing durable rides on them (a lost one
            # is a 504, which its caller retries).
            self._reply_channel = await self._connection.channel(publisher_confirms=False)
            exchanges = await self._declare(self._channel)
        except BaseException:
            await self._connection.close()
            raise
        self._runs_exchange = exchanges[self._topology.runs_exchange]
        self._events_exchange = exchanges[self._topology.events_exchange]

    async def _claim_namespace(self) -> None:
        """Declare the installation marker: the first installation on a namespace owns it."""
        if self._installation is None:
            return
        assert self._connection is not None
        channel = await self._connection.channel()
        marker = self._topology.installation_marker(self._installation)
        try:
            await _declare_exchange(channel, marker)
        except aiormq.exceptions.ChannelPreconditionFailed as error:
            found = _OWNER.search(str(error))
            owner = f"installation {found.group(1)}" if found else "an unknown installation"
            raise ForeignInstallation(self._topology.namespace, owner, self._installation) from None
        with contextlib.suppress(Exception):
            await channel.close()

    async def _declare(self, channel: AbstractChannel) -> dict[str, AbstractExchange]:
        exchanges = {
            spec.name: await _declare_exchange(channel, spec) for spec in self._topology.exchanges()
        }
        for spec in self._topology.queues():
            queue = await _declare_queue(channel, spec)
            if spec.bind_to is not None:
                await queue.bind(exchanges[spec.bind_to], routing_key=spec.name)
        return exchanges

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closing = True
        if self._connection is not None:
            await self._connection.close()
        self._connection = self._channel = self._reply_channel = None
        for task in self._tasks:
            task.cancel()

    async def publish_runs(self, runs: Sequence[RunRequest], *, resent: bool = False) -> None:
        if self._runs_exchange is None or not self.is_connected:
            raise BrokerUnavailable()
        properties = _properties(runs[0].execution_id, persistent=True, resent=resent)
        await self._confirmed(
            self._runs_exchange.name,
            run_batch_json(runs),
            properties,
            self._topology.runs_queue,
            len(runs),
        )

    async def publish_sync_runs(self, runs: Sequence[RunRequest]) -> None:
        if self._reply_channel is None or not self.is_connected:
            raise BrokerUnavailable()
        properties = _properties(runs[0].execution_id, persistent=False)
        try:
            await _publish(
                self._reply_channel,
                run_batch_json(runs),
                properties,
                routing_key=self._topology.sync_runs_queue,
                within=self._publish_timeout,
            )
        except Exception as error:
            log.warning("sync runs not published", reason=repr(error), runs=len(runs))
            raise BrokerUnavailable() from error

    async def _move_to_runs_queue(self, message: AbstractIncomingMessage) -> None:
        """A sync run delivered again goes on as a durable run: onto the quorum queue (its
        deliveries counted there, dead-lettered past the limit), confirmed before the sync
        queue's copy is acknowledged."""
        if self._runs_exchange is None or not self.is_connected:
            raise BrokerUnavailable()
        properties = _properties(message.message_id, persistent=True, resent=True)
        await self._confirmed(
            self._runs_exchange.name, message.body, properties, self._topology.runs_queue, 0
        )

    async def _confirmed(
        self,
        exchange: str,
        body: bytes,
        properties: Basic.Properties,
        routing_key: str,
        count: int,
    ) -> None:
        """Publish on the confirming channel and wait for the broker's confirm (`count`: the
        runs it carries, for the log)."""
        if self._channel is None:
            raise BrokerUnavailable()
        try:
            confirmation = await _publish(
                self._channel,
                body,
                properties,
                exchange=exchange,
                routing_key=routing_key,
                mandatory=True,
                within=self._publish_timeout,
                confirmed=True,
            )
        except aiormq.exceptions.DeliveryError as error:  # nacked: not taken
            log.warning("publish refused", reason=repr(error), runs=count)
            raise BrokerUnavailable() from error
        except Exception as error:  # timed out, connection lost: the broker may have it
            log.warning("publish not confirmed", reason=repr(error), runs=count)
            raise BrokerUnavailable(
                "the message broker did not confirm in time", maybe_queued=True
            ) from error
        if not isinstance(confirmation, Basic.Ack):  # returned unroutable, or nacked
            log.warning("publish refused", reason=type(confirmation).__name__, runs=count)
            raise BrokerUnavailable()

    async def set_aside(self, body: bytes, reason: str) -> None:
        if self._channel is None or not self.is_connected:
            raise BrokerUnavailable()
        properties = Basic.Properties(
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers={"x-hookflow-reason": reason[:500]},
        )
        await self._confirmed("", body, properties, self._topology.unreadable_queue, 0)

    async def consume_runs(self, handler: DeliveryHandler, *, prefetch: int) -> Consumer:
        return await self._consume(
            {
                self._topology.runs_queue: None,
                self._topology.sync_runs_queue: self._move_to_runs_queue,
            },
            handler,
            prefetch,
        )

    async def consume_dead_runs(self, handler: DeliveryHandler, *, prefetch: int) -> Consumer:
        return await self._consume({self._topology.dead_queue: None}, handler, prefetch)

    async def _consume(
        self, queues: dict[str, Mover | None], handler: DeliveryHandler, prefetch: int
    ) -> Consumer:
        """One channel for the queues; the prefetch holds for each queue's consumer."""
        assert self._connection is not None, "connect() first"
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=prefetch)
        consumer = _RunConsumer(channel, handler, self._retry_backoff)
        for name, move_redelivered in queues.items():
            queue = await _declare_queue(channel, self._topology.queue(name))
            await consumer.start(queue, move_redelivered)
        return consumer

    async def publish_event(self, event: Event) -> None:
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
        self,
        handler: EventHandler,
        *,
        on_lost: ConnectionHandler | None = None,
        on_resync: ConnectionHandler | None = None,
    ) -> Consumer:
        connection = self._connection
        assert connection is not None, "connect() first"
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            self._topology.events_exchange, aio_pika.ExchangeType.FANOUT, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange)

        async def on_message(message: AbstractIncomingMessage) -> None:
            try:
                event = EVENT.validate_json(message.body)
            except ValidationError:
                log.error("malformed event dropped", body_bytes=len(message.body))
                return
            try:
                await handler(event)
            except Exception:
                log.exception("event handler failed", event_type=event.type)

        tag = await queue.consume(on_message, no_ack=True)
        # aio-pika waits for its callbacks before it goes on reconnecting: run ours apart.
        if on_lost is not None:
            lost = on_lost

            def on_close(*_: object) -> None:
                if not self._closing:  # our own close() loses nothing
                    self._spawn(lost())

            connection.close_callbacks.add(on_close)
        if on_resync is not None:
            resync = on_resync
            connection.reconnect_callbacks.add(lambda *_: self._spawn(resync()))
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
                replies = Replies.model_validate_json(message.body).replies
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

    async def publish_replies(
        self, reply_to: str, replies: Sequence[RunReply | ConfigApplied]
    ) -> None:
        if self._reply_channel is None or not self.is_connected:
            raise BrokerUnavailable()
        try:
            # Not mandatory: when the caller's queue is gone, the broker drops the reply.
            await _publish(
                self._reply_channel,
                _REPLIES.dump_json(Replies(replies=list(replies)), exclude_none=True),
                _properties(None, persistent=False),
                routing_key=reply_to,
                within=self._publish_timeout,
            )
        except Exception as error:
            raise BrokerUnavailable() from error


def _properties(
    message_id: str | None, *, persistent: bool, resent: bool = False
) -> Basic.Properties:
    """A JSON message's properties, new for each publish (aiormq writes a message id into
    them when there is none)."""
    mode = aio_pika.DeliveryMode.PERSISTENT if persistent else aio_pika.DeliveryMode.NOT_PERSISTENT
    return Basic.Properties(
        content_type="application/json",
        delivery_mode=mode,
        message_id=message_id,
        headers={RESENT_HEADER: True} if resent else None,
    )


_REPLIES = TypeAdapter(Replies)


async def _publish(
    channel: AbstractChannel,
    body: bytes,
    properties: Basic.Properties,
    *,
    routing_key: str,
    exchange: str = "",
    mandatory: bool = False,
    within: float,
    confirmed: bool = False,
) -> object:
    """One publish straight on aio-pika's underlying aiormq channel: the hot paths skip
    aio-pika's Message and Exchange wrappers. Unconfirmed publishes do not wait for the socket
    write either (nothing would be learnt from it: only a confirm says the broker has it)."""
    if channel.is_closed:
        raise aiormq.exceptions.ChannelInvalidStateError(f"{channel!r} closed")
    underlay = await channel.get_underlay_channel()
    assert isinstance(underlay, aiormq.Channel)  # `wait` is the concrete channel's
    return await underlay.basic_publish(
        body,
        exchange=exchange,
        routing_key=routing_key,
        properties=properties,
        mandatory=mandatory,
        timeout=within,
        wait=confirmed,
    )


async def _declare_exchange(channel: AbstractChannel, spec: ExchangeSpec) -> AbstractExchange:
    arguments: FieldTable = dict(spec.arguments)
    return await channel.declare_exchange(
        spec.name, aio_pika.ExchangeType(spec.type), durable=True, arguments=arguments
    )


async def _declare_queue(channel: AbstractChannel, spec: QueueSpec) -> AbstractQueue:
    arguments: FieldTable = dict(spec.arguments)
    return await channel.declare_queue(spec.name, durable=True, arguments=arguments)


class _EventSubscription(Consumer):
    def __init__(self, channel: AbstractChannel, queue: AbstractQueue, tag: str) -> None:
        self._channel, self._queue, self._tag = channel, queue, tag

    async def stop(self, grace: float) -> None:
        if self._channel.is_closed:
            return  # nothing to cancel: a closed channel's consumers are gone with it
        # Bounded: on a connection lost meanwhile, these would wait for a reconnection.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._queue.cancel(self._tag), 2)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._channel.close(), 2)


def _delivery(message: AbstractIncomingMessage) -> Delivery:
    count = message.headers.get("x-delivery-count", 0)
    death = message.headers.get("x-first-death-reason")
    attempt = (count if isinstance(count, int) else 0) + 1
    return Delivery(
        message.body,
        attempt=attempt,
        death=death if isinstance(death, str) else None,
        first=attempt == 1
        and not message.redelivered
        and death is None
        and RESENT_HEADER not in message.headers,
    )


class _RunConsumer(Consumer):
    """Carries out each delivery's Outcome: ack, hand back after a delay, dead-letter, or hand
    back at once.

    Each delivery is handled in a task of its own, apart from the broker client's callback:
    when the connection drops, aiormq cancels the callbacks in flight, but a run half done is
    finished and recorded all the same (its redelivery then finds it recorded and does not run
    it again). Only a stop past its grace cuts a delivery short, and hands it back.

    A queue consumed with a mover (the sync runs queue: no delivery count there) has its
    redelivered messages moved instead of handled: a sync run that killed its executor is then
    counted and, in the end, dead-lettered like any run, never run silently again and again."""

    def __init__(self, channel: AbstractChannel, handler: DeliveryHandler, backoff: float) -> None:
        self._backoff = backoff
        self._channel = channel
        self._handler = handler
        self._tags: list[tuple[AbstractQueue, str]] = []
        self._active: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    async def start(self, queue: AbstractQueue, move_redelivered: Mover | None = None) -> None:
        tag = await queue.consume(partial(self._on_message, move_redelivered=move_redelivered))
        self._tags.append((queue, tag))

    async def _on_message(
        self, message: AbstractIncomingMessage, *, move_redelivered: Mover | None
    ) -> None:
        if move_redelivered is not None and message.redelivered:
            work = asyncio.create_task(self._move(message, move_redelivered))
        else:
            work = asyncio.create_task(self._process(message))
        self._active.add(work)
        self._idle.clear()
        work.add_done_callback(self._finished)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(work)

    def _finished(self, work: asyncio.Task[None]) -> None:
        self._active.discard(work)
        if not self._active:
            self._idle.set()

    async def _move(self, message: AbstractIncomingMessage, move: Mover) -> None:
        try:
            await move(message)
        except BrokerUnavailable:
            log.warning("redelivered sync run not moved; handing it back")
            await asyncio.sleep(retry_delay(1, self._backoff))
            await _settle(message.nack(requeue=True))
            return
        log.info("redelivered sync run moved to the durable runs queue")
        await _settle(message.ack())

    async def _process(self, message: AbstractIncomingMessage) -> None:
        delivery = _delivery(message)
        try:
            outcome = await self._handler(delivery)
        except asyncio.CancelledError:
            await _settle(message.nack(requeue=True))
            raise
        except Exception:
            log.exception("run message failed; handing it back")
            outcome = Outcome.RETRY
        match outcome:
            case Outcome.DONE:
                await _settle(message.ack())
            case Outcome.RETRY:
                await asyncio.sleep(retry_delay(delivery.attempt, self._backoff))
                await _settle(message.nack(requeue=True))
            case Outcome.REJECT:
                await _settle(message.reject(requeue=False))
            case Outcome.RELEASE:
                await _settle(message.nack(requeue=True))

    async def stop(self, grace: float) -> None:
        for queue, tag in self._tags:
            if not self._channel.is_closed:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(queue.cancel(tag), 2)
        self._tags = []
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            log.warning("shutdown grace over; handing back unfinished runs", held=len(self._active))
            for task in list(self._active):
                task.cancel()
            await asyncio.gather(*self._active, return_exceptions=True)
        if not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._channel.close(), 2)


async def _settle(outcome: Awaitable[object]) -> None:
    """Send a delivery's outcome; on a connection lost meanwhile there is nothing to send: the
    broker hands the delivery back by itself (and a recorded run is not run again)."""
    try:
        await outcome
    except Exception as error:
        log.info("delivery outcome not sent: the channel is gone", reason=repr(error))
