"""What each service's app factory shares: typed app keys, the storage and broker resources
as cleanup contexts, the error-to-HTTP middleware, and serving several apps until a signal."""

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from urllib.parse import urlsplit, urlunsplit

import orjson
import structlog
from aiohttp import web

from hookflow_shared.command import StartupError
from hookflow_shared.errors import ForeignInstallation, HookflowError
from hookflow_shared.messaging import Broker, Topology, open_broker
from hookflow_shared.secrets import SecretBox
from hookflow_shared.settings import CommonSettings
from hookflow_shared.storage import Storage, open_storage

STORAGE = web.AppKey("storage", Storage)
BROKER = web.AppKey("broker", Broker)
INSTALLATION = web.AppKey("installation", str)
"""This installation's id (kept in its storage): stamped on every run, checked by executors."""

log = structlog.get_logger("hookflow")


def json_response(
    body: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The one place where domain errors become HTTP answers."""
    try:
        return await handler(request)
    except HookflowError as error:
        return json_response(error.body(), status=error.status, headers=error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {k: v for k, v in error.headers.items() if k.lower() != "content-type"}
        return json_response({"error": error.reason}, status=error.status, headers=headers)
    except Exception:
        log.exception("unhandled error", path=request.path, method=request.method)
        return json_response({"error": "internal error; see the service's log"}, status=500)


def secret_box(settings: CommonSettings, *, without: str) -> SecretBox | None:
    """The box for signing secrets, from HOOKFLOW_SECRET_KEY; without a key, None and a
    warning saying what cannot be done (`without`)."""
    if settings.secret_key is None:
        log.warning(f"HOOKFLOW_SECRET_KEY is not set: {without}")
        return None
    try:
        return SecretBox(settings.secret_key.get_secret_value())
    except ValueError as error:
        raise StartupError(str(error)) from error


@asynccontextmanager
async def opened_storage(settings: CommonSettings) -> AsyncIterator[Storage]:
    """The configured storage, open (MongoDB with HOOKFLOW_MONGODB_URL, else SQLite)."""
    url = settings.mongodb_url.get_secret_value() if settings.mongodb_url else None
    storage = open_storage(
        url,
        database=settings.mongodb_database,
        data_dir=settings.data_dir,
        timeout=settings.storage_timeout,
    )
    try:
        await storage.open()
    except Exception as error:
        where = _without_password(url) if url else str(settings.data_dir)
        raise StartupError(
            f"cannot open the storage at {where} ({error!r}); check HOOKFLOW_MONGODB_URL "
            "or HOOKFLOW_DATA_DIR"
        ) from error
    try:
        yield storage
    finally:
        await storage.close()


@asynccontextmanager
async def opened_broker(
    settings: CommonSettings, *, installation: str | None = None, embedded: bool = False
) -> AsyncIterator[Broker]:
    """The configured broker, connected: RabbitMQ with HOOKFLOW_BROKER_URL; without it, the
    in-process bus when `embedded` (`hookflow run`), else an error saying what to set.
    `installation` claims the namespace for this installation (ForeignInstallation exits)."""
    url = settings.broker_url.get_secret_value() if settings.broker_url else None
    if url is None and not embedded:
        raise StartupError(
            "HOOKFLOW_BROKER_URL is not set: a service on its own needs RabbitMQ "
            "(amqp://user:password@host:5672/); `hookflow run` works without it."
        )
    broker = open_broker(
        url,
        Topology(settings.namespace),
        installation=installation,
        publish_timeout=settings.publish_timeout,
        retry_backoff=settings.retry_backoff,
    )
    try:
        await broker.connect()
    except ForeignInstallation as error:
        log.critical(
            "refusing to start: another installation owns the namespace", reason=str(error)
        )
        raise StartupError(str(error)) from error
    except Exception as error:
        raise StartupError(
            f"cannot reach RabbitMQ at {_without_password(url or '')} ({error!r}); is it "
            "running, and is HOOKFLOW_BROKER_URL right?"
        ) from error
    try:
        yield broker
    finally:
        await broker.close()


def use_storage(
    app: web.Application, settings: CommonSettings, storage: Storage | None = None
) -> None:
    """Put a Storage on the app: the given one (owned by the caller), or one opened and closed
    with the app."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        if storage is not None:
            app[STORAGE] = storage
            yield
            return
        async with opened_storage(settings) as owned:
            app[STORAGE] = owned
            yield

    app.cleanup_ctx.append(context)


def use_broker(
    app: web.Application, settings: CommonSettings, broker: Broker | None = None
) -> None:
    """Put a Broker on the app: the given one, or a RabbitMQ connection owned by the app."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        installation = app[INSTALLATION] = await app[STORAGE].installation_id()
        if broker is not None:
            app[BROKER] = broker
            yield
            return
        async with opened_broker(settings, installation=installation) as owned:
            app[BROKER] = owned
            yield

    app.cleanup_ctx.append(context)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


DRAIN_SECONDS = 0.5
"""How long a stopping service, no longer accepting connections, goes on reading the requests
already sent on the connections it has, before it closes the idle ones."""


async def serve(
    apps: Sequence[tuple[web.Application, str, int]], *, ready: Callable[[], None] | None = None
) -> None:
    """Serve each (app, host, port) until SIGINT or SIGTERM, then shut them down in reverse."""
    runners: list[web.AppRunner] = []
    sites: list[web.TCPSite] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        for app, host, port in apps:
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            runners.append(runner)
            site = web.TCPSite(runner, host, port, reuse_address=True)
            await site.start()
            sites.append(site)
        if ready is not None:
            ready()
        await stop.wait()
        log.info("stopping")
        # Stop accepting, then let the requests already sent on open connections be read and
        # handled: aiohttp's clean-up closes every connection whose request it has not parsed
        # yet, and a caller who sent its webhook just before the signal deserves an answer.
        for site in sites:
            with suppress(Exception):
                await site.stop()
        await asyncio.sleep(DRAIN_SECONDS)
    finally:
        for runner in reversed(runners):
            with suppress(Exception):
                await runner.cleanup()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
