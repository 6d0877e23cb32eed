"""Serving apps until a signal, and stopping without dropping the callers already sent."""

import asyncio
import gc
import signal
import socket
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

YOUNG_COLLECTION_AFTER = 100_000
"""Net new container objects after which the collector looks at the youngest ones (Python's
default: 2,000). The webhooks in flight at 200 connections kept crossing 2,000: a collection
every 30 ms, 4 % of a gateway's CPU. An executor decoding and running a message of tens of runs
makes thousands of objects at once and crossed 10,000 every few messages: 6 % of its CPU in
the collector, walking objects still in use. At 100,000, paired runs of async-50 took 6 %
more webhooks a second (gateway 101 -> 94 µs, executor 77 -> 73 µs a webhook) at the same
peak memory. Reference counting frees everything else at once; garbage in cycles still counts
towards the threshold, so it is still collected."""

BACKLOG = 128
"""Connections the kernel holds for a listening socket until the service takes them (aiohttp's
default)."""


async def serve(
    apps: Sequence[tuple[web.Application, str, int]], *, ready: Callable[[], None] | None = None
) -> None:
    """Serve each (app, host, port) until SIGINT or SIGTERM, then shut them down in reverse."""
    runners: list[web.AppRunner] = []
    sites: list[tuple[web.SockSite, socket.socket, web.AppRunner]] = []
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
            for listener in _listeners(host, port):
                site = web.SockSite(runner, listener)
                sites.append((site, listener, runner))
                await site.start()
        _settle_collector()
        if ready is not None:
            ready()
        await stop.wait()
        log.info("stopping")
        # Take up the callers waiting in the backlog and stop accepting, then let the requests
        # already sent on open connections be read and handled: aiohttp's clean-up closes every
        # connection whose request it has not parsed yet, and a caller who sent its webhook
        # just before the signal deserves an answer.
        for site, listener, runner in sites:
            with suppress(Exception):
                await _take_waiting(listener, runner)
            with suppress(Exception):
                await site.stop()
        await asyncio.sleep(DRAIN_SECONDS)
    finally:
        for runner in reversed(runners):
            with suppress(Exception):
                await runner.cleanup()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _settle_collector() -> None:
    """Once started: what start-up made (modules, apps, settings: some 80,000 objects that live
    as long as the process) is set out of the collector's reach, so a full collection walks only
    what was made since (it paused a gateway 40-60 ms under load, 3-5 ms after); and the
    youngest generation waits for YOUNG_COLLECTION_AFTER new objects."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, *gc.get_threshold()[1:])


def _listeners(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for (host, port), one per address the host names, as the event loop
    would make them (address reuse, IPv6 sockets for IPv6 only); ours, so that a stop can take
    up the connections waiting in their backlog (_take_waiting)."""
    made: list[socket.socket] = []
    seen: set[tuple[object, ...]] = set()
    try:
        for family, kind, proto, _, address in socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        ):
            if address in seen:
                continue
            seen.add(address)
            listener = socket.socket(family, kind, proto)
            made.append(listener)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            listener.bind(address)
            listener.listen(BACKLOG)
            listener.setblocking(False)
    except OSError:
        for listener in made:
            listener.close()
        raise
    return made


async def _take_waiting(listener: socket.socket, runner: web.AppRunner) -> None:
    """Accept the connections waiting in the backlog and hand them to the runner's server, before
    the listening socket closes (which would reset them). Whichever of this and the event loop
    takes a connection first, it is served."""
    loop = asyncio.get_running_loop()
    server = runner.server
    assert server is not None
    while True:
        try:
            connection, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        connection.setblocking(False)
        await loop.connect_accepted_socket(server, connection)


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
