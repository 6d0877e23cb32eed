"""`POST /api/webhook:trigger/{key}`: check, parse, queue, answer.

The checks run in the order of the README's status table: method (405), key (404; 503 while
the gateway's copy of the triggers may be stale), Basic auth (401), size (413), signature
(401), rate limit (429: counted only for callers who passed authentication, so a flood of
wrong credentials takes nothing from the legitimate sender's budget), content type (415),
parse (400); then the idempotency claim (a repeat gets the first execution's answer), the run
is queued (503 when the broker does not confirm) and the answer given.

A request sent with `Expect: 100-continue` gets the checks that need no body (method, key,
Basic auth, declared size) before it is told to send its body.
"""

import asyncio
import time
from datetime import timedelta
from typing import ClassVar

import orjson
import structlog
from aiohttp import web
from aiohttp.http import HttpVersion11

from hookflow_gateway.captures import CaptureTap
from hookflow_gateway.claims import Claims
from hookflow_gateway.metrics import GatewayMetrics
from hookflow_gateway.ratelimit import RateLimiter, retry_after_header
from hookflow_gateway.signatures import BadSignature
from hookflow_gateway.submitter import RunSubmitter
from hookflow_gateway.triggers import PENDING, TooManyCredentialChecks, Trigger, TriggerCache
from hookflow_shared.bodies import parse_body_off_loop, parse_query_string
from hookflow_shared.errors import (
    BadRequest,
    BrokerUnavailable,
    HookflowError,
    NotFound,
    StorageUnavailable,
    UnsupportedMediaType,
)
from hookflow_shared.http import RETRY_SOON, HttpError, error_response, status_of
from hookflow_shared.idempotency import claim_key, event_id
from hookflow_shared.ids import new_id
from hookflow_shared.messaging.rpc import Caller, ReplyLost
from hookflow_shared.models import RunReply, RunRequest, TriggerContext, now
from hookflow_shared.settings import GatewaySettings
from hookflow_shared.storage import Claim, Storage

log = structlog.get_logger("hookflow.gateway")
refused_log = structlog.get_logger(logger_name="hookflow.gateway.refused")
"""One line per refused webhook, at HOOKFLOW_REFUSED_LOG_LEVEL (info; debug hides them)."""

EXECUTION_HEADER = "X-Hookflow-Execution-Id"
REPLAYED_HEADER = "Idempotent-Replayed"
"""On the answer to a repeat of an event already taken (the convention of Stripe's API)."""


class Refusal(HttpError):
    """An answer of the webhook edge, with its outcome as counted and logged."""

    outcome: ClassVar[str]


class MethodNotAllowed(Refusal):
    outcome = "method_not_allowed"
    status = 405
    headers = {"Allow": "POST"}


class PayloadTooLarge(Refusal):
    outcome = "too_large"
    status = 413


class BodyTimeout(Refusal):
    """408: the body did not arrive in time; the caller is told to close the connection."""

    outcome = "body_timeout"
    status = 408
    headers = {"Connection": "close"}


class Unauthenticated(Refusal):
    outcome = "unauthorized"
    status = 401
    headers = {"WWW-Authenticate": 'Basic realm="hookflow", charset="UTF-8"'}


class TooManyRequests(Refusal):
    """Over the trigger's rate limit."""

    outcome = "rate_limited"
    status = 429


class CredentialFlood(TooManyRequests):
    """More new credentials at once than the gateway hashes."""

    outcome = "credential_flood"


class RetryLater(Refusal):
    """503: the gateway's copy of the triggers, or an event's claim, is not settled yet."""

    outcome = "not_ready"
    status = 503
    headers = {"Retry-After": "1"}


class BrokerRefused(RetryLater):
    """503: nothing was accepted (or, when it says so, the broker may have the run)."""

    outcome = "broker_unavailable"

    def __init__(self, message: str, execution_id: str) -> None:
        super().__init__(message)
        self.execution_id = execution_id
        """The run's id, for the log: a run the broker may have can still be found."""


class SyncTimeout(Refusal):
    """504: the caller stops waiting; the execution still finishes and is recorded."""

    outcome = "sync_timeout"
    status = 504

    def __init__(self, message: str, execution_id: str) -> None:
        super().__init__(
            message, details={"executionId": execution_id}, headers={EXECUTION_HEADER: execution_id}
        )


OUTCOMES: dict[type[HookflowError], str] = {
    NotFound: "unknown_key",
    BadSignature: "bad_signature",
    UnsupportedMediaType: "unsupported_type",
    BadRequest: "bad_body",
    StorageUnavailable: "not_ready",
    BrokerUnavailable: "broker_unavailable",
}
"""The outcome of the domain errors a webhook meets (a Refusal carries its own)."""


def outcome_of(error: HookflowError) -> str | None:
    if isinstance(error, Refusal):
        return error.outcome
    for kind in type(error).__mro__:
        if kind in OUTCOMES:
            return OUTCOMES[kind]
    return None


class WebhookHandler:
    def __init__(
        self,
        cache: TriggerCache,
        submitter: RunSubmitter,
        calls: Caller,
        limiter: RateLimiter,
        storage: Storage,
        settings: GatewaySettings,
        *,
        installation: str | None = None,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self._cache = cache
        self._metrics = metrics
        self._log_refused = getattr(refused_log, settings.refused_log_level)
        self._submitter = submitter
        self._calls = calls
        self._limiter = limiter
        self._storage = storage
        self._installation = installation
        self._claims = Claims(storage, abandon_after=settings.publish_timeout + 10)
        self.captures = CaptureTap(storage)
        self._settle_timeout = settings.publish_timeout + 1
        self._max_body_bytes = settings.max_body_bytes
        self._body_timeout = settings.body_timeout
        self._default_rate = settings.rate_limit
        self._default_burst = settings.rate_burst

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        """Answer a webhook; count it by outcome, and log it once when it is refused."""
        started = time.perf_counter()
        trigger = None
        try:
            trigger = self._trigger(request)
            response = await self._handle(request, trigger)
        except HookflowError as error:
            self._refused(request, trigger, error, started)
            raise
        if self._metrics is not None:
            outcome = "repeated" if REPLAYED_HEADER in response.headers else "accepted"
            mode = "sync" if trigger.sync else "async"
            self._metrics.webhook(trigger.workflow_id, outcome, mode, time.perf_counter() - started)
        return response

    def _refused(
        self, request: web.Request, trigger: Trigger | None, error: HookflowError, started: float
    ) -> None:
        """Count and log a webhook not accepted: its outcome, its workflow when the key was
        known, its request id, and of the key only a prefix (the key is the webhook's only
        secret when it has no auth). Credentials never reach this line."""
        outcome = outcome_of(error) or "bad_body"
        workflow = trigger.workflow_id if trigger is not None else ""
        mode = "unknown" if trigger is None else "sync" if trigger.sync else "async"
        if self._metrics is not None:
            self._metrics.webhook(workflow, outcome, mode, time.perf_counter() - started)
        if outcome == "sync_timeout":
            return  # not a refusal: the run goes on and is recorded (the executor logs it)
        key = request.match_info.get("key", "")
        # The broker's trouble is the operator's to see; the callers' mistakes may be turned down.
        emit = refused_log.warning if outcome == "broker_unavailable" else self._log_refused
        named: dict[str, str] = {}
        if isinstance(error, BrokerRefused):
            named["execution_id"] = error.execution_id
        emit(
            "webhook refused",
            **named,
            reason=outcome,
            status=status_of(error)[0],
            workflow_id=workflow or None,
            request_id=request.headers.get("X-Request-Id", "")[:128] or new_id(),
            key_prefix=key[:6],
            error=error.message,
        )

    async def _handle(self, request: web.Request, trigger: Trigger) -> web.StreamResponse:
        await self._authenticate(request, trigger)
        raw = await self._read_body(request, trigger.max_body_bytes or self._max_body_bytes)
        if trigger.verifier is not None:
            trigger.verifier.verify(request.headers, raw)
        wait = self._limiter.retry_after(
            trigger.key, trigger.rate or self._default_rate, trigger.burst or self._default_burst
        )
        if wait:
            raise TooManyRequests(
                "this trigger's rate limit is reached; retry later",
                headers={"Retry-After": retry_after_header(wait)},
            )
        body = await parse_body_off_loop(raw, request.content_type if raw else "", request.charset)
        execution_id = new_id()
        run = RunRequest(
            execution_id=execution_id,
            workflow_id=trigger.workflow_id,
            version=trigger.version,
            received_at=now(),
            request_id=request.headers.get("X-Request-Id", "")[:128] or execution_id,
            context=TriggerContext(
                headers={
                    name: request.headers[name]
                    for name in trigger.headers
                    if name in request.headers
                },
                query=parse_query_string(request.query_string),
                body=body,
            ),
            installation=self._installation,
        )
        self.captures.offer(
            trigger, request.method, request.headers, request.query_string, run.context.query, body
        )
        claim = None
        if trigger.idempotency is not None:
            # The claims may log (a repeat, a claim not marked): name the webhook in them.
            structlog.contextvars.bind_contextvars(
                execution_id=run.execution_id,
                workflow_id=run.workflow_id,
                request_id=run.request_id,
            )
            event = event_id(trigger.idempotency, request.headers, run.context.query, body)
            if event is not None:
                run.idempotency_key = event
                claim = Claim(
                    run.workflow_id,
                    claim_key(event),
                    run.execution_id,
                    run.received_at,
                    run.received_at + timedelta(seconds=trigger.idempotency.window),
                )
                holder = await self._claim(claim)
                if holder.execution_id != run.execution_id:
                    return await self._repeat(trigger, holder)
        if trigger.sync:
            return await self._call(trigger, run, claim)
        await self._submit(trigger, run, claim)
        return _async_answer(trigger, run.execution_id)

    def _trigger(self, request: web.Request) -> Trigger:
        if request.method != "POST":
            raise MethodNotAllowed(f"{request.method} is not allowed: webhooks take POST")
        if not self._cache.ready:
            raise RetryLater("the gateway is catching up with configuration changes; retry")
        trigger = self._cache.get(request.match_info["key"])
        if trigger is PENDING:
            raise RetryLater("this webhook's configuration is changing; retry in a second")
        if not isinstance(trigger, Trigger):
            raise NotFound("no enabled webhook trigger has this key")
        return trigger

    async def _authenticate(self, request: web.Request, trigger: Trigger) -> None:
        try:
            authorized = await trigger.authorized(
                request.headers.get("Authorization"), self._cache.hashing
            )
        except TooManyCredentialChecks as error:
            raise CredentialFlood(error.message, headers=RETRY_SOON) from None
        if not authorized:
            raise Unauthenticated("missing or wrong credentials (HTTP Basic)")

    async def expect(self, request: web.Request) -> web.StreamResponse | None:
        """`Expect: 100-continue`: refuse before the body is sent when the checks that need no
        body fail; otherwise tell the caller to go on."""
        expect = request.headers.get("Expect", "")
        if request.version != HttpVersion11:
            return None
        if expect.lower() != "100-continue":
            return _refusal(HttpError(f"unknown Expect: {expect[:64]}", status=417))
        started = time.perf_counter()
        trigger = None
        try:
            trigger = self._trigger(request)
            await self._authenticate(request, trigger)
            limit = trigger.max_body_bytes or self._max_body_bytes
            length = request.content_length
            if length is not None and length > limit:
                raise PayloadTooLarge(
                    f"body of {length} bytes is over this trigger's limit of {limit}"
                )
        except HookflowError as error:
            self._refused(request, trigger, error, started)
            return _refusal(error)
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0
        return None

    async def _claim(self, claim: Claim) -> Claim:
        """Take the event's key; a holder still being queued elsewhere is waited for, and a
        key freed meanwhile (its run was not queued) is taken again."""
        for _ in range(3):
            holder = await self._claims.take(claim)
            if holder.execution_id == claim.execution_id:
                return holder
            settled = await self._claims.settled(holder, self._settle_timeout)
            if settled is not None:
                if settled.state == "claimed":
                    raise RetryLater(
                        "another copy of this event is being queued; retry in a second"
                    )
                return settled
        raise RetryLater("this event's key keeps changing hands; retry in a second")

    async def _repeat(self, trigger: Trigger, holder: Claim) -> web.StreamResponse:
        """A repeat of an event already taken: no new execution. Async: the configured
        answer; sync: the first execution's answer (waited for, up to the sync timeout)."""
        log.info("repeated event: no new execution", first_execution_id=holder.execution_id)
        if not trigger.sync:
            response = _async_answer(trigger, holder.execution_id)
        else:
            response = _sync_answer(await self._first_answer(trigger, holder.execution_id))
        response.headers[REPLAYED_HEADER] = "true"
        return response

    async def _first_answer(self, trigger: Trigger, execution_id: str) -> RunReply:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + trigger.sync_timeout
        waiting = self._calls.pending(execution_id)
        if waiting is not None:  # the first copy waits on this gateway: share its answer
            try:
                return await asyncio.wait_for(asyncio.shield(waiting), trigger.sync_timeout)
            except (TimeoutError, ReplyLost):
                pass
            except asyncio.CancelledError:
                if not waiting.cancelled():
                    raise  # this task is cancelled, not the first copy's wait
        delay = 0.05
        while loop.time() < deadline:
            record = await self._storage.get_execution(execution_id)
            if record is not None:
                return RunReply(
                    execution_id=record.id, status=record.status, response=record.response
                )
            await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            delay = min(delay * 2, 0.5)
        raise SyncTimeout(
            f"the first execution of this event did not finish within {trigger.sync_timeout:g} s",
            execution_id,
        )

    async def _submit(self, trigger: Trigger, run: RunRequest, claim: Claim | None) -> None:
        try:
            await self._submitter.submit(run)
        except BrokerUnavailable as error:
            if not error.maybe_queued:
                if claim is not None:
                    await self._claims.release(claim)
                raise BrokerRefused(
                    "the run could not be queued; nothing was accepted, retry later",
                    run.execution_id,
                ) from error
            # The broker may have the run: its claim stays, so a retry with the same event id
            # runs it once (the executor runs only the claim's holder).
            raise BrokerRefused(
                "the broker did not confirm the run in time; it may still run. Retry later"
                + (
                    " with the same event id: it runs once"
                    if claim is not None
                    else "; to be sure it runs once, give the trigger an idempotency key"
                ),
                run.execution_id,
            ) from error
        if claim is not None and run.reply_to is None:
            # A sync run was sent unconfirmed and may yet be lost: its claim stays `claimed`
            # until an executor starts it, so a lost one is abandoned and taken again.
            self._claims.queued(claim)

    async def _call(self, trigger: Trigger, run: RunRequest, claim: Claim | None) -> web.Response:
        """Sync mode: queue the run with a reply address and wait for the executor's answer."""
        run.reply_to = self._calls.address
        future = self._calls.expect(run.execution_id, trigger.sync_timeout)
        try:
            await self._submit(trigger, run, claim)
            # Not cancelled while waiting (aiohttp does not cancel handlers), so a repeat of
            # the same event may share the future (_first_answer).
            reply = await future
        except TimeoutError:
            raise SyncTimeout(
                f"the workflow did not finish within {trigger.sync_timeout:g} s; it goes on and "
                "is recorded",
                run.execution_id,
            ) from None
        except ReplyLost as lost:
            raise SyncTimeout(
                f"{lost}; the run goes on and is recorded", run.execution_id
            ) from None
        finally:
            self._calls.forget(run.execution_id)
        return _sync_answer(reply)

    async def close(self) -> None:
        await self._claims.close()
        await self.captures.close()

    async def _read_body(self, request: web.Request, limit: int) -> bytes:
        """The body, up to `limit` bytes (413 above) and within the body timeout (408 after)."""
        length = request.content_length
        if length is not None and length > limit:
            raise PayloadTooLarge(f"body of {length} bytes is over this trigger's limit of {limit}")
        if request.content.is_eof():  # all of it came with the request: no wait, no timer
            raw = request.content.read_nowait()
            if len(raw) > limit:
                raise PayloadTooLarge(f"body is over this trigger's limit of {limit} bytes")
            return raw
        chunks = []
        size = 0
        try:
            async with asyncio.timeout(self._body_timeout):
                async for chunk in request.content.iter_any():
                    size += len(chunk)
                    if size > limit:
                        raise PayloadTooLarge(f"body is over this trigger's limit of {limit} bytes")
                    chunks.append(chunk)
        except TimeoutError:
            raise BodyTimeout(
                f"the body did not arrive within {self._body_timeout:g} s; nothing was queued"
            ) from None
        return b"".join(chunks)


def _refusal(error: HookflowError) -> web.Response:
    response = error_response(error)
    response.force_close()  # the caller did not send its body: this connection is done
    return response


def _sync_answer(reply: RunReply) -> web.Response:
    """The response node's answer; without one, 200 when the run succeeded and 500 if not."""
    if reply.response is not None:
        body = reply.response.body
        if body is None:
            response = web.Response(status=reply.response.status_code)
        elif isinstance(body, str):
            response = web.Response(status=reply.response.status_code, text=body)
        else:
            response = web.Response(
                status=reply.response.status_code,
                body=orjson.dumps(body),
                content_type="application/json",
            )
        for name, value in reply.response.headers.items():
            response.headers[name] = value
    else:
        response = web.Response(
            status=200 if reply.status == "succeeded" else 500,
            body=orjson.dumps({"executionId": reply.execution_id, "status": reply.status}),
            content_type="application/json",
        )
    response.headers[EXECUTION_HEADER] = reply.execution_id
    return response


def _async_answer(trigger: Trigger, execution_id: str) -> web.Response:
    response = web.Response(
        status=trigger.status,
        body=trigger.response_body,
        content_type=trigger.response_content_type,
    )
    for name, value in trigger.response_headers:
        response.headers[name] = value
    response.headers[EXECUTION_HEADER] = execution_id
    return response
