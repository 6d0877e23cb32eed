"""The executor service: consumes runs (and dead-lettered runs) and serves /healthz on its own
port."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from hookflow_executor.egress import request_session
from hookflow_executor.health import Health
from hookflow_executor.metrics import ExecutorMetrics
from hookflow_executor.recorder import retrying
from hookflow_executor.worker import RunWorker
from hookflow_shared.healthz import health_answer, storage_state
from hookflow_shared.http import error_middleware
from hookflow_shared.messaging import Broker, Consumer
from hookflow_shared.metrics import use_metrics
from hookflow_shared.models import now
from hookflow_shared.resources import BROKER, INSTALLATION, STORAGE, use_resources
from hookflow_shared.settings import ExecutorSettings
from hookflow_shared.storage import Storage

WORKER = web.AppKey("worker", RunWorker)
CONSUMERS = web.AppKey("consumers", list[Consumer])

CLAIMS_INTERVAL = 60.0
"""Seconds between purges of expired idempotency claims."""
RETENTION_INTERVAL = 300.0
"""Seconds between deletions of the execution records older than the retention."""

log = structlog.get_logger("hookflow.executor")


def create_app(
    settings: ExecutorSettings,
    *,
    storage: Storage | None = None,
    broker: Broker | None = None,
    registry: CollectorRegistry | None = None,
) -> web.Application:
    """`registry`: where its metrics go (`hookflow run` shares one); a new one by default."""
    app = web.Application(middlewares=[error_middleware])
    use_resources(app, settings, storage=storage, broker=broker)
    metrics = ExecutorMetrics(use_metrics(app, registry))

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
            metrics=metrics,
        )
        consumers += [
            await app[BROKER].consume_runs(worker.handle, prefetch=settings.prefetch),
            await app[BROKER].consume_dead_runs(worker.handle_dead, prefetch=1),
        ]
        app[CONSUMERS] = consumers
        store, health = app[STORAGE], worker.health
        retention = settings.execution_retention
        housekeeping = [
            asyncio.create_task(
                _periodically(
                    health,
                    "purge expired claims",
                    lambda: store.purge_claims(now()),
                    CLAIMS_INTERVAL,
                )
            ),
            asyncio.create_task(
                _periodically(
                    health,
                    "delete records past the retention",
                    lambda: store.purge_executions(now() - retention),
                    RETENTION_INTERVAL,
                    at_start=True,
                )
            ),
        ]
        log.info("executor consuming", prefetch=settings.prefetch, retention=str(retention))
        try:
            yield
        finally:
            log.info(
                "executor stopping; finishing the runs it holds", grace=settings.shutdown_grace
            )
            for task in housekeeping:
                task.cancel()
            await asyncio.gather(
                *(consumer.stop(settings.shutdown_grace) for consumer in consumers),
                return_exceptions=True,
            )
            await http.close()

    app.cleanup_ctx.append(consume)
    app.router.add_get("/healthz", healthz)
    return app


async def _periodically(
    health: Health,
    what: str,
    purge: Callable[[], Awaitable[int]],
    interval: float,
    *,
    at_start: bool = False,
) -> None:
    """Housekeeping the store needs: the idempotency claims whose window has passed, and the
    execution records past HOOKFLOW_EXECUTION_RETENTION (MongoDB's TTL indexes do both there as
    well; SQLite has only this)."""
    if not at_start:
        await asyncio.sleep(interval)
    while True:
        try:
            purged = await retrying(health, what, purge)
        except Exception:
            log.exception("housekeeping failed", task=what)
        else:
            if purged:
                log.info("housekeeping done", task=what, count=purged)
        await asyncio.sleep(interval)


async def healthz(request: web.Request) -> web.Response:
    """Ready when the broker is connected, the store answers and it consumes (not halted
    by another installation's runs)."""
    app = request.app
    worker = app[WORKER]
    broker_ok = app[BROKER].is_connected
    storage = worker.health.storage_report()
    if storage["ok"]:
        storage = await storage_state(app[STORAGE])
    halted = worker.health.halted
    extra: dict[str, object] = {"halted": halted} if halted is not None else {}
    return health_answer(
        broker_ok and storage["ok"] and halted is None,
        broker={"ok": broker_ok},
        storage=storage,
        executed=worker.executed,
        **extra,
    )
