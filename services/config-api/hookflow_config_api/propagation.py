"""A change is live when the config API says so: after storing a change, the config API
announces it and waits until every gateway alive confirms that it serves it (or refuses the
workflow's webhooks with 503 until it can), before answering its caller.

Gateways alive are those heard within three heartbeats; a gateway that stops says so. A
config API that starts asks for a roll call, so it knows the gateways before its first change.
"""

import asyncio
import time
from dataclasses import dataclass, field

import structlog

from hookflow_shared.errors import BrokerUnavailable
from hookflow_shared.ids import new_id
from hookflow_shared.messaging import Broker, Consumer
from hookflow_shared.models import (
    CaptureEvent,
    ConfigApplied,
    ConfigEvent,
    Event,
    GatewayHeartbeat,
    RollCall,
    RunReply,
)

log = structlog.get_logger("hookflow.config_api")

ROLL_CALL_QUIET = 0.1
"""Seconds without a new heartbeat after which the roll call is taken as answered."""
ROLL_CALL_LIMIT = 1.0


@dataclass
class _Change:
    expected: set[str]
    confirmed: set[str] = field(default_factory=set)
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def check(self) -> None:
        if self.expected <= self.confirmed:
            self.done.set()


class Propagation:
    def __init__(self, broker: Broker, *, heartbeat_interval: float, timeout: float) -> None:
        self._broker = broker
        self._horizon = 3 * heartbeat_interval
        self._timeout = timeout
        self._gateways: dict[str, float] = {}
        self._changes: dict[str, _Change] = {}
        self._reply_to: str | None = None
        self._subscription: Consumer | None = None
        self._last_heard = 0.0
        self._roll_call: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._subscription = await self._broker.subscribe_events(self._on_event)
        self._reply_to = await self._broker.open_replies(self._on_reply)
        self._roll_call = asyncio.create_task(self._call_roll())

    async def stop(self) -> None:
        if self._roll_call is not None:
            self._roll_call.cancel()
        if self._subscription is not None:
            await self._subscription.stop(0)

    async def _call_roll(self) -> None:
        started = time.monotonic()
        try:
            await self._broker.publish_event(RollCall())
        except BrokerUnavailable:
            log.warning("roll call not sent; gateways are learnt from their heartbeats")
            return
        while time.monotonic() - started < ROLL_CALL_LIMIT:
            await asyncio.sleep(ROLL_CALL_QUIET)
            if time.monotonic() - max(self._last_heard, started) >= ROLL_CALL_QUIET:
                return

    async def _on_event(self, event: Event) -> None:
        if not isinstance(event, GatewayHeartbeat):
            return
        self._last_heard = time.monotonic()
        if event.stopping:
            self._gateways.pop(event.gateway_id, None)
            for change in self._changes.values():
                change.expected.discard(event.gateway_id)
                change.check()
        else:
            self._gateways[event.gateway_id] = time.monotonic()

    def _on_reply(self, reply: RunReply | ConfigApplied) -> None:
        if isinstance(reply, ConfigApplied) and (change := self._changes.get(reply.change_id)):
            change.confirmed.add(reply.gateway_id)
            change.check()

    def gateways(self) -> set[str]:
        """The gateways alive."""
        horizon = time.monotonic() - self._horizon
        for gateway, seen in list(self._gateways.items()):
            if seen < horizon:
                del self._gateways[gateway]
        return set(self._gateways)

    async def announce(self, event: ConfigEvent | CaptureEvent) -> None:
        """Publish the change (or a console's capture window); returns once every gateway
        alive serves it (or after the timeout, saying which did not confirm)."""
        if self._roll_call is not None and not self._roll_call.done():
            await asyncio.shield(self._roll_call)
        change_id = new_id()
        event = event.model_copy(update={"change_id": change_id, "reply_to": self._reply_to})
        change = self._changes[change_id] = _Change(self.gateways())
        try:
            await self._broker.publish_event(event)
            change.check()
            try:
                await asyncio.wait_for(change.done.wait(), self._timeout)
            except TimeoutError:
                log.warning(
                    "change not confirmed by every gateway in time",
                    workflow_id=event.workflow_id,
                    missing=sorted(change.expected - change.confirmed),
                    timeout=self._timeout,
                )
        except BrokerUnavailable:
            log.warning(
                "change stored but not announced; gateways pick it up at their next reload",
                workflow_id=event.workflow_id,
            )
        finally:
            del self._changes[change_id]
