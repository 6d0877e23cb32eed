"""End to end over real sockets: the three services on a real RabbitMQ, storing in MongoDB
(mongoeco's wire server, or a real MongoDB), driven by HTTP as an integrator and an admin."""

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest

from hookflow_shared.messaging import Topology
from tests.support import (
    System,
    payment_workflow,
    running_system,
    settings_for,
    wait_for,
    webhook_url,
)

JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def system(
    rabbitmq: str, mongodb: tuple[str, str], data_dir: Path, namespace: str
) -> AsyncIterator[System]:
    settings = settings_for(
        broker_url=rabbitmq, mongodb=mongodb, data_dir=data_dir, namespace=namespace
    )
    async with running_system(settings) as running:
        yield running


def basic(username: str, password: str) -> dict[str, str]:
    return {
        "Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    }


async def accepted(system: System, url: str, body: Any, **kwargs: Any) -> str:
    response, text = await system.post(url, json=body, **kwargs)
    assert response.status == 200, text
    return response.headers["X-Hookflow-Execution-Id"]


async def test_a_paid_callback_runs_and_is_recorded_with_its_context(system: System) -> None:
    workflow = await system.create(payment_workflow())
    url = webhook_url(system, workflow) + "?order=A1&items[0][sku]=X&tags[]=a&tags[]=b"
    response, text = await system.post(
        url,
        json={"status": "paid", "amount": 12.5, "order": {"id": "A1"}},
        headers={
            "X-Request-Id": "req-1",
            "X-Other": "not configured",
            "Authorization": "Bearer leak",
        },
    )
    assert (response.status, text) == (200, b"ok")
    assert response.content_type == "text/plain"
    execution = await system.execution(response.headers["X-Hookflow-Execution-Id"])
    assert execution["status"] == "succeeded"
    assert execution["workflowId"] == workflow["id"]
    assert execution["version"] == 1
    assert execution["requestId"] == "req-1"
    assert execution["context"] == {
        "headers": {"x-request-id": "req-1"},
        "query": {"order": "A1", "items": [{"sku": "X"}], "tags": ["a", "b"]},
        "body": {"status": "paid", "amount": 12.5, "order": {"id": "A1"}},
    }
    assert [(n["key"], n["status"], n["result"]) for n in execution["nodes"]] == [
        ("paid", "succeeded", True)
    ]


async def test_the_false_branch_ends_the_execution_failed(system: System) -> None:
    workflow = await system.create(payment_workflow())
    execution_id = await accepted(system, webhook_url(system, workflow), {"status": "pending"})
    execution = await system.execution(execution_id)
    assert execution["status"] == "failed"
    assert [(n["key"], n["result"]) for n in execution["nodes"]] == [
        ("paid", False),
        ("unpaid", "failed"),
    ]


async def test_the_configured_async_response_is_given(system: System) -> None:
    response_config = {
        "statusCode": 202,
        "headers": [{"name": "X-Ack", "value": "yes"}],
        "body": {"received": True},
    }
    workflow = await system.create(payment_workflow(trigger={"response": response_config}))
    response, text = await system.post(webhook_url(system, workflow), json={"status": "paid"})
    assert response.status == 202
    assert response.headers["X-Ack"] == "yes"
    assert response.content_type == "application/json"
    assert text == b'{"received":true}'


async def test_status_codes_of_the_public_contract(system: System) -> None:
    workflow = await system.create(payment_workflow(trigger={"maxBodyBytes": 64}))
    url = webhook_url(system, workflow)
    for method in ("GET", "PUT", "DELETE"):
        async with system.session.request(method, url) as response:
            assert response.status == 405
            assert response.headers["Allow"] == "POST"
    unknown = f"{system.gateway_url}/api/webhook:trigger/no-such-key"
    assert (await system.post(unknown, json={}))[0].status == 404
    too_big, _ = await system.post(url, json={"status": "x" * 100})
    assert too_big.status == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b'{"padding": "' + b"x" * 10 + b'"}'

    chunked, _ = await system.post(url, data=chunks(), headers=JSON)
    assert chunked.status == 413
    form, text = await system.post(url, data="a=1", headers={"Content-Type": "text/csv"})
    assert form.status == 415
    assert b"application/json" in text
    bad, text = await system.post(url, data="{not json", headers=JSON)
    assert bad.status == 400
    assert b"not valid JSON" in text
    empty, _ = await system.post(url)
    assert empty.status == 200
    vendor, _ = await system.post(
        url,
        data='{"status": "paid"}',
        headers={"Content-Type": "application/vnd.api+json; charset=utf-8"},
    )
    assert vendor.status == 200


async def test_basic_auth_as_the_seed_describes(system: System) -> None:
    workflow = await system.create(
        payment_workflow(trigger={"basicAuth": {"username": "pay", "password": "s3cret"}})
    )
    url = webhook_url(system, workflow)
    missing, _ = await system.post(url, json={"status": "paid"})
    assert missing.status == 401
    assert missing.headers["WWW-Authenticate"].startswith("Basic ")
    wrong, _ = await system.post(url, json={}, headers=basic("pay", "wrong"))
    assert wrong.status == 401
    garbage, _ = await system.post(url, json={}, headers={"Authorization": "Basic !!!"})
    assert garbage.status == 401
    execution_id = await accepted(system, url, {"status": "paid"}, headers=basic("pay", "s3cret"))
    execution = await system.execution(execution_id)
    assert "authorization" not in execution["context"]["headers"]
    assert "s3cret" not in str(execution)
    # The credentials embedded in the URL, as a third party's webhook settings carry them.
    host_url = url.replace("http://", "http://pay:s3cret@")
    async with aiohttp.ClientSession() as session, session.post(host_url, json={}) as response:
        assert response.status == 200
    # The password is never given back.
    _status, body = await system.api("GET", f"/api/workflows/{workflow['id']}")
    assert body["trigger"]["basicAuth"] == {"username": "pay", "passwordSet": True}
    assert "s3cret" not in str(body)


async def test_a_broker_that_cannot_take_the_run_gives_503(
    system: System, rabbitmq: str, namespace: str
) -> None:
    workflow = await system.create(payment_workflow())
    url = webhook_url(system, workflow)
    connection = await aio_pika.connect(rabbitmq)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(Topology(namespace).runs_queue)
    response, text = await system.post(url, json={"status": "paid"})
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert b"retry" in text


async def test_changes_reach_the_gateway_within_a_second(system: System) -> None:
    workflow = await system.create(payment_workflow())
    url = webhook_url(system, workflow)

    async def status() -> int:
        return (await system.post(url, json={"status": "paid"}))[0].status

    await wait_for(lambda: _is(status, 200), timeout=1)
    code, body = await system.api("PATCH", f"/api/workflows/{workflow['id']}", {"enabled": False})
    assert (code, body["enabled"], body["version"]) == (200, False, 2)
    await wait_for(lambda: _is(status, 404), timeout=1)
    await system.api("PATCH", f"/api/workflows/{workflow['id']}", {"enabled": True})
    await wait_for(lambda: _is(status, 200), timeout=1)
    code, _ = await system.api("DELETE", f"/api/workflows/{workflow['id']}")
    assert code == 204
    await wait_for(lambda: _is(status, 404), timeout=1)


async def _is(probe: Any, expected: int) -> bool:
    return await probe() == expected


async def test_a_run_records_the_version_it_ran(system: System) -> None:
    workflow = await system.create(payment_workflow())
    url = webhook_url(system, workflow)
    first = await accepted(system, url, {"status": "paid"})
    changed = payment_workflow(title="Payment callback v2", trigger={"response": {"body": "v2"}})
    code, body = await system.api("PUT", f"/api/workflows/{workflow['id']}", changed)
    assert (code, body["version"], body["trigger"]["key"]) == (200, 2, workflow["trigger"]["key"])

    async def answers_v2() -> bool:
        return (await system.post(url, json={"status": "paid"}))[1] == b"v2"

    await wait_for(answers_v2, timeout=1)
    second = await accepted(system, url, {"status": "paid"})
    assert (await system.execution(first))["version"] == 1
    assert (await system.execution(second))["version"] == 2
    code, listing = await system.api("GET", f"/api/workflows/{workflow['id']}/executions?limit=50")
    assert code == 200
    assert listing["items"][0]["id"] >= listing["items"][-1]["id"]
    assert {first, second} <= {item["id"] for item in listing["items"]}


async def test_the_config_api_checks_the_token_and_the_documents(system: System) -> None:
    async with system.session.get(system.config_url + "/api/workflows") as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    async with system.session.get(
        system.config_url + "/api/workflows", headers={"Authorization": "Bearer nope"}
    ) as response:
        assert response.status == 401
    bad = payment_workflow(
        title="",
        nodes=[
            {"key": "a", "type": "teleport"},
            {"key": "b", "type": "end", "config": {"endStatus": "maybe"}},
        ],
    )
    code, body = await system.api("POST", "/api/workflows", bad)
    assert code == 422
    assert {"path": "title", "message": "String should have at least 1 character"} in body[
        "details"
    ]
    bad["title"] = "ok"
    code, body = await system.api("POST", "/api/workflows", bad)
    assert code == 422
    paths = [d["path"] for d in body["details"]]
    assert paths == ["nodes[0].type", "nodes[1].config.endStatus"]
    code, body = await system.api(
        "POST", "/api/workflows", data=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert code == 400
    assert (await system.api("GET", "/api/workflows/nope"))[0] == 404
    assert (await system.api("GET", "/api/executions/nope"))[0] == 404
    assert (await system.api("GET", "/api/workflows/nope/executions"))[0] == 404
    assert (await system.api("GET", "/api/workflows?limit=0"))[0] == 400


async def test_workflows_are_listed_and_keys_are_unguessable(system: System) -> None:
    made = [await system.create(payment_workflow(title=f"w{n}")) for n in range(3)]
    keys = {w["trigger"]["key"] for w in made}
    assert len(keys) == 3
    assert all(len(base64.urlsafe_b64decode(key + "==")) >= 16 for key in keys)
    code, page = await system.api("GET", "/api/workflows?limit=2")
    assert code == 200
    assert [w["title"] for w in page["items"]] == ["w2", "w1"]
    code, rest = await system.api("GET", f"/api/workflows?limit=2&cursor={page['nextCursor']}")
    assert [w["title"] for w in rest["items"]] == ["w0"]
    assert made[0]["webhookUrl"].endswith("/api/webhook:trigger/" + made[0]["trigger"]["key"])


async def test_health_of_every_service(system: System) -> None:
    for base in (system.gateway_url, system.config_url, system.executor_url):
        async with system.session.get(base + "/healthz") as response:
            assert response.status == 200, base
            assert (await response.json())["status"] == "ok"


async def test_many_callbacks_at_once_each_run_once(system: System) -> None:
    workflow = await system.create(payment_workflow())
    url = webhook_url(system, workflow)
    ids = await asyncio.gather(
        *(accepted(system, url, {"status": "paid", "n": n}) for n in range(200))
    )
    assert len(set(ids)) == 200

    async def all_recorded() -> bool:
        _code, page = await system.api(
            "GET", f"/api/workflows/{workflow['id']}/executions?limit=200"
        )
        return len(page["items"]) == 200

    await wait_for(all_recorded, timeout=20)
    _code, page = await system.api("GET", f"/api/workflows/{workflow['id']}/executions?limit=200")
    assert sorted(item["id"] for item in page["items"]) == sorted(ids)


async def test_a_webhook_right_after_a_create_finds_its_version(system: System) -> None:
    """On MongoDB the version is stored before the workflow: the gateway can only see a
    workflow whose version the executor can read."""
    ids = []
    for n in range(5):
        status, workflow = await system.api(
            "POST", "/api/workflows", payment_workflow(title=f"w{n}")
        )
        assert status == 201
        ids.append(await accepted(system, webhook_url(system, workflow), {"status": "paid"}))
    records = [await system.execution(execution_id) for execution_id in ids]
    assert [record["status"] for record in records] == ["succeeded"] * 5, records
