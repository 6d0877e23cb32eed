"""Creating, changing and deleting workflows: validation, versions, keys, change events."""

from typing import Any

import structlog
from pydantic import ValidationError

from hookflow.executor.validation import validate_workflow
from hookflow.shared.errors import BrokerUnavailable, NotFound, ValidationFailed
from hookflow.shared.ids import new_id, trigger_key
from hookflow.shared.messaging import Broker
from hookflow.shared.models import ConfigEvent, StoredWorkflow, WorkflowDocument, error_details, now
from hookflow.shared.storage import Storage

log = structlog.get_logger("hookflow.config_api")

READ_ONLY = ("id", "version", "createdAt", "updatedAt", "webhookUrl")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch: objects merge, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class Workflows:
    def __init__(self, storage: Storage, broker: Broker, public_url: str) -> None:
        self._storage = storage
        self._broker = broker
        self._base = public_url.rstrip("/")

    def webhook_url(self, key: str) -> str:
        return f"{self._base}/api/webhook:trigger/{key}"

    def present(self, workflow: StoredWorkflow) -> dict[str, Any]:
        """The API's view: the document with id, version, times and URL; no secrets."""
        doc = workflow.document.model_dump(mode="json", exclude_none=True)
        auth = doc["trigger"].get("basicAuth")
        if auth is not None:
            auth["passwordSet"] = bool(auth.pop("password", None))
        return {
            **workflow.model_dump(mode="json", include={"id", "version", "createdAt", "updatedAt"}),
            "webhookUrl": self.webhook_url(workflow.key),
            **doc,
        }

    async def get(self, workflow_id: str) -> StoredWorkflow:
        workflow = await self._storage.get_workflow(workflow_id)
        if workflow is None:
            raise NotFound(f"workflow {workflow_id} not found")
        return workflow

    async def create(self, payload: Any) -> StoredWorkflow:
        document = self._validate(payload)
        document.trigger.key = trigger_key()
        moment = now()
        workflow = StoredWorkflow(
            id=new_id(), version=1, createdAt=moment, updatedAt=moment, document=document
        )
        await self._storage.insert_workflow(workflow)
        await self._announce("created", workflow)
        return workflow

    async def replace(self, workflow_id: str, payload: Any) -> StoredWorkflow:
        current = await self.get(workflow_id)
        document = self._validate(payload, current.document)
        return await self._store_version(current, document)

    async def patch(self, workflow_id: str, payload: Any) -> StoredWorkflow:
        if not isinstance(payload, dict):
            raise ValidationFailed("a patch must be a JSON object (RFC 7396 merge patch)")
        current = await self.get(workflow_id)
        merged = merge_patch(current.document.model_dump(mode="json"), _writable(payload))
        document = self._validate(merged, current.document)
        return await self._store_version(current, document)

    async def delete(self, workflow_id: str) -> None:
        workflow = await self._storage.delete_workflow(workflow_id)
        if workflow is None:
            raise NotFound(f"workflow {workflow_id} not found")
        await self._announce("deleted", workflow)

    async def _store_version(
        self, current: StoredWorkflow, document: WorkflowDocument
    ) -> StoredWorkflow:
        document.trigger.key = current.key
        workflow = StoredWorkflow(
            id=current.id,
            version=current.version + 1,
            createdAt=current.createdAt,
            updatedAt=now(),
            document=document,
        )
        await self._storage.replace_workflow(workflow)
        await self._announce("updated", workflow)
        return workflow

    def _validate(self, payload: Any, current: WorkflowDocument | None = None) -> WorkflowDocument:
        if not isinstance(payload, dict):
            raise ValidationFailed("a workflow must be a JSON object")
        try:
            document = WorkflowDocument.model_validate(_writable(payload))
        except ValidationError as error:
            raise ValidationFailed("invalid workflow", details=error_details(error)) from error
        auth = document.trigger.basicAuth
        if auth is not None and auth.password is None:
            previous = current.trigger.basicAuth if current else None
            if previous is None or previous.password is None:
                raise ValidationFailed(
                    "invalid workflow",
                    details=[{"path": "trigger.basicAuth.password", "message": "Field required"}],
                )
            auth.password = previous.password
        faults = validate_workflow(document)
        if faults:
            raise ValidationFailed("invalid workflow", details=faults)
        return document

    async def _announce(self, kind: str, workflow: StoredWorkflow) -> None:
        event = ConfigEvent(
            type=kind, workflow_id=workflow.id, key=workflow.key, version=workflow.version
        )  # type: ignore[arg-type]
        try:
            await self._broker.publish_event(event)
        except BrokerUnavailable:
            log.warning(
                "change stored but not announced; gateways pick it up at their next reload",
                workflow_id=workflow.id,
            )
        log.info("workflow " + kind, workflow_id=workflow.id, version=workflow.version)


def _writable(payload: dict[str, Any]) -> dict[str, Any]:
    """Drop the read-only fields an admin may send back from a GET (id, version, URL...)."""
    writable = {key: value for key, value in payload.items() if key not in READ_ONLY}
    trigger = writable.get("trigger")
    if isinstance(trigger, dict):
        writable["trigger"] = {key: value for key, value in trigger.items() if key != "key"}
    return writable
