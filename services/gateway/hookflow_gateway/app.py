"""The gateway's app factory."""

import asyncio
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from hookflow_gateway.ratelimit import RateLimiter
from hookflow_gateway.replies import PendingReplies
from hookflow_gateway.submitter import RunSubmitter
from hookflow_gateway.triggers import TriggerCache
from hookflow_gateway.webhook import WebhookHandler
from hookflow_shared.crypto import secret_box
from hookflow_shared.errors import BrokerUnavailable
from hookflow_shared.http import error_middleware, json_response
from hookflow_shared.ids import new_id
from hookflow_shared.messaging import Broker
from hookflow_shared.models import ConfigApplied, ConfigEvent, Event, GatewayHeartbeat, RollCall
from hookflow_shared.resources import BROKER, INSTALLATION, STORAGE, use_resources
from hookflow_shared.settings import GatewaySettings
from hookflow_shared.storage import Storage

TRIGGERS = web.AppKey("triggers", TriggerCache)
WEBHOOK = web.AppKey("webhook", WebhookHandler)
REPLIES = web.AppKey("replies", PendingReplies)
LIMITER = web.AppKey("limiter", RateLimiter)

WEBHOOK_PATH = "/api/webhook:trigger/{key}"

log = structlog.get_logger("hookflow.gateway")


def create_app(
    settings: GatewaySettings, *, storage: Storage | None = None, broker: Broker | None = None
) -> web.Application:
    # The body is read by the handler against each trigger's own limit.
    app = web.Application(middlewares=[error_middleware], client_max_size=64 * 1024 * 1024)
    use_resources(app, settings, storage=storage, broker=broker)

    async def triggers(app: web.Application) -> AsyncIterator[None]:
        box = secret_box(settings, without="triggers with a signature are left out")
        bus = app[BROKER]
        cache = app[TRIGGERS] = TriggerCache(app[STORAGE], box)
        limiter = app[LIMITER] = RateLimiter(
            new_id(), heartbeat_interval=settings.heartbeat_interval
        )
        gateway_id = limiter.gateway_id

        async def on_event(event: Event) -> None:
            if isinstance(event, GatewayHeartbeat):
                if event.stopping:
                    limiter.peer_gone(event.gateway_id)
                else:
                    limiter.peer_alive(event.gateway_id)
            elif isinstance(event, RollCall):
                await _heartbeat(bus, gateway_id)
            else:
                await _apply(bus, cache, limiter, gateway_id, event)

        async def on_lost() -> None:
            cache.connection_lost()

        # Subscribe first, then load: a change made while the copy loads is not missed.
        subscription = await bus.subscribe_events(on_event, on_lost=on_lost, on_resync=cache.resync)
        await cache.load()
        tasks = [
            asyncio.create_task(cache.refresh_forever(settings.refresh_interval)),
            asyncio.create_task(_heartbeats(bus, gateway_id, settings.heartbeat_interval)),
        ]
        log.info("gateway ready", triggers=len(cache), gateway_id=gateway_id)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await _heartbeat(bus, gateway_id, stopping=True)
            await subscription.stop(0)

    async def webhooks(app: web.Application) -> AsyncIterator[None]:
        submitter = RunSubmitter(
            app[BROKER],
            max_batch=settings.max_batch,
            max_waiting=settings.max_waiting_publishes,
            stalled_after=settings.publish_stall,
        )
        replies = app[REPLIES] = PendingReplies()
        reply_to = await app[BROKER].open_replies(
            replies.deliver,
            on_lost=lambda: replies.fail_all("the connection to the broker was lost"),
        )
        handler = app[WEBHOOK] = WebhookHandler(
            app[TRIGGERS],
            submitter,
            replies,
            reply_to,
            app[LIMITER],
            app[STORAGE],
            settings,
            installation=app[INSTALLATION],
        )
        yield
        await submitter.close()
        await handler.close()

    async def drain_sync_calls(app: web.Application) -> None:
        # on_shutdown runs before aiohttp waits for the handlers: the sync callers get their
        # answer, or a 504 with their execution id, instead of hanging until the socket dies.
        await app[REPLIES].drain(settings.shutdown_grace_sync)

    app.cleanup_ctx.extend([triggers, webhooks])
    app.on_shutdown.append(drain_sync_calls)
    app.router.add_route("*", WEBHOOK_PATH, webhook, expect_handler=expect)
    app.router.add_get("/healthz", healthz)
    return app


async def _apply(
    bus: Broker,
    cache: TriggerCache,
    limiter: RateLimiter,
    gateway_id: str,
    event: ConfigEvent,
) -> None:
    """Serve a change, then tell the config API (it answers its caller once every gateway
    alive has)."""
    if event.type == "deleted":
        limiter.forget(event.key)
    await cache.apply(event)
    if event.reply_to is not None and event.change_id is not None:
        confirmation = ConfigApplied(change_id=event.change_id, gateway_id=gateway_id)
        try:
            await bus.publish_replies(event.reply_to, [confirmation])
        except BrokerUnavailable:
            log.warning("config change applied but not confirmed", change_id=event.change_id)


async def _heartbeat(bus: Broker, gateway_id: str, *, stopping: bool = False) -> None:
    try:
        await bus.publish_event(GatewayHeartbeat(gateway_id=gateway_id, stopping=stopping))
    except BrokerUnavailable:
        log.warning("heartbeat not sent")


async def _heartbeats(bus: Broker, gateway_id: str, interval: float) -> None:
    """Tell the other gateways (they share out rate limits by it) and the config APIs (they
    wait for the confirmations of the gateways alive) that this one is alive."""
    while True:
        await _heartbeat(bus, gateway_id)
        await asyncio.sleep(interval)


async def webhook(request: web.Request) -> web.StreamResponse:
    return await request.app[WEBHOOK](request)


async def expect(request: web.Request) -> web.StreamResponse | None:
    return await request.app[WEBHOOK].expect(request)


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    broker_ok = app[BROKER].is_connected
    cache = app[TRIGGERS]
    ok = broker_ok and cache.ready
    return json_response(
        {
            "status": "ok" if ok else "unavailable",
            "broker": broker_ok,
            "triggers": len(cache),
            "triggersReady": cache.ready,
        },
        status=200 if ok else 503,
    )
