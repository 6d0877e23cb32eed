"""The messaging interface the services program against."""

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence

from hookflow.shared.models import (
    ConfigEvent,
    GatewayHeartbeat,
    RunBatch,
    RunReply,
    RunRequest,
)

type RunHandler = Callable[[RunBatch], Awaitable[None]]
"""Handles one delivery. Returning acknowledges it; raising hands it back to be tried again
(after DELIVERY_LIMIT deliveries it is dead-lettered)."""

type EventHandler = Callable[[ConfigEvent | GatewayHeartbeat], Awaitable[None]]
type ResyncHandler = Callable[[], Awaitable[None]]
type ReplyHandler = Callable[[RunReply], None]


class Consumer(ABC):
    @abstractmethod
    async def stop(self, grace: float) -> None:
        """Take no more deliveries; wait up to `grace` seconds for the ones being handled,
        then hand back whatever is still unfinished."""


class Broker(ABC):
    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @property
    @abstractmethod
    def is_connected(self) -> bool: ...

    @abstractmethod
    async def publish_runs(self, runs: Sequence[RunRequest]) -> None:
        """Queue runs durably, in one message. Returns once the broker has confirmed them;
        raises BrokerUnavailable otherwise, and then nothing may be assumed queued."""

    @abstractmethod
    async def consume_runs(self, handler: RunHandler, *, prefetch: int) -> Consumer:
        """Compete for runs with every other consumer, holding at most `prefetch` at once."""

    @abstractmethod
    async def publish_event(self, event: ConfigEvent | GatewayHeartbeat) -> None:
        """Tell every subscribed gateway that a workflow changed."""

    @abstractmethod
    async def subscribe_events(
        self, handler: EventHandler, on_resync: ResyncHandler | None = None
    ) -> Consumer:
        """Receive every change event from now on. `on_resync` runs after a reconnection,
        when events may have been missed and the caller should reload what it caches."""

    @abstractmethod
    async def open_replies(
        self, handler: ReplyHandler, on_lost: Callable[[], None] | None = None
    ) -> str:
        """Sync mode, caller side: start receiving replies; returns the address to put in
        RunRequest.reply_to. `on_lost` runs when replies in flight may have been lost (the
        connection dropped), so the caller can fail its pending calls instead of hanging."""

    @abstractmethod
    async def publish_replies(self, reply_to: str, replies: Sequence[RunReply]) -> None:
        """Sync mode, executor side: send replies to one caller, in one message. A caller that
        is gone is not an error: the replies are dropped."""
