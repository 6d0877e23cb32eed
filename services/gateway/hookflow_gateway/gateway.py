"""The gateway as one object: its parts, started and stopped in their order.

- the trigger cache (subscribed to changes before it loads, reloaded now and then and after a
  lost connection), and the confirmations the config API waits for;
- the rate limiter and the heartbeats by which the gateways share out rate limits;
- the submitter that queues runs, the sync-mode caller, and the webhook handler using them.
"""

import asyncio

import structlog
from prometheus_client import CollectorRegistry

from hookflow_gateway.metrics import GatewayMetrics
from hookflow_gateway.ratelimit import RateLimiter
from hookflow_gateway.submitter import RunSubmitter
from hookflow_gateway.triggers import TriggerCache
from hookflow_gateway.webhook import WebhookHandler
from hookflow_shared.crypto import secret_box
from hookflow_shared.errors import BrokerUnavailable
from hookflow_shared.ids import new_id
from hookflow_shared.messaging import Broker, Consumer
from hookflow_shared.messaging.rpc import Caller
from hookflow_shared.models import ConfigApplied, ConfigEvent, Event, GatewayHeartbeat, RollCall
from hookflow_shared.settings import GatewaySettings
from hookflow_shared.storage import Storage

log = structlog.get_logger("hookflow.gateway")


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        storage: Storage,
        broker: Broker,
        *,
        installation: str | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self._settings = settings
        metrics = metrics or GatewayMetrics(CollectorRegistry())
        self._broker = broker
        self.id = new_id()
        self.triggers = TriggerCache(
            storage, secret_box(settings, without="triggers with a signature are left out")
        )
        metrics.watch_triggers(lambda: len(self.triggers), lambda: self.triggers.heard_at)
        self.limiter = RateLimiter(self.id, heartbeat_interval=settings.heartbeat_interval)
        self.submitter = RunSubmitter(
            broker,
            max_batch=settings.max_batch,
            max_waiting=settings.max_waiting_publishes,
            stalled_after=settings.publish_stall,
            metrics=metrics,
        )
        self.calls = Caller(broker)
        self.webhooks = WebhookHandler(
            self.triggers,
            self.submitter,
            self.calls,
            self.limiter,
            storage,
            settings,
            installation=installation,
            metrics=metrics,
        )
        self._subscription: Consumer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        # Subscribe first, then load: a change made while the copy loads is not missed.
        self._subscription = await self._broker.subscribe_events(
            self._on_event, on_lost=self._on_lost, on_resync=self.triggers.resync
        )
        await self.triggers.load()
        await self.calls.start()
        self._tasks = [
            asyncio.create_task(self.triggers.refresh_forever(self._settings.refresh_interval)),
            asyncio.create_task(self._heartbeats()),
        ]
        log.info("gateway ready", triggers=len(self.triggers), gateway_id=self.id)

    async def drain(self) -> None:
        """Before the HTTP server waits for its handlers: the sync callers get their answer,
        or a 504 with their execution id, instead of hanging until the socket dies."""
        await self.calls.drain(self._settings.shutdown_grace_sync)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.submitter.close()
        await self.webhooks.close()
        await self._heartbeat(stopping=True)
        if self._subscription is not None:
            await self._subscription.stop(0)

    async def _on_event(self, event: Event) -> None:
        if isinstance(event, GatewayHeartbeat):
            if event.stopping:
                self.limiter.peer_gone(event.gateway_id)
            else:
                self.limiter.peer_alive(event.gateway_id)
        elif isinstance(event, RollCall):
            await self._heartbeat()
        else:
            await self._apply(event)

    async def _on_lost(self) -> None:
        self.triggers.connection_lost()

    async def _apply(self, event: ConfigEvent) -> None:
        """Serve a change, then tell the config API (it answers its caller once every gateway
        alive has)."""
        if event.type == "deleted":
            self.limiter.forget(event.key)
        await self.triggers.apply(event)
        if event.reply_to is not None and event.change_id is not None:
            confirmation = ConfigApplied(change_id=event.change_id, gateway_id=self.id)
            try:
                await self._broker.publish_replies(event.reply_to, [confirmation])
            except BrokerUnavailable:
                log.warning("config change applied but not confirmed", change_id=event.change_id)

    async def _heartbeat(self, *, stopping: bool = False) -> None:
        try:
            await self._broker.publish_event(
                GatewayHeartbeat(gateway_id=self.id, stopping=stopping)
            )
        except BrokerUnavailable:
            log.warning("heartbeat not sent")

    async def _heartbeats(self) -> None:
        """Tell the other gateways (they share out rate limits by it) and the config APIs (they
        wait for the confirmations of the gateways alive) that this one is alive."""
        while True:
            await self._heartbeat()
            await asyncio.sleep(self._settings.heartbeat_interval)
