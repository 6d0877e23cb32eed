"""The execution lists of the config API over HTTP: filters by workflow, status and time
received, paging across them, and a 400 for every bad parameter. Here on the in-process bus
and SQLite, with the history written into the store; test_replay.py drives real webhooks
through RabbitMQ."""

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from hookflow_shared.models import ExecutionStatus
from hookflow_shared.storage import Storage
from tests.support import SECOND, T0, System, payment_workflow, record

MS = timedelta(milliseconds=1)


@pytest.fixture
async def history(local: System, local_store: Storage) -> dict[str, Any]:
    """Workflows a and b; executions a second apart from T0: a ok, a failed, b ok, a ok,
    b failed, a failed (t0..t5)."""
    a = (await local.create(payment_workflow(title="a")))["id"]
    b = (await local.create(payment_workflow(title="b")))["id"]
    plan: list[tuple[str, ExecutionStatus]] = [
        (a, "succeeded"),
        (a, "failed"),
        (b, "succeeded"),
        (a, "succeeded"),
        (b, "failed"),
        (a, "failed"),
    ]
    records = [
        record(workflow, status, received_at=T0 + n * SECOND)
        for n, (workflow, status) in enumerate(plan)
    ]
    await local_store.save_executions(records)
    return {"a": a, "b": b, "ids": [r.id for r in records]}


def at(second: int, offset: timedelta = timedelta(0)) -> str:
    return (T0 + second * SECOND + offset).isoformat().replace("+00:00", "Z")


async def listing(system: System, path: str, **query: Any) -> tuple[list[int], str | None]:
    """The executions a list gives, by their second (t0 = 0), and its nextCursor."""
    url = f"{path}?{urlencode(query)}" if query else path
    status, body = await system.api("GET", url)
    assert status == 200, body
    seconds = [
        round((datetime.fromisoformat(item["receivedAt"]) - T0) / SECOND) for item in body["items"]
    ]
    return seconds, body["nextCursor"]


async def test_executions_of_every_workflow_filtered(
    local: System, history: dict[str, Any]
) -> None:
    a, b = history["a"], history["b"]
    assert await listing(local, "/api/executions") == ([5, 4, 3, 2, 1, 0], None)
    assert await listing(local, "/api/executions", workflow=a) == ([5, 3, 1, 0], None)
    assert await listing(local, "/api/executions", status="failed") == ([5, 4, 1], None)
    assert await listing(local, "/api/executions", workflow=b, status="succeeded") == ([2], None)
    assert await listing(local, "/api/executions", since=at(2)) == ([5, 4, 3, 2], None)
    assert await listing(local, "/api/executions", until=at(2)) == ([1, 0], None)
    assert await listing(local, "/api/executions", since=at(1), until=at(3, MS)) == (
        [3, 2, 1],
        None,
    )
    east = "2025-06-01T14:00:04+02:00"  # t4, two hours east (urlencode sends + as %2B)
    west = "2025-06-01T07:00:04.000-05:00"
    assert await listing(local, "/api/executions", since=east) == ([5, 4], None)
    assert await listing(local, "/api/executions", until=west) == ([3, 2, 1, 0], None)
    assert await listing(
        local, "/api/executions", workflow=a, status="failed", since=at(2), until=at(6)
    ) == ([5], None)
    assert await listing(local, "/api/executions", workflow="f" * 32) == ([], None)

    path = f"/api/workflows/{a}/executions"
    assert await listing(local, path) == ([5, 3, 1, 0], None)
    assert await listing(local, path, status="succeeded", until=at(3)) == ([0], None)
    assert await listing(local, path, status="failed", since=at(1, MS)) == ([5], None)


async def test_pages_follow_the_filters(local: System, history: dict[str, Any]) -> None:
    a = history["a"]
    seen, cursor = await listing(local, "/api/executions", status="succeeded", limit=2)
    assert (seen, cursor) == ([3, 2], history["ids"][2])
    assert await listing(local, "/api/executions", status="succeeded", limit=2, cursor=cursor) == (
        [0],
        None,
    )
    seen, cursor = await listing(local, f"/api/workflows/{a}/executions", since=at(1), limit=2)
    assert seen == [5, 3]
    assert await listing(
        local, f"/api/workflows/{a}/executions", since=at(1), limit=2, cursor=cursor
    ) == ([1], None)
    # A page ends exactly at the last match: no cursor to an empty page.
    assert await listing(local, "/api/executions", status="failed", limit=3) == ([5, 4, 1], None)


async def test_the_summaries_and_the_workflows_that_were(
    local: System, history: dict[str, Any]
) -> None:
    status, body = await local.api("GET", "/api/executions?limit=1")
    assert status == 200
    assert set(body["items"][0]) == {
        "id",
        "workflowId",
        "version",
        "status",
        "receivedAt",
        "startedAt",
        "finishedAt",
        "requestId",
        "error",
        "replayOf",
    }
    # A deleted workflow's executions stay listed; one never stored is a 404.
    assert (await local.api("DELETE", f"/api/workflows/{history['b']}"))[0] == 204
    assert await listing(local, f"/api/workflows/{history['b']}/executions") == ([4, 2], None)
    fresh = await local.create(payment_workflow(title="fresh"))
    assert (await local.api("DELETE", f"/api/workflows/{fresh['id']}"))[0] == 204
    assert await listing(local, f"/api/workflows/{fresh['id']}/executions") == ([], None)
    status, body = await local.api("GET", f"/api/workflows/{'0' * 32}/executions")
    assert (status, body["error"]) == (404, f"workflow {'0' * 32} not found")


BAD_QUERIES = [
    ("/api/executions?status=running", "status must be succeeded or failed"),
    ("/api/executions?status=failed&status=succeeded", "give status once"),
    ("/api/executions?since=yesterday", "since must be an ISO 8601 instant with its offset"),
    ("/api/executions?since=2025-06-01", "since must be an ISO 8601 instant"),
    ("/api/executions?until=2025-06-01T12:00:00+02:00", "(in a URL, + is %2B)"),
    ("/api/executions?until=0001-01-01T00:00:00%2B01:00", "until must be an ISO 8601"),
    (f"/api/executions?since={at(2)}&until={at(2)}", "since must be earlier than until"),
    ("/api/executions?limit=0", "limit must be a whole number from 1 to 200"),
    ("/api/executions?limit=201", "limit must be a whole number from 1 to 200"),
    ("/api/executions?limit=ten", "limit must be a whole number from 1 to 200"),
    ("/api/executions?cursor=garbage", "cursor must be the nextCursor of a previous page"),
    ("/api/executions?cursor=" + "A" * 32, "cursor must be the nextCursor"),
    ("/api/executions?workflow=Payment", "workflow must be a workflow's id"),
    (
        "/api/executions?statuss=failed",
        "unknown parameter statuss; this list takes workflow, status, since, until, limit, cursor",
    ),
    ("/api/workflows?cursor=garbage", "cursor must be the nextCursor of a previous page"),
    ("/api/workflows?cursor=" + "0" * 31, "cursor must be the nextCursor"),
    ("/api/workflows?limit=500", "limit must be a whole number from 1 to 200"),
    (
        "/api/workflows?status=failed",
        "unknown parameter status; this list takes name, limit, cursor",
    ),
]


@pytest.mark.parametrize(("query", "message"), BAD_QUERIES)
async def test_bad_parameters_are_400s_saying_what_is_allowed(
    local: System, query: str, message: str
) -> None:
    status, body = await local.api("GET", query)
    assert status == 400, body
    assert message in body["error"]


async def test_bad_parameters_of_a_workflows_executions(local: System) -> None:
    workflow = (await local.create(payment_workflow()))["id"]
    path = f"/api/workflows/{workflow}/executions"
    for query, message in [
        ("?cursor=zz", "cursor must be the nextCursor"),
        ("?status=ok", "status must be succeeded or failed"),
        ("?until=soon", "until must be an ISO 8601 instant"),
        (f"?workflow={workflow}", "unknown parameter workflow; this list takes status, since"),
    ]:
        status, body = await local.api("GET", path + query)
        assert (status, message in body["error"]) == (400, True), (query, body)
    assert (await local.api("GET", path + "?cursor="))[0] == 200  # empty: the first page
