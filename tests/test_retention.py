"""Retention: execution records expire after HOOKFLOW_EXECUTION_RETENTION, by a TTL index on
MongoDB and by the executor's periodic delete (at start, then every few minutes) on SQLite."""

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from pymongo import AsyncMongoClient

from hookflow_shared.messaging.memory import MemoryBroker
from hookflow_shared.models import now
from hookflow_shared.settings import CommonSettings, parse_duration
from hookflow_shared.storage import Storage
from hookflow_shared.storage.mongo import MongoStorage
from hookflow_shared.storage.sqlite import SqliteStorage
from tests.support import record, running_system, settings_for, wait_for


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("90m", timedelta(minutes=90)),
        ("45s", timedelta(seconds=45)),
        ("3600", timedelta(hours=1)),
    ],
)
def test_the_retention_reads_a_number_and_a_unit(
    text: str, expected: timedelta, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert parse_duration(text) == expected
    monkeypatch.setenv("HOOKFLOW_EXECUTION_RETENTION", text)
    assert CommonSettings().execution_retention == expected


def test_the_retention_is_30_days_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOKFLOW_EXECUTION_RETENTION", raising=False)
    assert CommonSettings().execution_retention == timedelta(days=30)


@pytest.mark.parametrize("text", ["soon", "30 days", "0d", "-1h", "12w"])
def test_a_bad_retention_says_how_to_write_one(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOKFLOW_EXECUTION_RETENTION", text)
    with pytest.raises(ValidationError) as raised:
        CommonSettings()
    assert "30d" in str(raised.value)


async def test_records_older_than_the_retention_are_deleted_and_newer_ones_stay(
    store: Storage,
) -> None:
    moment = now()
    old = record("a", received_at=moment - timedelta(days=31))
    older = record("b", "failed", received_at=moment - timedelta(days=400))
    recent = record("a", received_at=moment - timedelta(days=29))
    fresh = record("b", received_at=moment)
    await store.save_executions([old, older, recent, fresh])
    assert await store.purge_executions(moment - timedelta(days=30)) == 2
    assert await store.existing_executions([r.id for r in (old, older, recent, fresh)]) == {
        recent.id,
        fresh.id,
    }
    assert await store.purge_executions(moment - timedelta(days=30)) == 0


async def retention_index(url: str, database: str) -> dict[str, object]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    try:
        indexes = await client[database]["executions"].index_information()
    finally:
        await client.close()
    return indexes["retention"]


@pytest.mark.mongodb
async def test_mongodb_expires_records_by_a_ttl_index_that_follows_the_setting(
    mongodb: tuple[str, str],
) -> None:
    url, database = mongodb
    for retention, seconds in ((timedelta(hours=12), 43200), (timedelta(minutes=90), 5400)):
        storage = MongoStorage(url, database, retention=retention)
        await storage.open()
        await storage.close()
        index = await retention_index(url, database)
        assert index["key"] == [("receivedAt", 1)]
        assert index["expireAfterSeconds"] == seconds


async def test_the_executor_deletes_old_records_on_sqlite_at_start(
    local_store: SqliteStorage, data_dir: Path, namespace: str
) -> None:
    old = record("a", received_at=now() - timedelta(hours=2))
    new = record("a", received_at=now() - timedelta(minutes=30))
    await local_store.save_executions([old, new])
    settings = settings_for(
        broker_url=None,
        mongodb=None,
        data_dir=data_dir,
        namespace=namespace,
        execution_retention=timedelta(hours=1),
    )
    bus = MemoryBroker()
    await bus.connect()
    async with running_system(settings, storage=local_store, broker=bus):

        async def purged() -> bool:
            return await local_store.get_execution(old.id) is None

        await wait_for(purged, timeout=5)
        assert await local_store.get_execution(new.id) is not None
