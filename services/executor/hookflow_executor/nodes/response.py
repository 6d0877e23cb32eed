"""`response` (sync workflows only): what the waiting caller gets. It ends the execution at
once: nothing after it runs."""

from typing import Any

from pydantic import field_validator

from hookflow_executor.nodes.base import NodeConfig, NodeType, RunState, Step, register
from hookflow_shared.models import HeaderValue, ResponseRecord

# Headers the HTTP server sets itself; a workflow may not forge them.
RESERVED_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "date", "server"}
)


class ResponseNodeConfig(NodeConfig):
    statusCode: int | str = 200
    """A number, or a template giving one (`{{$jobsMapByNodeKey.check}}`)."""
    headers: list[HeaderValue] = []
    body: Any = None
    """Any JSON, templated all the way down; a string is sent as text, the rest as JSON."""

    @field_validator("statusCode")
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


class Response(NodeType[ResponseNodeConfig]):
    name = "response"
    config = ResponseNodeConfig
    sync_only = True

    async def run(self, config: ResponseNodeConfig, state: RunState) -> Step:
        status = state.render(config.statusCode)
        try:
            code = int(status)
        except (TypeError, ValueError):
            raise ValueError(f"statusCode gave {status!r}, not a number") from None
        if not 200 <= code <= 599:
            raise ValueError(f"statusCode gave {code}, outside 200-599")
        headers = {h.name: str(state.render(h.value)) for h in config.headers}
        response = ResponseRecord(statusCode=code, headers=headers, body=state.render(config.body))
        return Step(result=response.model_dump(), response=response, end="succeeded")


register(Response())
