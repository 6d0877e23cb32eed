"""Replaying an execution: its trigger context runs again, as a new execution that says which
one it replays, queued through the broker like a webhook's run."""

from typing import Any, Literal

import structlog
from pydantic import ValidationError

from hookflow_shared.errors import BadRequest, BrokerUnavailable, Conflict, NotFound
from hookflow_shared.ids import new_id
from hookflow_shared.messaging import Broker
from hookflow_shared.models import Document, ExecutionRecord, RunRequest, now
from hookflow_shared.storage import Storage

log = structlog.get_logger("hookflow.config_api")

USAGE = (
    'send {} or {"version": "current"} to run it on the workflow\'s current version, '
    '{"version": "original"} to run it on the version it ran'
)


class ReplayOptions(Document):
    version: Literal["current", "original"] = "current"


class Replays:
    def __init__(self, storage: Storage, broker: Broker, installation: str | None) -> None:
        self._storage = storage
        self._broker = broker
        self._installation = installation

    async def replay(
        self, execution_id: str, payload: Any, *, request_id: str | None = None
    ) -> RunRequest:
        """Queue a new run of the execution's context; returns it once the broker has taken
        it. Nobody waits for it (no reply address, even for a sync workflow: the response
        node's answer is recorded), and it runs whatever the trigger's idempotency says."""
        options = _options(payload)
        replayed = await self._storage.get_execution(execution_id)
        if replayed is None:
            raise NotFound(f"execution {execution_id} not found")
        version = await self._version(replayed, options.version)
        new = new_id()
        run = RunRequest(
            execution_id=new,
            workflow_id=replayed.workflow_id,
            version=version,
            received_at=now(),
            request_id=(request_id or "")[:128] or new,
            context=replayed.context,
            replay_of=replayed.id,
            installation=self._installation,
        )
        try:
            await self._broker.publish_runs([run])
        except BrokerUnavailable as error:
            raise BrokerUnavailable(
                "the replay could not be queued; nothing was accepted, retry later"
            ) from error
        log.info(
            "execution replayed",
            execution_id=new,
            replay_of=replayed.id,
            workflow_id=run.workflow_id,
            version=version,
        )
        return run

    async def _version(
        self, replayed: ExecutionRecord, which: Literal["current", "original"]
    ) -> int:
        workflow_id = replayed.workflow_id
        if which == "current":
            current = await self._storage.get_workflow(workflow_id)
            if current is None:
                raise Conflict(
                    f"workflow {workflow_id} was deleted, so it has no current version; "
                    'replay on the version the execution ran with {"version": "original"}'
                )
            return current.version
        if await self._storage.get_workflow_version(workflow_id, replayed.version) is None:
            raise Conflict(
                f"version {replayed.version} of workflow {workflow_id}, which the execution "
                "ran, is not stored; it cannot run again"
            )
        return replayed.version


def _options(payload: Any) -> ReplayOptions:
    if not isinstance(payload, dict):
        raise BadRequest(USAGE)
    try:
        return ReplayOptions.model_validate(payload)
    except ValidationError as error:
        raise BadRequest(USAGE) from error
