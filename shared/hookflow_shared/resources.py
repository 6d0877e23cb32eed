"""The resources a service opens: its storage, its broker connection, and the installation's
id; each opened one way, with an error that says what to check when it cannot be."""

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from urllib.parse import urlsplit, urlunsplit

import aiormq.exceptions
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
        retention=settings.execution_retention,
    )
    try:
        await storage.open()
    except Exception as error:
        raise StartupError(
            f"cannot open the storage, {storage_description(settings)} ({_brief(error)}); "
            "check HOOKFLOW_MONGODB_URL or HOOKFLOW_DATA_DIR"
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
        with _quiet("aiormq", "aio_pika"):
            await broker.connect()
    except ForeignInstallation as error:
        raise StartupError(
            f"refusing to start: {error} This service stores in {storage_description(settings)}; "
            "every service of one installation must use the same storage (the same "
            "HOOKFLOW_MONGODB_URL, or on one machine the same HOOKFLOW_DATA_DIR)."
        ) from error
    except aiormq.exceptions.ProbableAuthenticationError as error:
        raise StartupError(
            f"RabbitMQ at {broker_description(settings)} refused the user name or password; "
            "check the credentials in HOOKFLOW_BROKER_URL"
        ) from error
    except Exception as error:
        raise StartupError(
            f"cannot reach RabbitMQ at {broker_description(settings)} ({_brief(error)}); is it "
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


def storage_description(settings: CommonSettings) -> str:
    """Which storage the settings name, without a password: for logs and errors."""
    if settings.mongodb_url is not None:
        url = _without_password(settings.mongodb_url.get_secret_value())
        return f"MongoDB at {url} (database {settings.mongodb_database})"
    return f"SQLite in {settings.data_dir / 'hookflow.sqlite3'}"


def broker_description(settings: CommonSettings) -> str:
    """Which broker the settings name, without a password."""
    if settings.broker_url is None:
        return "the in-process bus"
    return _without_password(settings.broker_url.get_secret_value())


def _brief(error: BaseException, limit: int = 240) -> str:
    """An error in a few words: a driver's message may run to a whole topology description."""
    text = f"{type(error).__name__}: {error}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Silence libraries' own logging while connecting at start: their complaint about a
    broker that does not answer would come before (and say less than) the StartupError."""
    saved = [(logging.getLogger(name), logging.getLogger(name).level) for name in loggers]
    for logger, _ in saved:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.setLevel(level)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
