"""The gateway's app factory: the webhook route and /healthz over one Gateway."""

from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CollectorRegistry

from hookflow_gateway.gateway import Gateway
from hookflow_gateway.metrics import GatewayMetrics
from hookflow_shared.healthz import health_answer, storage_state
from hookflow_shared.http import error_middleware
from hookflow_shared.messaging import Broker
from hookflow_shared.metrics import use_metrics
from hookflow_shared.resources import BROKER, INSTALLATION, STORAGE, use_resources
from hookflow_shared.settings import GatewaySettings
from hookflow_shared.storage import Storage

GATEWAY = web.AppKey("gateway", Gateway)

WEBHOOK_PATH = "/api/webhook:trigger/{key}"


def create_app(
    settings: GatewaySettings,
    *,
    storage: Storage | None = None,
    broker: Broker | None = None,
    registry: CollectorRegistry | None = None,
) -> web.Application:
    """`registry`: where its metrics go (`hookflow run` shares one); a new one by default."""
    # The body is read by the handler against each trigger's own limit.
    app = web.Application(middlewares=[error_middleware], client_max_size=64 * 1024 * 1024)
    use_resources(app, settings, storage=storage, broker=broker)
    metrics = GatewayMetrics(use_metrics(app, registry))

    async def gateway(app: web.Application) -> AsyncIterator[None]:
        gateway = app[GATEWAY] = Gateway(
            settings, app[STORAGE], app[BROKER], installation=app[INSTALLATION], metrics=metrics
        )
        await gateway.start()
        yield
        await gateway.stop()

    async def drain(app: web.Application) -> None:
        await app[GATEWAY].drain()

    app.cleanup_ctx.append(gateway)
    app.on_shutdown.append(drain)
    app.router.add_route("*", WEBHOOK_PATH, webhook, expect_handler=expect)
    app.router.add_get("/healthz", healthz)
    return app


async def webhook(request: web.Request) -> web.StreamResponse:
    return await request.app[GATEWAY].webhooks(request)


async def expect(request: web.Request) -> web.StreamResponse | None:
    return await request.app[GATEWAY].webhooks.expect(request)


async def healthz(request: web.Request) -> web.Response:
    """Ready when the broker is connected and the trigger copy complete. The store is reported
    but does not decide: webhooks are taken without it (idempotency claims and reloads wait
    for it)."""
    app = request.app
    broker_ok = app[BROKER].is_connected
    triggers = app[GATEWAY].triggers
    return health_answer(
        broker_ok and triggers.ready,
        broker={"ok": broker_ok},
        storage=await storage_state(app[STORAGE]),
        triggers={"ok": triggers.ready, "count": len(triggers)},
    )
