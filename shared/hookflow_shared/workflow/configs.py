"""Each node type's config, as a workflow document states it. Validated when a workflow is
saved (the config API) and parsed once per workflow version (the executor)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hookflow_shared.models import WIRE, HeaderValue
from hookflow_shared.workflow.expressions import ExpressionError, compile_expression


class NodeConfig(BaseModel):
    """Base of node configs: unknown fields are errors when a workflow is saved; camelCase in
    the document, snake_case in Python."""

    model_config = ConfigDict(**WIRE, extra="forbid")


def _compiles(expression: str) -> str:
    try:
        compile_expression(expression)
    except ExpressionError as error:
        raise ValueError(f"expression does not compile: {error}") from error
    return expression


# --- condition ---------------------------------------------------------------------------------

type Calculator = Literal[
    "equal", "notEqual", "gt", "gte", "lt", "lte", "includes", "notIncludes", "startsWith",
    "notStartsWith", "endsWith", "notEndsWith", "empty", "notEmpty",
]  # fmt: skip
UNARY = frozenset({"empty", "notEmpty"})
"""Calculators that take one operand; the others take two."""


class Comparison(BaseModel):
    """One item of a group: a comparison (`calculator` and `operands`) or a nested `group`."""

    model_config = ConfigDict(**WIRE, extra="forbid")
    calculator: Calculator | None = None
    operands: list[Any] = []
    group: "Group | None" = None

    @model_validator(mode="after")
    def _one_form(self) -> "Comparison":
        if self.group is not None:
            if self.calculator is not None or self.operands:
                raise ValueError("an item is a comparison or a group, not both")
            return self
        if self.calculator is None:
            raise ValueError("an item needs a calculator (equal, gt, includes...) or a group")
        wanted = 1 if self.calculator in UNARY else 2
        if len(self.operands) != wanted:
            raise ValueError(f"{self.calculator} takes {wanted} operand(s)")
        return self


class Group(BaseModel):
    model_config = ConfigDict(**WIRE, extra="forbid")
    type: Literal["and", "or"] = "and"
    calculations: list[Comparison] = []


class ConditionConfig(NodeConfig):
    engine: Literal["basic", "cel"] = "basic"
    reject_on_false: bool = False
    calculation: Comparison | None = None
    """basic: {"group": {"type": "and", "calculations": [...]}}"""
    expression: str | None = None
    """cel: an expression giving true or false, e.g. `context.body.status == "paid"`."""

    @model_validator(mode="after")
    def _engine_input(self) -> "ConditionConfig":
        if self.engine == "basic":
            if self.calculation is None or self.expression is not None:
                raise ValueError("the basic engine takes `calculation` (and no `expression`)")
        else:
            if self.expression is None or self.calculation is not None:
                raise ValueError("the cel engine takes `expression` (and no `calculation`)")
            _compiles(self.expression)
        return self


# --- calculation -------------------------------------------------------------------------------


class CalculationConfig(NodeConfig):
    engine: Literal["cel"] = "cel"
    expression: str

    @field_validator("expression")
    @classmethod
    def _expression_compiles(cls, expression: str) -> str:
        return _compiles(expression)


# --- request -----------------------------------------------------------------------------------


class Param(NodeConfig):
    name: str = Field(min_length=1)
    value: Any = ""


class RequestNodeConfig(NodeConfig):
    """NocoBase's request node's names: `params` for the query, `data` for the body, `timeout`
    in milliseconds."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "POST"
    url: str = Field(min_length=1)
    headers: list[HeaderValue] = []
    params: list[Param] = []
    content_type: Literal["application/json", "application/x-www-form-urlencoded"] = (
        "application/json"
    )
    data: Any = None
    timeout: int = Field(5000, ge=1, le=300_000)
    """Milliseconds for the whole call."""
    ignore_fail: bool = False
    """On failure, record it and go on with the next node instead of failing the execution."""


# --- response ----------------------------------------------------------------------------------

RESERVED_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "date", "server"}
)
"""Headers the HTTP server sets itself; a workflow may not forge them."""


class ResponseNodeConfig(NodeConfig):
    status_code: int | str = 200
    """A number, or a template giving one (`{{$jobsMapByNodeKey.check}}`)."""
    headers: list[HeaderValue] = []
    body: Any = None
    """Any JSON, templated all the way down; a string is sent as text, the rest as JSON."""

    @field_validator("status_code")
    @classmethod
    def _status(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 200 <= value <= 599:
            raise ValueError("statusCode must be between 200 and 599")
        if isinstance(value, str) and "{{" not in value:
            raise ValueError("statusCode must be a number or a template giving one")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, headers: list[HeaderValue]) -> list[HeaderValue]:
        for header in headers:
            if header.name.lower() in RESERVED_HEADERS:
                raise ValueError(f"the {header.name} header is set by the server")
        return headers


# --- end ---------------------------------------------------------------------------------------


class EndConfig(NodeConfig):
    end_status: Literal["succeeded", "failed"] = "succeeded"
