"""Where the tests find their services, in this order: a URL in the environment; a
container when a Docker engine is reachable; for MongoDB, mongoeco's wire server, started as
`hookflow mongo` in its own process. A test that needs RabbitMQ and finds none is skipped,
unless HOOKFLOW_REQUIRE_BROKER=1 or CI=true, where it fails."""

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import structlog
from aiohttp import web
from pymongo import AsyncMongoClient

from hookflow_shared.command import new_event_loop
from hookflow_shared.messaging import Broker, Topology, open_broker
from hookflow_shared.messaging.memory import MemoryBroker
from hookflow_shared.storage import Storage, open_storage
from hookflow_shared.storage.sqlite import SqliteStorage
from tests import fuzzing
from tests.support import FOREVER, System, delete_topology, running_system, settings_for

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"


def pytest_configure(config: pytest.Config) -> None:
    fuzzing.configure(config)
    if fuzzing.FUZZ:  # 100,000 examples each: only warnings and errors of the services
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """Every test runs on the services' own event loop (uvloop, eager tasks)."""
    return {"eager": new_event_loop}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    fuzzing.finished(report)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    fuzzing.summary(terminalreporter)


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


@functools.cache
def _docker_engine() -> bool:
    """A Docker engine answers on DOCKER_HOST or the default socket."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    if host.startswith("unix://"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            try:
                sock.connect(host.removeprefix("unix://"))
                sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                return b"OK" in sock.recv(1024)
            except OSError:
                return False
    return _reachable(host.replace("tcp://", "http://"), 2375)


def broker_required() -> bool:
    return os.environ.get("HOOKFLOW_REQUIRE_BROKER") == "1" or os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def rabbitmq_url() -> Iterator[str]:
    url = os.environ.get("HOOKFLOW_TEST_BROKER_URL", DEFAULT_BROKER_URL)
    if _reachable(url, 5672):
        yield url
        return
    if _docker_engine():
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13") as container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(5672)
            yield f"amqp://guest:guest@{host}:{port}/"
        return
    message = f"no RabbitMQ at {url} and no Docker engine for a container"
    if broker_required():
        pytest.fail(message + " (the broker is required here: start RabbitMQ)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("HOOKFLOW_TEST_MONGODB_URL")
    if url:
        yield url
        return
    if _docker_engine():
        from testcontainers.mongodb import MongoDbContainer

        with MongoDbContainer("mongo:8") as container:
            yield container.get_connection_url()
        return
    # mongoeco's MongoDB-compatible wire server, in its own process, on a free port.
    process = subprocess.Popen(
        [sys.executable, "-m", "hookflow_cli", "mongo", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"(mongodb://\S+)", line)
    if match is None:
        process.kill()
        pytest.fail(f"`hookflow mongo` did not start: {line!r}")
    try:
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(10)
        process.stdout.close()


@pytest.fixture
def namespace() -> str:
    """Queue and exchange names of one test, apart from every other test's."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def rabbitmq(rabbitmq_url: str, namespace: str) -> Iterator[str]:
    """The broker URL; the test's queues and exchanges are deleted afterwards."""
    yield rabbitmq_url
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, delete_topology(rabbitmq_url, namespace)).result()


@contextlib.asynccontextmanager
async def _connected_broker(url: str | None, namespace: str) -> AsyncIterator[Broker]:
    """A broker of the test's namespace (the in-process bus without a URL), quick to retry."""
    bus = open_broker(url, Topology(namespace), publish_timeout=5, retry_backoff=0.01)
    await bus.connect()
    try:
        yield bus
    finally:
        await bus.close()


@pytest.fixture(params=["memory", "rabbitmq"])
async def broker(request: pytest.FixtureRequest, namespace: str) -> AsyncIterator[Broker]:
    url = request.getfixturevalue("rabbitmq") if request.param == "rabbitmq" else None
    async with _connected_broker(url, namespace) as bus:
        yield bus


@pytest.fixture
async def rabbit_broker(rabbitmq: str, namespace: str) -> AsyncIterator[Broker]:
    async with _connected_broker(rabbitmq, namespace) as bus:
        yield bus


@pytest.fixture
async def mongodb(mongodb_url: str) -> AsyncIterator[tuple[str, str]]:
    """(URL, database name) of a database for this test alone, dropped afterwards."""
    database = f"test_{uuid.uuid4().hex[:12]}"
    yield mongodb_url, database
    await drop_database(mongodb_url, database)


async def drop_database(url: str, database: str) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    try:
        await client.drop_database(database)
    finally:
        await client.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture(params=["memory", "rabbitmq"])
def system(request: pytest.FixtureRequest) -> System:
    """The three services, once on the in-process bus (as `hookflow run` wires them) and once
    on a real RabbitMQ (each its own connections, as separate processes): the same assertions
    hold for both. A module whose tests are about RabbitMQ itself takes `rabbit_system`."""
    name = "local" if request.param == "memory" else "rabbit_system"
    running: System = request.getfixturevalue(name)
    return running


@pytest.fixture
async def rabbit_system(rabbitmq: str, data_dir: Path, namespace: str) -> AsyncIterator[System]:
    """The three services on a real RabbitMQ, storing in SQLite (test_e2e.py has the same on
    MongoDB)."""
    settings = settings_for(
        broker_url=rabbitmq,
        mongodb=None,
        data_dir=data_dir,
        namespace=namespace,
        shutdown_grace_sync=0.2,
    )
    async with running_system(settings) as running:
        yield running


@pytest.fixture(params=["sqlite", "mongodb"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """Each storage adapter in turn, open on a database of this test's own."""
    url = request.getfixturevalue("mongodb_url") if request.param == "mongodb" else None
    database = f"test_{uuid.uuid4().hex[:12]}"
    # The contract's records were received at fixed moments long past (T0): kept for good.
    storage = open_storage(url, database=database, data_dir=tmp_path, retention=FOREVER)
    await storage.open()
    try:
        yield storage
    finally:
        if url:
            await drop_database(url, database)
        await storage.close()


@pytest.fixture
async def local_store(data_dir: Path) -> AsyncIterator[SqliteStorage]:
    storage = SqliteStorage(data_dir / "hookflow.sqlite3")
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()


@pytest.fixture
async def local_bus() -> AsyncIterator[MemoryBroker]:
    bus = MemoryBroker()
    await bus.connect()
    try:
        yield bus
    finally:
        await bus.close()


@pytest.fixture
async def local(
    local_store: SqliteStorage, local_bus: MemoryBroker, data_dir: Path, namespace: str
) -> AsyncIterator[System]:
    """The three services sharing the in-process bus and one SQLite store, as `hookflow run`
    wires them."""
    settings = settings_for(
        broker_url=None,
        mongodb=None,
        data_dir=data_dir,
        namespace=namespace,
        shutdown_grace_sync=0.2,
    )
    async with running_system(settings, storage=local_store, broker=local_bus) as running:
        yield running


@pytest.fixture
async def upstream() -> AsyncIterator[dict[str, Any]]:
    """A real local HTTP server for the request node to call; it remembers what it got."""
    seen: list[dict[str, Any]] = []

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": body.decode(),
            }
        )
        return web.json_response(
            {"ok": True, "got": body.decode(), "sku": request.query.get("sku")}
        )

    slow_calls: list[float] = []

    async def slow(request: web.Request) -> web.Response:
        slow_calls.append(time.monotonic())
        await asyncio.sleep(float(request.query.get("s", "1")))
        return web.json_response({"slept": True})

    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=503, text="down for maintenance")

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/slow", slow)
    app.router.add_route("*", "/fail", fail)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield {"url": f"http://127.0.0.1:{port}", "seen": seen, "slow_calls": slow_calls}
    await runner.cleanup()
