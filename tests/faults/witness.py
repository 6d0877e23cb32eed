"""The witness: a small HTTP server that a workflow's `request` node calls with
`{{$system.executionId}}`, counting the calls per execution id. A run that was cut off and run
again calls it twice, so a test counts real side effects, not only records."""

import asyncio
import socket
import threading
from collections import Counter
from typing import Any

from aiohttp import web

from tests.faults.loop import LoopThread

HIT_PATH = "/hit/{tag}/{execution_id}"


class Witness:
    """Serves `POST /hit/{tag}/{execution_id}` on 127.0.0.1 from a thread of its own. `delay`
    (seconds, changeable at any time; a call's `?delay=` wins) makes each call slow, so
    executors hold runs for a while."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self._counts: Counter[tuple[str, str]] = Counter()
        self.in_progress = 0
        """Calls being answered now (slow calls: runs an executor is in the middle of)."""
        self._lock = threading.Lock()
        self._thread = LoopThread("witness")
        self._runner: web.AppRunner | None = None
        self.port = self._thread.call(self._start())
        self.url = f"http://127.0.0.1:{self.port}"

    async def _start(self) -> int:
        app = web.Application()
        app.router.add_route("*", HIT_PATH, self._hit)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        site = web.SockSite(self._runner, sock)
        await site.start()
        return int(sock.getsockname()[1])

    async def _hit(self, request: web.Request) -> web.Response:
        key = (request.match_info["tag"], request.match_info["execution_id"])
        with self._lock:
            self._counts[key] += 1
            count = self._counts[key]
        delay = float(request.query.get("delay", self.delay))
        self.in_progress += 1
        try:
            if delay:
                await asyncio.sleep(delay)
        finally:
            self.in_progress -= 1
        return web.json_response({"executionId": key[1], "calls": count})

    def node(
        self,
        tag: str = "run",
        *,
        key: str = "witness",
        delay: float | None = None,
        timeout_ms: int = 20_000,
    ) -> dict[str, Any]:
        """A `request` node that calls this witness with the run's execution id (in the path
        and as an Idempotency-Key header, as the README advises). `tag` keeps the calls of
        one workflow apart from another's (counts(tag)); `delay` makes this workflow's calls
        slow, whatever the witness's own delay."""
        params = [{"name": "delay", "value": str(delay)}] if delay is not None else []
        return {
            "key": key,
            "type": "request",
            "config": {
                "method": "POST",
                "url": f"{self.url}/hit/{tag}/" + "{{$system.executionId}}",
                "headers": [{"name": "Idempotency-Key", "value": "{{$system.executionId}}"}],
                "params": params,
                "data": {"executionId": "{{$system.executionId}}"},
                "timeout": timeout_ms,
            },
        }

    def counts(self, tag: str = "run") -> dict[str, int]:
        """Calls so far of the nodes with this tag, per execution id."""
        with self._lock:
            return {execution: n for (t, execution), n in self._counts.items() if t == tag}

    def close(self) -> None:
        if self._runner is not None:
            self._thread.call(self._runner.cleanup())
            self._runner = None
        self._thread.close()
