"""`POST /api/webhook:trigger/{key}`: check, parse, queue, answer.

The checks run in the order of DESIGN.md's status table: method (405), key (404), Basic auth
(401), size (413), content type (415), parse (400); then the run is queued (503 when the broker
does not confirm) and the trigger's configured response is given.
"""

import asyncio

import orjson
import structlog
from aiohttp import web

from hookflow.gateway.ratelimit import RateLimiter, retry_after_header
from hookflow.gateway.replies import PendingReplies, ReplyLost
from hookflow.gateway.submitter import RunSubmitter
from hookflow.gateway.triggers import Trigger, TriggerCache
from hookflow.shared.bodies import parse_body_off_loop, parse_query_string
from hookflow.shared.errors import (
    BrokerUnavailable,
    HookflowError,
    NotFound,
    Unauthorized,
)
from hookflow.shared.ids import new_id
from hookflow.shared.models import RunReply, RunRequest, TriggerContext, now
from hookflow.shared.settings import GatewaySettings

log = structlog.get_logger("hookflow.gateway")

EXECUTION_HEADER = "X-Hookflow-Execution-Id"


class MethodNotAllowed(HookflowError):
    status = 405
    headers = {"Allow": "POST"}


class PayloadTooLarge(HookflowError):
    status = 413


class BodyTimeout(HookflowError):
    """408: the body did not arrive in time; the caller is told to close the connection."""

    status = 408
    headers = {"Connection": "close"}


class Unauthenticated(Unauthorized):
    headers = {"WWW-Authenticate": 'Basic realm="hookflow", charset="UTF-8"'}


class TooManyRequests(HookflowError):
    status = 429

    def __init__(self, message: str, retry_after: str) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": retry_after}


class RetryLater(BrokerUnavailable):
    headers = {"Retry-After": "1"}


class SyncTimeout(HookflowError):
    """504: the caller stops waiting; the execution still finishes and is recorded."""

    status = 504

    def __init__(self, message: str, execution_id: str) -> None:
        super().__init__(message, details={"executionId": execution_id})
        self.headers = {EXECUTION_HEADER: execution_id}


class WebhookHandler:
    def __init__(
        self,
        cache: TriggerCache,
        submitter: RunSubmitter,
        replies: PendingReplies,
        reply_to: str,
        limiter: RateLimiter,
        settings: GatewaySettings,
    ) -> None:
        self._cache = cache
        self._submitter = submitter
        self._replies = replies
        self._reply_to = reply_to
        self._limiter = limiter
        self._max_body_bytes = settings.max_body_bytes
        self._body_timeout = settings.body_timeout
        self._default_rate = settings.rate_limit
        self._default_burst = settings.rate_burst

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            raise MethodNotAllowed(f"{request.method} is not allowed: webhooks take POST")
        trigger = self._cache.get(request.match_info["key"])
        if trigger is None:
            raise NotFound("no enabled webhook trigger has this key")
        wait = self._limiter.retry_after(
            trigger.key, trigger.rate or self._default_rate, trigger.burst or self._default_burst
        )
        if wait:
            raise TooManyRequests(
                "this trigger's rate limit is reached; retry later",
                retry_after=retry_after_header(wait),
            )
        if not await trigger.authorized(request.headers.get("Authorization"), self._cache.hashing):
            raise Unauthenticated("missing or wrong credentials (HTTP Basic)")
        raw = await self._read_body(request, trigger.max_body_bytes or self._max_body_bytes)
        if trigger.verifier is not None:
            trigger.verifier.verify(request.headers, raw)
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
        )
        structlog.contextvars.bind_contextvars(
            execution_id=run.execution_id, workflow_id=run.workflow_id, request_id=run.request_id
        )
        if trigger.sync:
            return await self._call(trigger, run)
        await self._submit(trigger, run)
        return _async_answer(trigger, run)

    async def _submit(self, trigger: Trigger, run: RunRequest) -> None:
        try:
            await self._submitter.submit(run)
        except BrokerUnavailable as error:
            log.warning("webhook refused: broker unavailable", key_prefix=trigger.key[:6])
            raise RetryLater(
                "the run could not be queued; nothing was accepted, retry later"
            ) from error

    async def _call(self, trigger: Trigger, run: RunRequest) -> web.Response:
        """Sync mode: queue the run with a reply address and wait for the executor's answer."""
        run.reply_to = self._reply_to
        future = self._replies.expect(run.execution_id)
        try:
            await self._submit(trigger, run)
            reply = await asyncio.wait_for(future, trigger.sync_timeout)
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
            self._replies.forget(run.execution_id)
        return _sync_answer(reply)

    async def _read_body(self, request: web.Request, limit: int) -> bytes:
        """The body, up to `limit` bytes (413 above) and within the body timeout (408 after)."""
        length = request.content_length
        if length is not None and length > limit:
            raise PayloadTooLarge(f"body of {length} bytes is over this trigger's limit of {limit}")
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


def _sync_answer(reply: RunReply) -> web.Response:
    """The response node's answer; without one, 200 when the run succeeded and 500 if not."""
    if reply.response is not None:
        body = reply.response.body
        if body is None:
            response = web.Response(status=reply.response.statusCode)
        elif isinstance(body, str):
            response = web.Response(status=reply.response.statusCode, text=body)
        else:
            response = web.Response(
                status=reply.response.statusCode,
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


def _async_answer(trigger: Trigger, run: RunRequest) -> web.Response:
    response = web.Response(
        status=trigger.status,
        body=trigger.response_body,
        content_type=trigger.response_content_type,
    )
    for name, value in trigger.response_headers:
        response.headers[name] = value
    response.headers[EXECUTION_HEADER] = run.execution_id
    return response
