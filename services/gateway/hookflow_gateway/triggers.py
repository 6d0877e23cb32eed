"""The gateway's in-memory copy of every enabled trigger, kept fresh by change events.

A flood of requests, unknown keys included, never becomes a flood of database reads: the
copy holds every enabled trigger, so a key that is not in it does not exist.

The copy never goes back in time: every workflow's entry carries its version, and a change
(an event, a reload) only replaces an older one; a deletion is final. Until the copy is known
to be complete (at start, and after a lost broker connection, when events may have been
missed) the gateway answers 503 rather than from a copy that may be stale; a workflow whose
change was announced but not yet read is answered 503 as well, never from its old state.
"""

import asyncio
import base64
import binascii
import hashlib
import hmac
import itertools
import math
import time
from dataclasses import dataclass, field

import orjson
import structlog

from hookflow_gateway.signatures import Verifier
from hookflow_shared.crypto import SecretBox, verify_password
from hookflow_shared.errors import HookflowError
from hookflow_shared.models import ConfigEvent, Idempotency, StoredWorkflow
from hookflow_shared.storage import Storage

log = structlog.get_logger("hookflow.gateway")

_NEVER_IN_CONTEXT = frozenset({"authorization", "proxy-authorization", "cookie"})
VERIFIED_TTL = 300.0
"""Seconds a credential that passed stays trusted without hashing it again (while in use)."""
REFUSED_TTL = 60.0
"""Seconds a credential that failed is refused without hashing it again."""
MAX_HASH_WAITERS = 32
"""Credential checks waiting for a hashing slot before more are turned away (429)."""


class TooManyCredentialChecks(HookflowError):
    """More new credentials arrive than the gateway can hash: refuse at once, rather than queue
    without bound (a flood of wrong passwords must not hold the gateway)."""


class HashGate:
    """At most `slots` password hashes at once, and at most MAX_HASH_WAITERS waiting."""

    def __init__(self, slots: int = 2) -> None:
        self._slots = asyncio.Semaphore(slots)
        self._waiting = 0

    async def verify(self, password: bytes, stored: str) -> bool:
        if self._waiting >= MAX_HASH_WAITERS:
            raise TooManyCredentialChecks(
                "too many new credentials to check at once; retry in a second"
            )
        self._waiting += 1
        try:
            async with self._slots:
                return await asyncio.to_thread(verify_password, password, stored)
        finally:
            self._waiting -= 1


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
    idempotency: Idempotency | None
    _verified: dict[bytes, float] = field(default_factory=dict)
    """Digests of Authorization headers that passed, with when they expire."""
    _refused: dict[bytes, float] = field(default_factory=dict)
    """Digests of Authorization headers that failed, with when they may be tried again."""

    @classmethod
    def from_workflow(cls, workflow: StoredWorkflow, box: SecretBox | None) -> "Trigger":
        doc = workflow.document
        trigger = doc.trigger
        auth = trigger.basic_auth
        body = trigger.response.body
        if isinstance(body, str):
            response_body, content_type = body.encode(), "text/plain"
        else:
            response_body, content_type = orjson.dumps(body), "application/json"
        verifier = None
        if trigger.signature is not None and trigger.signature.encrypted_secret is not None:
            if box is None:
                raise ValueError(
                    "a trigger has a signing secret but HOOKFLOW_SECRET_KEY is not set"
                )
            secret = box.decrypt(trigger.signature.encrypted_secret).encode()
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
            sync_timeout=doc.sync_timeout,
            username=auth.username.encode() if auth else None,
            password_hash=auth.password_hash if auth else None,
            verifier=verifier,
            rate=trigger.rate_limit.rate if trigger.rate_limit else None,
            burst=trigger.rate_limit.burst if trigger.rate_limit else None,
            headers=headers,
            max_body_bytes=trigger.max_body_bytes,
            status=trigger.response.status_code,
            response_headers=tuple((h.name, h.value) for h in trigger.response.headers),
            response_body=response_body,
            response_content_type=content_type,
            idempotency=trigger.idempotency,
        )

    async def authorized(self, header: str | None, gate: HashGate) -> bool:
        """Checks an Authorization header against the trigger's Basic credentials. The slow
        hash runs once per credential (in a thread, a few at a time): one that passed is
        trusted for VERIFIED_TTL seconds after its last use, one that failed refused for
        REFUSED_TTL seconds, both remembered by digest. True without credentials."""
        if self.username is None or self.password_hash is None:
            return True
        if header is None:
            return False
        digest = hashlib.sha256(header.encode()).digest()
        now = time.monotonic()
        if self._verified.get(digest, 0.0) > now:
            self._verified[digest] = now + VERIFIED_TTL
            return True
        if self._refused.get(digest, 0.0) > now:
            return False
        ok = await self._check(header, gate)
        remembered = self._verified if ok else self._refused
        if len(remembered) >= 1024:
            remembered.clear()
        remembered[digest] = now + (VERIFIED_TTL if ok else REFUSED_TTL)
        return ok

    async def _check(self, header: str, gate: HashGate) -> bool:
        assert self.username is not None and self.password_hash is not None
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
        return await gate.verify(password, self.password_hash)


DELETED = math.inf
"""The version of a deleted workflow: newer than any (ids are never reused)."""
TOMBSTONE_TTL = 600.0
"""Seconds a deleted workflow is remembered, so a read that started before the deletion cannot
bring it back (any read gives up long before: storage calls time out)."""


@dataclass(slots=True)
class _Entry:
    version: float
    trigger: "Trigger | None"
    """None: disabled, deleted, or left out (its secret cannot be read)."""
    changed: int
    """When it was last changed, in the cache's own sequence of changes."""
    at: float
    """And when, by the monotonic clock."""


PENDING = object()
"""What `get` gives for a key whose change is announced but not read yet (answer 503)."""


class TriggerCache:
    def __init__(self, storage: Storage, box: SecretBox | None = None) -> None:
        self._storage = storage
        self._box = box
        self.hashing = HashGate()
        self._entries: dict[str, _Entry] = {}
        self._by_key: dict[str, Trigger] = {}
        self._pending: dict[str, int] = {}
        """Trigger keys with a change announced and not yet applied (how many)."""
        self._changes = itertools.count(1)
        self._change = 0
        self._load_lock = asyncio.Lock()
        self.ready = False
        """The copy is complete: loaded after subscribing to events, and no events missed."""
        self.loaded_at: float | None = None
        self.heard_at: float | None = None
        """When (time.monotonic()) the copy was last loaded or changed by a config event."""

    def get(self, key: str) -> "Trigger | object | None":
        """The trigger of an enabled workflow; PENDING while a change to it is being read;
        None for an unknown key."""
        if key in self._pending:
            return PENDING
        return self._by_key.get(key)

    def __len__(self) -> int:
        return len(self._by_key)

    def connection_lost(self) -> None:
        """Events may be missed from now on: stop answering from the copy until a reload."""
        if self.ready:
            log.warning("broker connection lost; webhooks get 503 until the triggers reload")
        self.ready = False

    async def load(self) -> None:
        """Read every workflow and bring the copy up to date; then the copy is complete. One
        load at a time; a workflow changed by an event while it read keeps the newer state."""
        async with self._load_lock:
            started = self._change
            seen: set[str] = set()
            cursor = None
            while True:
                page = await self._storage.list_workflows(limit=500, cursor=cursor)
                for workflow in page.items:
                    seen.add(workflow.id)
                    self._put(workflow.id, workflow.version, self._trigger_of(workflow))
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            for workflow_id, entry in list(self._entries.items()):
                if workflow_id in seen or entry.changed > started:
                    continue  # listed, or changed by an event during the read: keep it
                if entry.version == DELETED:
                    if time.monotonic() - entry.at > TOMBSTONE_TTL:
                        del self._entries[workflow_id]
                else:
                    self._put(workflow_id, DELETED, None)
            self.ready = True
            self.loaded_at = self.heard_at = time.monotonic()
        log.debug("trigger cache loaded", triggers=len(self._by_key))

    def _put(self, workflow_id: str, version: float, trigger: "Trigger | None") -> None:
        """Swap in a workflow's state, unless the copy already has a newer one."""
        entry = self._entries.get(workflow_id)
        if entry is not None:
            if entry.version > version:
                return
            if entry.version == version and entry.trigger is trigger:
                return
            if entry.trigger is not None:
                self._by_key.pop(entry.trigger.key, None)
        self._change = next(self._changes)
        self._entries[workflow_id] = _Entry(version, trigger, self._change, time.monotonic())
        if trigger is not None:
            self._by_key[trigger.key] = trigger

    def _trigger_of(self, workflow: StoredWorkflow) -> "Trigger | None":
        """The workflow's trigger when it is enabled. One already held for this version is
        kept as it is: no decryption, and the credentials it has verified stay remembered."""
        if not workflow.document.enabled:
            return None
        entry = self._entries.get(workflow.id)
        if entry is not None and entry.version == workflow.version and entry.trigger is not None:
            return entry.trigger
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
        """A workflow changed: read its current state (events carry no secrets) and swap it in.
        Until the read succeeds, the workflow's key answers 503; a failed read is retried."""
        self._pending[event.key] = self._pending.get(event.key, 0) + 1
        try:
            workflow = await self._read(event)
            if workflow is None:
                self._put(event.workflow_id, DELETED, None)
            else:
                self._put(workflow.id, workflow.version, self._trigger_of(workflow))
        finally:
            left = self._pending[event.key] - 1
            if left:
                self._pending[event.key] = left
            else:
                del self._pending[event.key]
        self.heard_at = time.monotonic()
        log.info(
            "trigger updated",
            change=event.type,
            workflow_id=event.workflow_id,
            version=event.version,
        )

    async def _read(self, event: ConfigEvent) -> StoredWorkflow | None:
        if event.type == "deleted":
            return None
        delay = 0.1
        while True:
            try:
                return await self._storage.get_workflow(event.workflow_id)
            except Exception as error:
                log.warning(
                    "reading a changed workflow failed; its webhooks get 503 until it is read",
                    workflow_id=event.workflow_id,
                    error=repr(error),
                    retry_in=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def refresh_forever(self, interval: float) -> None:
        """The safety net under the events: reload everything now and then."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.load()
            except Exception as error:
                log.warning("trigger cache reload failed; keeping the copy", error=repr(error))

    async def resync(self) -> None:
        """After the broker connection is back: reload until it works; then answer again."""
        delay = 0.5
        while True:
            try:
                await self.load()
            except Exception as error:
                log.warning("trigger reload after reconnecting failed", error=repr(error))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            log.info("triggers reloaded after reconnecting", triggers=len(self))
            return
