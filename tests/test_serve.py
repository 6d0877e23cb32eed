"""Serving an app as every service does (shared.serve), in this process: what a service is like
once it has started. (A stop under load, and the callers waiting in its backlog, are the fault
tests' in tests/faults/test_graceful_stop.py: they need a process of their own to signal.)"""

import asyncio
import gc
import os
import signal

from aiohttp import ClientSession, web

from hookflow_shared.serve import YOUNG_COLLECTION_AFTER, serve
from tests.support import free_port


async def test_a_started_service_answers_with_its_collector_settled() -> None:
    """Once listening, what start-up made is frozen out of the collector's reach and the
    youngest generation waits for YOUNG_COLLECTION_AFTER new objects (the pauses they saved
    are in the README's Performance section)."""
    port = free_port()
    app = web.Application()

    async def hello(_: web.Request) -> web.Response:
        return web.Response(text="hello")

    app.router.add_get("/", hello)
    seen: dict[str, object] = {}

    async def call_then_stop() -> None:
        seen["frozen"] = gc.get_freeze_count()
        seen["young"] = gc.get_threshold()[0]
        async with ClientSession() as http, http.get(f"http://127.0.0.1:{port}/") as response:
            seen["answer"] = response.status, await response.text()
        os.kill(os.getpid(), signal.SIGTERM)  # caught by serve's handler: a clean stop

    threshold = gc.get_threshold()
    tasks: set[asyncio.Task[None]] = set()
    try:
        await serve(
            [(app, "127.0.0.1", port)],
            ready=lambda: tasks.add(asyncio.create_task(call_then_stop())),
        )
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
    assert seen["answer"] == (200, "hello")
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 10_000
    assert seen["young"] == YOUNG_COLLECTION_AFTER
