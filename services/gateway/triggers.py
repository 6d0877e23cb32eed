"""The gateway's in-memory copy of every enabled trigger, kept fresh by change events.

A flood of requests, unknown keys included, never becomes a flood of database reads: the
copy holds every enabled trigger, so a key that is not in it does not exist.
"""

import asyncio
import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import dataclass, field

import orjson
import structlog

from hookflow.gateway.signatures import Verifier
from hookflow.shared.models import ConfigEvent, StoredWorkflow
from hookflow.shared.secrets import SecretBox, verify_password
from hookflow.shared.storage import Storage

log = structlog.get_logger("hookflow.gateway")

_NEVER_IN_CONTEXT = frozenset({"authorization", "proxy-authorization", "cookie"})
VERIFIED_TTL = 300.0


@dataclass(frozen=True, slots=True)
class Trigger:
    """What the gateway needs of one workflow to take its webhooks, precomputed."""

    key: str
    workflow_id: str
    version: int
    sync: bool
    sync_timeout: float
    username: bytes | None
    password_hash: str | None
    verifier: Verifier | None
    rate: float | None
    burst: int | None
    headers: tuple[str, ...]
    """Lower-cased names of the request headers that enter the context."""
    max_body_bytes: int | None
    status: int
    response_headers: tuple[tuple[str, str], ...]
    response_body: bytes
    response_content_type: str
    _verified: dict[bytes, float] = field(default_factory=dict)
    """Digests of Authorization headers that passed, with when they expire."""

    @classmethod
    def from_workflow(cls, workflow: StoredWorkflow, box: SecretBox | None) -> "Trigger":
        doc = workflow.document
        trigger = doc.trigger
        auth = trigger.basicAuth
        body = trigger.response.body
        if isinstance(body, str):
            response_body, content_type = body.encode(), "text/plain"
        else:
            response_body, content_type = orjson.dumps(body), "application/json"
        verifier = None
        if trigger.signature is not None and trigger.signature.encryptedSecret is not None:
            if box is None:
                raise ValueError(
                    "a trigger has a signing secret but HOOKFLOW_SECRET_KEY is not set"
                )
            secret = box.decrypt(trigger.signature.encryptedSecret).encode()
            verifier = Verifier(trigger.signature, secret)
        hidden = _NEVER_IN_CONTEXT | set(verifier.headers if verifier else ())
        headers = tuple(
            dict.fromkeys(
                h.key.lower() for h in trigger.request.headers if h.key.lower() not in hidden
            )
        )
        return cls(
            key=workflow.key,
            workflow_id=workflow.id,
            version=workflow.version,
            sync=doc.sync,
            sync_timeout=doc.syncTimeout,
            username=auth.username.encode() if auth else None,
            password_hash=auth.passwordHash if auth else None,
            verifier=verifier,
            rate=trigger.rateLimit.rate if trigger.rateLimit else None,
            burst=trigger.rateLimit.burst if trigger.rateLimit else None,
            headers=headers,
            max_body_bytes=trigger.maxBodyBytes,
            status=trigger.response.statusCode,
            response_headers=tuple((h.name, h.value) for h in trigger.response.headers),
            response_body=response_body,
            response_content_type=content_type,
        )

    async def authorized(self, header: str | None, hashing: asyncio.Semaphore) -> bool:
        """Checks an Authorization header against the trigger's Basic credentials. The slow
        hash runs once per credential (in a thread, a few at a time); a credential that passed
        is remembered for VERIFIED_TTL seconds by its digest. True without credentials."""
        if self.username is None or self.password_hash is None:
            return True
        if header is None:
            return False
        digest = hashlib.sha256(header.encode()).digest()
        now = time.monotonic()
        if self._verified.get(digest, 0.0) > now:
            return True
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        username, colon, password = decoded.partition(b":")
        if not colon or not hmac.compare_digest(username, self.username):
            return False
        async with hashing:
            ok = await asyncio.to_thread(verify_password, password, self.password_hash)
        if ok:
            if len(self._verified) >= 256:
                self._verified.clear()
            self._verified[digest] = now + VERIFIED_TTL
        return ok


class TriggerCache:
    def __init__(self, storage: Storage, box: SecretBox | None = None) -> None:
        self._storage = storage
        self._box = box
        self.hashing = asyncio.Semaphore(2)
        """At most two password hashes at once: wrong passwords cannot starve the gateway."""
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
                if workflow.document.enabled and (trigger := self._trigger(workflow)):
                    by_key[workflow.key] = trigger
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        self._by_key = by_key
        self._key_of = {trigger.workflow_id: key for key, trigger in by_key.items()}
        self.loaded = True
        log.debug("trigger cache loaded", triggers=len(by_key))

    def _trigger(self, workflow: StoredWorkflow) -> Trigger | None:
        """The workflow's trigger. One already held for this version is kept as it is: no
        decryption, and the Basic-auth credentials it has verified stay remembered."""
        known = self._by_key.get(workflow.key)
        if known is not None and known.version == workflow.version:
            return known
        try:
            return Trigger.from_workflow(workflow, self._box)
        except ValueError as error:
            log.error(
                "trigger left out: its secret cannot be read",
                workflow_id=workflow.id,
                reason=str(error),
            )
            return None

    async def apply(self, event: ConfigEvent) -> None:
        """A workflow changed: read its current state (events carry no secrets) and swap it in."""
        if self._loading:
            self._during_load.append(event)
        workflow = None
        if event.type != "deleted":
            workflow = await self._storage.get_workflow(event.workflow_id)
        trigger = None
        if workflow is not None and workflow.document.enabled:
            trigger = self._trigger(workflow)
        old_key = self._key_of.pop(event.workflow_id, None)
        if old_key is not None:
            self._by_key.pop(old_key, None)
        if trigger is not None:
            self._by_key[trigger.key] = trigger
            self._key_of[trigger.workflow_id] = trigger.key
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
