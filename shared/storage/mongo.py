"""The MongoDB adapter, through PyMongo's own asyncio API (AsyncMongoClient)."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReplaceOne
from pymongo.errors import DuplicateKeyError, PyMongoError

from hookflow.shared.errors import Conflict, NotFound
from hookflow.shared.models import ExecutionRecord, ExecutionStatus, StoredWorkflow
from hookflow.shared.storage.base import Page, Storage, TimeRange

# Failures are few: partial indexes find them (with or without a workflow); other listings
# read the _id index or by_workflow, newest first, bounded by the ids of their time range.
_FAILED = {"status": "failed"}


def _to_mongo(doc: dict[str, Any]) -> dict[str, Any]:
    doc["_id"] = doc.pop("id")
    return doc


def _from_mongo(doc: dict[str, Any]) -> dict[str, Any]:
    doc["id"] = doc.pop("_id")
    return doc


class MongoStorage(Storage):
    def __init__(self, url: str, database: str) -> None:
        self._client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            url, tz_aware=True, appname="hookflow", serverSelectionTimeoutMS=10_000
        )
        db = self._client[database]
        self._workflows = db["workflows"]
        self._versions = db["workflow_versions"]
        self._executions = db["executions"]

    async def open(self) -> None:
        await self._workflows.create_index([("key", ASCENDING)], unique=True, name="key_unique")
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
        return doc

    @staticmethod
    def _version_doc(workflow: StoredWorkflow) -> dict[str, Any]:
        doc = workflow.model_dump()
        doc["_id"] = f"{doc.pop('id')}:{workflow.version}"
        doc["workflowId"] = workflow.id
        return doc

    async def insert_workflow(self, workflow: StoredWorkflow) -> None:
        try:
            await self._workflows.insert_one(self._workflow_doc(workflow))
        except DuplicateKeyError as error:
            raise Conflict("a workflow with this id or trigger key exists") from error
        await self._versions.replace_one(
            {"_id": f"{workflow.id}:{workflow.version}"}, self._version_doc(workflow), upsert=True
        )

    async def replace_workflow(self, workflow: StoredWorkflow) -> None:
        try:
            await self._versions.insert_one(self._version_doc(workflow))
        except DuplicateKeyError as error:
            raise Conflict(f"workflow {workflow.id} changed meanwhile") from error
        result = await self._workflows.replace_one(
            {"_id": workflow.id, "version": workflow.version - 1}, self._workflow_doc(workflow)
        )
        if result.matched_count == 1:
            return
        await self._versions.delete_one({"_id": f"{workflow.id}:{workflow.version}"})
        current = await self._workflows.find_one({"_id": workflow.id}, {"version": 1})
        if current is None:
            raise NotFound(f"workflow {workflow.id} not found")
        raise Conflict(
            f"workflow {workflow.id} changed meanwhile (now version {current['version']})"
        )

    async def delete_workflow(self, workflow_id: str) -> StoredWorkflow | None:
        doc = await self._workflows.find_one_and_delete({"_id": workflow_id})
        return self._workflow(doc)

    @staticmethod
    def _workflow(doc: dict[str, Any] | None) -> StoredWorkflow | None:
        if doc is None:
            return None
        doc.pop("key", None)
        doc.pop("workflowId", None)
        return StoredWorkflow.model_validate(_from_mongo(doc))

    async def get_workflow(self, workflow_id: str) -> StoredWorkflow | None:
        return self._workflow(await self._workflows.find_one({"_id": workflow_id}))

    async def get_workflow_by_key(self, key: str) -> StoredWorkflow | None:
        return self._workflow(await self._workflows.find_one({"key": key}))

    async def get_workflow_version(self, workflow_id: str, version: int) -> StoredWorkflow | None:
        doc = await self._versions.find_one({"_id": f"{workflow_id}:{version}"})
        if doc is not None:
            doc["_id"] = workflow_id
        return self._workflow(doc)

    async def list_workflows(
        self, *, limit: int, cursor: str | None = None
    ) -> Page[StoredWorkflow]:
        query = {"_id": {"$lt": cursor}} if cursor else {}
        docs = await self._workflows.find(query).sort("_id", DESCENDING).limit(limit + 1).to_list()
        items = [w for w in map(self._workflow, docs[:limit]) if w is not None]
        return Page(items, items[-1].id if len(docs) > limit else None)

    # --- executions ---

    async def save_executions(self, records: Sequence[ExecutionRecord]) -> None:
        operations = [
            ReplaceOne({"_id": record.id}, _to_mongo(record.model_dump()), upsert=True)
            for record in records
        ]
        await self._executions.bulk_write(operations, ordered=False)

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        doc = await self._executions.find_one({"_id": execution_id})
        return ExecutionRecord.model_validate(_from_mongo(doc)) if doc else None

    async def existing_executions(self, execution_ids: Sequence[str]) -> set[str]:
        cursor = self._executions.find({"_id": {"$in": list(execution_ids)}}, {"_id": 1})
        return {doc["_id"] async for doc in cursor}

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
        items = [ExecutionRecord.model_validate(_from_mongo(doc)) for doc in docs[:limit]]
        return Page(items, items[-1].id if len(docs) > limit else None)
