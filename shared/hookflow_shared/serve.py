"""Serving apps until a signal, and stopping without dropping the callers already sent."""

import asyncio
import signal
from collections.abc import Callable, Sequence
from contextlib import suppress

import structlog
from aiohttp import web

from hookflow_shared.resources import broker_description, storage_description
from hookflow_shared.settings import CommonSettings

log = structlog.get_logger("hookflow")


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
            # Listed before its set-up: when a resource fails to open, the ones opened before it
            # are closed by the clean-up below, and only the StartupError is left to tell.
            runners.append(runner)
            await runner.setup()
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


def announce(settings: CommonSettings, *services: tuple[str, int]) -> Callable[[], None]:
    """What a service logs once it listens: its port, and the broker and storage it uses
    (without passwords), so that a service pointed at another storage than its peers shows it."""

    def ready() -> None:
        for service, port in services:
            log.info(
                "listening",
                service=service,
                address=f"{settings.bind}:{port}",
                broker=broker_description(settings),
                storage=storage_description(settings),
                namespace=settings.namespace,
            )

    return ready
