"""Config that is live when the config API says so: once a change has answered 2xx, every
running gateway serves it; and nothing lets a gateway's copy of the triggers go back in time
(events applied out of order, overlapping reloads, changes made while it loads or while its
broker connection is down)."""

import asyncio
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from hookflow_config_api.app import WORKFLOWS
from hookflow_gateway.app import GATEWAY
from hookflow_gateway.app import create_app as gateway_app
from hookflow_gateway.triggers import Trigger, TriggerCache
from hookflow_shared.models import ConfigEvent, StoredWorkflow
from hookflow_shared.resources import BROKER, STORAGE
from hookflow_shared.storage import Page
from hookflow_shared.storage.sqlite import SqliteStorage
from tests.support import (
    System,
    close_connections,
    payment_workflow,
    running_system,
    second_gateway,
    settings_for,
    start_app,
    stored,
    wait_for,
)


@pytest.fixture
def system(rabbit_system: System) -> System:
    """These tests are about RabbitMQ's part: the services on a real broker only."""
    return rabbit_system


async def statuses(system: System, bases: Sequence[str], key: str) -> list[int]:
    return [
        (await system.post(f"{base}/api/webhook:trigger/{key}", json={"status": "paid"}))[0].status
        for base in bases
    ]


async def test_every_gateway_serves_a_change_once_the_api_answered(
    system: System, rabbitmq: str, data_dir: Path, namespace: str
) -> None:
    settings = settings_for(
        broker_url=rabbitmq, mongodb=None, data_dir=data_dir, namespace=namespace
    )
    async with second_gateway(settings) as other:
        bases = [system.gateway_url, other]
        await wait_for(lambda: _config_api_knows(system, 2), timeout=10)
        for round_ in range(10):
            status, workflow = await system.api(
                "POST", "/api/workflows", payment_workflow(title=f"live {round_}")
            )
            assert status == 201
            key, path = workflow["trigger"]["key"], f"/api/workflows/{workflow['id']}"
            assert await statuses(system, bases, key) == [200, 200], "created, not yet served"
            assert (await system.api("PATCH", path, {"enabled": False}))[0] == 200
            assert await statuses(system, bases, key) == [404, 404], "disabled, still served"
            assert (await system.api("PATCH", path, {"enabled": True}))[0] == 200
            assert await statuses(system, bases, key) == [200, 200], "enabled, not yet served"
            assert (await system.api("DELETE", path))[0] == 204
            assert await statuses(system, bases, key) == [404, 404], "deleted, still served"


async def _config_api_knows(system: System, gateways: int) -> bool:
    workflows = system.runners["config"].app[WORKFLOWS]
    return len(workflows._propagation.gateways()) == gateways


class SlowReads(SqliteStorage):
    """Real SQLite whose chosen reads return late: the read is made at once, its answer
    arrives after `delay`, as a slow network would deliver an older state."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.slow_gets: set[int] = set()
        self.slow_lists = 0
        self.gets = 0
        self.delay = 0.3
        self.read_made = asyncio.Event()
        """Set once a slow read has read (its answer still to come)."""

    async def get_workflow(self, workflow_id: str) -> StoredWorkflow | None:
        self.gets += 1
        answer = await super().get_workflow(workflow_id)
        if self.gets in self.slow_gets:
            await self._late()
        return answer

    async def list_workflows(self, *, limit: int, cursor: str | None = None) -> Page[Any]:
        answer = await super().list_workflows(limit=limit, cursor=cursor)
        if self.slow_lists:
            self.slow_lists -= 1
            await self._late()
        return answer

    async def _late(self) -> None:
        self.read_made.set()
        await asyncio.sleep(self.delay)


@pytest.fixture
async def slow_storage(tmp_path: Path) -> Any:
    storage = SlowReads(tmp_path / "hookflow.sqlite3")  # the file the services use
    await storage.open()
    yield storage
    await storage.close()


def event(kind: str, workflow: StoredWorkflow) -> ConfigEvent:
    return ConfigEvent(
        type=kind, workflow_id=workflow.id, key=workflow.key, version=workflow.version
    )  # type: ignore[arg-type]


def disabled(workflow: StoredWorkflow, version: int) -> StoredWorkflow:
    document = workflow.document.model_copy(update={"enabled": False})
    return workflow.model_copy(update={"version": version, "document": document})


async def test_a_slow_read_for_an_older_event_does_not_undo_a_newer_one(
    slow_storage: SlowReads,
) -> None:
    workflow = stored(payment_workflow())
    await slow_storage.insert_workflow(workflow)
    cache = TriggerCache(slow_storage)
    await cache.load()
    slow_storage.slow_gets = {slow_storage.gets + 1}  # the next read answers late
    older = asyncio.create_task(cache.apply(event("updated", workflow)))
    await slow_storage.read_made.wait()  # its read has been made: version 1, enabled
    newer = disabled(workflow, 2)
    await slow_storage.replace_workflow(newer)
    await cache.apply(event("updated", newer))
    assert not isinstance(cache.get(workflow.key), Trigger)  # disabled, or pending: 503
    await older
    assert cache.get(workflow.key) is None, "the late answer brought back a disabled trigger"


async def test_a_reload_that_read_before_a_change_does_not_undo_it(
    slow_storage: SlowReads,
) -> None:
    workflow = stored(payment_workflow())
    await slow_storage.insert_workflow(workflow)
    cache = TriggerCache(slow_storage)
    await cache.load()
    slow_storage.slow_lists = 1
    reload = asyncio.create_task(cache.load())  # reads version 1, answers late
    await slow_storage.read_made.wait()
    await slow_storage.replace_workflow(disabled(workflow, 2))
    await cache.apply(event("updated", disabled(workflow, 2)))
    created = stored(payment_workflow(title="new"))
    await slow_storage.insert_workflow(created)
    await cache.apply(event("created", created))
    await reload
    assert cache.get(workflow.key) is None, "the reload's older snapshot won"
    assert isinstance(cache.get(created.key), Trigger), "a workflow created meanwhile was lost"
    await cache.load()  # and the next reload agrees
    assert cache.get(workflow.key) is None
    assert isinstance(cache.get(created.key), Trigger)
    await slow_storage.delete_workflow(created.id)
    slow_storage.slow_gets = {slow_storage.gets + 1}
    slow_storage.read_made.clear()
    late = asyncio.create_task(cache.apply(event("updated", created)))  # reads it, alive
    await slow_storage.read_made.wait()
    await cache.apply(event("deleted", created))
    await late
    assert cache.get(created.key) is None, "a late read brought back a deleted workflow"


async def test_a_change_made_while_a_gateway_starts_is_not_missed(
    slow_storage: SlowReads, rabbitmq: str, namespace: str, tmp_path: Path
) -> None:
    settings = settings_for(
        broker_url=rabbitmq, mongodb=None, data_dir=tmp_path, namespace=namespace
    )
    async with running_system(settings) as system:
        slow_storage.slow_lists = 1
        slow_storage.delay = 1.0
        starting = asyncio.create_task(start_app(gateway_app(settings, storage=slow_storage)))
        try:
            await slow_storage.read_made.wait()  # the new gateway read the (empty) list
            workflow = stored(payment_workflow())
            await slow_storage.insert_workflow(workflow)
            # As the config API does after storing a change: announce it.
            await system.runners["config"].app[BROKER].publish_event(event("created", workflow))
        finally:
            runner, url = await starting
        try:
            cache = runner.app[GATEWAY].triggers
            assert isinstance(cache.get(workflow.key), Trigger), "a change during the load was lost"
            response, _ = await system.post(f"{url}/api/webhook:trigger/{workflow.key}", json={})
            assert response.status == 200
        finally:
            await runner.cleanup()


@pytest.mark.skipif(shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl")
async def test_a_gateway_whose_connection_dropped_answers_503_until_it_reloaded(
    system: System, namespace: str
) -> None:
    workflow = await system.create(payment_workflow())
    key = workflow["trigger"]["key"]
    assert await statuses(system, [system.gateway_url], key) == [200]
    assert await asyncio.to_thread(close_connections, namespace) >= 1
    cache = system.runners["gateway"].app[GATEWAY].triggers
    await wait_for(lambda: _not_ready(cache), timeout=5)
    # Meanwhile the workflow is disabled behind the gateway's back (its event is missed).
    storage = system.runners["gateway"].app[STORAGE]
    current = await storage.get_workflow(workflow["id"])
    assert current is not None
    await storage.replace_workflow(disabled(current, current.version + 1))
    answers = await statuses(system, [system.gateway_url], key)
    assert answers == [503], "answered from a copy that may be stale"

    async def reloaded_and_disabled() -> bool:
        return await statuses(system, [system.gateway_url], key) == [404]

    await wait_for(reloaded_and_disabled, timeout=20)


async def _not_ready(cache: TriggerCache) -> bool:
    return not cache.ready
