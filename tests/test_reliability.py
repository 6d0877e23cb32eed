"""What integrators count on: an accepted webhook is recorded once even when the store fails
for a while, and a flood of unknown keys never reaches the database."""

import asyncio
import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from hookflow_executor.worker import RunWorker
from hookflow_gateway.triggers import TriggerCache
from hookflow_shared.crypto import hash_password
from hookflow_shared.errors import StorageUnavailable
from hookflow_shared.messaging import Delivery, Outcome, Topology, open_broker
from hookflow_shared.models import ExecutionRecord
from hookflow_shared.storage.sqlite import SqliteStorage
from tests.support import (
    payment_workflow,
    run_of,
    running_system,
    settings_for,
    stored,
    wait_for,
    webhook_url,
)


class FlakyStorage(SqliteStorage):
    """Real SQLite whose first `failures` writes of executions fail, as a store that does not
    answer for a while."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures
        self.reads: list[str] = []

    async def save_executions(self, records: Sequence[ExecutionRecord]) -> None:
        if self.failures:
            self.failures -= 1
            raise StorageUnavailable("store unavailable")
        await super().save_executions(records)

    async def get_workflow_by_key(self, key: str) -> Any:
        self.reads.append(key)
        return await super().get_workflow_by_key(key)

    async def list_workflows(self, *, limit: int, cursor: str | None = None) -> Any:
        self.reads.append("list")
        return await super().list_workflows(limit=limit, cursor=cursor)

    async def get_workflow(self, workflow_id: str) -> Any:
        self.reads.append(workflow_id)
        return await super().get_workflow(workflow_id)


async def test_a_run_is_acknowledged_only_once_recorded_and_a_failing_store_is_retried(
    rabbitmq: str, namespace: str, tmp_path: Path
) -> None:
    storage = FlakyStorage(tmp_path / "db.sqlite3", failures=2)
    await storage.open()
    broker = open_broker(rabbitmq, Topology(namespace), retry_backoff=0.01)
    await broker.connect()
    try:
        workflow = stored(payment_workflow())
        await storage.insert_workflow(workflow)
        worker = RunWorker(storage)
        deliveries = 0

        async def handle(delivery: Delivery) -> Outcome:
            nonlocal deliveries
            deliveries += 1
            return await worker.handle(delivery)

        consumer = await broker.consume_runs(handle, prefetch=1)
        run = run_of(workflow, {"status": "paid"})
        await broker.publish_runs([run])

        async def recorded() -> ExecutionRecord | None:
            return await storage.get_execution(run.execution_id)

        record = await wait_for(recorded, timeout=10)
        await consumer.stop(1)
        # The failed writes were retried in place: the message was held, not handed back.
        assert deliveries == 1
        assert storage.failures == 0
        assert record.status == "succeeded"
        assert len((await storage.list_executions(workflow_id=workflow.id, limit=10)).items) == 1
    finally:
        await broker.close()
        await storage.close()


@pytest.mark.parametrize("broker", ["memory", "rabbitmq"])
async def test_unknown_keys_cost_no_database_read(
    broker: str, request: pytest.FixtureRequest, namespace: str, tmp_path: Path
) -> None:
    url = request.getfixturevalue("rabbitmq") if broker == "rabbitmq" else None
    storage = FlakyStorage(tmp_path / "db.sqlite3", failures=0)
    await storage.open()
    bus = open_broker(url, Topology(namespace))
    await bus.connect()
    settings = settings_for(broker_url=url, mongodb=None, data_dir=tmp_path, namespace=namespace)
    try:
        async with running_system(settings, storage=storage, broker=bus) as system:
            workflow = await system.create(payment_workflow())
            reads_before = len(storage.reads)
            answers = await asyncio.gather(
                *(
                    system.post(f"{system.gateway_url}/api/webhook:trigger/unknown-{n}", json={})
                    for n in range(300)
                )
            )
            assert {response.status for response, _ in answers} == {404}
            known, _ = await system.post(webhook_url(system, workflow), json={"status": "paid"})
            assert known.status == 200
            assert storage.reads[reads_before:] == []
    finally:
        await bus.close()
        await storage.close()


async def test_a_reload_keeps_unchanged_triggers_and_their_verified_credentials(
    tmp_path: Path,
) -> None:

    storage = SqliteStorage(tmp_path / "db.sqlite3")
    await storage.open()
    try:
        workflow = stored(
            {
                "title": "basic",
                "trigger": {"basicAuth": {"username": "u", "passwordHash": hash_password("p")}},
            }
        )
        await storage.insert_workflow(workflow)
        cache = TriggerCache(storage)
        await cache.load()
        trigger = cache.get(workflow.key)
        assert trigger is not None
        header = "Basic " + base64.b64encode(b"u:p").decode()
        assert await trigger.authorized(header, cache.hashing)
        await cache.load()  # the periodic reload
        assert cache.get(workflow.key) is trigger, "unchanged: the same trigger, its cache kept"
        assert (
            await trigger.authorized(
                "Basic " + base64.b64encode(b"u:wrong").decode(), cache.hashing
            )
            is False
        )
        changed = workflow.model_copy(update={"version": 2})
        await storage.replace_workflow(changed)
        await cache.load()
        assert cache.get(workflow.key) is not trigger
    finally:
        await storage.close()
