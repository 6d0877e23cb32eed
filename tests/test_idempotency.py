"""A retried callback runs once: `trigger.idempotency` names where the sender's event id is,
and every copy of one event within the window gets the first execution's answer, whether the
copies come one after another, at the same moment, or through different gateways."""

import asyncio
from typing import Any

import pytest
from aiohttp import web

from hookflow_shared.messaging.memory import MemoryBroker
from hookflow_shared.storage.sqlite import SqliteStorage
from tests.support import (
    System,
    http_server,
    payment_workflow,
    running_system,
    second_gateway,
    settings_for,
    status_is_paid,
    webhook_url,
)

JSON = {"Content-Type": "application/json"}


def idempotent(source: dict[str, Any], **changes: Any) -> dict[str, Any]:
    workflow = payment_workflow(**changes)
    workflow["trigger"]["idempotency"] = source
    return workflow


async def executions(system: System, workflow: dict[str, Any]) -> list[dict[str, Any]]:
    status, body = await system.api("GET", f"/api/workflows/{workflow['id']}/executions")
    assert status == 200, body
    return list(body["items"])


async def settled_executions(
    system: System, workflow: dict[str, Any], count: int
) -> list[dict[str, Any]]:
    """The workflow's executions once `count` are recorded (and a moment more for strays)."""
    for _ in range(100):
        items = await executions(system, workflow)
        if len(items) >= count:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    return await executions(system, workflow)


async def test_a_retried_callback_runs_once_and_each_copy_gets_the_first_answer(
    system: System,
) -> None:
    workflow = await system.create(idempotent({"body": "out_trade_no"}))
    url = webhook_url(system, workflow)
    body = {"status": "paid", "out_trade_no": "T-1001"}
    answers = [await system.post(url, json=body) for _ in range(3)]
    ids = {response.headers["X-Hookflow-Execution-Id"] for response, _ in answers}
    assert [response.status for response, _ in answers] == [200, 200, 200]
    assert len(ids) == 1
    assert [response.headers.get("Idempotent-Replayed") for response, _ in answers] == [
        None,
        "true",
        "true",
    ]
    items = await settled_executions(system, workflow, 1)
    assert [item["id"] for item in items] == list(ids)
    record = await system.execution(ids.pop())
    assert record["idempotencyKey"] == "T-1001"
    # Another event id runs; a request without one runs as usual, every time.
    await system.post(url, json={"status": "paid", "out_trade_no": "T-1002"})
    await system.post(url, json={"status": "paid"})
    await system.post(url, json={"status": "paid"})
    assert len(await settled_executions(system, workflow, 4)) == 4


@pytest.mark.parametrize(
    ("source", "request_options"),
    [
        ({"header": "Idempotency-Key"}, {"headers": {"idempotency-key": "k-1"}}),
        ({"query": "event.id"}, {"params": {"event[id]": "42"}}),
        ({"body": "data.id"}, {"json": {"data": {"id": 7}}}),
    ],
)
async def test_the_event_id_comes_from_a_header_the_query_or_the_body(
    system: System, source: dict[str, str], request_options: dict[str, Any]
) -> None:
    workflow = await system.create(idempotent(source, nodes=[]))
    url = webhook_url(system, workflow)
    first, _ = await system.post(url, **request_options)
    second, _ = await system.post(url, **request_options)
    assert first.status == second.status == 200
    assert first.headers["X-Hookflow-Execution-Id"] == second.headers["X-Hookflow-Execution-Id"]
    assert len(await settled_executions(system, workflow, 1)) == 1


async def test_copies_at_the_same_moment_through_two_gateways_run_once(
    rabbit_system: System, rabbitmq: str, data_dir: Any, namespace: str
) -> None:
    system = rabbit_system
    settings = settings_for(
        broker_url=rabbitmq, mongodb=None, data_dir=data_dir, namespace=namespace
    )
    workflow = await system.create(idempotent({"header": "Idempotency-Key"}))
    async with second_gateway(settings) as other:
        key = workflow["trigger"]["key"]
        urls = [f"{base}/api/webhook:trigger/{key}" for base in (system.gateway_url, other)]
        for event in range(5):
            headers = {"Idempotency-Key": f"evt-{event}"}
            answers = await asyncio.gather(
                *(
                    system.post(urls[n % 2], json={"status": "paid"}, headers=headers)
                    for n in range(10)
                )
            )
            assert {response.status for response, _ in answers} == {200}
            ids = {response.headers["X-Hookflow-Execution-Id"] for response, _ in answers}
            assert len(ids) == 1, f"event {event} started {len(ids)} executions"
        assert len(await settled_executions(system, workflow, 5)) == 5


async def test_a_repeat_after_the_window_runs_again(system: System) -> None:
    workflow = await system.create(idempotent({"body": "id", "window": 1}, nodes=[]))
    url = webhook_url(system, workflow)
    first, _ = await system.post(url, json={"id": "x"})
    repeat, _ = await system.post(url, json={"id": "x"})
    await asyncio.sleep(1.1)
    later, _ = await system.post(url, json={"id": "x"})
    assert first.headers["X-Hookflow-Execution-Id"] == repeat.headers["X-Hookflow-Execution-Id"]
    assert later.headers["X-Hookflow-Execution-Id"] != first.headers["X-Hookflow-Execution-Id"]
    assert len(await settled_executions(system, workflow, 2)) == 2


def sync_payment(slow_url: str | None = None) -> dict[str, Any]:
    """The README's sync example, idempotent by the order id, optionally calling a slow server
    first."""
    nodes: list[dict[str, Any]] = []
    if slow_url is not None:
        nodes.append(
            {"key": "wait", "type": "request", "config": {"method": "GET", "url": slow_url}}
        )
    nodes.append(
        {
            "key": "paid",
            "type": "condition",
            "config": status_is_paid(),
            "branches": {
                "true": [
                    {
                        "key": "ok",
                        "type": "response",
                        "config": {
                            "statusCode": 200,
                            "headers": [{"name": "X-Order", "value": "{{$context.body.order.id}}"}],
                            "body": {"received": "{{$context.body.order.id}}"},
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
        }
    )
    return {
        "title": "sync payment",
        "sync": True,
        "trigger": {"idempotency": {"body": "order.id"}},
        "nodes": nodes,
    }


async def test_a_sync_repeat_gets_the_first_answer(system: System) -> None:
    workflow = await system.create(sync_payment())
    url = webhook_url(system, workflow)
    body = {"status": "paid", "order": {"id": "A1"}}
    first = await system.post(url, json=body)
    repeat = await system.post(url, json=body)
    # The same order with another status is still the same event: the first answer again.
    later = await system.post(url, json={"status": "pending", "order": {"id": "A1"}})
    for response, payload in (first, repeat, later):
        assert response.status == 200
        assert response.headers["X-Order"] == "A1"
        assert payload == b'{"received":"A1"}'
    assert (
        first[0].headers["X-Hookflow-Execution-Id"]
        == repeat[0].headers["X-Hookflow-Execution-Id"]
        == later[0].headers["X-Hookflow-Execution-Id"]
    )
    assert [r.headers.get("Idempotent-Replayed") for r, _ in (first, repeat, later)] == [
        None,
        "true",
        "true",
    ]
    assert len(await settled_executions(system, workflow, 1)) == 1


@pytest.mark.parametrize("where", ["same gateway", "other gateway"])
async def test_a_sync_repeat_while_the_first_runs_waits_for_its_answer(
    rabbit_system: System, where: str, rabbitmq: str, data_dir: Any, namespace: str
) -> None:
    system = rabbit_system
    routes = web.RouteTableDef()

    @routes.get("/slow")
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.8)
        return web.json_response({})

    settings = settings_for(
        broker_url=rabbitmq, mongodb=None, data_dir=data_dir, namespace=namespace
    )
    async with http_server(routes) as upstream, second_gateway(settings) as other:
        workflow = await system.create(sync_payment(f"{upstream}/slow"))
        url = webhook_url(system, workflow)
        repeat_url = url if where == "same gateway" else url.replace(system.gateway_url, other)
        body = {"status": "pending", "order": {"id": "B2"}}

        async def repeat() -> tuple[Any, bytes]:
            await asyncio.sleep(0.2)  # the first is running by now (it takes 0.8 s)
            return await system.post(repeat_url, json=body)

        answers = await asyncio.gather(system.post(url, json=body), repeat())
    assert [r.status for r, _ in answers] == [400, 400]
    assert [payload for _, payload in answers] == [b"payment not completed"] * 2
    assert len({r.headers["X-Hookflow-Execution-Id"] for r, _ in answers}) == 1
    assert len(await settled_executions(system, workflow, 1)) == 1


async def test_a_copy_refused_for_want_of_a_broker_leaves_the_event_to_its_retry(
    tmp_path: Any, namespace: str
) -> None:
    storage = SqliteStorage(tmp_path / "db.sqlite3")
    await storage.open()
    bus = MemoryBroker()
    await bus.connect()
    settings = settings_for(broker_url=None, mongodb=None, data_dir=tmp_path, namespace=namespace)
    try:
        async with running_system(settings, storage=storage, broker=bus) as system:
            workflow = await system.create(idempotent({"body": "id"}, nodes=[]))
            url = webhook_url(system, workflow)
            await bus.close()
            refused, _ = await system.post(url, json={"id": "e-9"})
            assert refused.status == 503
            assert refused.headers["Retry-After"] == "1"
            await bus.connect()
            retried, _ = await system.post(url, json={"id": "e-9"})
            assert retried.status == 200
            assert "Idempotent-Replayed" not in retried.headers
            record = await system.execution(retried.headers["X-Hookflow-Execution-Id"])
            assert record["idempotencyKey"] == "e-9"
    finally:
        await bus.close()
        await storage.close()


async def test_the_config_api_checks_the_idempotency_source(system: System) -> None:
    for bad in ({}, {"header": "X", "body": "id"}, {"body": "id", "window": 0}):
        status, body = await system.api("POST", "/api/workflows", idempotent(bad, nodes=[]))
        assert status == 422, body
        assert body["details"][0]["path"].startswith("trigger.idempotency")
