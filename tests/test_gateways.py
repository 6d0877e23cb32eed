"""Several gateways on one RabbitMQ: each hears every change, and together they hold a
trigger's rate limit."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hookflow_gateway.app import GATEWAY
from hookflow_gateway.app import create_app as gateway_app
from tests.support import System, running_system, settings_for, start_app, wait_for


@pytest.fixture
def system(rabbit_system: System) -> System:
    """These tests are about RabbitMQ's part: the services on a real broker only."""
    return rabbit_system


@pytest.fixture
async def two_gateways(
    rabbitmq: str, data_dir: Path, namespace: str
) -> AsyncIterator[tuple[System, str]]:
    settings = settings_for(
        broker_url=rabbitmq,
        mongodb=None,
        data_dir=data_dir,
        namespace=namespace,
        heartbeat_interval=0.2,
    )
    async with running_system(settings) as system:
        app = gateway_app(settings)
        runner, url = await start_app(app)
        try:
            await wait_for(lambda: _both_know_each_other(system, app), timeout=5)
            yield system, url
        finally:
            await runner.cleanup()


async def _both_know_each_other(system: System, other: object) -> bool:
    first = system.runners["gateway"].app[GATEWAY].limiter
    second = other[GATEWAY].limiter  # type: ignore[index]
    return first.gateways() == 2 and second.gateways() == 2


async def test_every_gateway_hears_every_change(two_gateways: tuple[System, str]) -> None:
    system, second = two_gateways
    workflow = await system.create({"title": "shared"})
    key = workflow["trigger"]["key"]
    urls = [f"{base}/api/webhook:trigger/{key}" for base in (system.gateway_url, second)]

    async def statuses() -> list[int]:
        return [(await system.post(url, json={}))[0].status for url in urls]

    async def all_are(code: int) -> bool:
        return set(await statuses()) == {code}

    await wait_for(lambda: all_are(200), timeout=1)
    await system.api("PATCH", f"/api/workflows/{workflow['id']}", {"enabled": False})
    await wait_for(lambda: all_are(404), timeout=1)


async def test_a_rate_limit_holds_for_all_gateways_together(
    two_gateways: tuple[System, str],
) -> None:
    system, second = two_gateways
    workflow = await system.create(
        {"title": "limited", "trigger": {"rateLimit": {"rate": 0.5, "burst": 8}}}
    )
    key = workflow["trigger"]["key"]
    await asyncio.sleep(0.2)  # the second gateway hears of the workflow
    accepted = 0
    for base in (system.gateway_url, second):
        answers = [
            (await system.post(f"{base}/api/webhook:trigger/{key}", json={}))[0].status
            for _ in range(6)
        ]
        assert answers[:4] == [200] * 4, answers  # each gateway takes its half of the burst
        assert answers[4:] == [429, 429]
        accepted += answers.count(200)
    assert accepted == 8
