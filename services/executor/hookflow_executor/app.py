"""The executor service: consumes runs (and dead-lettered runs) and serves /healthz on its own
port."""

import asyncio
from collections.abc import AsyncIterator

import structlog
from aiohttp import web

from hookflow_executor.egress import request_session
from hookflow_executor.health import Health
from hookflow_executor.recorder import retrying
from hookflow_executor.worker import RunWorker
from hookflow_shared.http import error_middleware, json_response
from hookflow_shared.messaging import Broker, Consumer
from hookflow_shared.models import now
from hookflow_shared.resources import BROKER, INSTALLATION, STORAGE, use_resources
from hookflow_shared.settings import ExecutorSettings
from hookflow_shared.storage import Storage

WORKER = web.AppKey("worker", RunWorker)
CONSUMERS = web.AppKey("consumers", list[Consumer])

HOUSEKEEPING_INTERVAL = 60.0
"""Seconds between purges of expired idempotency claims."""

log = structlog.get_logger("hookflow.executor")


def create_app(
    settings: ExecutorSettings, *, storage: Storage | None = None, broker: Broker | None = None
) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    use_resources(app, settings, storage=storage, broker=broker)

    async def consume(app: web.Application) -> AsyncIterator[None]:
        http = request_session(settings)  # held to HOOKFLOW_REQUEST_*_NETWORKS
        consumers: list[Consumer] = []

        async def stop_consuming(reason: str) -> None:
            # Not awaited here: a consumer's stop waits for the deliveries being handled,
            # this one included.
            for consumer in consumers:
                asyncio.create_task(consumer.stop(5))  # noqa: RUF006 (the app holds them)

        worker = app[WORKER] = RunWorker(
            app[STORAGE],
            broker=app[BROKER],
            http=http,
            installation=app[INSTALLATION],
            on_foreign=stop_consuming,
        )
        consumers += [
            await app[BROKER].consume_runs(worker.handle, prefetch=settings.prefetch),
            await app[BROKER].consume_dead_runs(worker.handle_dead, prefetch=1),
        ]
        app[CONSUMERS] = consumers
        housekeeping = asyncio.create_task(_housekeeping(app[STORAGE], worker.health))
        log.info("executor consuming", prefetch=settings.prefetch)
        try:
            yield
        finally:
            log.info(
                "executor stopping; finishing the runs it holds", grace=settings.shutdown_grace
            )
            housekeeping.cancel()
            await asyncio.gather(
                *(consumer.stop(settings.shutdown_grace) for consumer in consumers),
                return_exceptions=True,
            )
            await http.close()

    app.cleanup_ctx.append(consume)
    app.router.add_get("/healthz", healthz)
    return app


async def _housekeeping(storage: Storage, health: Health) -> None:
    """Drop the idempotency claims whose window has passed (MongoDB's TTL index does it
    there as well; SQLite has only this)."""
    while True:
        await asyncio.sleep(HOUSEKEEPING_INTERVAL)
        try:
            purged = await retrying(
                health, "purge expired claims", lambda: storage.purge_claims(now())
            )
        except Exception:
            log.exception("purging expired idempotency claims failed")
            continue
        if purged:
            log.info("expired idempotency claims purged", count=purged)


async def healthz(request: web.Request) -> web.Response:
    app = request.app
    worker = app[WORKER]
    broker_ok = app[BROKER].is_connected
    storage = worker.health.storage_report()
    if storage["ok"] and not await app[STORAGE].ping():
        storage = {"ok": False, "error": "does not answer a ping"}
    ok = broker_ok and storage["ok"] and worker.health.halted is None
    body: dict[str, object] = {
        "status": "ok" if ok else "unavailable",
        "broker": broker_ok,
        "storage": storage,
        "executed": worker.executed,
    }
    if worker.health.halted is not None:
        body["halted"] = worker.health.halted
    return json_response(body, status=200 if ok else 503)
