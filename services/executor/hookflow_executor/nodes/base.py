"""What a node type is, and the state a run carries from node to node."""

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from aiohttp import ClientSession
from pydantic import BaseModel, ConfigDict

from hookflow_shared.models import ResponseRecord
from hookflow_shared.templates import render


class NodeConfig(BaseModel):
    """Base of node configs: unknown fields are errors when a workflow is saved."""

    model_config = ConfigDict(extra="forbid")


@dataclass(slots=True)
class RunState:
    """The variables templates read (`$context`, `$jobsMapByNodeKey`, `$system`) and what the
    nodes of a run share (the executor's HTTP client)."""

    scope: dict[str, Any]
    http: ClientSession | None = None

    @property
    def jobs(self) -> dict[str, Any]:
        jobs: dict[str, Any] = self.scope["$jobsMapByNodeKey"]
        return jobs

    def render(self, value: Any) -> Any:
        return render(value, self.scope)


@dataclass(slots=True)
class Step:
    """What running a node gave: its result, and where the flow goes next."""

    result: Any = None
    branch: str | None = None
    """Which of the node's branches to run next (None: go on with the next node)."""
    end: Literal["succeeded", "failed"] | None = None
    """End the execution here with this status."""
    response: ResponseRecord | None = None
    """What a sync caller gets (the response node)."""
    error: str | None = None
    """The node failed but the flow goes on (a request node with ignoreFail)."""


class NodeType[C: NodeConfig]:
    """A kind of node. Subclasses set `name` and `config`, and implement `run`."""

    name: ClassVar[str]
    config: type[C]
    branches: ClassVar[tuple[str, ...]] = ()
    """Names of the branches this node may have (a condition: "true" and "false")."""
    sync_only: ClassVar[bool] = False
    """Only valid in sync workflows (the response node)."""

    async def run(self, config: C, state: RunState) -> Step:
        raise NotImplementedError


NODE_TYPES: dict[str, NodeType[Any]] = {}


def register[T: NodeType[Any]](node_type: T) -> T:
    NODE_TYPES[node_type.name] = node_type
    return node_type
