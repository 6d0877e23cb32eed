"""The SQLite adapter's writers wait for the file's write lock themselves (trying again every
0.2 to 2 ms, storage/sqlite.py `_transaction`), not through SQLite's busy handler: a write that
finds another process writing goes through once it is done, one that finds it held past the
adapter's timeout fails as before, and reads keep SQLite's busy timeout.

The short writes of the hot paths (records, claims) run on the event loop's thread when the
worker thread is idle and the lock free at once, on the worker thread otherwise; the adapter
checkpoints the WAL itself (SqliteStorage._write, CHECKPOINT_COMMITS)."""

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from hookflow_shared.errors import StorageUnavailable
from hookflow_shared.models import now
from hookflow_shared.storage import Claim
from hookflow_shared.storage.sqlite import CHECKPOINT_COMMITS, INLINE_ROWS, SqliteStorage
from tests.support import record, sqlite_write_lock


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    store = SqliteStorage(tmp_path / "hookflow.sqlite3", timeout=1.0)
    await store.open()
    yield store
    await store.close()


async def busy_timeout(storage: SqliteStorage) -> int:
    row = await storage._call(lambda db: db.execute("PRAGMA busy_timeout").fetchone())
    return int(row[0])


async def test_a_write_waits_for_another_writer_and_goes_through(
    storage: SqliteStorage, tmp_path: Path
) -> None:
    with sqlite_write_lock(tmp_path / "hookflow.sqlite3") as release:
        asyncio.get_running_loop().call_later(0.3, release)
        installation = await storage.installation_id()
        done = time.monotonic()
        released = release()
    assert done >= released, "written while the other writer held the lock?"
    assert await storage.installation_id() == installation
    # The wait did not change how long every other statement waits for a lock.
    assert await busy_timeout(storage) == 1000


async def test_a_write_gives_up_once_the_timeout_has_passed(
    storage: SqliteStorage, tmp_path: Path
) -> None:
    with sqlite_write_lock(tmp_path / "hookflow.sqlite3"):
        started = time.monotonic()
        with pytest.raises(StorageUnavailable, match="locked"):
            await storage.installation_id()
        assert time.monotonic() - started >= 1.0
    assert await busy_timeout(storage) == 1000
    # And the store works again once the other writer is done.
    assert await storage.installation_id()


@contextmanager
def writes_seen(storage: SqliteStorage) -> Iterator[list[tuple[bool, str]]]:
    """The statements the connection runs that write a row: (on the event loop's thread?,
    the statement's first words)."""
    loop_thread = threading.get_ident()
    seen: list[tuple[bool, str]] = []

    def trace(sql: str) -> None:
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            seen.append((threading.get_ident() == loop_thread, " ".join(sql.split()[:3])))

    assert storage._db is not None
    storage._db.set_trace_callback(trace)
    try:
        yield seen
    finally:
        storage._db.set_trace_callback(None)


async def test_a_short_write_runs_on_the_loop_thread_when_nothing_waits(
    storage: SqliteStorage,
) -> None:
    with writes_seen(storage) as seen:
        await storage.save_executions([record("wf-1")])
        claim = Claim("wf-1", "k-1", "e-1", now(), now() + timedelta(minutes=1))
        await storage.claim_keys([claim], abandoned_before=now())
    assert [on_loop for on_loop, _ in seen] == [True, True], seen
    assert seen[0][1].startswith("INSERT OR REPLACE")


async def test_a_large_write_runs_on_the_worker_thread(storage: SqliteStorage) -> None:
    records = [record("wf-1") for _ in range(INLINE_ROWS + 1)]
    with writes_seen(storage) as seen:
        await storage.save_executions(records)
    assert len(seen) == INLINE_ROWS + 1
    assert not any(on_loop for on_loop, _ in seen)
    assert await storage.existing_executions([r.id for r in records]) == {r.id for r in records}


async def test_a_short_write_finding_the_lock_taken_waits_on_the_worker_thread(
    storage: SqliteStorage, tmp_path: Path
) -> None:
    """The loop is not held while another process writes: the write goes to the worker thread,
    and a timer on the loop fires meanwhile."""
    written = record("wf-1")
    with writes_seen(storage) as seen, sqlite_write_lock(tmp_path / "hookflow.sqlite3") as release:
        ticks: list[float] = []
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, lambda: ticks.append(time.monotonic()))
        loop.call_later(0.3, release)
        await storage.save_executions([written])
        done = time.monotonic()
        released = release()
    assert done >= released, "written while the other writer held the lock?"
    assert ticks and ticks[0] < released, "the loop was held while waiting for the lock"
    assert seen == [(False, "INSERT OR REPLACE")]
    assert await storage.get_execution(written.id) == written
    assert await busy_timeout(storage) == 1000


async def test_writes_on_both_threads_with_reads_between_lose_nothing(
    storage: SqliteStorage,
) -> None:
    """Short writes, large writes and reads at once: the loop's thread never uses the
    connection while the worker thread does."""
    small = [[record("wf-1")] for _ in range(200)]
    large = [[record("wf-2") for _ in range(INLINE_ROWS + 5)] for _ in range(5)]
    calls = [storage.save_executions(batch) for batch in small + large]
    calls += [storage.existing_executions([batch[0].id]) for batch in small[::10]]
    await asyncio.gather(*calls)
    everyone = [r.id for batch in small + large for r in batch]
    assert await storage.existing_executions(everyone) == set(everyone)


async def test_the_adapter_checkpoints_the_wal_itself(tmp_path: Path) -> None:
    """SQLite's own checkpoint is off (it would run in a commit on the loop's thread): the
    adapter's keeps the WAL from growing with every commit."""
    path = tmp_path / "hookflow.sqlite3"
    store = SqliteStorage(path)
    await store.open()
    try:
        automatic = await store._call(lambda db: db.execute("PRAGMA wal_autocheckpoint").fetchone())
        assert automatic == (0,)
        for _ in range(CHECKPOINT_COMMITS * 6):
            await store.save_executions([record("wf-1")])
        # Each commit of a record adds about 4 pages of 4 KiB: without checkpoints the WAL
        # would hold 1,500 commits (over 20 MB) by now.
        wal = path.with_name(path.name + "-wal")
        assert wal.stat().st_size < 8 * 1024 * 1024, wal.stat().st_size
        reader = sqlite3.connect(path)
        try:
            (count,) = reader.execute("SELECT count(*) FROM executions").fetchone()
        finally:
            reader.close()
        assert count == CHECKPOINT_COMMITS * 6
    finally:
        await store.close()
