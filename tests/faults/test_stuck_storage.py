"""A MongoDB that stops answering (connections open, nothing comes back): the executor's calls
time out instead of hanging, are logged and retried, /healthz says so, the gateways keep
taking webhooks from memory, and once the store answers again every accepted run is recorded
exactly once."""

import time
from collections.abc import Callable

import pytest

from tests.faults.accounting import account
from tests.faults.conftest import MakeInstallation
from tests.faults.load import LoadDriver
from tests.faults.processes import Mongo
from tests.faults.proxy import FaultProxy, Mode
from tests.faults.waiting import wait_until
from tests.faults.witness import Witness

pytestmark = [pytest.mark.faults, pytest.mark.rabbitmq, pytest.mark.mongodb]


async def test_a_stuck_store_is_waited_out_not_hung_on(
    rabbitmq: str,
    mongodb: tuple[str, str],
    proxy: Callable[..., FaultProxy],  # before `installation`: it outlives the processes
    installation: MakeInstallation,
    witness: Witness,
) -> None:
    url, database = mongodb
    store = proxy(url, 27017)
    system = installation(rabbitmq, Mongo(url, database), HOOKFLOW_STORAGE_TIMEOUT="1")
    executor = system.add("executor", {"HOOKFLOW_MONGODB_URL": store.url(url)})
    await system.start_all([system.add("config-api"), system.add("gateway"), executor])
    workflow = await system.create_workflow({"title": "stuck store", "nodes": [witness.node()]})
    urls = system.webhook_urls(workflow)
    before = await LoadDriver(urls, concurrency=4).run(count=20)

    store.set_mode(Mode.STALL)
    stalled = time.monotonic()
    during = await LoadDriver(urls, concurrency=4, pace=0.05).run(duration=4)
    assert all(a.accepted for a in during), "the gateway needs no store to take webhooks"

    async def reported() -> bool:
        status = await executor.health()
        storage = status["storage"]
        return status["status"] == "unavailable" and not storage["ok"] and bool(storage["retrying"])

    await wait_until(reported, 15, "the executor's /healthz reports the stuck store")
    health = await executor.health()
    warnings = [e for e in executor.events() if e.get("event") == "storage unavailable; retrying"]
    assert warnings, "a stuck call must be logged"

    store.set_mode(Mode.PASS)
    back = time.monotonic()
    result = await account(
        "stuck store",
        before + during,
        recorded=lambda: system.recorded(workflow["id"]),
        witness=witness.counts,
        deadline=60,
    )

    async def healthy() -> bool:
        return (await executor.health())["status"] == "ok"

    await wait_until(healthy, 30, "the executor healthy again")
    print(
        f"\n{result.line()} stalled-for={back - stalled:.1f}s "
        f"health-during={health['storage']} timeouts-logged={len(warnings)}"
    )
    result.assert_promise(allow_reruns=False)
