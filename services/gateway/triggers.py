"""The gateway's in-memory copy of every enabled trigger, kept fresh by change events.

A flood of requests, unknown keys included, never becomes a flood of database reads: the
copy holds every enabled trigger, so a key that is not in it does not exist.
"""

import asyncio
import base64
import binascii
import hmac
from dataclasses import dataclass

import orjson
import structlog

from hookflow.shared.models import ConfigEvent, StoredWorkflow
from hookflow.shared.storage import Storage

log = structlog.get_logger("hookflow.gateway")

_NEVER_IN_CONTEXT = frozenset({"authorization", "proxy-authorization", "cookie"})


@dataclass(frozen=True, slots=True)
class Trigger:
    """What the gateway needs of one workflow to take its webhooks, precomputed."""

    key: str
    workflow_id: str
    version: int
    sync: bool
    sync_timeout: float
    username: bytes | None
    password: bytes | None
    headers: tuple[str, ...]
    """Lower-cased names of the request headers that enter the context."""
    max_body_bytes: int | None
    status: int
    response_headers: tuple[tuple[str, str], ...]
    response_body: bytes
    response_content_type: str

    @classmethod
    def from_workflow(cls, workflow: StoredWorkflow) -> "Trigger":
        doc = workflow.document
        trigger = doc.trigger
        auth = trigger.basicAuth
        body = trigger.response.body
        if isinstance(body, str):
            response_body, content_type = body.encode(), "text/plain"
        else:
            response_body, content_type = orjson.dumps(body), "application/json"
        headers = tuple(
            dict.fromkeys(
                h.key.lower()
                for h in trigger.request.headers
                if h.key.lower() not in _NEVER_IN_CONTEXT
            )
        )
        return cls(
            key=workflow.key,
            workflow_id=workflow.id,
            version=workflow.version,
            sync=doc.sync,
            sync_timeout=doc.syncTimeout,
            username=auth.username.encode() if auth else None,
            password=(auth.password or "").encode() if auth else None,
            headers=headers,
            max_body_bytes=trigger.maxBodyBytes,
            status=trigger.response.statusCode,
            response_headers=tuple((h.name, h.value) for h in trigger.response.headers),
            response_body=response_body,
            response_content_type=content_type,
        )

    def authorized(self, header: str | None) -> bool:
        """Checks an Authorization header against the trigger's Basic credentials, comparing
        in constant time. True when the trigger has no credentials."""
        if self.username is None or self.password is None:
            return True
        if header is None:
            return False
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        username, colon, password = decoded.partition(b":")
        user_ok = hmac.compare_digest(username, self.username)
        password_ok = hmac.compare_digest(password, self.password)
        return bool(colon) and user_ok and password_ok


class TriggerCache:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._by_key: dict[str, Trigger] = {}
        self._key_of: dict[str, str] = {}
        self._loading = False
        self._during_load: list[ConfigEvent] = []
        self.loaded = False

    def get(self, key: str) -> Trigger | None:
        return self._by_key.get(key)

    def __len__(self) -> int:
        return len(self._by_key)

    async def load(self) -> None:
        """Read every workflow and replace the whole copy at once. Events that arrive while
        it reads are applied again afterwards, so a reload never undoes a newer change."""
        self._loading = True
        try:
            await self._load()
        finally:
            self._loading = False
        missed, self._during_load = self._during_load, []
        for event in missed:
            await self.apply(event)

    async def _load(self) -> None:
        by_key: dict[str, Trigger] = {}
        cursor = None
        while True:
            page = await self._storage.list_workflows(limit=500, cursor=cursor)
            for workflow in page.items:
                if workflow.document.enabled:
                    by_key[workflow.key] = Trigger.from_workflow(workflow)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        self._by_key = by_key
        self._key_of = {trigger.workflow_id: key for key, trigger in by_key.items()}
        self.loaded = True
        log.debug("trigger cache loaded", triggers=len(by_key))

    async def apply(self, event: ConfigEvent) -> None:
        """A workflow changed: read its current state (events carry no secrets) and swap it in."""
        if self._loading:
            self._during_load.append(event)
        workflow = None
        if event.type != "deleted":
            workflow = await self._storage.get_workflow(event.workflow_id)
        old_key = self._key_of.pop(event.workflow_id, None)
        if old_key is not None:
            self._by_key.pop(old_key, None)
        if workflow is not None and workflow.document.enabled:
            self._by_key[workflow.key] = Trigger.from_workflow(workflow)
            self._key_of[workflow.id] = workflow.key
        log.info(
            "trigger updated",
            change=event.type,
            workflow_id=event.workflow_id,
            version=event.version,
        )

    async def refresh_forever(self, interval: float) -> None:
        """The safety net under the events: reload everything now and then."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.load()
            except Exception as error:
                log.warning("trigger cache reload failed; keeping the copy", error=repr(error))
