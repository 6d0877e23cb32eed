"""The resources a service opens: its storage, its broker connection, and the installation's
id; each opened one way, with an error that says what to check when it cannot be."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import structlog
from aiohttp import web

from hookflow_shared.errors import ForeignInstallation, StartupError
from hookflow_shared.messaging import Broker, Topology, open_broker
from hookflow_shared.settings import CommonSettings
from hookflow_shared.storage import Storage, open_storage

STORAGE = web.AppKey("storage", Storage)
BROKER = web.AppKey("broker", Broker)
INSTALLATION = web.AppKey("installation", str)
"""This installation's id (kept in its storage): stamped on every run, checked by executors."""

log = structlog.get_logger("hookflow")


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


def use_resources(
    app: web.Application,
    settings: CommonSettings,
    *,
    storage: Storage | None = None,
    broker: Broker | None = None,
) -> None:
    """Put the storage, the installation's id and the broker on the app, in that order (the
    broker claims its namespace for the installation kept in the storage): the given ones,
    owned by the caller (`hookflow run` shares them), or ones opened and closed with the app."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as owned:
            if storage is None:
                app[STORAGE] = await owned.enter_async_context(opened_storage(settings))
            else:
                app[STORAGE] = storage
            installation = app[INSTALLATION] = await app[STORAGE].installation_id()
            if broker is None:
                app[BROKER] = await owned.enter_async_context(
                    opened_broker(settings, installation=installation)
                )
            else:
                app[BROKER] = broker
            yield

    app.cleanup_ctx.append(context)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
