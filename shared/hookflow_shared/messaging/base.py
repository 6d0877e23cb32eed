"""The messaging interface the services program against."""

import enum
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from hookflow_shared.messaging.topology import MAX_ATTEMPTS
from hookflow_shared.models import (
    ConfigApplied,
    Event,
    RunReply,
    RunRequest,
)


class Outcome(enum.Enum):
    """What becomes of a delivery, decided by its handler; the adapters only carry it out."""

    DONE = "done"
    """Acknowledge: everything in it is recorded."""
    RETRY = "retry"
    """Hand it back after a growing delay; it counts towards the delivery limit."""
    REJECT = "reject"
    """Dead-letter it now: it can never succeed."""
    RELEASE = "release"
    """Hand it back at once, untouched, for another consumer (it is not this one's to take)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One broker message handed to a consumer."""

    body: bytes
    attempt: int = 1
    """1 for the first delivery; MAX_ATTEMPTS is the last before it is dead-lettered."""
    death: str | None = None
    """On the dead-letter queue: why the broker gave up on it (e.g. `delivery_limit`)."""
    first: bool = False
    """Never handed to a consumer before, nor a copy of a message that was (a redelivered sync
    run moved to the durable queue, a redelivered batch split up): none of its runs can have
    been recorded yet, so its consumer need not look. False when the adapter cannot tell."""

    @property
    def redelivered(self) -> bool:
        return self.attempt > 1

    @property
    def last_attempt(self) -> bool:
        return self.attempt >= MAX_ATTEMPTS


def retry_delay(attempt: int, backoff: float) -> float:
    """Seconds to wait before handing back a delivery that failed on its `attempt`th try: a
    failing dependency should not burn through the delivery limit in a few milliseconds."""
    return float(min(backoff * 2 ** (attempt - 1), 30.0))


type DeliveryHandler = Callable[[Delivery], Awaitable[Outcome]]
"""Handles one delivery and says what becomes of it. Raising is taken as Outcome.RETRY."""

type EventHandler = Callable[[Event], Awaitable[None]]
type ConnectionHandler = Callable[[], Awaitable[None]]
type ReplyHandler = Callable[[RunReply | ConfigApplied], None]


class Consumer(ABC):
    @abstractmethod
    async def stop(self, grace: float) -> None:
        """Take no more deliveries; wait up to `grace` seconds for the ones being handled,
        then hand back whatever is still unfinished."""


class Broker(ABC):
    @abstractmethod
    async def connect(self) -> None:
        """Connect and declare the topology. Raises ForeignInstallation when the namespace
        belongs to another installation."""

    @abstractmethod
    async def close(self) -> None: ...

    @property
    @abstractmethod
    def is_connected(self) -> bool: ...

    @abstractmethod
    async def publish_runs(self, runs: Sequence[RunRequest], *, resent: bool = False) -> None:
        """Queue runs durably, in one message. Returns once the broker has confirmed them;
        raises BrokerUnavailable otherwise, and then nothing may be assumed queued. `resent`:
        the runs were delivered before (so their delivery is not `first`)."""

    @abstractmethod
    async def publish_sync_runs(self, runs: Sequence[RunRequest]) -> None:
        """Queue sync runs (their callers wait for the reply), in one message, without
        persisting it nor waiting for a confirm: the answer comes after the run, and a run lost
        with the broker is a 504 its caller retries. Raises BrokerUnavailable when not
        connected. A sync run handed back (its executor died, or asked for another try) goes
        on as a durable run, with its deliveries counted."""

    @abstractmethod
    async def consume_runs(self, handler: DeliveryHandler, *, prefetch: int) -> Consumer:
        """Compete for runs (durable and sync) with every other consumer, holding at most
        `prefetch` of each at once."""

    @abstractmethod
    async def consume_dead_runs(self, handler: DeliveryHandler, *, prefetch: int) -> Consumer:
        """Compete for the run messages the broker dead-lettered."""

    @abstractmethod
    async def set_aside(self, body: bytes, reason: str) -> None:
        """Keep a message no one can read on the unreadable queue, for an operator."""

    @abstractmethod
    async def publish_event(self, event: Event) -> None:
        """Tell every subscriber (gateways, config APIs) about a change or a heartbeat."""

    @abstractmethod
    async def subscribe_events(
        self,
        handler: EventHandler,
        *,
        on_lost: ConnectionHandler | None = None,
        on_resync: ConnectionHandler | None = None,
    ) -> Consumer:
        """Receive every event from now on. `on_lost` runs as soon as the connection drops
        (events may be missed from then on); `on_resync` after it is back, when the caller
        should reload what it caches."""

    @abstractmethod
    async def open_replies(
        self, handler: ReplyHandler, on_lost: Callable[[], None] | None = None
    ) -> str:
        """Start receiving replies (sync runs' answers, gateways' confirmations of a config
        change); returns the address to send them to. `on_lost` runs when replies in flight
        may have been lost (the connection dropped), so pending calls fail instead of hanging."""

    @abstractmethod
    async def publish_replies(
        self, reply_to: str, replies: Sequence[RunReply | ConfigApplied]
    ) -> None:
        """Send replies to one caller, in one message. A caller that is gone is not an error:
        the replies are dropped."""
