"""The load driver: concurrent webhook POSTs at a set concurrency, round robin over one or
several gateway URLs, for a count, a duration, or until stopped, recording every answer.

Each request goes on a connection of its own (no keep-alive), so a connection error tells what
happened to that request alone: `connect` (refused: it never reached a gateway, nothing can
have been accepted), `disconnected` (the gateway took the connection and closed it without an
answer), `reset`, `timeout`, or `other`.
"""

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

EXECUTION_HEADER = "X-Hookflow-Execution-Id"


@dataclass(frozen=True)
class Answer:
    n: int
    """The request's sequence number (also its body's `n` and its X-Request-Id, `load-<n>`)."""
    url: str
    started: float
    """time.monotonic() when the request was sent."""
    ended: float
    status: int | None = None
    retry_after: str | None = None
    execution_id: str | None = None
    error: str | None = None
    """`connect`, `disconnected`, `reset`, `timeout` or `other` when no answer came."""
    detail: str = ""
    text: str = ""
    """The answer's body (its first 500 characters)."""

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _error_kind(error: BaseException) -> str:
    if isinstance(error, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "disconnected"
    if isinstance(error, aiohttp.ClientOSError | ConnectionResetError):
        return "reset"
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout"
    return "other"


def paid_body(n: int) -> dict[str, Any]:
    return {"status": "paid", "n": n, "order": {"id": f"A{n}"}}


class LoadDriver:
    """`await driver.run(count=...)` or `await driver.run(duration=...)`; or `start()` it in
    the background, watch `answers` grow, and `await stop()`. `pace` is each worker's pause
    between requests; after a refusal (a 503, a 429 or a connection error) a worker waits
    `backoff` instead, as a polite caller would (not the full Retry-After: the test wants to
    see the recovery)."""

    def __init__(
        self,
        urls: list[str],
        *,
        concurrency: int = 8,
        pace: float = 0.0,
        backoff: float = 0.05,
        timeout: float = 30.0,
        body: Callable[[int], Any] = paid_body,
    ) -> None:
        assert urls, "no URL to drive"
        self.urls = urls
        self.concurrency = concurrency
        self.pace = pace
        self.backoff = backoff
        self.timeout = timeout
        self.body = body
        self.answers: list[Answer] = []
        self._numbers = itertools.count()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run(self, *, count: int | None = None, duration: float | None = None) -> list[Answer]:
        """Send until `count` requests were sent, `duration` seconds passed, or stop()."""
        deadline = time.monotonic() + duration if duration is not None else None
        connector = aiohttp.TCPConnector(force_close=True, limit=0)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def worker() -> None:
                while not self._stop.is_set():
                    if deadline is not None and time.monotonic() >= deadline:
                        return
                    n = next(self._numbers)
                    if count is not None and n >= count:
                        return
                    answer = await self._post(session, n)
                    self.answers.append(answer)
                    refused = answer.status in (429, 503) or answer.error is not None
                    pause = self.backoff if refused else self.pace
                    if pause:
                        await asyncio.sleep(pause)

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))
        return self.answers

    async def _post(self, session: aiohttp.ClientSession, n: int) -> Answer:
        url = self.urls[n % len(self.urls)]
        started = time.monotonic()
        try:
            async with session.post(
                url, json=self.body(n), headers={"X-Request-Id": f"load-{n}"}
            ) as response:
                text = (await response.read())[:500].decode(errors="replace")
                return Answer(
                    n,
                    url,
                    started,
                    time.monotonic(),
                    status=response.status,
                    retry_after=response.headers.get("Retry-After"),
                    execution_id=response.headers.get(EXECUTION_HEADER),
                    text=text,
                )
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            return Answer(
                n, url, started, time.monotonic(), error=_error_kind(error), detail=repr(error)
            )

    def start(self, **limits: Any) -> None:
        """Run in the background (same limits as run())."""
        self._task = asyncio.create_task(self.run(**limits))

    async def stop(self) -> list[Answer]:
        self._stop.set()
        if self._task is not None:
            await self._task
        return self.answers

    def accepted_since(self, moment: float, url: str | None = None) -> int:
        """2xx answers to requests sent after `moment` (time.monotonic()), to `url` if given."""
        return sum(
            1
            for a in self.answers
            if a.accepted and a.started >= moment and (url is None or a.url == url)
        )

    async def wait_accepting(
        self, since: float, *, per_url: int = 10, timeout: float = 30.0
    ) -> float:
        """Wait until every URL has answered `per_url` 2xx to requests sent after `since`;
        returns the seconds it took."""
        began = time.monotonic()
        while any(self.accepted_since(since, url) < per_url for url in self.urls):
            if self._task is not None and self._task.done():
                raise AssertionError("the load ended before the gateways took webhooks again")
            if time.monotonic() - began > timeout:
                counts = {url: self.accepted_since(since, url) for url in self.urls}
                raise AssertionError(f"gateways not accepting again within {timeout:g} s: {counts}")
            await asyncio.sleep(0.05)
        return time.monotonic() - began
