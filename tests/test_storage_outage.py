"""A store that stops answering for a while: the gateway keeps taking webhooks from its copy
of the triggers; the executor records nothing it cannot, acknowledges nothing it has not
recorded, says so on /healthz, and catches up when the store answers again."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hookflow_executor.app import WORKER
from tests.support import (
    System,
    payment_workflow,
    running_system,
    settings_for,
    sqlite_write_lock,
    wait_for,
    webhook_url,
)


@pytest.fixture
async def system(rabbitmq: str, data_dir: Path, namespace: str) -> AsyncIterator[System]:
    settings = settings_for(
        broker_url=rabbitmq,
        mongodb=None,
        data_dir=data_dir,
        namespace=namespace,
        storage_timeout=0.5,
    )
    async with running_system(settings) as running:
        yield running


async def health(system: System, url: str) -> tuple[int, dict[str, Any]]:
    async with system.session.get(url + "/healthz") as response:
        return response.status, await response.json()


async def test_the_executor_holds_runs_while_the_store_is_down_and_catches_up(
    system: System, data_dir: Path
) -> None:
    workflow = await system.create(payment_workflow())
    url = webhook_url(system, workflow)
    worker = system.runners["executor"].app[WORKER]
    with sqlite_write_lock(data_dir / "hookflow.sqlite3"):
        answers = await asyncio.gather(
            *(system.post(url, json={"status": "paid", "n": n}) for n in range(40))
        )
        assert {response.status for response, _ in answers} == {200}, "the gateway stopped"
        accepted = [response.headers["X-Hookflow-Execution-Id"] for response, _ in answers]

        async def reported() -> dict[str, Any] | None:
            status, body = await health(system, system.executor_url)
            return body if status == 503 and not body["storage"]["ok"] else None

        report = await wait_for(reported, timeout=10)
        assert "record executions" in report["storage"]["retrying"]
        assert "locked" in report["storage"]["error"]
        # Changes cannot be stored either: a clear 503, not a 500.
        status, body = await system.api("POST", "/api/workflows", payment_workflow())
        assert status == 503, body
        await asyncio.sleep(1.5)
        assert worker.executed == 0, "recorded while the store was down?"
    records = [await system.execution(execution_id, timeout=20) for execution_id in accepted]
    assert all(record["status"] == "succeeded" for record in records)
    assert (await health(system, system.executor_url))[0] == 200
    _, page = await system.api("GET", f"/api/workflows/{workflow['id']}/executions?limit=100")
    assert sorted(item["id"] for item in page["items"]) == sorted(accepted)
    assert worker.executed == 40, "a run ran twice: its message was handed back"
