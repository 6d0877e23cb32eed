"""Test helpers: documents, and the services started over real sockets."""

import asyncio
import contextlib
import os
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from aiohttp import web
from pydantic import SecretStr

from hookflow_config_api.app import create_app as config_api_app
from hookflow_executor.app import create_app as executor_app
from hookflow_gateway.app import create_app as gateway_app
from hookflow_shared.crypto import new_key
from hookflow_shared.ids import first_id_at, new_id, trigger_key
from hookflow_shared.messaging import Broker, Delivery, DeliveryHandler, Outcome, Topology
from hookflow_shared.models import (
    ExecutionRecord,
    ExecutionStatus,
    NodeResult,
    RunBatch,
    RunRequest,
    StoredWorkflow,
    TriggerContext,
    WorkflowDocument,
    now,
)
from hookflow_shared.settings import RunSettings
from hookflow_shared.storage import Storage

TOKEN = "test-admin-token"
FOREVER = timedelta(days=3650)
"""The retention of the tests' stores: their records received at fixed moments long past (T0)
are kept, unless a test is about retention."""
SECRET_KEY = new_key()


def status_is_paid() -> dict[str, Any]:
    """A basic condition's config: the body's status equals "paid"."""
    comparison = {"calculator": "equal", "operands": ["{{$context.body.status}}", "paid"]}
    return {"calculation": {"group": {"type": "and", "calculations": [comparison]}}}


def payment_workflow(**changes: Any) -> dict[str, Any]:
    """The README's payment callback, in async mode: a condition on the body's status."""
    workflow: dict[str, Any] = {
        "title": "Payment callback",
        "trigger": {
            "request": {
                "headers": [{"key": "X-Request-Id", "alias": "Request ID"}],
                "query": [{"key": "order"}],
                "body": [{"key": "status"}, {"key": "order.id", "alias": "Order ID"}],
            }
        },
        "nodes": [
            {
                "key": "paid",
                "type": "condition",
                "config": status_is_paid(),
                "branches": {
                    "false": [{"key": "unpaid", "type": "end", "config": {"endStatus": "failed"}}]
                },
            }
        ],
    }
    workflow.update(changes)
    return workflow


def stored(document: dict[str, Any], version: int = 1) -> StoredWorkflow:
    """A workflow as the config API stores it (a new id and trigger key)."""
    doc = WorkflowDocument.model_validate(document)
    doc.trigger.key = trigger_key()
    return StoredWorkflow(
        id=new_id(), version=version, created_at=now(), updated_at=now(), document=doc
    )


def numbered_run(number: int, **fields: Any) -> RunRequest:
    """A run of workflow "w" whose body and ids carry `number`; `fields` replace the rest."""
    values: dict[str, Any] = {
        "execution_id": f"e{number}",
        "workflow_id": "w",
        "version": 1,
        "received_at": datetime.now(UTC),
        "request_id": f"r{number}",
        "context": TriggerContext(body={"n": number}),
    }
    return RunRequest(**(values | fields))


def run_of(workflow: StoredWorkflow, body: Any, **fields: Any) -> RunRequest:
    """A run of the workflow, as a gateway would queue it."""
    return RunRequest(
        execution_id=new_id(),
        workflow_id=workflow.id,
        version=workflow.version,
        received_at=now(),
        request_id="r",
        context=TriggerContext(body=body),
        **fields,
    )


def delivery(batch: RunBatch, attempt: int = 1) -> Delivery:
    """A broker delivery of the batch, as the executor gets it."""
    return Delivery(batch.model_dump_json().encode(), attempt=attempt)


async def first_dead_letter(
    broker: Broker,
    handle: DeliveryHandler,
    publish: Callable[[], Awaitable[object]] | None = None,
    *,
    timeout: float,
) -> Delivery:
    """Consume runs with `handle` and the dead letters beside it (one at a time each), then
    `publish`: the first message the broker dead-letters."""
    dead: asyncio.Queue[Delivery] = asyncio.Queue()

    async def on_dead(delivery: Delivery) -> Outcome:
        await dead.put(delivery)
        return Outcome.DONE

    consumer = await broker.consume_runs(handle, prefetch=1)
    dead_consumer = await broker.consume_dead_runs(on_dead, prefetch=1)
    try:
        if publish is not None:
            await publish()
        return await asyncio.wait_for(dead.get(), timeout)
    finally:
        await consumer.stop(1)
        await dead_consumer.stop(1)


async def get_message(queue: AbstractQueue, *, no_ack: bool) -> AbstractIncomingMessage | None:
    """A message of `queue` (basic.get, tried for up to 5 s), or None."""
    for _ in range(250):
        message = await queue.get(fail=False, no_ack=no_ack)
        if message is not None:
            return message
        await asyncio.sleep(0.02)
    return None


async def delete_topology(broker_url: str, namespace: str) -> None:
    """Delete every queue and exchange the services declare in `namespace`, from their own list
    (shared.messaging.topology), the installation marker included; what was never declared, or
    a broker that is down, is left as it is."""
    topology = Topology(namespace)
    with contextlib.suppress(Exception):
        connection = await aio_pika.connect(broker_url, timeout=5)
        async with connection:
            for queue in topology.queues():
                channel = await connection.channel()
                with contextlib.suppress(Exception):
                    await channel.queue_delete(queue.name)
            exchanges = [spec.name for spec in topology.exchanges()]
            for exchange in [*exchanges, topology.installation_exchange]:
                channel = await connection.channel()
                with contextlib.suppress(Exception):
                    await channel.exchange_delete(exchange)


@contextmanager
def sqlite_write_lock(path: Path) -> Iterator[Callable[[], float]]:
    """Another connection holds the SQLite file's write lock, as another process writing would,
    until the block ends or the `release` it gives is called; `release` returns the moment just
    before the lock was let go (a write that waited for it ends after that)."""
    ready, go = threading.Event(), threading.Event()
    let_go: list[float] = []

    def hold() -> None:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        ready.set()
        go.wait(60)
        db.execute("ROLLBACK")
        db.close()

    def release() -> float:
        if not let_go:
            let_go.append(time.monotonic())
            go.set()
        return let_go[0]

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait(10)
    try:
        yield release
    finally:
        release()
        thread.join(10)


async def wait_for[T](probe: Callable[[], Awaitable[T | None]], timeout: float = 5.0) -> T:
    """Poll until `probe` gives something other than None/False."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        await asyncio.sleep(0.05)


@dataclass
class System:
    """The three services, each its own app with its own connections, on real sockets."""

    gateway_url: str
    config_url: str
    executor_url: str
    session: aiohttp.ClientSession
    runners: dict[str, web.AppRunner]
    settings: RunSettings

    async def api(self, method: str, path: str, json: Any = None, **kwargs: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {TOKEN}", **kwargs.pop("headers", {})}
        async with self.session.request(
            method, self.config_url + path, json=json, headers=headers, **kwargs
        ) as r:
            body = await r.json() if r.content_type == "application/json" else await r.text()
            return r.status, body

    async def triggers(self) -> int:
        async with self.session.get(self.gateway_url + "/healthz") as response:
            return int((await response.json())["triggers"]["count"])

    async def create(self, document: dict[str, Any]) -> dict[str, Any]:
        """Create a workflow and wait until the gateway has heard of it (the change event
        takes a few milliseconds)."""
        before = await self.triggers()
        status, body = await self.api("POST", "/api/workflows", document)
        assert status == 201, body
        if body["enabled"]:
            await wait_for(lambda: self._more_triggers_than(before), timeout=2)
        return body

    async def _more_triggers_than(self, count: int) -> bool:
        return await self.triggers() > count

    async def post(self, url: str, **kwargs: Any) -> tuple[aiohttp.ClientResponse, bytes]:
        async with self.session.post(url, **kwargs) as response:
            return response, await response.read()

    async def execution(self, execution_id: str, timeout: float = 10.0) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            status, body = await self.api("GET", f"/api/executions/{execution_id}")
            return body if status == 200 else None

        return await wait_for(probe, timeout)

    async def stop(self, name: str) -> None:
        await self.runners.pop(name).cleanup()


def settings_for(
    *,
    broker_url: str | None,
    mongodb: tuple[str, str] | None,
    data_dir: Path,
    namespace: str,
    **extra: Any,
) -> RunSettings:
    return RunSettings(
        broker_url=SecretStr(broker_url) if broker_url else None,
        mongodb_url=SecretStr(mongodb[0]) if mongodb else None,
        mongodb_database=mongodb[1] if mongodb else "hookflow",
        data_dir=data_dir,
        namespace=namespace,
        admin_token=SecretStr(TOKEN),
        secret_key=SecretStr(SECRET_KEY),
        refresh_interval=3600,
        **({"execution_retention": FOREVER} | extra),
    )


async def start_app(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@asynccontextmanager
async def running_system(
    settings: RunSettings, *, storage: Storage | None = None, broker: Broker | None = None
) -> AsyncIterator[System]:
    """Config API, executor and gateway as separate apps, each opening its own storage and
    broker connection, as separate processes would (or sharing the given ones, as in
    `hookflow run`)."""
    runners: dict[str, web.AppRunner] = {}
    urls: dict[str, str] = {}
    try:
        for name, factory in (
            ("config", config_api_app),
            ("executor", executor_app),
            ("gateway", gateway_app),
        ):
            app = factory(settings, storage=storage, broker=broker)
            runners[name], urls[name] = await start_app(app)
        async with aiohttp.ClientSession() as session:
            yield System(
                urls["gateway"], urls["config"], urls["executor"], session, runners, settings
            )
    finally:
        for runner in reversed(list(runners.values())):
            await runner.cleanup()


def webhook_url(system: System, workflow: dict[str, Any]) -> str:
    """The workflow's webhook on this test's gateway (the config API hands out the URL on
    HOOKFLOW_PUBLIC_URL, which a test's random ports cannot know in advance)."""
    return f"{system.gateway_url}/api/webhook:trigger/{workflow['trigger']['key']}"


@asynccontextmanager
async def second_gateway(settings: RunSettings) -> AsyncIterator[str]:
    """Another gateway on the same broker and storage, as a second process would be; yields
    its base URL once it serves the same triggers."""
    app = gateway_app(settings)
    runner, url = await start_app(app)
    try:
        yield url
    finally:
        await runner.cleanup()


@asynccontextmanager
async def http_server(routes: web.RouteTableDef) -> AsyncIterator[str]:
    """A real local HTTP server (for request nodes to call); yields its base URL."""
    app = web.Application()
    app.add_routes(routes)
    runner, url = await start_app(app)
    try:
        yield url
    finally:
        await runner.cleanup()


def close_connections(namespace: str) -> int:
    """Close this test's broker connections from the server's side, as a restart would."""
    listing = subprocess.run(
        ["rabbitmqctl", "list_connections", "pid", "client_properties", "-q"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    pids = [
        line.split("\t")[0] for line in listing.splitlines() if f"hookflow {namespace} " in line
    ]
    for pid in pids:
        subprocess.run(
            ["rabbitmqctl", "close_connection", pid, "test: broker restart"],
            capture_output=True, check=True, timeout=30,
        )  # fmt: skip
    return len(pids)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_environment(data_dir: Path) -> tuple[dict[str, str], dict[str, int]]:
    """The environment of a `hookflow run` on free ports with its data in `data_dir` (none of
    the caller's HOOKFLOW_* settings), and its ports by service: gateway, config, executor."""
    ports = {name: free_port() for name in ("gateway", "config", "executor")}
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOOKFLOW_")}
    env |= {
        "HOOKFLOW_GATEWAY_PORT": str(ports["gateway"]),
        "HOOKFLOW_CONFIG_API_PORT": str(ports["config"]),
        "HOOKFLOW_EXECUTOR_PORT": str(ports["executor"]),
        "HOOKFLOW_PUBLIC_URL": f"http://127.0.0.1:{ports['gateway']}",
        "HOOKFLOW_DATA_DIR": str(data_dir),
    }
    return env, ports


def seed_example() -> dict[str, Any]:
    """The README's sync example: a payment callback answering success or an error to retry on."""
    return {
        "title": "Payment callback (sync)",
        "sync": True,
        "trigger": {
            "request": {"body": [{"key": "status"}, {"key": "order.id", "alias": "Order ID"}]}
        },
        "nodes": [
            {
                "key": "paid",
                "type": "condition",
                "config": {"engine": "basic", "rejectOnFalse": False, **status_is_paid()},
                "branches": {
                    "true": [
                        {
                            "key": "ok",
                            "type": "response",
                            "config": {
                                "statusCode": 200,
                                "headers": [
                                    {"name": "X-Order", "value": "{{$context.body.order.id}}"}
                                ],
                                "body": {
                                    "received": "{{$context.body.order.id}}",
                                    "amount": "{{$context.body.amount}}",
                                },
                            },
                        }
                    ],
                    "false": [
                        {
                            "key": "bad",
                            "type": "response",
                            "config": {"statusCode": 400, "body": "payment not completed"},
                        }
                    ],
                },
            },
            {"key": "never", "type": "end", "config": {"endStatus": "failed"}},
        ],
    }


def id_at(moment: datetime) -> str:
    """An id as new_id() makes it at `moment`."""
    return first_id_at(moment)[:12] + os.urandom(10).hex()


def record(
    workflow_id: str,
    status: ExecutionStatus = "succeeded",
    execution_id: str | None = None,
    received_at: datetime | None = None,
) -> ExecutionRecord:
    moment = received_at or now()
    return ExecutionRecord(
        id=execution_id or id_at(moment),
        workflow_id=workflow_id,
        version=1,
        status=status,
        received_at=moment,
        started_at=moment,
        finished_at=moment + timedelta(milliseconds=3),
        request_id="r-1",
        context=TriggerContext(
            headers={"x-request-id": "r-1"}, query={"a": ["1"]}, body={"status": "paid", "n": 1.5}
        ),
        nodes=[
            NodeResult(
                key="paid",
                type="condition",
                status="succeeded",
                result=True,
                started_at=moment,
                finished_at=moment,
            )
        ],
    )


T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


SECOND = timedelta(seconds=1)
