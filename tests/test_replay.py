"""Replaying executions, end to end on a real RabbitMQ (the `system` fixture: the three
services over sockets, storing in SQLite): webhooks run, the workflow changes, and
POST /api/executions/{id}:replay runs the recorded context again on the version asked for."""

from datetime import datetime
from typing import Any

import orjson
import pytest

from hookflow_shared.ids import new_id
from hookflow_shared.messaging import Topology, open_broker
from hookflow_shared.messaging.memory import MemoryBroker
from hookflow_shared.models import RunRequest, TriggerContext, now
from hookflow_shared.resources import BROKER
from tests.support import TOKEN, System, payment_workflow, status_is_paid, webhook_url


@pytest.fixture
def system(rabbit_system: System) -> System:
    """These tests close the config API's own broker connection: a real broker only."""
    return rabbit_system


def marking(label: str, **changes: Any) -> dict[str, Any]:
    """A workflow whose node `mark` computes `<label>:<the body's status>`, then fails the
    run unless the status is paid."""
    return payment_workflow(
        nodes=[
            {
                "key": "mark",
                "type": "calculation",
                "config": {"expression": f"'{label}:' + context.body.status"},
            },
            {
                "key": "paid",
                "type": "condition",
                "config": {**status_is_paid(), "rejectOnFalse": True},
            },
        ],
        **changes,
    )


def results(execution: dict[str, Any]) -> dict[str, Any]:
    return {node["key"]: node["result"] for node in execution["nodes"]}


async def run_webhook(system: System, workflow: dict[str, Any], body: Any) -> dict[str, Any]:
    response, text = await system.post(webhook_url(system, workflow), json=body)
    assert response.status == 200, text
    return await system.execution(response.headers["X-Hookflow-Execution-Id"])


async def replay(system: System, execution_id: str, body: Any = None) -> dict[str, Any]:
    """Replay and wait for the new execution's record."""
    async with system.session.post(
        f"{system.config_url}/api/executions/{execution_id}:replay",
        data=b"" if body is None else orjson.dumps(body),
        headers={"Authorization": f"Bearer {TOKEN}", "X-Request-Id": "replay-1"},
    ) as response:
        answer = await response.json()
        assert response.status == 202, answer
        assert response.headers["Location"] == f"/api/executions/{answer['id']}"
    assert answer["replayOf"] == execution_id
    assert answer["id"] != execution_id
    record = await system.execution(answer["id"])
    assert (record["replayOf"], record["version"]) == (execution_id, answer["version"])
    assert record["requestId"] == "replay-1"
    return record


async def test_a_replay_runs_on_the_current_or_the_original_version(system: System) -> None:
    workflow = await system.create(marking("v1"))
    first = await run_webhook(system, workflow, {"status": "paid", "order": {"id": "A1"}})
    assert (first["version"], results(first)["mark"]) == (1, "v1:paid")
    status, _ = await system.api("PUT", f"/api/workflows/{workflow['id']}", marking("v2"))
    assert status == 200

    on_current = await replay(system, first["id"])
    assert (on_current["version"], on_current["status"]) == (2, "succeeded")
    assert results(on_current)["mark"] == "v2:paid"
    assert on_current["context"] == first["context"]
    received = datetime.fromisoformat(on_current["receivedAt"])
    assert received >= datetime.fromisoformat(first["finishedAt"])  # received when replayed
    assert on_current["id"] > first["id"]

    on_original = await replay(system, first["id"], {"version": "original"})
    assert (on_original["version"], results(on_original)["mark"]) == (1, "v1:paid")
    explicit = await replay(system, first["id"], {"version": "current"})
    assert explicit["version"] == 2
    again = await replay(system, on_original["id"])  # a replay of a replay
    assert (again["replayOf"], again["version"], results(again)["mark"]) == (
        on_original["id"],
        2,
        "v2:paid",
    )

    # Listed newest first by when they ran; the time filters follow the replays' own time.
    status, page = await system.api("GET", f"/api/executions?workflow={workflow['id']}")
    assert status == 200
    assert [(item["id"], item["replayOf"]) for item in page["items"]] == [
        (again["id"], on_original["id"]),
        (explicit["id"], first["id"]),
        (on_original["id"], first["id"]),
        (on_current["id"], first["id"]),
        (first["id"], None),
    ]
    since = on_current["receivedAt"].replace("+00:00", "Z")
    status, page = await system.api("GET", f"/api/executions?since={since}")
    assert [item["id"] for item in page["items"]] == [
        again["id"],
        explicit["id"],
        on_original["id"],
        on_current["id"],
    ]


async def test_a_failed_execution_replayed_on_the_fixed_workflow_succeeds(
    system: System,
) -> None:
    workflow = await system.create(marking("v1"))
    failed = await run_webhook(system, workflow, {"status": "pending"})
    assert failed["status"] == "failed"
    assert failed["error"] == "ended as failed by node paid"
    fixed = marking("v2")
    fixed["nodes"][1]["config"]["calculation"]["group"]["calculations"][0]["operands"][1] = (
        "pending"
    )
    assert (await system.api("PUT", f"/api/workflows/{workflow['id']}", fixed))[0] == 200

    status, listed = await system.api(
        "GET", f"/api/executions?status=failed&workflow={workflow['id']}"
    )
    assert (status, [item["id"] for item in listed["items"]]) == (200, [failed["id"]])
    replayed = await replay(system, failed["id"])
    assert (replayed["status"], replayed["error"]) == ("succeeded", None)
    assert results(replayed) == {"mark": "v2:pending", "paid": True}
    still = await replay(system, failed["id"], {"version": "original"})
    assert (still["status"], results(still)) == ("failed", {"mark": "v1:pending", "paid": False})


async def test_a_sync_executions_replay_records_the_response(system: System) -> None:
    answer = {
        "key": "answer",
        "type": "response",
        "config": {"statusCode": 201, "body": {"order": "{{$context.body.order.id}}"}},
    }
    workflow = await system.create(payment_workflow(sync=True, nodes=[answer]))
    response, text = await system.post(webhook_url(system, workflow), json={"order": {"id": "A7"}})
    assert (response.status, text) == (201, b'{"order":"A7"}')
    first = await system.execution(response.headers["X-Hookflow-Execution-Id"])
    replayed = await replay(system, first["id"])  # nobody waits: the answer is recorded
    assert replayed["status"] == "succeeded"
    assert replayed["response"] == {"statusCode": 201, "headers": {}, "body": {"order": "A7"}}


async def test_what_cannot_be_replayed(system: System, rabbitmq: str, namespace: str) -> None:
    workflow = await system.create(marking("v1"))
    done = await run_webhook(system, workflow, {"status": "paid"})
    path = f"/api/executions/{done['id']}:replay"

    status, body = await system.api("POST", f"/api/executions/{'0' * 32}:replay", {})
    assert (status, body["error"]) == (404, f"execution {'0' * 32} not found")
    assert (await system.api("POST", "/api/executions/nope:replay"))[0] == 404
    for bad in ([], "original", {"version": "latest"}, {"version": 1}, {"other": True}):
        status, body = await system.api("POST", path, bad)
        assert status == 400, bad
        assert '{"version": "original"} to run it on the version it ran' in body["error"]
    status, body = await system.api(
        "POST", path, data=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert (status, body["error"].startswith("body is not valid JSON")) == (400, True)

    # A run of a version that was never stored is recorded as failed; it can run again on
    # the current version, not on its own.
    broker = open_broker(rabbitmq, Topology(namespace))
    await broker.connect()
    try:
        ghost = RunRequest(
            execution_id=new_id(),
            workflow_id=workflow["id"],
            version=9,
            received_at=now(),
            request_id="ghost",
            context=TriggerContext(body={"status": "paid"}),
        )
        await broker.publish_runs([ghost])
    finally:
        await broker.close()
    recorded = await system.execution(ghost.execution_id)
    assert recorded["error"] == f"workflow {workflow['id']} version 9 not found"
    status, body = await system.api(
        "POST", f"/api/executions/{ghost.execution_id}:replay", {"version": "original"}
    )
    assert status == 409
    assert body["error"] == (
        f"version 9 of workflow {workflow['id']}, which the execution ran, is not stored; "
        "it cannot run again"
    )
    assert (await replay(system, ghost.execution_id))["version"] == 1

    # A deleted workflow has no current version; the version the execution ran is kept.
    assert (await system.api("DELETE", f"/api/workflows/{workflow['id']}"))[0] == 204
    status, body = await system.api("POST", path, {})
    assert status == 409
    assert 'replay on the version the execution ran with {"version": "original"}' in body["error"]
    kept = await replay(system, done["id"], {"version": "original"})
    assert (kept["version"], kept["status"], results(kept)["mark"]) == (1, "succeeded", "v1:paid")


async def test_a_replay_the_broker_does_not_take_is_a_503(system: System) -> None:
    workflow = await system.create(marking("v1"))
    done = await run_webhook(system, workflow, {"status": "paid"})
    await system.runners["config"].app[BROKER].close()
    async with system.session.post(
        f"{system.config_url}/api/executions/{done['id']}:replay",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert "nothing was accepted, retry later" in (await response.json())["error"]

    async def listed() -> list[str]:
        _status, page = await system.api("GET", f"/api/executions?workflow={workflow['id']}")
        return [item["id"] for item in page["items"]]

    # The gateway's own connection still takes webhooks; one queued after the refused
    # replay runs, and nothing ran before it.
    later = await run_webhook(system, workflow, {"status": "paid"})
    assert await listed() == [later["id"], done["id"]]


async def test_replay_on_the_in_process_bus(local: System, local_bus: MemoryBroker) -> None:
    """`hookflow run`'s wiring: the config API publishes on the bus the executor reads."""
    workflow = await local.create(marking("v1"))
    first = await run_webhook(local, workflow, {"status": "paid"})
    await local.api("PATCH", f"/api/workflows/{workflow['id']}", {"title": "renamed"})
    assert (await replay(local, first["id"]))["version"] == 2
    assert (await replay(local, first["id"], {"version": "original"}))["version"] == 1
    await local_bus.close()
    status, body = await local.api("POST", f"/api/executions/{first['id']}:replay")
    assert (status, body["error"]) == (
        503,
        "the replay could not be queued; nothing was accepted, retry later",
    )
