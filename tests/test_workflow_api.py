"""The workflow API over real HTTP, on both storage adapters: names, changes that change
nothing, the versions, and a new trigger key for a leaked webhook URL."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hookflow_config_api.app import WORKFLOWS
from hookflow_shared.messaging.memory import MemoryBroker
from tests.conftest import drop_database
from tests.support import (
    System,
    payment_workflow,
    running_system,
    second_gateway,
    settings_for,
    wait_for,
    webhook_url,
)


@pytest.fixture(params=["sqlite", "mongodb"])
async def api(
    request: pytest.FixtureRequest, local_bus: MemoryBroker, data_dir: Path, namespace: str
) -> AsyncIterator[System]:
    """The three services on the in-process bus, storing in SQLite, then in MongoDB."""
    url = request.getfixturevalue("mongodb_url") if request.param == "mongodb" else None
    mongodb = (url, f"test_{uuid.uuid4().hex[:12]}") if url else None
    settings = settings_for(
        broker_url=None, mongodb=mongodb, data_dir=data_dir, namespace=namespace
    )
    try:
        async with running_system(settings, broker=local_bus) as running:
            yield running
    finally:
        if mongodb:
            await drop_database(*mongodb)


def path(workflow: dict[str, Any], rest: str = "") -> str:
    return f"/api/workflows/{workflow['id']}{rest}"


async def test_names_are_unique_and_find_their_workflow(api: System) -> None:
    first = await api.create(payment_workflow(name="payments"))
    assert first["name"] == "payments"
    status, body = await api.api("POST", "/api/workflows", payment_workflow(name="payments"))
    assert status == 409
    assert first["id"] in body["error"] and "payments" in body["error"]
    other = await api.create(payment_workflow(name="refunds"))
    status, body = await api.api("PATCH", path(other), {"name": "payments"})
    assert status == 409 and first["id"] in body["error"]
    status, body = await api.api("POST", "/api/workflows", payment_workflow(name="Not A Slug"))
    assert status == 422 and body["details"][0]["path"] == "name"

    status, found = await api.api("GET", "/api/workflows?name=payments")
    assert status == 200
    assert [w["id"] for w in found["items"]] == [first["id"]] and found["nextCursor"] is None
    status, found = await api.api("GET", "/api/workflows?name=nobody")
    assert (status, found["items"]) == (200, [])
    status, body = await api.api("GET", "/api/workflows?name=-bad")
    assert status == 400 and "name" in body["error"]

    assert (await api.api("DELETE", path(first)))[0] == 204
    status, renamed = await api.api("PATCH", path(other), {"name": "payments"})
    assert (status, renamed["name"], renamed["version"]) == (200, "payments", 2)
    status, unnamed = await api.api("PATCH", path(other), {"name": None})
    assert status == 200 and "name" not in unnamed


async def test_a_change_that_changes_nothing_makes_no_version(api: System) -> None:
    document = payment_workflow(
        name="quiet", trigger={"basicAuth": {"username": "pay", "password": "s3cret"}}
    )
    created = await api.create(document)
    status, fetched = await api.api("GET", path(created))
    assert status == 200
    status, answer = await api.api("PUT", path(created), fetched)  # a GET sent back
    assert status == 200 and answer == fetched
    status, answer = await api.api("PUT", path(created), document)  # the same file again
    assert status == 200 and answer == fetched
    status, answer = await api.api("PATCH", path(created), {"title": created["title"]})
    assert status == 200 and answer == fetched
    status, answer = await api.api(
        "PATCH", path(created), {"trigger": {"basicAuth": {"password": "s3cret"}}}
    )
    assert status == 200 and answer == fetched
    status, answer = await api.api(
        "PATCH", path(created), {"trigger": {"basicAuth": {"password": "n3w"}}}
    )
    assert (status, answer["version"]) == (200, 2)
    status, answer = await api.api("PATCH", path(created), {"enabled": False})
    assert (status, answer["version"]) == (200, 3)
    status, versions = await api.api("GET", path(created, "/versions"))
    assert [v["version"] for v in versions["items"]] == [3, 2, 1]


async def test_the_same_signing_secret_sent_again_is_no_change(api: System) -> None:
    signed = {"signature": {"scheme": "github", "secret": "topsecret"}}
    created = await api.create(payment_workflow(trigger=signed))
    status, answer = await api.api("PUT", path(created), payment_workflow(trigger=signed))
    assert (status, answer["version"]) == (200, 1)
    assert answer["trigger"]["signature"] == {
        "scheme": "github",
        "secretSet": True,
        "tolerance": 300,
        "algorithm": "sha256",
        "encoding": "hex",
        "prefix": "",
    }
    other = {"signature": {"scheme": "github", "secret": "othersecret"}}
    status, answer = await api.api("PUT", path(created), payment_workflow(trigger=other))
    assert (status, answer["version"]) == (200, 2)
    status, versions = await api.api("GET", path(created, "/versions"))
    assert versions["items"][0]["changes"] == ["trigger.signature.secret"]


async def test_versions_newest_first_with_what_changed(api: System) -> None:
    document = payment_workflow(trigger={"basicAuth": {"username": "pay", "password": "one"}})
    created = await api.create(document)
    changes: list[dict[str, Any]] = [
        {"title": "Renamed"},
        {"trigger": {"basicAuth": {"password": "two"}}},
        {"enabled": False, "description": "off for now"},
    ]
    for change in changes:
        assert (await api.api("PATCH", path(created), change))[0] == 200
    assert (await api.api("POST", path(created, "/trigger:rotate-key")))[0] == 200

    status, first = await api.api("GET", path(created, "/versions?limit=2"))
    assert status == 200
    assert [(v["version"], v["changes"]) for v in first["items"]] == [
        (5, ["trigger.key"]),
        (4, ["description", "enabled"]),
    ]
    assert first["items"][0]["enabled"] is False and first["items"][0]["title"] == "Renamed"
    cursor = first["nextCursor"]
    status, rest = await api.api("GET", path(created, f"/versions?limit=2&cursor={cursor}"))
    assert [(v["version"], v["changes"]) for v in rest["items"]] == [
        (3, ["trigger.basicAuth.password"]),
        (2, ["title"]),
    ]
    status, last = await api.api("GET", path(created, f"/versions?cursor={rest['nextCursor']}"))
    assert [(v["version"], v["changes"]) for v in last["items"]] == [(1, None)]
    assert last["nextCursor"] is None and last["items"][0]["updatedAt"] == created["updatedAt"]

    status, original = await api.api("GET", path(created, "/versions/1"))
    assert status == 200
    assert (original["version"], original["title"]) == (1, "Payment callback")
    assert original["trigger"]["key"] == created["trigger"]["key"]
    assert original["trigger"]["basicAuth"] == {"username": "pay", "passwordSet": True}
    assert "one" not in str(original) and "scrypt" not in str(original)
    status, third = await api.api("GET", path(created, "/versions/3"))
    assert (third["version"], third["title"]) == (3, "Renamed")

    assert (await api.api("DELETE", path(created)))[0] == 204  # the history outlives it
    status, kept = await api.api("GET", path(created, "/versions"))
    assert status == 200 and len(kept["items"]) == 5
    assert (await api.api("GET", path(created, "/versions/5")))[0] == 200


async def test_versions_bad_requests(api: System) -> None:
    created = await api.create(payment_workflow())
    for rest, expected in [
        ("/versions/2", 404),
        ("/versions/0", 400),
        ("/versions/x", 400),
        ("/versions/99999999999999999999", 400),
        ("/versions?cursor=abc", 400),
        ("/versions?limit=0", 400),
        ("/versions?other=1", 400),
    ]:
        status, body = await api.api("GET", path(created, rest))
        assert status == expected, (rest, body)
        assert body["error"]
    missing = {"id": "0" * 32}
    for rest in ("/versions", "/versions/1", "/trigger:rotate-key"):
        method = "POST" if "rotate" in rest else "GET"
        status, body = await api.api(method, path(missing, rest))
        assert status == 404 and "not found" in body["error"], rest


async def test_a_new_trigger_key_retires_the_old_url(api: System) -> None:
    created = await api.create(payment_workflow(name="leaky"))
    old_url = webhook_url(api, created)
    status, rotated = await api.api("POST", path(created, "/trigger:rotate-key"))
    assert status == 200
    new_key = rotated["trigger"]["key"]
    assert new_key != created["trigger"]["key"] and rotated["webhookUrl"].endswith(new_key)
    assert (rotated["version"], rotated["name"]) == (2, "leaky")
    assert (await api.post(old_url, json={"status": "paid"}))[0].status == 404
    response, _ = await api.post(webhook_url(api, rotated), json={"status": "paid"})
    assert response.status == 200
    status, fetched = await api.api("GET", path(created))
    assert fetched == rotated


async def test_the_old_key_404s_on_every_gateway_once_rotate_key_answers(
    rabbit_system: System, rabbitmq: str, data_dir: Path, namespace: str
) -> None:
    """On RabbitMQ, with two gateways: the answer waits for both to serve the new key."""
    settings = settings_for(
        broker_url=rabbitmq, mongodb=None, data_dir=data_dir, namespace=namespace
    )
    async with second_gateway(settings) as other:
        bases = [rabbit_system.gateway_url, other]
        await wait_for(lambda: _config_api_knows(rabbit_system, 2), timeout=10)
        workflow = await rabbit_system.create(payment_workflow())
        for _ in range(3):
            old_key = workflow["trigger"]["key"]
            status, workflow = await rabbit_system.api(
                "POST", path(workflow, "/trigger:rotate-key")
            )
            assert status == 200
            new_key = workflow["trigger"]["key"]
            assert await statuses(rabbit_system, bases, old_key) == [404, 404]
            assert await statuses(rabbit_system, bases, new_key) == [200, 200]


async def statuses(system: System, bases: list[str], key: str) -> list[int]:
    return [
        (await system.post(f"{base}/api/webhook:trigger/{key}", json={"status": "paid"}))[0].status
        for base in bases
    ]


async def _config_api_knows(system: System, gateways: int) -> bool:
    workflows = system.runners["config"].app[WORKFLOWS]
    return len(workflows._propagation.gateways()) == gateways
