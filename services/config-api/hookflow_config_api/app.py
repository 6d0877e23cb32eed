"""The config API's app factory and handlers (REST with JSON bodies, bearer token)."""

import asyncio
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry

from hookflow_config_api.captures import (
    CAPTURES,
    Captures,
    read_captures,
    start_capture,
    stop_capture,
)
from hookflow_config_api.console import add_console, is_console_file
from hookflow_config_api.docs import docs_asset, docs_page, is_docs_file
from hookflow_config_api.listing import (
    ExecutionFilter,
    Paging,
    execution_listing,
    version_listing,
    version_number,
    workflow_listing,
)
from hookflow_config_api.metrics import ApiMetrics
from hookflow_config_api.openapi import openapi_json
from hookflow_config_api.propagation import Propagation
from hookflow_config_api.replays import Replays
from hookflow_config_api.schemas import ExecutionSummary, LastExecution
from hookflow_config_api.versions import version_page
from hookflow_config_api.workflows import Workflows
from hookflow_shared.bodies import (
    VariablePaths,
    check_depth,
    parse_body,
    parse_query_string,
    variable_paths,
)
from hookflow_shared.crypto import secret_box
from hookflow_shared.errors import BadRequest, NotFound, StartupError, UnsupportedMediaType
from hookflow_shared.healthz import health_answer, storage_state
from hookflow_shared.http import HttpError, error_middleware, json_response
from hookflow_shared.messaging import Broker
from hookflow_shared.metrics import use_metrics
from hookflow_shared.models import EXECUTION, ExecutionRecord, StoredWorkflow
from hookflow_shared.resources import BROKER, INSTALLATION, STORAGE, use_resources
from hookflow_shared.settings import ConfigApiSettings
from hookflow_shared.storage import Storage

WORKFLOWS = web.AppKey("workflows", Workflows)
REPLAYS = web.AppKey("replays", Replays)
OPEN_PATHS = frozenset({"/healthz", "/metrics"})
"""What answers without the token: probes and scrapers hold none, and neither tells a secret."""
PARSE_USAGE = (
    'send {"url": "<a URL or a query string>"}, {"body": <a JSON sample>} '
    'or {"sample": "<a body as text>", "contentType": "<its type>"}'
)


class MissingToken(HttpError):
    status = 401
    headers = {"WWW-Authenticate": 'Bearer realm="hookflow"'}


def bearer_auth(token: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        path = request.path
        if path not in OPEN_PATHS and not is_console_file(path) and not is_docs_file(path):
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise MissingToken("missing or wrong bearer token (Authorization: Bearer <token>)")
        return await handler(request)

    return middleware


def create_app(
    settings: ConfigApiSettings,
    *,
    storage: Storage | None = None,
    broker: Broker | None = None,
    registry: CollectorRegistry | None = None,
) -> web.Application:
    """`registry`: where its metrics go (`hookflow run` shares one); a new one by default."""
    if settings.admin_token is None:
        raise StartupError("HOOKFLOW_ADMIN_TOKEN is not set: the config API needs a bearer token")
    registry = registry if registry is not None else CollectorRegistry()
    app = web.Application(
        middlewares=[
            ApiMetrics(registry).middleware(),
            error_middleware,
            bearer_auth(settings.admin_token.get_secret_value()),
        ]
    )
    use_metrics(app, registry)
    use_resources(app, settings, storage=storage, broker=broker)

    box = secret_box(settings, without="workflows with a signature cannot be saved")

    async def workflows(app: web.Application) -> AsyncIterator[None]:
        propagation = Propagation(
            app[BROKER],
            heartbeat_interval=settings.heartbeat_interval,
            timeout=settings.propagation_timeout,
        )
        await propagation.start()
        app[WORKFLOWS] = Workflows(app[STORAGE], app[BROKER], propagation, settings.public_url, box)
        app[REPLAYS] = Replays(app[STORAGE], app[BROKER], app[INSTALLATION])
        app[CAPTURES] = Captures(app[STORAGE], app[WORKFLOWS], propagation)
        yield
        await propagation.stop()

    app.cleanup_ctx.append(workflows)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/docs", docs_page)
    app.router.add_get("/docs/{asset}", docs_asset)
    app.router.add_post("/api/workflows", create_workflow)
    app.router.add_get("/api/workflows", list_workflows)
    app.router.add_get("/api/workflows/{id}", get_workflow)
    app.router.add_put("/api/workflows/{id}", replace_workflow)
    app.router.add_patch("/api/workflows/{id}", patch_workflow)
    app.router.add_delete("/api/workflows/{id}", delete_workflow)
    app.router.add_post("/api/workflows/{id}/signature:rotate", rotate_secret)
    app.router.add_post("/api/workflows/{id}/trigger:rotate-key", rotate_key)
    app.router.add_get("/api/workflows/{id}/versions", list_versions)
    app.router.add_get("/api/workflows/{id}/versions/{version}", get_version)
    app.router.add_get("/api/workflows/{id}/executions", list_workflow_executions)
    app.router.add_get("/api/executions", list_executions)
    app.router.add_get("/api/executions/{id}", get_execution)
    app.router.add_post("/api/executions/{id:[^/:]+}:replay", replay_execution)
    app.router.add_post("/api/webhook:parse", parse_sample)
    app.router.add_post("/api/workflows/{id}/captures", start_capture)
    app.router.add_get("/api/workflows/{id}/captures", read_captures)
    app.router.add_delete("/api/workflows/{id}/captures", stop_capture)
    add_console(app)
    return app


async def _json(request: web.Request) -> Any:
    try:
        return orjson.loads(await request.read())
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"body is not valid JSON: {error}") from error


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
    name, paging = workflow_listing(request.query)
    storage = request.app[STORAGE]
    page = await storage.list_workflows(limit=paging.limit, cursor=paging.cursor, name=name)
    latest = await asyncio.gather(*(_last_execution(storage, w.id) for w in page.items))
    # Both parts come out of the models of the OpenAPI document's list item (WorkflowListItem):
    # the workflow shaped by present(), its newest execution by LastExecution.
    items = [
        {**workflows.present(w), "lastExecution": last and last.model_dump(mode="json")}
        for w, last in zip(page.items, latest, strict=True)
    ]
    return json_response({"items": items, "nextCursor": page.next_cursor})


async def _last_execution(storage: Storage, workflow_id: str) -> LastExecution | None:
    """The workflow's newest execution, in brief: one read of the index by workflow and id."""
    page = await storage.list_executions(workflow_id=workflow_id, limit=1)
    if not page.items:
        return None
    newest = page.items[0]
    return LastExecution(
        id=newest.id,
        status=newest.status,
        started_at=newest.started_at,
        finished_at=newest.finished_at,
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


async def rotate_key(request: web.Request) -> web.Response:
    """A new trigger key (a leaked webhook URL); the old one answers 404 on every gateway
    once this answers."""
    workflows = request.app[WORKFLOWS]
    return _answer(workflows, await workflows.rotate_key(request.match_info["id"]), None)


async def list_versions(request: web.Request) -> web.Response:
    limit, before = version_listing(request.query)
    page = await version_page(
        request.app[STORAGE], request.match_info["id"], limit=limit, before=before
    )
    return json_response(page.model_dump(mode="json"))


async def get_version(request: web.Request) -> web.Response:
    """A version's document as it was stored (secrets never in clear)."""
    workflow_id, given = request.match_info["id"], request.match_info["version"]
    number = version_number(given)
    if number is None:
        raise BadRequest(f"version must be a version number (1, 2, ...); got {given!r}")
    storage = request.app[STORAGE]
    workflow = await storage.get_workflow_version(workflow_id, number)
    if workflow is None:
        if number == 1 or await storage.get_workflow_version(workflow_id, 1) is None:
            raise NotFound(f"workflow {workflow_id} not found")
        raise NotFound(f"workflow {workflow_id} has no version {number}")
    return json_response(request.app[WORKFLOWS].present(workflow))


async def delete_workflow(request: web.Request) -> web.Response:
    await request.app[WORKFLOWS].delete(request.match_info["id"])
    return web.Response(status=204)


def _summary(record: ExecutionRecord) -> dict[str, Any]:
    summary: dict[str, Any] = EXECUTION.dump_python(
        record, mode="json", include=set(ExecutionSummary.model_fields)
    )
    return summary


async def _executions(storage: Storage, found: ExecutionFilter, paging: Paging) -> web.Response:
    page = await storage.list_executions(
        workflow_id=found.workflow_id,
        status=found.status,
        since=found.since,
        until=found.until,
        limit=paging.limit,
        cursor=paging.cursor,
    )
    return json_response(
        {"items": [_summary(r) for r in page.items], "nextCursor": page.next_cursor}
    )


async def list_executions(request: web.Request) -> web.Response:
    """Executions of every workflow (or the one `workflow` names, deleted or not)."""
    return await _executions(request.app[STORAGE], *execution_listing(request.query))


async def list_workflow_executions(request: web.Request) -> web.Response:
    """A workflow's executions; its deleted versions' too (404 for a workflow never stored)."""
    workflow_id = request.match_info["id"]
    storage = request.app[STORAGE]
    found, paging = execution_listing(request.query, workflow_id=workflow_id)
    if await storage.get_workflow_version(workflow_id, 1) is None:
        raise NotFound(f"workflow {workflow_id} not found")
    return await _executions(storage, found, paging)


async def get_execution(request: web.Request) -> web.Response:
    record = await request.app[STORAGE].get_execution(request.match_info["id"])
    if record is None:
        raise NotFound(f"execution {request.match_info['id']} not found")
    return json_response(EXECUTION.dump_python(record, mode="json"))


async def replay_execution(request: web.Request) -> web.Response:
    """Run an execution's context again (202): `{}` or `{"version": "current"}` on the
    workflow's current version, `{"version": "original"}` on the version it ran."""
    payload = await _json(request) if await request.read() else {}
    run = await request.app[REPLAYS].replay(
        request.match_info["id"], payload, request_id=request.headers.get("X-Request-Id")
    )
    return json_response(
        {
            "id": run.execution_id,
            "workflowId": run.workflow_id,
            "version": run.version,
            "replayOf": run.replay_of,
        },
        status=202,
        headers={"Location": f"/api/executions/{run.execution_id}"},
    )


async def parse_sample(request: web.Request) -> web.Response:
    """The parse helper (the console's "parse" button): every path of a sample, ready for
    trigger.request. A sample is held to the gateway's rules (a body nesting deeper than it accepts
    is a 400, the same 400 the gateway would give); the answer is bounded and says `"truncated":
    true` when not every path or value is in it."""
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
    """Ready when the store answers and the broker is connected (changes are announced on
    it)."""
    storage = await storage_state(request.app[STORAGE])
    broker_ok = request.app[BROKER].is_connected
    return health_answer(storage["ok"] and broker_ok, broker={"ok": broker_ok}, storage=storage)
