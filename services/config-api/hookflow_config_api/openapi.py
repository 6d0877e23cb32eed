"""`GET /openapi.json`: the config API's OpenAPI 3.1 document, assembled from the routes the
app serves and the pydantic models of schemas.py (pydantic writes JSON Schema 2020-12, OpenAPI
3.1's dialect). Each route is described once, in OPERATIONS; a route without a description
fails the build of the document (tests/test_openapi.py), so a new route cannot go unlisted."""

import functools
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.json_schema import JsonSchemaMode

from hookflow_config_api import schemas
from hookflow_config_api.docs import ASSETS
from hookflow_config_api.listing import MAX_PAGE, WORKFLOW_NAME
from hookflow_config_api.replays import ReplayOptions
from hookflow_config_api.versions import VersionPage
from hookflow_shared.http import json_response
from hookflow_shared.models import ExecutionRecord, ExecutionStatus

ID = r"^[0-9a-f]{32}$"
# --- query parameters (listing.py checks them; these describe them) ------------------------


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Paging(_Query):
    limit: int = Field(50, ge=1, le=MAX_PAGE, description="Items per page.")
    cursor: str | None = Field(
        None, pattern=ID, description="The previous page's nextCursor; none for the first."
    )


class WorkflowQuery(Paging):
    name: str | None = Field(
        None, pattern=WORKFLOW_NAME.pattern, description="Only the workflow of this name."
    )


class VersionQuery(_Query):
    limit: int = Field(50, ge=1, le=MAX_PAGE, description="Versions per page.")
    cursor: str | None = Field(
        None, pattern=r"^[1-9][0-9]{0,14}$", description="The previous page's nextCursor."
    )


class WorkflowExecutionQuery(Paging):
    status: ExecutionStatus | None = None
    since: datetime | None = Field(None, description="Received at or after (with offset).")
    until: datetime | None = Field(None, description="Received before (with offset).")


class CaptureQuery(_Query):
    capture: str | None = Field(
        None, pattern=ID, description="The captureId a POST answered; none for the open one."
    )


class ExecutionQuery(WorkflowExecutionQuery):
    workflow: str | None = Field(None, pattern=ID, description="Only this workflow's.")


# --- operations ----------------------------------------------------------------------------

Model = type
"""A pydantic model, or a dataclass pydantic reads (the execution record)."""

ERRORS = {
    400: "The body is not JSON, or a parameter is wrong (the error says what is allowed).",
    401: "Missing or wrong bearer token.",
    404: "No such thing.",
    409: "A conflict: the name is taken, or the workflow changed meanwhile.",
    415: "The sample's charset is unknown.",
    422: "The document does not fit (details lists each wrong field by its path).",
    500: "HOOKFLOW_SECRET_KEY is not set, so a signing secret cannot be stored.",
    503: "The storage or the broker is unavailable: nothing was changed; retry.",
}
WORKFLOW_CHANGE = (400, 404, 409, 422, 500)


@dataclass(frozen=True)
class Operation:
    summary: str
    answer: Model | None = None
    status: int = 200
    body: Model | Literal["merge-patch"] | tuple[Model, ...] | None = None
    body_required: bool = True
    query: type[_Query] | None = None
    errors: tuple[int, ...] = ()
    public: bool = False
    content: str = "application/json"
    answers: tuple[Model, ...] = ()
    """Several shapes of answer (oneOf), instead of `answer`."""
    media: tuple[str, ...] = ()
    """The media types of an answer that is a page or a file rather than JSON."""


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("GET", "/healthz"): Operation(
        "Whether the storage and the broker answer (503 when not).",
        schemas.Health,
        public=True,
    ),
    ("GET", "/openapi.json"): Operation("This document.", public=True),
    ("GET", "/docs"): Operation(
        "Interactive documentation of this API.", public=True, media=("text/html",)
    ),
    ("GET", "/docs/{asset}"): Operation(
        "The documentation page's scripts and styles.",
        public=True,
        media=tuple(sorted(set(ASSETS.values()))),
        errors=(401, 404),  # a name not among the assets is not public
    ),
    # Described here for the routes other parts of the service add (the metrics, the web
    # console): a description of a route the app does not serve is left out of the document.
    ("GET", "/metrics"): Operation(
        "Prometheus metrics, in the text format.", public=True, media=("text/plain",)
    ),
    ("GET", "/"): Operation("The web console.", public=True, media=("text/html",)),
    ("GET", "/console/{name}"): Operation(
        "The web console's scripts, styles and images.",
        public=True,
        media=("image/png", "image/svg+xml", "text/css", "text/html", "text/javascript"),
        errors=(404,),
    ),
    ("POST", "/api/workflows"): Operation(
        "Create a workflow: its trigger key and webhook URL are generated.",
        schemas.WorkflowView,
        status=201,
        body=schemas.WorkflowInput,
        errors=(400, 409, 422, 500),
    ),
    ("GET", "/api/workflows"): Operation(
        "The workflows, newest first.", schemas.WorkflowPage, query=WorkflowQuery, errors=(400,)
    ),
    ("GET", "/api/workflows/{id}"): Operation("A workflow.", schemas.WorkflowView, errors=(404,)),
    ("PUT", "/api/workflows/{id}"): Operation(
        "Replace a workflow: a new version with the same key (none when nothing changed).",
        schemas.WorkflowView,
        body=schemas.WorkflowInput,
        errors=WORKFLOW_CHANGE,
    ),
    ("PATCH", "/api/workflows/{id}"): Operation(
        "Change part of a workflow (RFC 7396 merge patch): a new version, none when nothing "
        "changed.",
        schemas.WorkflowView,
        body="merge-patch",
        errors=WORKFLOW_CHANGE,
    ),
    ("DELETE", "/api/workflows/{id}"): Operation(
        "Delete a workflow: its key answers 404 at once; its versions and executions stay.",
        status=204,
        errors=(404,),
    ),
    ("POST", "/api/workflows/{id}/signature:rotate"): Operation(
        "A new signing secret, answered this once.",
        schemas.WorkflowView,
        errors=(404, 409, 422, 500),
    ),
    ("POST", "/api/workflows/{id}/trigger:rotate-key"): Operation(
        "A new trigger key (a leaked webhook URL): the old one answers 404 on every gateway "
        "once this answers.",
        schemas.WorkflowView,
        errors=(404, 409),
    ),
    ("GET", "/api/workflows/{id}/versions"): Operation(
        "A workflow's versions, newest first, each with the paths it changed.",
        VersionPage,
        query=VersionQuery,
        errors=(400, 404),
    ),
    ("GET", "/api/workflows/{id}/versions/{version}"): Operation(
        "One version of a workflow, as it was stored.", schemas.WorkflowView, errors=(400, 404)
    ),
    ("POST", "/api/workflows/{id}/captures"): Operation(
        "Listen to the workflow's webhooks (the console's live capture); answers once every "
        "gateway listens.",
        schemas.CaptureAnswer,
        status=201,
        body=schemas.CaptureInput,
        body_required=False,
        errors=(400, 404, 422),
    ),
    ("GET", "/api/workflows/{id}/captures"): Operation(
        "The requests captured in a window (the open one without `capture`), oldest first.",
        schemas.CaptureAnswer,
        query=CaptureQuery,
        errors=(400, 404),
    ),
    ("DELETE", "/api/workflows/{id}/captures"): Operation(
        "Stop listening; the samples stay readable until they expire (an hour).",
        status=204,
        errors=(404,),
    ),
    ("GET", "/api/workflows/{id}/executions"): Operation(
        "A workflow's executions, newest first (its deleted versions' too).",
        schemas.ExecutionPage,
        query=WorkflowExecutionQuery,
        errors=(400, 404),
    ),
    ("GET", "/api/executions"): Operation(
        "Executions of every workflow, newest first.",
        schemas.ExecutionPage,
        query=ExecutionQuery,
        errors=(400,),
    ),
    ("GET", "/api/executions/{id}"): Operation(
        "An execution's whole record.", ExecutionRecord, errors=(404,)
    ),
    ("POST", "/api/executions/{id}:replay"): Operation(
        "Run an execution's trigger context again, on the current version or the original.",
        schemas.ReplayAnswer,
        status=202,
        body=ReplayOptions,
        body_required=False,
        errors=(400, 404, 409),
    ),
    ("POST", "/api/webhook:parse"): Operation(
        "Every path of a sample URL or body, with its value and type, for trigger.request.",
        body=(schemas.ParseUrl, schemas.ParseBody, schemas.ParseSample),
        answers=(schemas.QueryPaths, schemas.BodyPaths),
        errors=(400, 415),
    ),
}

PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "id": {"type": "string", "pattern": ID},
    "version": {"type": "integer", "minimum": 1, "maximum": 10**15 - 1},
    "asset": {"type": "string", "enum": sorted(ASSETS)},
    "name": {"type": "string"},
}


class UndocumentedRoute(Exception):
    """A route of the app that OPERATIONS does not describe."""


def routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves (HEAD aside: aiohttp adds it to
    each GET)."""
    found = []
    for route in app.router.routes():
        if route.method in ("HEAD", "*"):
            continue
        found.append((route.method, route.resource.canonical if route.resource else ""))
    return found


async def openapi_json(request: web.Request) -> web.Response:
    return json_response(document(tuple(routes(request.app))))


@functools.cache
def document(served: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """The OpenAPI document of these routes (made once per set of routes)."""
    missing = [route for route in served if route not in OPERATIONS]
    if missing:
        raise UndocumentedRoute(f"routes without a description in OPERATIONS: {missing}")
    refs, schemas_ = _schemas(served)
    paths: dict[str, dict[str, Any]] = {}
    for method, path in served:
        operation = OPERATIONS[method, path]
        paths.setdefault(path, {})[method.lower()] = _operation(method, path, operation, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hookflow config API",
            "version": "1",
            "description": "Workflows, their triggers and versions, their executions. Every "
            "call but /healthz, /openapi.json and /docs takes "
            "`Authorization: Bearer <HOOKFLOW_ADMIN_TOKEN>`.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas_,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The admin token (HOOKFLOW_ADMIN_TOKEN).",
                }
            },
        },
        "security": [{"bearer": []}],
    }


def _schemas(
    served: tuple[tuple[str, str], ...],
) -> tuple[dict[tuple[Model, JsonSchemaMode], Any], dict[str, Any]]:
    """JSON Schemas of every model the operations use, as components (one set of $defs)."""
    wanted: list[tuple[Model, JsonSchemaMode]] = [(schemas.ErrorBody, "serialization")]
    for route in served:
        operation = OPERATIONS[route]
        answers = operation.answers or ((operation.answer,) if operation.answer else ())
        wanted.extend((model, "serialization") for model in answers)
        bodies = operation.body if isinstance(operation.body, tuple) else (operation.body,)
        wanted.extend((model, "validation") for model in bodies if isinstance(model, type))
    unique = list(dict.fromkeys(wanted))
    refs, definitions = TypeAdapter.json_schemas(
        [(model, mode, TypeAdapter(model)) for model, mode in unique],
        ref_template="#/components/schemas/{model}",
    )
    return refs, definitions.get("$defs", {})


def _operation(
    method: str, path: str, operation: Operation, refs: dict[tuple[Model, JsonSchemaMode], Any]
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "operationId": _operation_id(method, path),
        "summary": operation.summary,
        "tags": [_tag(path)],
        "parameters": _parameters(path, operation),
        "responses": _responses(path, operation, refs),
    }
    if operation.public:
        spec["security"] = []
    body = _request_body(operation, refs)
    if body is not None:
        spec["requestBody"] = body
    return spec


def _tag(path: str) -> str:
    """The page's sections: workflows, executions, the parse helper, the service itself."""
    for prefix, tag in (
        ("/api/workflows", "workflows"),
        ("/api/executions", "executions"),
        ("/api/webhook:parse", "parse helper"),
    ):
        if path.startswith(prefix):
            return tag
    return "service"


def _operation_id(method: str, path: str) -> str:
    words = re.findall(r"[a-z0-9]+", path.replace("{", "by-").lower())
    return method.lower() + "".join(word.capitalize() for word in words)


def _parameters(path: str, operation: Operation) -> list[dict[str, Any]]:
    parameters = []
    for name in re.findall(r"\{(\w+)\}", path):
        schema = PATH_PARAMETERS[name]
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    if operation.query is not None:
        schema = operation.query.model_json_schema()
        for name, prop in schema["properties"].items():
            description = prop.pop("description", None)
            prop.pop("title", None)
            parameter = {"name": name, "in": "query", "required": False, "schema": prop}
            if description:
                parameter["description"] = description
            parameters.append(parameter)
    return parameters


def _request_body(
    operation: Operation, refs: dict[tuple[Model, JsonSchemaMode], Any]
) -> dict[str, Any] | None:
    if operation.body is None:
        return None
    if operation.body == "merge-patch":
        schema: dict[str, Any] = {
            "type": "object",
            "description": "An RFC 7396 merge patch of the WorkflowInput: fields given replace "
            "(objects merge), null removes.",
        }
    elif isinstance(operation.body, tuple):
        schema = {"oneOf": [refs[model, "validation"] for model in operation.body]}
    else:
        schema = refs[operation.body, "validation"]
    return {
        "required": operation.body_required,
        "content": {"application/json": {"schema": schema}},
    }


def _responses(
    path: str, operation: Operation, refs: dict[tuple[Model, JsonSchemaMode], Any]
) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": operation.summary}
    if operation.answers:
        schema = {"oneOf": [refs[model, "serialization"] for model in operation.answers]}
        answer["content"] = {operation.content: {"schema": schema}}
    elif operation.answer is not None:
        answer["content"] = {operation.content: {"schema": refs[operation.answer, "serialization"]}}
    elif path == "/openapi.json":
        answer["content"] = {"application/json": {"schema": {"type": "object"}}}
    elif operation.media:
        answer["content"] = {kind: {"schema": {"type": "string"}} for kind in operation.media}
    if operation.status in (201, 202) or path.endswith(("rotate", "rotate-key")):
        answer["headers"] = {"Location": {"schema": {"type": "string"}}}
    responses: dict[str, Any] = {str(operation.status): answer}
    error = {"application/json": {"schema": refs[schemas.ErrorBody, "serialization"]}}
    codes = list(operation.errors)
    if not operation.public:
        codes += [401, 503]
    for code in sorted(set(codes)):
        responses[str(code)] = {"description": ERRORS[code], "content": error}
    if path == "/healthz":
        responses["503"] = {
            "description": "The storage or the broker does not answer.",
            "content": answer["content"],
        }
    return responses
