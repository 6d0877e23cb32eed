"""The workflow engine: compiles a stored workflow into a plan once, then runs it per webhook.

Nodes run in order; a node with branches runs the chosen branch, after which the flow goes
on with the next node of the enclosing list; a node may end the execution (end, response,
a condition with rejectOnFalse). Every node's result is recorded.
"""

from dataclasses import dataclass
from datetime import datetime

import structlog
from aiohttp import ClientSession
from pydantic import ValidationError

from hookflow_executor.nodes import Runner, RunState, Step, standard_runners
from hookflow_shared.models import (
    ExecutionRecord,
    ExecutionStatus,
    Node,
    NodeResult,
    ResponseRecord,
    RunRequest,
    StoredWorkflow,
    error_details,
    now,
)
from hookflow_shared.workflow.configs import NodeConfig
from hookflow_shared.workflow.language import Language, standard_language

log = structlog.get_logger("hookflow.executor")


@dataclass(frozen=True, slots=True)
class PlannedNode:
    key: str
    type: str
    run: Runner
    config: NodeConfig
    branches: dict[str, tuple["PlannedNode", ...]]


@dataclass(frozen=True, slots=True)
class Plan:
    workflow: StoredWorkflow
    nodes: tuple[PlannedNode, ...]


class PlanError(ValueError):
    """A stored workflow version this executor cannot run (a node type it does not have, a
    config that no longer fits its type)."""


@dataclass(frozen=True, slots=True)
class Engine:
    """The node types this executor runs: the language's specs, each with its runner."""

    language: Language
    runners: dict[str, Runner]

    @classmethod
    def standard(cls) -> "Engine":
        language = standard_language()
        return cls(language, standard_runners(language))


def compile_plan(workflow: StoredWorkflow, engine: Engine) -> Plan:
    """Parse each node's config once per workflow version (validated when it was saved)."""
    return Plan(workflow, _compile(workflow.document.nodes, engine))


def _compile(nodes: list[Node], engine: Engine) -> tuple[PlannedNode, ...]:
    planned = []
    for node in nodes:
        spec = engine.language.get(node.type)
        if spec is None:
            known = ", ".join(engine.language.names())
            raise PlanError(f"node {node.key} has unknown type {node.type!r} (known: {known})")
        try:
            config = spec.config.model_validate(node.config)
        except ValidationError as error:
            raise PlanError(
                f"node {node.key}'s config does not fit its type {node.type}: "
                + "; ".join(f"{d['path']}: {d['message']}" for d in error_details(error))
            ) from error
        branches = {
            name: _compile(branch, engine) for name, branch in (node.branches or {}).items()
        }
        planned.append(
            PlannedNode(node.key, node.type, engine.runners[node.type], config, branches)
        )
    return tuple(planned)


@dataclass(slots=True)
class _Run:
    request: RunRequest
    state: RunState
    results: list[NodeResult]
    response: ResponseRecord | None = None
    error: str | None = None


async def execute(
    plan: Plan,
    run: RunRequest,
    started: datetime | None = None,
    *,
    http: ClientSession | None = None,
) -> ExecutionRecord:
    """Run one webhook through the plan and give back its execution record."""
    started = started or now()
    context = run.context
    state = RunState(
        {
            # The context's own values, not a copy: nodes read them, none changes them.
            "$context": {"headers": context.headers, "query": context.query, "body": context.body},
            "$jobsMapByNodeKey": {},
            "$system": {"now": started.isoformat(), "executionId": run.execution_id},
        },
        http=http,
    )
    current = _Run(run, state, [])
    status = await _run_nodes(plan.nodes, current) or "succeeded"
    return execution_record(
        run, started, status, nodes=current.results, response=current.response, error=current.error
    )


def execution_record(
    run: RunRequest,
    started: datetime,
    status: ExecutionStatus,
    *,
    nodes: list[NodeResult] | None = None,
    response: ResponseRecord | None = None,
    error: str | None = None,
) -> ExecutionRecord:
    """The record of a run that finished now."""
    return ExecutionRecord(
        id=run.execution_id,
        workflow_id=run.workflow_id,
        version=run.version,
        status=status,
        received_at=run.received_at,
        started_at=started,
        finished_at=now(),
        request_id=run.request_id,
        context=run.context,
        nodes=nodes or [],
        response=response,
        error=error,
        idempotency_key=run.idempotency_key,
        replay_of=run.replay_of,
    )


async def _run_nodes(nodes: tuple[PlannedNode, ...], run: _Run) -> ExecutionStatus | None:
    """Run a list of nodes; returns the final status if one of them ended the execution."""
    for node in nodes:
        started = now()
        try:
            step = await node.run(node.config, run.state)
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            run.error = f"node {node.key} failed: {message}"
            log.warning(
                "node failed",
                execution_id=run.request.execution_id,
                workflow_id=run.request.workflow_id,
                request_id=run.request.request_id,
                node=node.key,
                error=message,
            )
            step = Step(error=message, end="failed")
        else:
            run.state.jobs[node.key] = step.result
        run.results.append(
            NodeResult(
                key=node.key,
                type=node.type,
                status="failed" if step.error else "succeeded",
                result=step.result,
                error=step.error,
                started_at=started,
                finished_at=now(),
            )
        )
        if step.response is not None:
            run.response = step.response
        if step.end is not None:
            if step.end == "failed" and run.error is None:
                run.error = step.error or f"ended as failed by node {node.key}"
            return step.end
        branch = node.branches.get(step.branch) if step.branch is not None else None
        if branch:
            ended = await _run_nodes(branch, run)
            if ended is not None:
                return ended
    return None
