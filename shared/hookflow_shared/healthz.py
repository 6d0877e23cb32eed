"""`GET /healthz`, the same shape on every service: `status` ("ok" or "unavailable"), and one
object per dependency with `ok` and what else says why (200 when the service can do its job,
503 when it cannot)."""

import asyncio
from typing import Any

from aiohttp import web

from hookflow_shared.http import json_response
from hookflow_shared.storage import Storage

PING_TIMEOUT = 2.0
"""Seconds a health check waits for the store: a probe must answer before its own timeout,
even when the store hangs."""


async def storage_state(storage: Storage) -> dict[str, Any]:
    try:
        async with asyncio.timeout(PING_TIMEOUT):
            if await storage.ping():
                return {"ok": True}
    except TimeoutError:
        return {"ok": False, "error": f"no answer to a ping within {PING_TIMEOUT:g} s"}
    return {"ok": False, "error": "does not answer a ping"}


def health_answer(ok: bool, **dependencies: Any) -> web.Response:
    body = {"status": "ok" if ok else "unavailable", **dependencies}
    return json_response(body, status=200 if ok else 503)
