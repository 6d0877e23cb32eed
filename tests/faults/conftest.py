"""Fixtures of the fault tests.

- `private_rabbitmq`: a RabbitMQ node of this test alone (rabbitnode.py), started; removed at
  the end. Skipped where no rabbitmq-server can run.
- `witness`: the witness server (witness.py).
- `installation`: makes Installations (processes.py); at the end stops their processes,
  deletes their queues and exchanges, and prints their logs when the test failed.
- `proxy`: makes FaultProxies (proxy.py), closed at the end.
"""

import asyncio
import concurrent.futures
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.processes import Installation, Mongo, Sqlite
from tests.faults.proxy import FaultProxy, Mode
from tests.faults.rabbitnode import RabbitNode, unavailable
from tests.faults.witness import Witness
from tests.support import delete_topology

FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


@pytest.fixture
async def private_rabbitmq(tmp_path: Path) -> AsyncIterator[RabbitNode]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    node = RabbitNode(keep_logs=tmp_path / "logs")
    try:
        await node.boot()
        yield node
    finally:
        node.remove()


@pytest.fixture
def witness() -> Iterator[Witness]:
    server = Witness()
    yield server
    server.close()


type MakeInstallation = Callable[..., Installation]


@pytest.fixture
def installation(
    request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> Iterator[MakeInstallation]:
    """`installation(broker_url, storage, **extra_env)`: an Installation in this test's
    namespace (not started; `await it.start(gateways=..., executors=...)`)."""
    made: list[Installation] = []

    def make(broker_url: str, storage: Sqlite | Mongo, **extra_env: str) -> Installation:
        installation = Installation(
            broker_url=broker_url,
            namespace=f"{namespace}-{len(made)}" if made else namespace,
            storage=storage,
            logs=tmp_path / "logs",
            extra_env=extra_env,
        )
        made.append(installation)
        return installation

    yield make
    for installation in made:
        killed = installation.stop_all()
        if killed:
            print(f"\n{installation.namespace}: SIGKILLed after SIGTERM's grace: {killed}")
    with concurrent.futures.ThreadPoolExecutor(1) as thread:  # this loop may be gone already
        for installation in made:
            cleanup = delete_topology(installation.broker_url, installation.namespace)
            thread.submit(asyncio.run, cleanup).result()
    if request.node.stash.get(FAILED, False):
        for installation in made:
            print(f"\n--- logs of {installation.namespace} (in {installation.logs}) ---")
            print(installation.logs_report())


@pytest.fixture
def proxy() -> Iterator[Callable[..., FaultProxy]]:
    """`proxy(url, default_port, mode=Mode.PASS)`: a FaultProxy in front of `url`'s host and
    port; `.url(url)` is the URL to give the service instead."""
    made: list[FaultProxy] = []

    def make(url: str, default_port: int, mode: Mode = Mode.PASS) -> FaultProxy:
        made.append(FaultProxy.for_url(url, default_port, mode))
        return made[-1]

    yield make
    for fault_proxy in made:
        fault_proxy.close()
