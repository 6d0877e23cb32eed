"""The executor service: consumes runs and serves /healthz on its own port."""

from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from hookflow.executor.egress import request_session
from hookflow.executor.worker import RunWorker
from hookflow.shared.messaging import Broker, Consumer
from hookflow.shared.service import (
    BROKER,
    STORAGE,
    error_middleware,
    json_response,
    use_broker,
    use_storage,
)
from hookflow.shared.settings import ExecutorSettings
from hookflow.shared.storage import Storage

WORKER = web.AppKey("worker", RunWorker)
CONSUMER = web.AppKey("consumer", Consumer)

log = structlog.get_logger("hookflow.executor")


def create_app(
    settings: ExecutorSettings, *, storage: Storage | None = None, broker: Broker | None = None
) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    use_storage(app, settings, storage)
    use_broker(app, settings, broker)

    async def consume(app: web.Application) -> AsyncIterator[None]:
        http = request_session(settings)  # held to HOOKFLOW_REQUEST_*_NETWORKS
        worker = app[WORKER] = RunWorker(app[STORAGE], broker=app[BROKER], http=http)
        consumer = app[CONSUMER] = await app[BROKER].consume_runs(
            worker.handle, prefetch=settings.prefetch
        )
        log.info("executor consuming", prefetch=settings.prefetch)
        try:
            yield
        finally:
            log.info(
                "executor stopping; finishing the runs it holds", grace=settings.shutdown_grace
            )
            await consumer.stop(settings.shutdown_grace)
            await http.close()

    app.cleanup_ctx.append(consume)
    app.router.add_get("/healthz", healthz)
    return app


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    broker_ok = app[BROKER].is_connected
    storage_ok = await app[STORAGE].ping()
    status = 200 if broker_ok and storage_ok else 503
    return json_response(
        {
            "status": "ok" if status == 200 else "unavailable",
            "broker": broker_ok,
            "storage": storage_ok,
            "executed": app[WORKER].executed,
        },
        status=status,
    )
