"""An executor killed (SIGKILL) while it holds runs: the broker hands them to the next
executor, and each accepted webhook ends up recorded exactly once."""

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.support import (
    SECRET_KEY,
    System,
    free_port,
    running_system,
    settings_for,
    wait_for,
    webhook_url,
)


@pytest.fixture
async def system(rabbitmq: str, data_dir: Path, namespace: str) -> AsyncIterator[System]:
    settings = settings_for(
        broker_url=rabbitmq, mongodb=None, data_dir=data_dir, namespace=namespace
    )
    async with running_system(settings) as running:
        await running.stop("executor")  # the executors of this test are real processes
        yield running


@pytest.fixture
def start_executor(rabbitmq: str, data_dir: Path, namespace: str) -> Iterator[Any]:
    processes: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKFLOW_")} | {
            "HOOKFLOW_BROKER_URL": rabbitmq,
            "HOOKFLOW_NAMESPACE": namespace,
            "HOOKFLOW_DATA_DIR": str(data_dir),
            "HOOKFLOW_SECRET_KEY": SECRET_KEY,
            "HOOKFLOW_EXECUTOR_PORT": str(free_port()),
            "HOOKFLOW_RETRY_BACKOFF": "0.01",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "hookflow_cli", "executor"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait(10)


async def test_runs_held_by_a_killed_executor_are_recorded_once(
    system: System,
    start_executor: Any,
    upstream: dict[str, Any],
) -> None:
    workflow = await system.create(
        {
            "title": "slow side effect",
            "nodes": [{"key": "call", "type": "request", "config": {
                "method": "GET", "url": upstream["url"] + "/slow?s=1.5", "timeout": 10000}}],
        }
    )  # fmt: skip
    url = webhook_url(system, workflow)
    answers = await asyncio.gather(*(system.post(url, json={"n": n}) for n in range(10)))
    accepted = {response.headers["X-Hookflow-Execution-Id"] for response, _ in answers}
    assert len(accepted) == 10

    first = start_executor()

    async def holding_runs() -> bool:  # the first executor waits on the slow server
        return len(upstream["slow_calls"]) >= 1

    await wait_for(holding_runs, timeout=10)
    assert await _recorded(system, workflow) == set()
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    start_executor()

    async def all_recorded() -> bool:
        return await _recorded(system, workflow) == accepted

    await wait_for(all_recorded, timeout=30)
    await asyncio.sleep(0.5)
    _, page = await system.api("GET", f"/api/workflows/{workflow['id']}/executions?limit=200")
    assert len(page["items"]) == 10, "each run recorded once"
    # The runs the killed executor held were run again: side effects are at least once.
    assert len(upstream["slow_calls"]) > 10
    assert {item["status"] for item in page["items"]} == {"succeeded"}


async def _recorded(system: System, workflow: dict[str, Any]) -> set[str]:
    _, page = await system.api("GET", f"/api/workflows/{workflow['id']}/executions?limit=200")
    return {item["id"] for item in page["items"]}


async def test_a_sync_run_held_by_a_killed_executor_still_answers_its_caller(
    system: System,
    start_executor: Any,
    upstream: dict[str, Any],
) -> None:
    """Sync runs travel unconfirmed on a queue of their own; one held by an executor that dies
    is moved to the durable queue, run by the next executor, and its caller, still waiting,
    gets the answer; it is recorded once."""
    workflow = await system.create(
        {
            "title": "slow sync side effect",
            "sync": True,
            "syncTimeout": 30,
            "nodes": [
                {"key": "call", "type": "request", "config": {
                    "method": "GET", "url": upstream["url"] + "/slow?s=1.5", "timeout": 10000}},
                {"key": "answer", "type": "response",
                 "config": {"statusCode": 201, "body": {"n": "{{$context.body.n}}"}}},
            ],
        }
    )  # fmt: skip
    first = start_executor()
    call = asyncio.create_task(system.post(webhook_url(system, workflow), json={"n": 7}))

    async def holding_the_run() -> bool:
        return len(upstream["slow_calls"]) >= 1

    await wait_for(holding_the_run, timeout=15)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    start_executor()
    response, body = await asyncio.wait_for(call, 30)
    assert response.status == 201
    assert orjson.loads(body) == {"n": 7}
    execution_id = response.headers["X-Hookflow-Execution-Id"]
    await asyncio.sleep(0.5)
    assert await _recorded(system, workflow) == {execution_id}, "recorded once"
    assert len(upstream["slow_calls"]) == 2, "run again after the crash, once"
