"""Live capture for the console: while an admin listens to a workflow, the gateway that takes
one of its webhooks keeps a sample of the request (headers without credentials, query, body)
in storage, where the config API reads it.

The config API opens a window in storage and announces it on the events exchange; each
gateway holds the open windows in a dict keyed by workflow id. A webhook of a workflow nobody
listens to costs one dict lookup; a sampled one is written by a background task, so the
answer to the caller neither waits for the write nor changes. A window closes by itself at
its end or after its number of samples (counted by each gateway), or when the admin stops.
"""

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from multidict import CIMultiDictProxy

from hookflow_gateway.triggers import Trigger
from hookflow_shared.ids import new_id
from hookflow_shared.models import CapturedRequest, CaptureEvent, now
from hookflow_shared.storage import CaptureWindow, Storage

log = structlog.get_logger("hookflow.gateway")

SAMPLE_TTL = timedelta(hours=1)
"""How long a sample is kept: long enough to build a workflow from it, not a request log."""
MAX_HEADER_VALUE = 1024
_CREDENTIALS = re.compile(r"auth|cookie|signature|secret|token|password|api[-_]?key", re.I)
"""Header names that may carry a credential: never sampled, whatever the trigger verifies."""


@dataclass(slots=True)
class _Window:
    capture_id: str
    until: datetime
    left: int


class CaptureTap:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._open: dict[str, _Window] = {}
        self._writes: set[asyncio.Task[None]] = set()

    def apply(self, event: CaptureEvent) -> None:
        """A window opened (or restarted) or stopped, as the config API announced it."""
        if event.until is None or event.capture_id is None:
            self._open.pop(event.workflow_id, None)
        else:
            self._open[event.workflow_id] = _Window(event.capture_id, event.until, event.limit)

    async def load(self) -> None:
        """The windows open now: a gateway starting while an admin listens listens too, and
        one whose broker connection dropped (events may have been missed) catches up."""
        windows = await self._storage.open_captures(now())
        self._open = {window.workflow_id: _from_window(window) for window in windows}

    def offer(
        self,
        trigger: Trigger,
        method: str,
        headers: CIMultiDictProxy[str],
        query_string: str,
        query: Any,
        body: Any,
    ) -> None:
        """Sample the request if someone listens to its workflow (one dict lookup if not)."""
        window = self._open.get(trigger.workflow_id)
        if window is None:
            return
        moment = now()
        if moment >= window.until or window.left <= 0:
            del self._open[trigger.workflow_id]
            return
        window.left -= 1
        hidden = set(trigger.verifier.headers) if trigger.verifier else set()
        sample = CapturedRequest(
            id=new_id(),
            workflow_id=trigger.workflow_id,
            capture_id=window.capture_id,
            received_at=moment,
            method=method,
            content_type=headers.get("Content-Type", ""),
            headers={
                name.lower(): value[:MAX_HEADER_VALUE]
                for name, value in headers.items()
                if name.lower() not in hidden and not _CREDENTIALS.search(name)
            },
            query_string=query_string,
            query=query,
            body=body,
        )
        task = asyncio.create_task(self._save(sample))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _save(self, sample: CapturedRequest) -> None:
        try:
            await self._storage.save_captured(sample, sample.received_at + SAMPLE_TTL)
        except Exception as error:
            log.warning("captured request not kept", error=repr(error))

    async def close(self) -> None:
        """Finish the writes under way."""
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)


def _from_window(window: CaptureWindow) -> _Window:
    return _Window(window.capture_id, window.until, window.limit)
