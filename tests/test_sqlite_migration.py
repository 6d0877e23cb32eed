"""A SQLite file made before executions could be filtered is brought up to date when opened:
the filter columns are added and filled from each record's document; one made before workflow
names gets their column and unique index."""

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from hookflow_shared.errors import Conflict
from hookflow_shared.models import execution_json
from hookflow_shared.storage.sqlite import SqliteStorage
from tests.support import SECOND, T0, record, stored

# The schema of executions as files made before the filters have it.
EARLIER_SCHEMA = """
CREATE TABLE executions (
    id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX executions_by_workflow ON executions (workflow_id, id);
"""


async def test_an_earlier_file_gets_the_filter_columns_filled(tmp_path: Path) -> None:
    path = tmp_path / "hookflow.sqlite3"
    records = [
        record("a", "succeeded", received_at=T0),
        record("a", "failed", received_at=T0 + SECOND + timedelta(microseconds=250_000)),
        record("b", "failed", received_at=T0 + 2 * SECOND),
    ]
    with sqlite3.connect(path) as db:
        db.executescript(EARLIER_SCHEMA)
        db.executemany(
            "INSERT INTO executions (id, workflow_id, doc) VALUES (?, ?, ?)",
            [(r.id, r.workflow_id, execution_json(r)) for r in records],
        )
    db.close()

    for _ in range(2):  # the second opening finds the columns there and changes nothing
        storage = SqliteStorage(path)
        await storage.open()
        try:
            failed = await storage.list_executions(status="failed", limit=10)
            assert [r.id for r in failed.items] == [records[2].id, records[1].id]
            page = await storage.list_executions(
                workflow_id="a", since=T0 + SECOND + timedelta(milliseconds=250), limit=10
            )
            assert [r.id for r in page.items] == [records[1].id]
            assert await storage.get_execution(records[0].id) == records[0]
        finally:
            await storage.close()

    with sqlite3.connect(path) as db:
        filled = db.execute("SELECT id, status, received_at FROM executions ORDER BY id")
        expected_ms = [1748779200000, 1748779201250, 1748779202000]
        assert filled.fetchall() == [
            (r.id, r.status, ms) for r, ms in zip(records, expected_ms, strict=True)
        ]
        indexes = {row[1] for row in db.execute("PRAGMA index_list(executions)")}
        assert {"executions_failed", "executions_failed_by_workflow"} <= indexes
    db.close()


# The workflows table as files made before workflow names have it.
UNNAMED_SCHEMA = """
CREATE TABLE workflows (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL
);
"""


async def test_an_earlier_file_gets_unique_workflow_names(tmp_path: Path) -> None:
    path = tmp_path / "hookflow.sqlite3"
    old = stored({"title": "made before names"})
    with sqlite3.connect(path) as db:
        db.executescript(UNNAMED_SCHEMA)
        db.execute(
            "INSERT INTO workflows (id, key, version, doc) VALUES (?, ?, ?, ?)",
            (old.id, old.key, old.version, old.model_dump_json()),
        )
    db.close()

    for _ in range(2):  # the second opening finds the column there and changes nothing
        storage = SqliteStorage(path)
        await storage.open()
        try:
            assert await storage.get_workflow(old.id) == old
            assert (await storage.list_workflows(limit=10, name="payments")).items == []
        finally:
            await storage.close()

    storage = SqliteStorage(path)
    await storage.open()
    try:
        named = stored({"title": "named", "name": "payments"})
        await storage.insert_workflow(named)
        with pytest.raises(Conflict, match=named.id):
            await storage.insert_workflow(stored({"title": "again", "name": "payments"}))
        found = await storage.list_workflows(limit=10, name="payments")
        assert [w.id for w in found.items] == [named.id]
    finally:
        await storage.close()
