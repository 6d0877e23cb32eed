"""The MongoDB adapter, through PyMongo's own asyncio API (AsyncMongoClient)."""

import asyncio
import contextlib
import functools
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure, PyMongoError

from hookflow_shared.errors import Conflict, NotFound, StorageUnavailable
from hookflow_shared.ids import new_id
from hookflow_shared.models import (
    EXECUTION,
    CapturedRequest,
    ExecutionRecord,
    ExecutionStatus,
    StoredWorkflow,
)
from hookflow_shared.storage.base import (
    CaptureWindow,
    Claim,
    ClaimState,
    Page,
    Storage,
    TimeRange,
    name_taken,
)

# Failures are few: partial indexes find them (with or without a workflow); other listings
# read the _id index or by_workflow, newest first, bounded by the ids of their time range.
_FAILED = {"status": "failed"}
# Workflow names are unique among the workflows not deleted (the documents of `workflows`);
# a workflow without a name has no `name` field, which the partial index leaves out.
_NAMED = {"name": {"$type": "string"}}
_MAX_EXPIRY = 2**31 - 1
"""The longest expireAfterSeconds MongoDB takes (about 68 years)."""
_INDEX_OPTIONS_CONFLICT = 85
_INDEX_KEY_SPECS_CONFLICT = 86


def _to_mongo(doc: dict[str, Any]) -> dict[str, Any]:
    doc["_id"] = doc.pop("id")
    return doc


def _from_mongo(doc: dict[str, Any]) -> dict[str, Any]:
    doc["id"] = doc.pop("_id")
    return doc


def _unavailable[**P, T](
    method: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """A store that does not answer (in time) raises StorageUnavailable: worth retrying."""

    @functools.wraps(method)
    async def guarded(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except ConnectionFailure as error:
            raise StorageUnavailable(f"MongoDB: {type(error).__name__}: {error}") from error
        except PyMongoError as error:
            if error.timeout:
                raise StorageUnavailable(f"MongoDB timed out: {error}") from error
            raise

    return guarded


class MongoStorage(Storage):
    def __init__(
        self,
        url: str,
        database: str,
        *,
        timeout: float = 10.0,
        retention: timedelta = timedelta(days=30),
    ) -> None:
        self._retention = min(int(retention.total_seconds()), _MAX_EXPIRY)
        # timeoutMS bounds every operation (PyMongo's client-side operation timeout): a store
        # that stops answering gives an error to retry, never a call that hangs.
        self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url,
            tz_aware=True,
            appname="hookflow",
            serverSelectionTimeoutMS=int(timeout * 1000),
            timeoutMS=int(timeout * 1000),
        )
        db = self._client[database]
        self._workflows = db["workflows"]
        self._versions = db["workflow_versions"]
        self._executions = db["executions"]
        self._meta = db["meta"]
        self._claims = db["idempotency_claims"]
        self._windows = db["capture_windows"]
        self._captured = db["captured_requests"]

    @_unavailable
    async def open(self) -> None:
        await self._claims.create_index(
            [("expiresAt", ASCENDING)], expireAfterSeconds=0, name="expiry"
        )
        await self._workflows.create_index([("key", ASCENDING)], unique=True, name="key_unique")
        await self._workflows.create_index(
            [("name", ASCENDING)], unique=True, name="name_unique", partialFilterExpression=_NAMED
        )
        # The console's captures expire by themselves (TTL indexes); reads filter by time too,
        # as MongoDB removes expired documents only once a minute.
        await self._windows.create_index(
            [("until", ASCENDING)], expireAfterSeconds=0, name="expiry"
        )
        await self._captured.create_index(
            [("expiresAt", ASCENDING)], expireAfterSeconds=0, name="expiry"
        )
        await self._captured.create_index(
            [("workflowId", ASCENDING), ("captureId", ASCENDING), ("_id", ASCENDING)],
            name="by_window",
        )
        await self._versions.create_index(
            [("workflowId", ASCENDING), ("version", ASCENDING)],
            unique=True,
            name="workflow_version",
        )
        await self._executions.create_index(
            [("workflowId", ASCENDING), ("_id", DESCENDING)], name="by_workflow"
        )
        await self._executions.create_index(
            [("status", ASCENDING), ("_id", DESCENDING)],
            name="failed",
            partialFilterExpression=_FAILED,
        )
        await self._executions.create_index(
            [("workflowId", ASCENDING), ("status", ASCENDING), ("_id", DESCENDING)],
            name="failed_by_workflow",
            partialFilterExpression=_FAILED,
        )
        await self._expire_executions()

    async def _expire_executions(self) -> None:
        """MongoDB deletes a record HOOKFLOW_EXECUTION_RETENTION after its receivedAt (a TTL
        index). A changed retention changes the index in place (collMod), or where collMod is
        not known (mongoeco) makes it again."""
        try:
            await self._retention_index()
        except OperationFailure as error:
            if error.code not in (_INDEX_OPTIONS_CONFLICT, _INDEX_KEY_SPECS_CONFLICT):
                raise
            try:
                await self._executions.database.command(
                    "collMod",
                    self._executions.name,
                    index={"name": "retention", "expireAfterSeconds": self._retention},
                )
            except OperationFailure:
                await self._executions.drop_index("retention")
                await self._retention_index()

    async def _retention_index(self) -> None:
        await self._executions.create_index(
            [("receivedAt", ASCENDING)], expireAfterSeconds=self._retention, name="retention"
        )

    async def close(self) -> None:
        await self._client.close()

    async def ping(self) -> bool:
        try:
            await self._client.admin.command("ping")
        except PyMongoError:
            return False
        return True

    # --- workflows ---

    @staticmethod
    def _workflow_doc(workflow: StoredWorkflow) -> dict[str, Any]:
        doc = _to_mongo(workflow.model_dump())
        doc["key"] = workflow.key
        if workflow.document.name is not None:
            doc["name"] = workflow.document.name
        return doc

    @staticmethod
    def _version_doc(workflow: StoredWorkflow) -> dict[str, Any]:
        doc = workflow.model_dump()
        doc["_id"] = f"{doc.pop('id')}:{workflow.version}"
        doc["workflowId"] = workflow.id
        return doc

    @_unavailable
    async def insert_workflow(self, workflow: StoredWorkflow) -> None:
        # The version first: once a gateway can see the workflow (and take its webhooks), the
        # version its runs name is there for the executors.
        await self._check_name(workflow)
        version_id = f"{workflow.id}:{workflow.version}"
        await self._versions.replace_one(
            {"_id": version_id}, self._version_doc(workflow), upsert=True
        )
        try:
            await self._workflows.insert_one(self._workflow_doc(workflow))
        except DuplicateKeyError as error:
            await self._versions.delete_one({"_id": version_id})
            await self._check_name(workflow)  # the name was taken meanwhile: say by whom
            raise Conflict("a workflow with this id or trigger key exists") from error

    @_unavailable
    async def replace_workflow(self, workflow: StoredWorkflow) -> None:
        await self._check_name(workflow)
        try:
            await self._versions.insert_one(self._version_doc(workflow))
        except DuplicateKeyError as error:
            raise Conflict(f"workflow {workflow.id} changed meanwhile") from error
        try:
            result = await self._workflows.replace_one(
                {"_id": workflow.id, "version": workflow.version - 1}, self._workflow_doc(workflow)
            )
        except DuplicateKeyError as error:  # the name was taken meanwhile
            await self._versions.delete_one({"_id": f"{workflow.id}:{workflow.version}"})
            await self._check_name(workflow)
            raise Conflict(f"workflow {workflow.id}'s name was taken meanwhile") from error
        if result.matched_count == 1:
            return
        await self._versions.delete_one({"_id": f"{workflow.id}:{workflow.version}"})
        current = await self._workflows.find_one({"_id": workflow.id}, {"version": 1})
        if current is None:
            raise NotFound(f"workflow {workflow.id} not found")
        raise Conflict(
            f"workflow {workflow.id} changed meanwhile (now version {current['version']})"
        )

    async def _check_name(self, workflow: StoredWorkflow) -> None:
        """Conflict when another workflow holds this one's name (the unique index is the last
        word; this names the holder)."""
        name = workflow.document.name
        if name is None:
            return
        holder = await self._workflows.find_one(
            {"name": name, "_id": {"$ne": workflow.id}}, {"_id": 1}
        )
        if holder is not None:
            raise name_taken(name, holder["_id"])

    @_unavailable
    async def delete_workflow(self, workflow_id: str) -> StoredWorkflow | None:
        doc = await self._workflows.find_one_and_delete({"_id": workflow_id})
        return self._workflow(doc)

    @staticmethod
    def _workflow(doc: dict[str, Any] | None) -> StoredWorkflow | None:
        if doc is None:
            return None
        doc.pop("key", None)
        doc.pop("name", None)
        doc.pop("workflowId", None)
        return StoredWorkflow.model_validate(_from_mongo(doc))

    @_unavailable
    async def get_workflow(self, workflow_id: str) -> StoredWorkflow | None:
        return self._workflow(await self._workflows.find_one({"_id": workflow_id}))

    @_unavailable
    async def get_workflow_by_key(self, key: str) -> StoredWorkflow | None:
        return self._workflow(await self._workflows.find_one({"key": key}))

    @_unavailable
    async def get_workflow_version(self, workflow_id: str, version: int) -> StoredWorkflow | None:
        doc = await self._versions.find_one({"_id": f"{workflow_id}:{version}"})
        if doc is not None:
            doc["_id"] = workflow_id
        return self._workflow(doc)

    @_unavailable
    async def list_workflows(
        self, *, limit: int, cursor: str | None = None, name: str | None = None
    ) -> Page[StoredWorkflow]:
        query: dict[str, Any] = {"_id": {"$lt": cursor}} if cursor else {}
        if name is not None:
            query["name"] = name
        docs = await self._workflows.find(query).sort("_id", DESCENDING).limit(limit + 1).to_list()
        items = [w for w in map(self._workflow, docs[:limit]) if w is not None]
        return Page(items, items[-1].id if len(docs) > limit else None)

    @_unavailable
    async def list_workflow_versions(
        self, workflow_id: str, *, limit: int, before: int | None = None
    ) -> list[StoredWorkflow]:
        query: dict[str, Any] = {"workflowId": workflow_id}
        if before is not None:
            query["version"] = {"$lt": before}
        docs = await self._versions.find(query).sort("version", DESCENDING).limit(limit).to_list()
        for doc in docs:
            doc["_id"] = workflow_id
        return [w for w in map(self._workflow, docs) if w is not None]

    # --- the installation ---

    @_unavailable
    async def installation_id(self) -> str:
        with contextlib.suppress(DuplicateKeyError):  # another service made it just now
            await self._meta.update_one(
                {"_id": "installation"}, {"$setOnInsert": {"value": new_id()}}, upsert=True
            )
        doc = await self._meta.find_one({"_id": "installation"})
        assert doc is not None
        return str(doc["value"])

    # --- idempotency claims ---

    @staticmethod
    def _claim_id(claim: Claim) -> str:
        return f"{claim.workflow_id}:{claim.key}"

    @_unavailable
    async def claim_keys(
        self, claims: Sequence[Claim], *, abandoned_before: datetime
    ) -> list[Claim]:
        return list(await asyncio.gather(*(self._take(c, abandoned_before) for c in claims)))

    async def _take(self, claim: Claim, abandoned_before: datetime) -> Claim:
        free = {
            "$or": [
                {"expiresAt": {"$lte": claim.claimed_at}},
                {"state": "claimed", "claimedAt": {"$lt": abandoned_before}},
            ]
        }
        fields = {
            "workflowId": claim.workflow_id,
            "key": claim.key,
            "executionId": claim.execution_id,
            "state": claim.state,
            "claimedAt": claim.claimed_at,
            "expiresAt": claim.expires_at,
        }
        try:
            doc = await self._claims.find_one_and_update(
                {"_id": self._claim_id(claim), **free},
                {"$set": fields},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # held, and not free: the upsert's insert collided
            doc = await self._claims.find_one({"_id": self._claim_id(claim)})
        if doc is None:  # freed between the two calls: try once more
            return await self._take(claim, abandoned_before)
        return _claim(doc)

    @_unavailable
    async def mark_claims(self, claims: Sequence[Claim], state: ClaimState) -> None:
        if claims:
            await self._claims.bulk_write(
                [
                    UpdateOne(
                        {"_id": self._claim_id(c), "executionId": c.execution_id},
                        {"$set": {"state": state}},
                    )
                    for c in claims
                ],
                ordered=False,
            )

    @_unavailable
    async def release_claims(self, claims: Sequence[Claim]) -> None:
        for claim in claims:
            await self._claims.delete_one(
                {"_id": self._claim_id(claim), "executionId": claim.execution_id}
            )

    @_unavailable
    async def start_claims(self, claims: Sequence[Claim]) -> list[bool]:
        started = []
        for claim in claims:
            doc = await self._claims.find_one_and_update(
                {"_id": self._claim_id(claim), "executionId": claim.execution_id},
                {"$set": {"state": "started"}},
            )
            if doc is not None:
                started.append(True)
                continue
            holder = await self._claims.find_one({"_id": self._claim_id(claim)}, {"_id": 1})
            started.append(holder is None)
        return started

    @_unavailable
    async def get_claim(self, workflow_id: str, key: str) -> Claim | None:
        doc = await self._claims.find_one({"_id": f"{workflow_id}:{key}"})
        return _claim(doc) if doc else None

    @_unavailable
    async def purge_claims(self, now: datetime) -> int:
        result = await self._claims.delete_many({"expiresAt": {"$lte": now}})
        return result.deleted_count

    # --- the console's captures ---

    @_unavailable
    async def open_capture(self, window: CaptureWindow) -> None:
        await self._windows.replace_one(
            {"_id": window.workflow_id},
            {"captureId": window.capture_id, "until": window.until, "limit": window.limit},
            upsert=True,
        )

    @_unavailable
    async def close_capture(self, workflow_id: str) -> None:
        await self._windows.delete_one({"_id": workflow_id})

    @_unavailable
    async def get_capture(self, workflow_id: str, now: datetime) -> CaptureWindow | None:
        doc = await self._windows.find_one({"_id": workflow_id, "until": {"$gt": now}})
        return _window(doc) if doc else None

    @_unavailable
    async def open_captures(self, now: datetime) -> list[CaptureWindow]:
        return [_window(doc) async for doc in self._windows.find({"until": {"$gt": now}})]

    @_unavailable
    async def save_captured(self, sample: CapturedRequest, expires_at: datetime) -> None:
        doc = _to_mongo(sample.model_dump())
        doc["expiresAt"] = expires_at
        await self._captured.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    @_unavailable
    async def list_captured(
        self, workflow_id: str, capture_id: str, *, now: datetime, limit: int
    ) -> list[CapturedRequest]:
        query = {"workflowId": workflow_id, "captureId": capture_id, "expiresAt": {"$gt": now}}
        docs = await self._captured.find(query).sort("_id", ASCENDING).limit(limit).to_list()
        for doc in docs:
            doc.pop("expiresAt")
        return [CapturedRequest.model_validate(_from_mongo(doc)) for doc in docs]

    # --- executions ---

    @_unavailable
    async def save_executions(self, records: Sequence[ExecutionRecord]) -> None:
        operations = [
            ReplaceOne({"_id": record.id}, _to_mongo(EXECUTION.dump_python(record)), upsert=True)
            for record in records
        ]
        await self._executions.bulk_write(operations, ordered=False)

    @_unavailable
    async def purge_executions(self, before: datetime) -> int:
        result = await self._executions.delete_many({"receivedAt": {"$lt": before}})
        return result.deleted_count

    @_unavailable
    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        doc = await self._executions.find_one({"_id": execution_id})
        return EXECUTION.validate_python(_from_mongo(doc)) if doc else None

    @_unavailable
    async def existing_executions(self, execution_ids: Sequence[str]) -> set[str]:
        cursor = self._executions.find({"_id": {"$in": list(execution_ids)}}, {"_id": 1})
        return {doc["_id"] async for doc in cursor}

    @_unavailable
    async def list_executions(
        self,
        *,
        workflow_id: str | None = None,
        status: ExecutionStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int,
        cursor: str | None = None,
    ) -> Page[ExecutionRecord]:
        query: dict[str, Any] = {}
        if workflow_id is not None:
            query["workflowId"] = workflow_id
        if status is not None:
            query["status"] = status
        times = TimeRange.of(since, until)
        for field, low, high in (
            ("_id", *times.ids(cursor)),
            ("receivedAt", times.since, times.until),
        ):
            bounds = {name: at for name, at in (("$gte", low), ("$lt", high)) if at is not None}
            if bounds:
                query[field] = bounds
        docs = await self._executions.find(query).sort("_id", DESCENDING).limit(limit + 1).to_list()
        items = [EXECUTION.validate_python(_from_mongo(doc)) for doc in docs[:limit]]
        return Page(items, items[-1].id if len(docs) > limit else None)


def _claim(doc: dict[str, Any]) -> Claim:
    return Claim(
        doc["workflowId"],
        doc["key"],
        doc["executionId"],
        doc["claimedAt"],
        doc["expiresAt"],
        doc["state"],
    )


def _window(doc: dict[str, Any]) -> CaptureWindow:
    return CaptureWindow(doc["_id"], doc["captureId"], doc["until"], doc["limit"])
