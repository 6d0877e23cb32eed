"""Creating, changing and deleting workflows: validation, versions, keys, change events."""

import asyncio
from typing import Any, Literal

import structlog
from pydantic import ValidationError

from hookflow_config_api.propagation import Propagation
from hookflow_config_api.schemas import WorkflowView
from hookflow_shared.crypto import SecretBox, hash_password, new_signing_secret, verify_password
from hookflow_shared.errors import BrokerUnavailable, HookflowError, NotFound, ValidationFailed
from hookflow_shared.ids import new_id, trigger_key
from hookflow_shared.messaging import Broker
from hookflow_shared.models import (
    BasicAuth,
    ConfigEvent,
    SignatureConfig,
    StoredWorkflow,
    WorkflowDocument,
    error_details,
    now,
)
from hookflow_shared.storage import Storage
from hookflow_shared.workflow.language import standard_language
from hookflow_shared.workflow.validation import validate_workflow

log = structlog.get_logger("hookflow.config_api")

READ_ONLY = ("id", "version", "createdAt", "updatedAt", "webhookUrl")


class SecretKeyMissing(HookflowError):
    """The config API cannot keep a signing secret: HOOKFLOW_SECRET_KEY is not set (a 500:
    the service's configuration, not the request, is at fault)."""


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
    def __init__(
        self,
        storage: Storage,
        broker: Broker,
        propagation: Propagation,
        public_url: str,
        box: SecretBox | None = None,
    ) -> None:
        self._box = box
        self._storage = storage
        self._broker = broker
        self._propagation = propagation
        self._language = standard_language()
        self._base = public_url.rstrip("/")

    def webhook_url(self, key: str) -> str:
        return f"{self._base}/api/webhook:trigger/{key}"

    def present(self, workflow: StoredWorkflow) -> dict[str, Any]:
        """The API's view: the document with id, version, times and URL; no secrets."""
        doc = workflow.document.model_dump(mode="json", exclude_none=True)
        auth = doc["trigger"].get("basicAuth")
        if auth is not None:
            auth.pop("password", None)
            auth["passwordSet"] = bool(auth.pop("passwordHash", None))
        signature = doc["trigger"].get("signature")
        if signature is not None:
            signature.pop("secret", None)
            signature["secretSet"] = bool(signature.pop("encryptedSecret", None))
        view = {
            **workflow.model_dump(
                mode="json", include={"id", "version", "created_at", "updated_at"}
            ),
            "webhookUrl": self.webhook_url(workflow.key),
            **doc,
        }
        # Shaped by the model the OpenAPI document gives for it: they cannot differ.
        return WorkflowView.model_validate(view).model_dump(mode="json", exclude_none=True)

    async def get(self, workflow_id: str) -> StoredWorkflow:
        workflow = await self._storage.get_workflow(workflow_id)
        if workflow is None:
            raise NotFound(f"workflow {workflow_id} not found")
        return workflow

    async def create(self, payload: Any) -> tuple[StoredWorkflow, str | None]:
        """Store a new workflow; also gives the signing secret generated for it, if any (the
        only time it is ever answered)."""
        document = self._validate(_writable(payload))
        generated = await self._seal(document, None)
        document.trigger.key = trigger_key()
        moment = now()
        workflow = StoredWorkflow(
            id=new_id(), version=1, created_at=moment, updated_at=moment, document=document
        )
        self._can_announce()
        await self._storage.insert_workflow(workflow)
        await self._announce("created", workflow)
        return workflow, generated

    async def replace(self, workflow_id: str, payload: Any) -> tuple[StoredWorkflow, str | None]:
        current = await self.get(workflow_id)
        document = self._validate(_writable(payload))
        generated = await self._seal(document, current.document)
        return await self._store_change(current, document, generated), generated

    async def patch(self, workflow_id: str, payload: Any) -> tuple[StoredWorkflow, str | None]:
        if not isinstance(payload, dict):
            raise ValidationFailed("a patch must be a JSON object (RFC 7396 merge patch)")
        current = await self.get(workflow_id)
        merged = merge_patch(current.document.model_dump(mode="json"), _writable(payload))
        document = self._validate(merged)
        generated = await self._seal(document, current.document)
        return await self._store_change(current, document, generated), generated

    async def rotate_key(self, workflow_id: str) -> StoredWorkflow:
        """A new trigger key (a leaked webhook URL): the old key is unknown to every gateway
        once this returns."""
        current = await self.get(workflow_id)
        document = current.document.model_copy(deep=True)
        return await self._store_version(current, document, key=trigger_key())

    async def rotate_secret(self, workflow_id: str) -> tuple[StoredWorkflow, str]:
        """A new signing secret for the trigger, answered this once."""
        current = await self.get(workflow_id)
        signature = current.document.trigger.signature
        if signature is None:
            raise ValidationFailed("this trigger has no signature to rotate")
        if signature.scheme == "stripe":
            raise ValidationFailed(
                "Stripe issues the signing secret: roll it in Stripe's dashboard, then PATCH "
                '{"trigger": {"signature": {"secret": "whsec_..."}}}'
            )
        document = current.document.model_copy(deep=True)
        assert document.trigger.signature is not None
        document.trigger.signature.encrypted_secret = None
        generated = await self._seal(document, None)
        assert generated is not None
        return await self._store_version(current, document), generated

    async def delete(self, workflow_id: str) -> None:
        self._can_announce()
        workflow = await self._storage.delete_workflow(workflow_id)
        if workflow is None:
            raise NotFound(f"workflow {workflow_id} not found")
        await self._announce("deleted", workflow)

    async def _store_change(
        self, current: StoredWorkflow, document: WorkflowDocument, generated: str | None
    ) -> StoredWorkflow:
        """The next version, or `current` itself when the document is the same: sending back
        what a GET gave (or applying the same file again) makes no new version."""
        document.trigger.key = current.key
        if generated is None and _same(document, current.document):
            return current
        return await self._store_version(current, document)

    async def _store_version(
        self, current: StoredWorkflow, document: WorkflowDocument, *, key: str | None = None
    ) -> StoredWorkflow:
        document.trigger.key = key or current.key
        workflow = StoredWorkflow(
            id=current.id,
            version=current.version + 1,
            created_at=current.created_at,
            updated_at=now(),
            document=document,
        )
        self._can_announce()
        await self._storage.replace_workflow(workflow)
        await self._announce("updated", workflow)
        return workflow

    def _validate(self, payload: Any) -> WorkflowDocument:
        if not isinstance(payload, dict):
            raise ValidationFailed("a workflow must be a JSON object")
        try:
            document = WorkflowDocument.model_validate(payload)
        except ValidationError as error:
            raise ValidationFailed("invalid workflow", details=error_details(error)) from error
        faults = validate_workflow(document, self._language)
        if faults:
            raise ValidationFailed("invalid workflow", details=faults)
        return document

    async def _seal(
        self, document: WorkflowDocument, current: WorkflowDocument | None
    ) -> str | None:
        """Secrets at rest: a Basic password becomes its hash; a signing secret is encrypted
        (or generated, then given back once). Omitted ones are kept from the current version."""
        auth = document.trigger.basic_auth
        if auth is not None:
            previous = current.trigger.basic_auth if current else None
            if auth.password is not None:
                auth.password_hash = await self._hash_again(auth.password, previous)
                auth.password = None
            elif auth.password_hash is None:
                if previous is None or previous.password_hash is None:
                    raise _required("trigger.basicAuth.password")
                auth.password_hash = previous.password_hash
        signature = document.trigger.signature
        if signature is None:
            return None
        generated = None
        previous_signature = current.trigger.signature if current else None
        if previous_signature is not None and previous_signature.scheme != signature.scheme:
            signature.encrypted_secret = None  # another scheme's secret is no use to this one
        if signature.secret is None and signature.encrypted_secret is None:
            if previous_signature is not None and previous_signature.scheme == signature.scheme:
                signature.encrypted_secret = previous_signature.encrypted_secret
            elif signature.scheme == "stripe":
                raise _required("trigger.signature.secret", "Stripe's whsec_ signing secret")
            else:
                prefix = "whsec_" if signature.scheme == "standardWebhooks" else ""
                generated = signature.secret = new_signing_secret(prefix)
        if signature.secret is not None and previous_signature is not None:
            self._keep_same_secret(signature, previous_signature)
        if signature.secret is not None:
            if self._box is None:
                raise SecretKeyMissing(
                    "HOOKFLOW_SECRET_KEY is not set on the config API, so signing secrets "
                    "cannot be stored; set it (the same on every gateway) and retry"
                )
            signature.encrypted_secret = self._box.encrypt(signature.secret)
            signature.secret = None
        return generated

    @staticmethod
    async def _hash_again(password: str, previous: BasicAuth | None) -> str:
        """The password's hash: the stored one when it is the same password (hashes are
        salted: a new one would look like a change)."""
        stored = previous.password_hash if previous is not None else None
        if stored is not None and await asyncio.to_thread(
            verify_password, password.encode(), stored
        ):
            return stored
        return await asyncio.to_thread(hash_password, password)

    def _keep_same_secret(self, signature: SignatureConfig, previous: SignatureConfig) -> None:
        """A signing secret sent again unchanged keeps its stored form (encryption is
        randomised: a new one would look like a change)."""
        if self._box is None or previous.encrypted_secret is None:
            return
        if previous.scheme != signature.scheme:
            return
        try:
            same = self._box.decrypt(previous.encrypted_secret) == signature.secret
        except ValueError:
            return
        if same:
            signature.encrypted_secret = previous.encrypted_secret
            signature.secret = None

    def _can_announce(self) -> None:
        """Refuse a change that the gateways could not be told about (before storing it)."""
        if not self._broker.is_connected:
            raise BrokerUnavailable(
                "the message broker is unreachable, so the gateways could not be told of the "
                "change; nothing was changed, retry later"
            )

    async def _announce(
        self, kind: Literal["created", "updated", "deleted"], workflow: StoredWorkflow
    ) -> None:
        event = ConfigEvent(
            type=kind, workflow_id=workflow.id, key=workflow.key, version=workflow.version
        )
        await self._propagation.announce(event)
        log.info("workflow " + kind, workflow_id=workflow.id, version=workflow.version)


def _writable(payload: Any) -> Any:
    """Drop the read-only fields an admin may send back from a GET (id, version, URL...), and
    the stored forms of secrets, which are never taken from a client."""
    if not isinstance(payload, dict):
        return payload  # _validate says what is wrong with it
    writable = {key: value for key, value in payload.items() if key not in READ_ONLY}
    trigger = writable.get("trigger")
    if isinstance(trigger, dict):
        trigger = writable["trigger"] = {k: v for k, v in trigger.items() if k != "key"}
        for part, stored in (("basicAuth", "passwordHash"), ("signature", "encryptedSecret")):
            if isinstance(trigger.get(part), dict):
                trigger[part] = {k: v for k, v in trigger[part].items() if k != stored}
    return writable


def _same(document: WorkflowDocument, current: WorkflowDocument) -> bool:
    """The same workflow, read-only fields aside (the dump leaves out passwordSet and
    secretSet; the trigger keys are the same by now)."""
    return document.model_dump(mode="json") == current.model_dump(mode="json")


def _required(path: str, what: str = "Field required") -> ValidationFailed:
    return ValidationFailed("invalid workflow", details=[{"path": path, "message": what}])
