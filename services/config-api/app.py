"""The config API's app factory and handlers (REST with JSON bodies, bearer token)."""

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from hookflow.config_api.workflows import Workflows
from hookflow.shared.bodies import (
    VariablePaths,
    check_depth,
    parse_body,
    parse_query_string,
    variable_paths,
)
from hookflow.shared.errors import BadRequest, NotFound, Unauthorized, UnsupportedMediaType
from hookflow.shared.messaging import Broker
from hookflow.shared.models import ExecutionRecord, StoredWorkflow
from hookflow.shared.service import (
    BROKER,
    STORAGE,
    error_middleware,
    json_response,
    secret_box,
    use_broker,
    use_storage,
)
from hookflow.shared.settings import ConfigApiSettings
from hookflow.shared.storage import Storage

WORKFLOWS = web.AppKey("workflows", Workflows)
MAX_PAGE = 200
PARSE_USAGE = (
    'send {"url": "<a URL or a query string>"}, {"body": <a JSON sample>} '
    'or {"sample": "<a body as text>", "contentType": "<its type>"}'
)


class MissingToken(Unauthorized):
    headers = {"WWW-Authenticate": 'Bearer realm="hookflow"'}


def bearer_auth(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path != "/healthz":
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise MissingToken("missing or wrong bearer token (Authorization: Bearer <token>)")
        return await handler(request)

    return middleware


def create_app(
    settings: ConfigApiSettings, *, storage: Storage | None = None, broker: Broker | None = None
) -> web.Application:
    if settings.admin_token is None:
        raise SystemExit("HOOKFLOW_ADMIN_TOKEN is not set: the config API needs a bearer token")
    app = web.Application(
        middlewares=[error_middleware, bearer_auth(settings.admin_token.get_secret_value())]
    )
    use_storage(app, settings, storage)
    use_broker(app, settings, broker)

    box = secret_box(settings, without="workflows with a signature cannot be saved")

    async def workflows(app: web.Application) -> None:
        app[WORKFLOWS] = Workflows(app[STORAGE], app[BROKER], settings.public_url, box)

    app.on_startup.append(workflows)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/api/workflows", create_workflow)
    app.router.add_get("/api/workflows", list_workflows)
    app.router.add_get("/api/workflows/{id}", get_workflow)
    app.router.add_put("/api/workflows/{id}", replace_workflow)
    app.router.add_patch("/api/workflows/{id}", patch_workflow)
    app.router.add_delete("/api/workflows/{id}", delete_workflow)
    app.router.add_post("/api/workflows/{id}/signature:rotate", rotate_secret)
    app.router.add_get("/api/workflows/{id}/executions", list_executions)
    app.router.add_get("/api/executions/{id}", get_execution)
    app.router.add_post("/api/webhook:parse", parse_sample)
    return app


async def _json(request: web.Request) -> Any:
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"body is not valid JSON: {error}") from error


def _paging(request: web.Request) -> tuple[int, str | None]:
    try:
        limit = int(request.query.get("limit", "50"))
    except ValueError as error:
        raise BadRequest("limit must be a whole number") from error
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be between 1 and {MAX_PAGE}")
    return limit, request.query.get("cursor") or None


def _answer(
    workflows: Workflows, workflow: StoredWorkflow, secret: str | None, status: int = 200
) -> web.Response:
    """A workflow as answered; a signing secret just generated is in it, this once."""
    body = workflows.present(workflow)
    if secret is not None:
        body["trigger"]["signature"]["secret"] = secret
    return json_response(body, status=status, headers={"Location": f"/api/workflows/{workflow.id}"})


async def create_workflow(request: web.Request) -> web.Response:
    workflows = request.app[WORKFLOWS]
    workflow, secret = await workflows.create(await _json(request))
    return _answer(workflows, workflow, secret, status=201)


async def list_workflows(request: web.Request) -> web.Response:
    workflows = request.app[WORKFLOWS]
    limit, cursor = _paging(request)
    page = await request.app[STORAGE].list_workflows(limit=limit, cursor=cursor)
    return json_response(
        {"items": [workflows.present(w) for w in page.items], "nextCursor": page.next_cursor}
    )


async def get_workflow(request: web.Request) -> web.Response:
    workflows = request.app[WORKFLOWS]
    return json_response(workflows.present(await workflows.get(request.match_info["id"])))


async def replace_workflow(request: web.Request) -> web.Response:
    workflows = request.app[WORKFLOWS]
    workflow, secret = await workflows.replace(request.match_info["id"], await _json(request))
    return _answer(workflows, workflow, secret)


async def patch_workflow(request: web.Request) -> web.Response:
    workflows = request.app[WORKFLOWS]
    workflow, secret = await workflows.patch(request.match_info["id"], await _json(request))
    return _answer(workflows, workflow, secret)


async def rotate_secret(request: web.Request) -> web.Response:
    workflows = request.app[WORKFLOWS]
    workflow, secret = await workflows.rotate_secret(request.match_info["id"])
    return _answer(workflows, workflow, secret)


async def delete_workflow(request: web.Request) -> web.Response:
    await request.app[WORKFLOWS].delete(request.match_info["id"])
    return web.Response(status=204)


def _summary(record: ExecutionRecord) -> dict[str, Any]:
    return record.model_dump(
        mode="json",
        include={
            "id",
            "workflowId",
            "version",
            "status",
            "receivedAt",
            "startedAt",
            "finishedAt",
            "requestId",
            "error",
        },
    )


async def list_executions(request: web.Request) -> web.Response:
    workflow_id = request.match_info["id"]
    limit, cursor = _paging(request)
    storage = request.app[STORAGE]
    page = await storage.list_executions(workflow_id, limit=limit, cursor=cursor)
    if not page.items and cursor is None and await storage.get_workflow(workflow_id) is None:
        raise NotFound(f"workflow {workflow_id} not found")
    return json_response(
        {"items": [_summary(r) for r in page.items], "nextCursor": page.next_cursor}
    )


async def get_execution(request: web.Request) -> web.Response:
    record = await request.app[STORAGE].get_execution(request.match_info["id"])
    if record is None:
        raise NotFound(f"execution {request.match_info['id']} not found")
    return json_response(record.model_dump(mode="json"))


async def parse_sample(request: web.Request) -> web.Response:
    """The seed's "parse" button: every path of a sample, ready for trigger.request. A sample
    is held to the gateway's rules (a body nesting deeper than it accepts is a 400, the same
    400 the gateway would give); the answer is bounded and says `"truncated": true` when not
    every path or value is in it."""
    payload = await _json(request)
    if not isinstance(payload, dict):
        raise BadRequest(PARSE_USAGE)
    if "url" in payload:
        url = payload["url"]
        if not isinstance(url, str):
            raise BadRequest("url must be a string: a full URL or a bare query string")
        return _paths_answer("query", await asyncio.to_thread(_parse_url, url))
    if "body" in payload:
        return _paths_answer("body", await asyncio.to_thread(_parse_json_sample, payload["body"]))
    if "sample" in payload:
        sample, content_type = payload["sample"], payload.get("contentType", "application/json")
        if not isinstance(sample, str) or not isinstance(content_type, str):
            raise BadRequest("sample and contentType must be strings")
        media_type, _, parameters = content_type.partition(";")
        charset = parameters.partition("charset=")[2].strip() or None
        raw = _encode_sample(sample, charset)
        listed = await asyncio.to_thread(_parse_sample, raw, media_type.strip(), charset)
        return _paths_answer("body", listed)
    raise BadRequest(PARSE_USAGE)


def _parse_url(url: str) -> VariablePaths:
    return variable_paths(parse_query_string(_query_part(url)))


def _parse_json_sample(sample: Any) -> VariablePaths:
    return variable_paths(check_depth(sample))


def _parse_sample(raw: bytes, content_type: str, charset: str | None) -> VariablePaths:
    return variable_paths(parse_body(raw, content_type, charset))


def _encode_sample(sample: str, charset: str | None) -> bytes:
    """The sample as the bytes a sender would post in `charset`."""
    try:
        return sample.encode(charset or "utf-8")
    except LookupError as error:
        raise UnsupportedMediaType(f"unknown charset {charset!r}") from error
    except UnicodeEncodeError as error:
        raise BadRequest(
            f"sample cannot be written in {charset} (character {error.start})"
        ) from error


def _paths_answer(part: str, listed: VariablePaths) -> web.Response:
    return json_response({part: listed.paths, "truncated": listed.truncated})


def _query_part(url: str) -> str:
    """The query of a full URL (`https://x/y?a=1#f` -> `a=1`), or the text itself when it is a
    bare query string (`a=1&b=2`, `?a=1`)."""
    url = url.strip().split("#", 1)[0]
    if "?" in url:
        return url.split("?", 1)[1]
    parsed = urlsplit(url)
    return "" if parsed.scheme and parsed.netloc else url


async def healthz(request: web.Request) -> web.Response:
    storage_ok = await request.app[STORAGE].ping()
    broker_ok = request.app[BROKER].is_connected
    ok = storage_ok and broker_ok
    return json_response(
        {"status": "ok" if ok else "unavailable", "storage": storage_ok, "broker": broker_ok},
        status=200 if ok else 503,
    )
