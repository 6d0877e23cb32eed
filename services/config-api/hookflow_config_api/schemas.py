"""The config API's requests and answers as pydantic models: the answers are shaped by them and
the OpenAPI document is generated from them, so the document cannot drift from the code.

The workflow as written and as answered are derived from the stored WorkflowDocument field by
field (the same definitions): only the secrets' forms differ. A client writes `password` and
`secret`; the store keeps `passwordHash` and `encryptedSecret`; an answer says `passwordSet`
and `secretSet`."""

import dataclasses
from dataclasses import MISSING
from datetime import datetime
from typing import Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, create_model

from hookflow_shared.models import (
    WIRE,
    BasicAuth,
    CapturedRequest,
    ExecutionRecord,
    ExecutionStatus,
    SignatureConfig,
    TriggerConfig,
    Wire,
    WorkflowDocument,
)


def derive(
    model: type[Any],
    name: str,
    *,
    drop: set[str] = frozenset(),  # type: ignore[assignment]
    keep: set[str] | None = None,
    fields: dict[str, Any] | None = None,
    extra: Literal["forbid", "ignore"] = "forbid",
    doc: str | None = None,
) -> type[BaseModel]:
    """A model with `model`'s fields (the same types, defaults and constraints), less `drop`
    (or only `keep`), with `fields` added or replaced. `model` is a pydantic model or a
    dataclass (the execution record)."""
    kept: dict[str, Any] = {
        field: definition
        for field, definition in _fields_of(model).items()
        if field not in drop and (keep is None or field in keep)
    }
    kept.update(fields or {})
    derived: type[BaseModel] = create_model(
        name,
        __config__=ConfigDict(**WIRE, extra=extra),
        __doc__=doc or model.__doc__,
        **kept,
    )
    return derived


def _fields_of(model: type[Any]) -> dict[str, tuple[Any, Any]]:
    """Each field's type and its FieldInfo (a model's) or default (a dataclass's)."""
    if issubclass(model, BaseModel):
        return {field: (info.annotation, info) for field, info in model.model_fields.items()}
    hints = get_type_hints(model, include_extras=True)
    return {
        item.name: (
            hints[item.name],
            Field(default_factory=item.default_factory)
            if item.default_factory is not MISSING
            else (... if item.default is MISSING else item.default),
        )
        for item in dataclasses.fields(model)
    }


# --- the workflow, as written --------------------------------------------------------------

BasicAuthInput = derive(BasicAuth, "BasicAuthInput", drop={"password_hash", "password_set"})
SignatureInput = derive(SignatureConfig, "SignatureInput", drop={"encrypted_secret", "secret_set"})
TriggerInput = derive(
    TriggerConfig,
    "TriggerInput",
    drop={"key"},
    fields={
        "basic_auth": (BasicAuthInput | None, None),
        "signature": (SignatureInput | None, None),
    },
)
WorkflowInput = derive(
    WorkflowDocument,
    "WorkflowInput",
    fields={"trigger": (TriggerInput | None, None)},
    doc="A workflow as created or replaced (PUT); a PATCH is an RFC 7396 merge patch of it. "
    "Read-only fields sent back from a GET (id, version, times, webhookUrl, trigger.key, "
    "passwordSet, secretSet) are ignored.",
)

# --- the workflow, as answered -------------------------------------------------------------

BasicAuthView = derive(
    BasicAuth,
    "BasicAuthView",
    keep={"username"},
    fields={"password_set": (bool, Field(description="A password is stored (never shown)."))},
)
SignatureView = derive(
    SignatureConfig,
    "SignatureView",
    drop={"secret", "encrypted_secret", "secret_set"},
    fields={
        "secret_set": (bool, Field(description="A secret is stored (never shown again).")),
        "secret": (
            str | None,
            Field(None, description="Only in the answer that generated it, this once."),
        ),
    },
)
TriggerView = derive(
    TriggerConfig,
    "TriggerView",
    fields={
        "key": (str, Field(description="The trigger's key: the last part of webhookUrl.")),
        "basic_auth": (BasicAuthView | None, None),
        "signature": (SignatureView | None, None),
    },
)
WorkflowView = derive(
    WorkflowDocument,
    "Workflow",
    fields={
        "id": (str, ...),
        "version": (int, Field(ge=1)),
        "created_at": (datetime, ...),
        "updated_at": (datetime, ...),
        "webhook_url": (str, Field(description="Where the third party POSTs.")),
        "trigger": (TriggerView, ...),
    },
    doc="A stored workflow: the document with its id, version, times and webhook URL. "
    "Secrets are never in it, except a signing secret just generated, once (in "
    "trigger.signature.secret).",
)


class LastExecution(Wire):
    """A workflow's newest execution, in brief (the console's list shows its status)."""

    id: str
    status: ExecutionStatus
    started_at: datetime | None = None
    finished_at: datetime | None = None


WorkflowListItem = derive(
    WorkflowView,
    "WorkflowListItem",
    fields={"last_execution": (LastExecution | None, None)},
    doc="A workflow in the list: the stored workflow and its newest execution (null when it "
    "has none).",
)


class WorkflowPage(Wire):
    items: list[WorkflowListItem]  # type: ignore[valid-type]
    next_cursor: str | None


# --- executions ----------------------------------------------------------------------------

ExecutionSummary = derive(
    ExecutionRecord,
    "ExecutionSummary",
    keep={
        "id",
        "workflow_id",
        "version",
        "status",
        "received_at",
        "started_at",
        "finished_at",
        "request_id",
        "error",
        "replay_of",
    },
    doc="An execution in a list; GET /api/executions/{id} has the whole record.",
)


class ExecutionPage(Wire):
    items: list[ExecutionSummary]  # type: ignore[valid-type]
    next_cursor: str | None


class CaptureInput(BaseModel):
    """How long to listen and how many requests to keep; both optional."""

    model_config = ConfigDict(extra="forbid")
    seconds: int = Field(120, ge=1, le=600, description="Two minutes by default, ten at most.")
    limit: int = Field(5, ge=1, le=20, description="Requests kept before the window closes.")


class CaptureAnswer(Wire):
    """A capture window and the requests it holds, oldest first."""

    active: bool
    capture_id: str | None
    until: datetime | None = None
    limit: int | None = None
    items: list[CapturedRequest]


class ReplayAnswer(Wire):
    """The new execution: it runs in the background; GET /api/executions/{id} once done."""

    id: str
    workflow_id: str
    version: int
    replay_of: str


# --- the parse helper ----------------------------------------------------------------------


class ParseUrl(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(description="A full URL or a bare query string.")


class ParseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: Any = Field(description="A sample JSON body.")


class ParseSample(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    sample: str = Field(description="A body as text: JSON, a form, XML...")
    content_type: str = Field(
        "application/json", alias="contentType", description="Its Content-Type (and charset)."
    )


class SamplePath(BaseModel):
    key: str
    type: Literal["null", "boolean", "number", "string", "array", "object"]
    value: Any = Field(None, description="Left out when too long (then truncated is true).")
    truncated: bool | None = None


class QueryPaths(BaseModel):
    query: list[SamplePath]
    truncated: bool = Field(description="Whether paths or values were left out.")


class BodyPaths(BaseModel):
    body: list[SamplePath]
    truncated: bool = Field(description="Whether paths or values were left out.")


# --- the rest ------------------------------------------------------------------------------


class DependencyState(BaseModel):
    ok: bool
    error: str | None = Field(None, description="Why not, when not.")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    storage: DependencyState
    broker: DependencyState


class ErrorDetail(BaseModel):
    path: str
    message: str


class ErrorBody(BaseModel):
    """Every error answer: what went wrong, and for a document that does not fit, each wrong
    field by its path."""

    error: str
    details: list[ErrorDetail] | None = None
