"""What a node runner is, and the state a run carries from node to node."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import ClientSession

from hookflow_shared.models import ResponseRecord
from hookflow_shared.workflow.configs import NodeConfig
from hookflow_shared.workflow.templates import render


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


type Runner = Callable[[Any, RunState], Awaitable[Step]]
"""Runs one node: its parsed config (the model of its type's NodeSpec) and the run's state."""

__all__ = ["NodeConfig", "RunState", "Runner", "Step"]
