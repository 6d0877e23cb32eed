"""The SQLite adapter's writers wait for the file's write lock themselves (trying again every
0.2 to 2 ms, storage/sqlite.py `_transaction`), not through SQLite's busy handler: a write that
finds another process writing goes through once it is done, one that finds it held past the
adapter's timeout fails as before, and reads keep SQLite's busy timeout."""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hookflow_shared.errors import StorageUnavailable
from hookflow_shared.storage.sqlite import SqliteStorage
from tests.support import sqlite_write_lock


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
