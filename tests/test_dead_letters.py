"""Nothing accepted is ever silently dropped: a run that cannot run is recorded as a failed
execution that says why; a run that fails the same way on every delivery is recorded failed
on its last; a message the broker dead-lettered (its executor kept dying) has its runs
recorded; one bad run spoils no other run of its message; a message no one can read is set
aside for an operator; runs of another installation are left to their owner."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aio_pika
import orjson
import pytest

from hookflow_executor.app import WORKER
from hookflow_executor.app import create_app as executor_app
from hookflow_executor.worker import RunWorker
from hookflow_shared.messaging import Delivery, Outcome, Topology
from hookflow_shared.messaging.memory import MemoryBroker
from hookflow_shared.messaging.topology import MAX_ATTEMPTS
from hookflow_shared.models import RunBatch, run_batch_json
from hookflow_shared.resources import STORAGE
from hookflow_shared.storage import Storage
from hookflow_shared.storage.sqlite import SqliteStorage
from tests.support import (
    SECRET_KEY,
    System,
    delivery,
    get_message,
    payment_workflow,
    run_of,
    start_app,
    stored,
    wait_for,
)


@pytest.fixture
def system(rabbit_system: System) -> System:
    """These tests are about RabbitMQ's part: the services on a real broker only."""
    return rabbit_system


@pytest.fixture
async def sqlite(tmp_path: Path) -> Any:
    storage = SqliteStorage(tmp_path / "hookflow.sqlite3")
    await storage.open()
    yield storage
    await storage.close()


async def corrupt_version(storage: SqliteStorage, workflow_id: str) -> None:
    """A stored version that no longer reads (a store that keeps failing the same way)."""

    def corrupt(db: Any) -> None:
        db.execute(
            "UPDATE workflow_versions SET doc = '{broken' WHERE workflow_id = ?", (workflow_id,)
        )

    await storage._call(corrupt)


async def test_a_version_this_executor_cannot_run_is_recorded_failed_saying_why(
    sqlite: SqliteStorage,
) -> None:
    workflow = stored({"title": "old", "nodes": [{"key": "x", "type": "removed-type"}]})
    await sqlite.insert_workflow(workflow)
    worker = RunWorker(sqlite)
    run = run_of(workflow, {})
    assert await worker.handle(delivery(RunBatch(runs=[run]))) is Outcome.DONE
    record = await sqlite.get_execution(run.execution_id)
    assert record is not None and record.status == "failed"
    assert "unknown type 'removed-type'" in (record.error or "")


async def test_a_run_failing_on_every_delivery_is_recorded_failed_on_the_last(
    sqlite: SqliteStorage,
) -> None:
    good_workflow, bad_workflow = stored(payment_workflow()), stored(payment_workflow())
    for workflow in (good_workflow, bad_workflow):
        await sqlite.insert_workflow(workflow)
    await corrupt_version(sqlite, bad_workflow.id)
    worker = RunWorker(sqlite, broker=MemoryBroker())
    good, bad = run_of(good_workflow, {"status": "paid"}), run_of(bad_workflow, {})
    batch = RunBatch(runs=[good, bad])
    outcomes = [
        await worker.handle(delivery(batch, attempt)) for attempt in range(1, MAX_ATTEMPTS + 1)
    ]
    assert outcomes == [Outcome.RETRY] * (MAX_ATTEMPTS - 1) + [Outcome.DONE]
    # The good run was recorded at once; the bad one held back only itself.
    assert (await sqlite.get_execution(good.execution_id)).status == "succeeded"  # type: ignore[union-attr]
    record = await sqlite.get_execution(bad.execution_id)
    assert record is not None and record.status == "failed"
    assert f"gave up after {MAX_ATTEMPTS} deliveries" in (record.error or "")
    assert record.context.body == {}, "the record keeps the run's context, for a replay"


async def test_a_redelivered_message_is_split_one_run_per_message(sqlite: SqliteStorage) -> None:
    workflow = stored(payment_workflow())
    await sqlite.insert_workflow(workflow)
    bus = MemoryBroker()
    await bus.connect()
    worker = RunWorker(sqlite, broker=bus)
    runs = [run_of(workflow, {"status": "paid", "n": n}) for n in range(3)]
    assert await worker.handle(delivery(RunBatch(runs=runs), attempt=2)) is Outcome.DONE
    assert worker.executed == 0, "split, not run: each run goes back on its own"
    split = [RunBatch.model_validate_json((await bus._runs.messages.get()).body) for _ in runs]
    assert [batch.runs for batch in split] == [[run] for run in runs]


async def test_an_unreadable_message_is_set_aside(sqlite: SqliteStorage) -> None:
    bus = MemoryBroker()
    worker = RunWorker(sqlite, broker=bus)
    for body in (b"not json", b'{"runs": "no"}', orjson.dumps({"runs": [{"execution_id": 1}]})):
        assert await worker.handle(delivery_of(body)) is Outcome.DONE
    reasons = [reason for _, reason in bus.unreadable]
    assert reasons[0].startswith("not JSON: ")
    assert reasons[1:] == ["not a run batch: no `runs` list", "no readable run in it"]
    assert bus.unreadable[0][0] == b"not json"


def delivery_of(body: bytes, attempt: int = 1) -> Delivery:
    return Delivery(body, attempt=attempt)


async def test_one_unreadable_run_spoils_no_other(sqlite: SqliteStorage) -> None:
    workflow = stored(payment_workflow())
    await sqlite.insert_workflow(workflow)
    worker = RunWorker(sqlite)
    good = run_of(workflow, {"status": "paid"})
    readable = orjson.loads(run_batch_json([good]))["runs"][0]
    body = orjson.dumps({"runs": [{"execution_id": "broken"}, readable]})
    assert await worker.handle(delivery_of(body)) is Outcome.DONE
    assert (await sqlite.get_execution(good.execution_id)) is not None


async def publish_raw(url: str, queue: str, body: bytes) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.default_exchange.publish(aio_pika.Message(body), routing_key=queue)


async def crash_while_holding(url: str, queue: str, times: int) -> None:
    """Take the message and die without acknowledging it, as a crashing executor would."""
    for _ in range(times):
        connection = await aio_pika.connect(url)
        channel = await connection.channel()
        message = await get_message(await channel.get_queue(queue), no_ack=False)
        assert message is not None
        await connection.close()  # unacknowledged: the broker hands it back, counted


async def test_a_message_whose_executor_keeps_dying_is_dead_lettered_and_recorded(
    system: System, rabbitmq: str, namespace: str
) -> None:
    executor = system.runners.pop("executor")
    await executor.cleanup()  # no executor for now: the test plays the dying ones
    workflow = await system.create(payment_workflow())
    storage: Storage = system.runners["config"].app[STORAGE]
    stored_workflow = await storage.get_workflow(workflow["id"])
    assert stored_workflow is not None
    runs = [run_of(stored_workflow, {"status": "paid"}) for _ in range(2)]
    topology = Topology(namespace)
    await publish_raw(rabbitmq, topology.runs_queue, run_batch_json(runs))
    await crash_while_holding(rabbitmq, topology.runs_queue, MAX_ATTEMPTS)
    # Now an executor starts: it finds the message on the dead-letter queue.
    runner, _ = await start_app(executor_app(system.settings))
    try:
        records = [await system.execution(run.execution_id, timeout=15) for run in runs]
    finally:
        await runner.cleanup()
    for record in records:
        assert record["status"] == "failed"
        assert "dead-lettered (delivery_limit)" in record["error"]
        assert record["context"]["body"] == {"status": "paid"}


async def queue_messages(url: str, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take every message of a queue (acknowledged: the test's look is the last)."""
    connection = await aio_pika.connect(url)
    taken = []
    async with connection:
        channel = await connection.channel()
        q = await channel.get_queue(queue)
        while (message := await q.get(fail=False, no_ack=True)) is not None:
            taken.append(message)
    return taken


async def test_an_unreadable_message_on_rabbitmq_is_set_aside_not_lost(
    system: System, rabbitmq: str, namespace: str
) -> None:
    topology = Topology(namespace)
    await publish_raw(rabbitmq, topology.runs_queue, b"\x00 not a run batch")

    async def set_aside() -> list[Any]:
        return await queue_messages(rabbitmq, topology.unreadable_queue)

    messages = await wait_for(set_aside, timeout=10)
    assert messages[0].body == b"\x00 not a run batch"
    assert "not JSON" in messages[0].headers["x-hookflow-reason"]


async def test_runs_of_another_installation_are_left_for_their_owner(
    system: System, rabbitmq: str, namespace: str
) -> None:
    workflow = await system.create(payment_workflow())
    storage: Storage = system.runners["config"].app[STORAGE]
    stored_workflow = await storage.get_workflow(workflow["id"])
    assert stored_workflow is not None
    foreign = run_of(stored_workflow, {"status": "paid"}, installation="another-installation")
    topology = Topology(namespace)
    await publish_raw(rabbitmq, topology.runs_queue, run_batch_json([foreign]))
    worker: RunWorker = system.runners["executor"].app[WORKER]

    async def halted() -> bool:
        return worker.health.halted is not None

    await wait_for(halted, timeout=10)
    async with system.session.get(system.executor_url + "/healthz") as response:
        assert response.status == 503
        assert "another installation" in (await response.json())["halted"]
    await asyncio.sleep(0.5)
    assert await storage.get_execution(foreign.execution_id) is None, "ran another's run"
    left = await queue_messages(rabbitmq, topology.runs_queue)
    assert [RunBatch.model_validate_json(m.body).runs[0].execution_id for m in left] == [
        foreign.execution_id
    ], "the run was not left on the queue for its owner"


def test_a_second_installation_on_the_same_namespace_refuses_to_start(
    rabbitmq: str, namespace: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    def executor(data_dir: Path) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKFLOW_")} | {
            "HOOKFLOW_BROKER_URL": rabbitmq,
            "HOOKFLOW_NAMESPACE": namespace,
            "HOOKFLOW_DATA_DIR": str(data_dir),
            "HOOKFLOW_SECRET_KEY": SECRET_KEY,
            "HOOKFLOW_EXECUTOR_PORT": "0",
            "HOOKFLOW_LOG_FORMAT": "json",
        }
        return subprocess.Popen(
            [sys.executable, "-m", "hookflow_cli", "executor"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    first = executor(tmp_path / "first")
    try:
        for _ in range(200):  # the first claims the namespace as it connects
            if (tmp_path / "first" / "hookflow.sqlite3").exists() and _claimed(rabbitmq, namespace):
                break
            assert first.poll() is None, first.communicate()
            time.sleep(0.05)
        second = executor(tmp_path / "second")
        _, errors = second.communicate(timeout=60)
        assert second.returncode != 0
        [line] = errors.strip().splitlines()  # one line: what is wrong and what to do
        assert "belongs to another Hookflow installation" in line
        assert "HOOKFLOW_NAMESPACE" in line
        assert f"stores in SQLite in {tmp_path / 'second' / 'hookflow.sqlite3'}" in line
        assert "must use the same storage" in line
        assert first.poll() is None, "the first installation must keep running"
    finally:
        first.terminate()
        first.communicate(timeout=30)


def _claimed(url: str, namespace: str) -> bool:
    async def declared() -> bool:
        connection = await aio_pika.connect(url)
        async with connection:
            channel = await connection.channel()
            try:
                await channel.get_exchange(Topology(namespace).installation_exchange)
            except Exception:
                return False
            return True

    return asyncio.run(declared())
