"""The contracts: the workflow document, the messages between services, the execution record.

Public documents (workflows, executions) use the camelCase names of the README's public contract;
internal messages are JSON of these models too, never pickle.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
    with_config,
)
from pydantic.alias_generators import to_camel

NodeKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")]
WorkflowName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
"""A workflow's slug: lowercase letters, digits and dashes, as in a URL or a file name."""


def now() -> datetime:
    """The current time in UTC, to the millisecond: what MongoDB keeps, so every store
    gives back exactly what it was given."""
    moment = datetime.now(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


WIRE = ConfigDict(
    alias_generator=to_camel,
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
)
"""Python attributes in snake_case, the public documents in camelCase (the README's contract):
models of what the API answers and stores read and write the camelCase names."""


class Wire(BaseModel):
    """A public document (or a part of one): camelCase on the wire and in storage."""

    model_config = WIRE


class Document(Wire):
    """A part of the public workflow document: unknown fields are errors, not silently lost."""

    model_config = ConfigDict(**WIRE, extra="forbid")


# --- the workflow document -------------------------------------------------------------------


class DeclaredVariable(Document):
    """A request field the trigger declares: `key` is a header name or a path, `alias` a label."""

    key: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    alias: str | None = None


class RequestVariables(Document):
    headers: list[DeclaredVariable] = []
    query: list[DeclaredVariable] = []
    body: list[DeclaredVariable] = []


class HeaderValue(Document):
    name: Annotated[str, StringConstraints(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]
    value: str


class ResponseConfig(Document):
    """What an async trigger answers once the run is queued (default 200 `ok`)."""

    status_code: int = Field(200, ge=200, le=599)
    headers: list[HeaderValue] = []
    body: Any = "ok"


class BasicAuth(Document):
    username: Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^:]*$")]
    password: str | None = Field(None, min_length=1, max_length=1024)
    """Write-only: stored as passwordHash; omitted on a change, the old one is kept."""
    password_hash: str | None = None
    """Stored (scrypt); never taken from a client, never answered."""
    password_set: bool | None = Field(None, exclude=True)
    """Read-only, in answers; ignored when sent back."""


SignatureScheme = Literal["standardWebhooks", "stripe", "github", "hmac"]


class SignatureConfig(Document):
    """Verify the sender's HMAC signature before anything else of the body is trusted."""

    scheme: SignatureScheme
    secret: str | None = Field(None, min_length=1, max_length=1024)
    """Write-only. Omitted on create, one is generated (not for stripe: Stripe issues it) and
    answered once; omitted on a change, the old one is kept."""
    encrypted_secret: str | None = None
    """Stored (encrypted under HOOKFLOW_SECRET_KEY); never taken from a client, never answered."""
    secret_set: bool | None = Field(None, exclude=True)
    tolerance: int = Field(300, ge=1, le=86_400)
    """Seconds a signed timestamp may differ from the gateway's clock (standardWebhooks,
    stripe, and hmac with a timestampHeader)."""
    header: str | None = Field(None, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
    """hmac: the header carrying the signature."""
    algorithm: Literal["sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    prefix: str = ""
    """hmac: text before the signature in the header, e.g. `sha256=`."""
    timestamp_header: str | None = Field(None, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
    """hmac: a header with the Unix time of signing; then `{timestamp}.{body}` is what is
    signed, and stale timestamps are refused."""

    @model_validator(mode="after")
    def _hmac_needs_header(self) -> "SignatureConfig":
        if self.scheme == "hmac" and self.header is None:
            raise ValueError("the hmac scheme needs `header`: the header carrying the signature")
        return self


class RateLimit(Document):
    """Requests per second for one trigger across all gateways, with bursts up to `burst`."""

    rate: float = Field(gt=0, le=1_000_000)
    burst: int = Field(ge=1, le=10_000_000)


class Idempotency(Document):
    """Where the sender's unique id of an event is (exactly one of header, query, body), and how
    long a taken id keeps a repeat from running again."""

    header: Annotated[str, StringConstraints(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")] | None = (
        None
    )
    """A request header, e.g. `Idempotency-Key` (case-insensitive)."""
    query: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    """A path in the parsed query string, e.g. `event.id`."""
    body: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None
    """A path in the parsed body, e.g. `out_trade_no` (Alipay) or `data.id`."""
    window: int = Field(86_400, ge=1, le=30 * 86_400)
    """Seconds during which a repeat of a taken id starts no new execution."""

    @model_validator(mode="after")
    def _exactly_one_source(self) -> "Idempotency":
        given = [name for name in ("header", "query", "body") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "name exactly one of header, query or body: where the sender's event id is"
            )
        return self


class TriggerConfig(Document):
    type: Literal["webhook"] = "webhook"
    key: str | None = None
    """Generated by the config API; read-only."""
    basic_auth: BasicAuth | None = None
    signature: SignatureConfig | None = None
    rate_limit: RateLimit | None = None
    """Unset: the gateways' default (HOOKFLOW_RATE_LIMIT, HOOKFLOW_RATE_BURST)."""
    request: RequestVariables = RequestVariables()
    response: ResponseConfig = ResponseConfig()
    max_body_bytes: int | None = Field(None, ge=1, le=64 * 1024 * 1024)
    idempotency: Idempotency | None = None
    """Unset: every call runs. Set: a repeat of an event id within the window runs once."""


class Node(Document):
    key: NodeKey
    type: Annotated[str, StringConstraints(min_length=1)]
    title: str | None = None
    config: dict[str, Any] = {}
    branches: dict[str, list["Node"]] | None = None


class WorkflowDocument(Document):
    name: WorkflowName | None = None
    """Optional, unique among the workflows not deleted: how scripts (`hookflow apply`) find
    the workflow to update without keeping its id."""
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: str | None = None
    enabled: bool = True
    sync: bool = False
    sync_timeout: float = Field(30.0, gt=0, le=300)
    """Seconds a sync caller waits before getting 504 (the run still finishes)."""
    trigger: TriggerConfig = TriggerConfig()
    nodes: list[Node] = []


class StoredWorkflow(Wire):
    """A workflow as stored: the document (with its trigger key) plus id, version and times."""

    id: str
    version: int
    created_at: datetime
    updated_at: datetime
    document: WorkflowDocument

    @property
    def key(self) -> str:
        assert self.document.trigger.key is not None
        return self.document.trigger.key


# --- messages ----------------------------------------------------------------------------------


@dataclass(slots=True)
class TriggerContext:
    """`$context` of a run: the configured headers, the parsed query and the parsed body."""

    headers: dict[str, str] = field(default_factory=dict)
    query: Any = field(default_factory=dict)
    body: Any = None


@dataclass(slots=True)
class RunRequest:
    """One accepted webhook call, to be run once.

    A plain dataclass, not a model: a gateway makes one per webhook, and a model's validation
    of what it has just made itself cost some 2 µs of it (4.6 -> 2.8 µs to make one); an
    executor reads it back through the message's model (RunBatch), validated."""

    execution_id: str
    workflow_id: str
    version: int
    received_at: datetime
    request_id: str
    context: TriggerContext
    reply_to: str | None = None
    """Sync mode: where the executor sends the reply (correlated by execution_id)."""
    installation: str | None = None
    """The installation that accepted it (kept in its storage): an executor of another
    installation sharing the broker never takes it."""
    idempotency_key: str | None = None
    """The sender's event id, when the trigger has `idempotency` and the request carried one."""
    replay_of: str | None = None
    """The execution this run replays (POST /api/executions/{id}:replay)."""


RUN = TypeAdapter(RunRequest)
"""Validates one run read from elsewhere (a message's run on its own)."""


class RunBatch(BaseModel):
    """What one broker message carries: the runs a gateway accepted in the same instant."""

    runs: list[RunRequest]


_OPTIONAL_RUN_FIELDS = ("reply_to", "installation", "idempotency_key", "replay_of")


def _run_fields(value: object) -> dict[str, Any]:
    if isinstance(value, RunRequest):
        written = {
            "execution_id": value.execution_id,
            "workflow_id": value.workflow_id,
            "version": value.version,
            "received_at": value.received_at,
            "request_id": value.request_id,
            "context": value.context,
        }
        for name in _OPTIONAL_RUN_FIELDS:  # left out when null (their default): less to carry
            if (field_value := getattr(value, name)) is not None:
                written[name] = field_value
        return written
    if isinstance(value, TriggerContext):
        return {"headers": value.headers, "query": value.query, "body": value.body}
    raise TypeError(f"{type(value).__name__} is not part of a run message")


def run_batch_json(runs: Sequence[RunRequest]) -> bytes:
    """The message of a RunBatch, straight from the runs (orjson: a third of pydantic's time)."""
    return orjson.dumps(
        {"runs": runs}, default=_run_fields, option=orjson.OPT_PASSTHROUGH_DATACLASS
    )


class RunReply(BaseModel):
    """Sync mode: what the executor tells the waiting gateway once a run is recorded."""

    type: Literal["run"] = "run"
    execution_id: str
    status: "ExecutionStatus"
    response: "ResponseRecord | None" = None
    """The response node's answer; None when the workflow had none."""


class ConfigApplied(BaseModel):
    """A gateway telling the config API that it serves a change (or refuses its workflow's
    webhooks with 503 until it can)."""

    type: Literal["config"] = "config"
    change_id: str
    gateway_id: str


Reply = Annotated[RunReply | ConfigApplied, Field(discriminator="type")]


class Replies(BaseModel):
    """What one reply message carries: the replies for one caller that are ready together."""

    replies: list[Reply]


class ConfigEvent(BaseModel):
    """A change to a workflow, for the gateways' trigger caches. Carries no secrets."""

    type: Literal["created", "updated", "deleted"]
    workflow_id: str
    key: str
    version: int
    change_id: str | None = None
    reply_to: str | None = None
    """Where each gateway confirms (ConfigApplied) once it serves the change."""


class GatewayHeartbeat(BaseModel):
    """A gateway saying it is alive (the gateways share out rate limits by it, the config API
    waits for the confirmations of the gateways alive), or that it is stopping."""

    type: Literal["heartbeat"] = "heartbeat"
    gateway_id: str
    stopping: bool = False


class RollCall(BaseModel):
    """A config API that just started asking every gateway for a heartbeat now."""

    type: Literal["rollcall"] = "rollcall"


class CaptureEvent(BaseModel):
    """The console listens to a workflow's webhooks (`until` set) or stops (`until` None): the
    gateways sample its requests into storage until then, at most `limit` of them."""

    type: Literal["capture"] = "capture"
    workflow_id: str
    key: str
    until: datetime | None = None
    limit: int = 0
    capture_id: str | None = None
    change_id: str | None = None
    reply_to: str | None = None
    """Where each gateway confirms (ConfigApplied) once it listens."""


Event = Annotated[
    ConfigEvent | GatewayHeartbeat | RollCall | CaptureEvent, Field(discriminator="type")
]
EVENT = TypeAdapter[ConfigEvent | GatewayHeartbeat | RollCall | CaptureEvent](Event)


# --- the execution record ----------------------------------------------------------------------

ExecutionStatus = Literal["succeeded", "failed"]


# Slotted dataclasses, not models, like a run: an executor makes a record and a NodeResult for
# each node it runs, every run, and a model's validation of what it has just made cost some 12 µs
# a run (sync example: 15 -> 2 µs); pydantic writing it took 12 µs more (orjson: 5.6). They are read
# from a store and answered by the API through pydantic (EXECUTION), camelCase as before.


@with_config(WIRE)
@dataclass(slots=True, kw_only=True)
class NodeResult:
    """What one node of a run gave, and when it ran."""

    key: str
    type: str
    status: Literal["succeeded", "failed"]
    result: Any = None
    error: str | None = None
    started_at: datetime
    finished_at: datetime


@with_config(WIRE)
@dataclass(slots=True, kw_only=True)
class ResponseRecord:
    """What a sync caller was answered (a response node's)."""

    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


@with_config(WIRE)
@dataclass(slots=True, kw_only=True)
class ExecutionRecord:
    """What became of one accepted webhook: its trigger context, each node's result, the
    answer a sync caller got, and why it failed if it did."""

    id: str
    workflow_id: str
    version: int
    status: ExecutionStatus
    received_at: datetime
    started_at: datetime
    finished_at: datetime
    request_id: str
    context: TriggerContext
    nodes: list[NodeResult] = field(default_factory=list)
    response: ResponseRecord | None = None
    error: str | None = None
    idempotency_key: str | None = None
    replay_of: str | None = None


EXECUTION = TypeAdapter(ExecutionRecord)
"""Reads a record (validated) and writes it for an answer: `EXECUTION.dump_python(record,
mode="json")`."""


def response_document(response: ResponseRecord) -> dict[str, Any]:
    """A response's camelCase document: in the record, and a response node's result."""
    return {"statusCode": response.status_code, "headers": response.headers, "body": response.body}


def _execution_document(record: ExecutionRecord) -> dict[str, Any]:
    """The record's camelCase document, field by field: a comprehension over its fields took
    twice as long, and tests/test_records.py checks it against what EXECUTION writes."""
    context, response = record.context, record.response
    return {
        "id": record.id,
        "workflowId": record.workflow_id,
        "version": record.version,
        "status": record.status,
        "receivedAt": record.received_at,
        "startedAt": record.started_at,
        "finishedAt": record.finished_at,
        "requestId": record.request_id,
        "context": {"headers": context.headers, "query": context.query, "body": context.body},
        "nodes": [
            {
                "key": node.key,
                "type": node.type,
                "status": node.status,
                "result": node.result,
                "error": node.error,
                "startedAt": node.started_at,
                "finishedAt": node.finished_at,
            }
            for node in record.nodes
        ],
        "response": None if response is None else response_document(response),
        "error": record.error,
        "idempotencyKey": record.idempotency_key,
        "replayOf": record.replay_of,
    }


def execution_json(record: ExecutionRecord) -> bytes:
    """The record as stored: the document EXECUTION reads, written by orjson (5.6 µs for the
    sync example's, pydantic 9 µs). What orjson cannot write (an integer beyond 64 bits, a key
    that is not text, a value of another type in a node's result) is left to pydantic."""
    try:
        return orjson.dumps(_execution_document(record), option=orjson.OPT_UTC_Z)
    except orjson.JSONEncodeError:
        return EXECUTION.dump_json(record)


class CapturedRequest(Wire):
    """A webhook request sampled for the console while it listens: its headers without
    credentials (no Authorization, cookies or signature values), its query and its body."""

    id: str
    workflow_id: str
    capture_id: str
    received_at: datetime
    method: str
    content_type: str
    headers: dict[str, str] = {}
    query_string: str = ""
    query: Any = None
    body: Any = None


def error_details(error: ValidationError, prefix: str = "") -> list[dict[str, str]]:
    """Pydantic's errors as [{"path": "nodes[0].config.x", "message": ...}]."""
    details = []
    for item in error.errors(include_url=False):
        details.append({"path": format_path(item["loc"], prefix), "message": item["msg"]})
    return details


def format_path(loc: tuple[int | str, ...] | list[int | str], prefix: str = "") -> str:
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(document)"
