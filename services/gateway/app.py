"""The gateway's app factory."""

import asyncio
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from hookflow.gateway.ratelimit import RateLimiter
from hookflow.gateway.replies import PendingReplies
from hookflow.gateway.submitter import RunSubmitter
from hookflow.gateway.triggers import TriggerCache
from hookflow.gateway.webhook import WebhookHandler
from hookflow.shared.errors import BrokerUnavailable
from hookflow.shared.ids import new_id
from hookflow.shared.messaging import Broker
from hookflow.shared.models import ConfigEvent, GatewayHeartbeat
from hookflow.shared.service import (
    BROKER,
    STORAGE,
    error_middleware,
    json_response,
    secret_box,
    use_broker,
    use_storage,
)
from hookflow.shared.settings import GatewaySettings
from hookflow.shared.storage import Storage

TRIGGERS = web.AppKey("triggers", TriggerCache)
SUBMITTER = web.AppKey("submitter", RunSubmitter)
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
    use_storage(app, settings, storage)
    use_broker(app, settings, broker)

    async def triggers(app: web.Application) -> AsyncIterator[None]:
        box = secret_box(settings, without="triggers with a signature are left out")
        cache = app[TRIGGERS] = TriggerCache(app[STORAGE], box)
        limiter = app[LIMITER] = RateLimiter(
            new_id(), heartbeat_interval=settings.heartbeat_interval
        )
        await cache.load()

        async def on_event(event: ConfigEvent | GatewayHeartbeat) -> None:
            if isinstance(event, GatewayHeartbeat):
                limiter.peer_alive(event.gateway_id)
            else:
                if event.type == "deleted":
                    limiter.forget(event.key)
                await cache.apply(event)

        subscription = await app[BROKER].subscribe_events(on_event, on_resync=cache.load)
        tasks = [
            asyncio.create_task(cache.refresh_forever(settings.refresh_interval)),
            asyncio.create_task(
                _heartbeats(app[BROKER], limiter.gateway_id, settings.heartbeat_interval)
            ),
        ]
        log.info("gateway ready", triggers=len(cache), gateway_id=limiter.gateway_id)
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await subscription.stop(0)

    async def submitter(app: web.Application) -> AsyncIterator[None]:
        submitter = app[SUBMITTER] = RunSubmitter(app[BROKER], max_batch=settings.max_batch)
        replies = app[REPLIES] = PendingReplies()
        reply_to = await app[BROKER].open_replies(
            replies.deliver,
            on_lost=lambda: replies.fail_all("the connection to the broker was lost"),
        )
        app[WEBHOOK] = WebhookHandler(
            app[TRIGGERS], submitter, replies, reply_to, app[LIMITER], settings
        )
        yield
        await submitter.close()

    async def drain_sync_calls(app: web.Application) -> None:
        # on_shutdown runs before aiohttp waits for the handlers: the sync callers get their
        # answer, or a 504 with their execution id, instead of hanging until the socket dies.
        await app[REPLIES].drain(settings.shutdown_grace_sync)

    app.cleanup_ctx.extend([triggers, submitter])
    app.on_shutdown.append(drain_sync_calls)
    app.router.add_route("*", WEBHOOK_PATH, webhook)
    app.router.add_get("/healthz", healthz)
    return app


async def _heartbeats(broker: Broker, gateway_id: str, interval: float) -> None:
    """Tell the other gateways this one is alive (they share out rate limits by it)."""
    while True:
        try:
            await broker.publish_event(GatewayHeartbeat(gateway_id=gateway_id))
        except BrokerUnavailable:
            log.warning("heartbeat not sent")
        await asyncio.sleep(interval)


async def webhook(request: web.Request) -> web.StreamResponse:
    return await request.app[WEBHOOK](request)


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    broker_ok = app[BROKER].is_connected
    cache = app[TRIGGERS]
    ok = broker_ok and cache.loaded
    return json_response(
        {"status": "ok" if ok else "unavailable", "broker": broker_ok, "triggers": len(cache)},
        status=200 if ok else 503,
    )
