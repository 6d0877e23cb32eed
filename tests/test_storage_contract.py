"""One contract, two adapters: SQLite (embedded) and MongoDB (over a real socket)."""

import asyncio
from datetime import timedelta, timezone

import pytest

from hookflow_shared.errors import Conflict, NotFound
from hookflow_shared.ids import new_id, trigger_key
from hookflow_shared.models import (
    CapturedRequest,
    ExecutionRecord,
    StoredWorkflow,
    WorkflowDocument,
    now,
)
from hookflow_shared.storage import CaptureWindow, Storage
from tests.support import SECOND, T0, id_at, record


@pytest.fixture
def storage(store: Storage) -> Storage:
    """Each adapter in turn (conftest's `store`)."""
    return store


def workflow(title: str = "w", version: int = 1, **fields: object) -> StoredWorkflow:
    moment = now()
    document = WorkflowDocument.model_validate({"title": title, **fields})
    document.trigger.key = trigger_key()
    return StoredWorkflow(
        id=new_id(), version=version, created_at=moment, updated_at=moment, document=document
    )


def next_version(current: StoredWorkflow, title: str) -> StoredWorkflow:
    document = current.document.model_copy(update={"title": title})
    return current.model_copy(
        update={"version": current.version + 1, "document": document, "updated_at": now()}
    )


async def test_a_workflow_round_trips_by_id_and_key(storage: Storage) -> None:
    stored = workflow(
        "Payment", sync=True, trigger={"basicAuth": {"username": "u", "password": "p"}}
    )
    await storage.insert_workflow(stored)
    assert await storage.get_workflow(stored.id) == stored
    assert await storage.get_workflow_by_key(stored.key) == stored
    assert await storage.get_workflow_version(stored.id, 1) == stored
    assert await storage.get_workflow("missing") is None
    assert await storage.get_workflow_by_key("missing") is None


async def test_trigger_keys_are_unique(storage: Storage) -> None:
    first = workflow()
    await storage.insert_workflow(first)
    clash = workflow()
    clash.document.trigger.key = first.key
    with pytest.raises(Conflict):
        await storage.insert_workflow(clash)
    assert await storage.get_workflow(clash.id) is None


async def test_each_version_is_kept_and_changes_are_compare_and_set(storage: Storage) -> None:
    v1 = workflow("one")
    await storage.insert_workflow(v1)
    v2 = next_version(v1, "two")
    await storage.replace_workflow(v2)
    assert (await storage.get_workflow(v1.id)) == v2
    assert (await storage.get_workflow_version(v1.id, 1)) == v1
    assert (await storage.get_workflow_version(v1.id, 2)) == v2
    with pytest.raises(Conflict):  # another change stored version 2 first
        await storage.replace_workflow(next_version(v1, "stale"))
    assert (await storage.get_workflow(v1.id)).document.title == "two"  # type: ignore[union-attr]
    with pytest.raises(NotFound):
        await storage.replace_workflow(next_version(workflow(), "ghost"))


async def test_delete_frees_the_key_but_keeps_versions(storage: Storage) -> None:
    stored = workflow()
    await storage.insert_workflow(stored)
    assert await storage.delete_workflow(stored.id) == stored
    assert await storage.delete_workflow(stored.id) is None
    assert await storage.get_workflow(stored.id) is None
    assert await storage.get_workflow_by_key(stored.key) is None
    assert await storage.get_workflow_version(stored.id, 1) == stored


async def test_workflows_list_newest_first_in_pages(storage: Storage) -> None:
    made = []
    for index in range(5):
        made.append(workflow(f"w{index}"))
        await storage.insert_workflow(made[-1])
        await asyncio.sleep(0.002)
    first = await storage.list_workflows(limit=2)
    assert [w.document.title for w in first.items] == ["w4", "w3"]
    second = await storage.list_workflows(limit=2, cursor=first.next_cursor)
    assert [w.document.title for w in second.items] == ["w2", "w1"]
    last = await storage.list_workflows(limit=2, cursor=second.next_cursor)
    assert [w.document.title for w in last.items] == ["w0"]
    assert last.next_cursor is None


async def test_names_are_unique_among_workflows_not_deleted(storage: Storage) -> None:
    first = workflow("first", name="payments")
    await storage.insert_workflow(first)
    await storage.insert_workflow(workflow("unnamed"))
    await storage.insert_workflow(workflow("unnamed too"))  # no name: no clash
    clash = workflow("clash", name="payments")
    with pytest.raises(Conflict, match=f"taken by workflow {first.id}"):
        await storage.insert_workflow(clash)
    assert await storage.get_workflow(clash.id) is None
    assert await storage.get_workflow_version(clash.id, 1) is None
    other = workflow("other", name="refunds")
    await storage.insert_workflow(other)
    renamed = next_version(other, "other")
    renamed.document.name = "payments"
    with pytest.raises(Conflict, match=f"taken by workflow {first.id}"):
        await storage.replace_workflow(renamed)
    assert (await storage.get_workflow(other.id)) == other
    assert (await storage.get_workflow_version(other.id, 2)) is None
    same = next_version(first, "first, renamed")  # keeping its own name is no clash
    await storage.replace_workflow(same)
    found = await storage.list_workflows(limit=10, name="payments")
    assert [w.id for w in found.items] == [first.id] and found.next_cursor is None
    assert (await storage.list_workflows(limit=10, name="nobody")).items == []
    await storage.delete_workflow(first.id)
    await storage.replace_workflow(renamed)  # the name is free once its holder is deleted
    found = await storage.list_workflows(limit=10, name="payments")
    assert [w.id for w in found.items] == [other.id]
    assert (await storage.get_workflow(other.id)).document.name == "payments"  # type: ignore[union-attr]


async def test_versions_list_newest_first_deleted_or_not(storage: Storage) -> None:
    versions = [workflow("v1")]
    await storage.insert_workflow(versions[0])
    for number in range(2, 6):
        versions.append(next_version(versions[-1], f"v{number}"))
        await storage.replace_workflow(versions[-1])
    await storage.insert_workflow(workflow("another workflow"))
    listed = await storage.list_workflow_versions(versions[0].id, limit=3)
    assert listed == versions[:1:-1]
    older = await storage.list_workflow_versions(versions[0].id, limit=3, before=3)
    assert older == [versions[1], versions[0]]
    await storage.delete_workflow(versions[0].id)
    assert len(await storage.list_workflow_versions(versions[0].id, limit=10)) == 5
    assert await storage.list_workflow_versions("missing", limit=10) == []


async def test_executions_are_saved_once_per_id(storage: Storage) -> None:
    first, second = record("wf"), record("wf")
    await storage.save_executions([first, second])
    assert await storage.get_execution(first.id) == first
    assert await storage.existing_executions([first.id, "other", second.id]) == {
        first.id,
        second.id,
    }
    again = record("wf", status="failed", execution_id=first.id)
    await storage.save_executions([again])
    assert await storage.get_execution(first.id) == again
    page = await storage.list_executions(workflow_id="wf", limit=10)
    assert len(page.items) == 2
    failed = await storage.list_executions(workflow_id="wf", status="failed", limit=10)
    assert [r.id for r in failed.items] == [first.id]  # the filter follows the overwrite
    assert await storage.get_execution("missing") is None


async def test_executions_list_newest_first_per_workflow(storage: Storage) -> None:
    records = []
    for _ in range(5):
        records.append(record("wf"))
        await asyncio.sleep(0.002)
    await storage.save_executions(records)
    await storage.save_executions([record("other")])
    page = await storage.list_executions(workflow_id="wf", limit=3)
    assert [r.id for r in page.items] == [r.id for r in reversed(records)][:3]
    rest = await storage.list_executions(workflow_id="wf", limit=3, cursor=page.next_cursor)
    assert [r.id for r in rest.items] == [records[1].id, records[0].id]
    assert rest.next_cursor is None
    assert (await storage.list_executions(workflow_id="nobody", limit=3)).items == []


HALF_MS = timedelta(microseconds=500)


@pytest.fixture
async def history(storage: Storage) -> list[ExecutionRecord]:
    """Six executions a second apart (t0..t5) of workflows a and b, some failed; and one
    of workflow c received at t6 whose id was made 30 s later (within RECEIPT_SLACK)."""
    made = [
        record("a", "succeeded", received_at=T0),
        record("a", "failed", received_at=T0 + SECOND),
        record("a", "succeeded", received_at=T0 + 2 * SECOND),
        record("b", "succeeded", received_at=T0 + 3 * SECOND),
        record("a", "failed", received_at=T0 + 4 * SECOND),
        record("b", "failed", received_at=T0 + 5 * SECOND),
    ]
    late = record("c", execution_id=id_at(T0 + 36 * SECOND), received_at=T0 + 6 * SECOND)
    await storage.save_executions([*made, late])
    return [*made, late]


async def listed(storage: Storage, **filters: object) -> list[int]:
    """Which of the history's records a listing gives, by their second (t0 = 0)."""
    page = await storage.list_executions(limit=50, **filters)  # type: ignore[arg-type]
    assert page.next_cursor is None
    return [int((r.received_at - T0) / SECOND) for r in page.items]


async def test_executions_filtered_by_workflow_and_status(
    storage: Storage, history: list[ExecutionRecord]
) -> None:
    assert await listed(storage) == [6, 5, 4, 3, 2, 1, 0]
    assert await listed(storage, workflow_id="a") == [4, 2, 1, 0]
    assert await listed(storage, status="failed") == [5, 4, 1]
    assert await listed(storage, status="succeeded") == [6, 3, 2, 0]
    assert await listed(storage, workflow_id="a", status="failed") == [4, 1]
    assert await listed(storage, workflow_id="b", status="succeeded") == [3]
    assert await listed(storage, workflow_id="nobody") == []


async def test_executions_filtered_by_time_received(
    storage: Storage, history: list[ExecutionRecord]
) -> None:
    t = [T0 + n * SECOND for n in range(8)]
    assert await listed(storage, since=t[2]) == [6, 5, 4, 3, 2]  # since: inclusive
    assert await listed(storage, until=t[2]) == [1, 0]  # until: exclusive
    assert await listed(storage, since=t[1], until=t[4]) == [3, 2, 1]
    assert await listed(storage, since=t[2] - HALF_MS, until=t[2] + HALF_MS) == [2]
    assert await listed(storage, since=t[2] + HALF_MS, until=t[3]) == []
    assert await listed(storage, since=t[7]) == []
    plus_two = timezone(timedelta(hours=2))
    assert await listed(storage, since=t[4].astimezone(plus_two)) == [6, 5, 4]
    # Matched on receivedAt, not on the time in the id (made 30 s later for t6).
    assert await listed(storage, since=t[6], until=t[6] + SECOND) == [6]
    assert await listed(storage, since=t[6] + SECOND) == []
    assert await listed(storage, workflow_id="a", status="failed", since=t[2]) == [4]


async def test_executions_page_through_filters(
    storage: Storage, history: list[ExecutionRecord]
) -> None:
    async def pages(**filters: object) -> list[list[int]]:
        seen: list[list[int]] = []
        cursor = None
        while True:
            page = await storage.list_executions(  # type: ignore[arg-type]
                limit=2, cursor=cursor, **filters
            )
            seen.append([int((r.received_at - T0) / SECOND) for r in page.items])
            cursor = page.next_cursor
            if cursor is None:
                return seen

    assert await pages(status="succeeded") == [[6, 3], [2, 0]]
    assert await pages(since=T0 + SECOND) == [[6, 5], [4, 3], [2, 1]]
    assert await pages(workflow_id="a", until=T0 + 4 * SECOND) == [[2, 1], [0]]
    assert await pages(status="failed", since=T0 + SECOND, until=T0 + 5 * SECOND) == [[4, 1]]


async def test_ping(storage: Storage) -> None:
    assert await storage.ping()


def captured(
    workflow_id: str, capture_id: str, body: object, at: timedelta = timedelta()
) -> CapturedRequest:
    """A sample received `at` after the test started (ids order samples by the millisecond
    they came in; two made in the same one have no order)."""
    return CapturedRequest(
        id=id_at(now() + at),
        workflow_id=workflow_id,
        capture_id=capture_id,
        received_at=now(),
        method="POST",
        content_type="application/json",
        headers={"x-request-id": "r1"},
        query_string="a=1",
        query={"a": "1"},
        body=body,
    )


async def test_capture_windows_open_close_and_expire(storage: Storage) -> None:
    moment = now()
    open_one = CaptureWindow(new_id(), new_id(), moment + timedelta(minutes=2), 5)
    ended = CaptureWindow(new_id(), new_id(), moment - timedelta(seconds=1), 5)
    await storage.open_capture(open_one)
    await storage.open_capture(ended)
    assert await storage.get_capture(open_one.workflow_id, moment) == open_one
    assert await storage.get_capture(ended.workflow_id, moment) is None
    assert await storage.open_captures(moment) == [open_one]
    # Restarting replaces the window; closing ends it.
    again = CaptureWindow(open_one.workflow_id, new_id(), moment + timedelta(minutes=1), 2)
    await storage.open_capture(again)
    assert await storage.get_capture(open_one.workflow_id, moment) == again
    await storage.close_capture(open_one.workflow_id)
    assert await storage.get_capture(open_one.workflow_id, moment) is None
    assert await storage.open_captures(moment) == []


async def test_captured_requests_are_listed_per_window_oldest_first_until_they_expire(
    storage: Storage,
) -> None:
    workflow_id, capture_id = new_id(), new_id()
    first = captured(workflow_id, capture_id, {"order": {"id": "A1"}, "items": [1, 2]})
    second = captured(workflow_id, capture_id, "plain text", at=SECOND)
    other_window = captured(workflow_id, new_id(), None)
    moment = now()
    await storage.save_captured(first, moment + timedelta(hours=1))
    await storage.save_captured(second, moment + timedelta(hours=1))
    await storage.save_captured(other_window, moment + timedelta(hours=1))
    listed = await storage.list_captured(workflow_id, capture_id, now=moment, limit=10)
    assert listed == [first, second]
    assert await storage.list_captured(workflow_id, capture_id, now=moment, limit=1) == [first]
    later = moment + timedelta(hours=2)
    assert await storage.list_captured(workflow_id, capture_id, now=later, limit=10) == []
