"""The broker connection drops (RabbitMQ restarted, a network blip): the services reconnect
by themselves, a webhook is never answered 2xx unless its run is durably queued, and every
accepted run is recorded."""

import asyncio
import shutil

import pytest

from tests.support import System, close_connections, wait_for, webhook_url


@pytest.fixture
def system(rabbit_system: System) -> System:
    """These tests are about RabbitMQ's part: the services on a real broker only."""
    return rabbit_system


pytestmark = pytest.mark.skipif(
    shutil.which("rabbitmqctl") is None, reason="needs rabbitmqctl to close connections"
)


async def test_the_services_reconnect_and_lose_nothing(system: System, namespace: str) -> None:
    workflow = await system.create({"title": "survivor"})
    url = webhook_url(system, workflow)
    accepted: list[str] = []
    statuses: list[int] = []
    stop = asyncio.Event()

    async def caller() -> None:
        n = 0
        while not stop.is_set():
            response, _ = await system.post(url, json={"n": n})
            statuses.append(response.status)
            if response.status == 200:
                accepted.append(response.headers["X-Hookflow-Execution-Id"])
            n += 1
            await asyncio.sleep(0.01)

    task = asyncio.create_task(caller())

    async def under_load() -> bool:
        return len(accepted) >= 20

    await wait_for(under_load, timeout=10)
    assert await asyncio.to_thread(close_connections, namespace) >= 1
    before = len(accepted)

    async def recovered() -> bool:
        return len(accepted) > before + 20

    await wait_for(recovered, timeout=20)
    stop.set()
    await task
    assert set(statuses) <= {200, 503}, "only accepted or refused, never anything else"

    async def all_recorded() -> bool:
        _, page = await system.api("GET", f"/api/workflows/{workflow['id']}/executions?limit=200")
        ids = {item["id"] for item in page["items"]}
        cursor = page["nextCursor"]
        while cursor:
            _code, page = await system.api(
                "GET", f"/api/workflows/{workflow['id']}/executions?limit=200&cursor={cursor}"
            )
            ids |= {item["id"] for item in page["items"]}
            cursor = page["nextCursor"]
        return set(accepted) <= ids

    await wait_for(all_recorded, timeout=20)
    # After the reconnection the gateway still hears of changes.
    await system.api("PATCH", f"/api/workflows/{workflow['id']}", {"enabled": False})

    async def disabled() -> bool:
        return (await system.post(url, json={}))[0].status == 404

    await wait_for(disabled, timeout=2)
