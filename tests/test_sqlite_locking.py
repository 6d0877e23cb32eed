"""The SQLite adapter's writers wait for the file's write lock themselves (trying again every
0.2 to 2 ms, storage/sqlite.py `_transaction`), not through SQLite's busy handler: a write that
finds another process writing goes through once it is done, one that finds it held past the
adapter's timeout fails as before, and reads keep SQLite's busy timeout."""

import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hookflow_shared.errors import StorageUnavailable
from hookflow_shared.storage.sqlite import SqliteStorage


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    store = SqliteStorage(tmp_path / "hookflow.sqlite3", timeout=1.0)
    await store.open()
    yield store
    await store.close()


@contextmanager
def writing_elsewhere(path: Path, seconds: float) -> Iterator[list[float]]:
    """Another connection holds the write lock for `seconds`; gives [the time just before it
    let go]: a write that waited for it ends after that."""
    ready = threading.Event()
    released: list[float] = []

    def hold() -> None:
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('elsewhere', 'x')")
        ready.set()
        time.sleep(seconds)
        released.append(time.monotonic())
        db.execute("COMMIT")
        db.close()

    thread = threading.Thread(target=hold)
    thread.start()
    ready.wait(10)
    try:
        yield released
    finally:
        thread.join(10)


async def busy_timeout(storage: SqliteStorage) -> int:
    row = await storage._call(lambda db: db.execute("PRAGMA busy_timeout").fetchone())
    return int(row[0])


async def test_a_write_waits_for_another_writer_and_goes_through(
    storage: SqliteStorage, tmp_path: Path
) -> None:
    with writing_elsewhere(tmp_path / "hookflow.sqlite3", 0.3) as released:
        installation = await storage.installation_id()
        done = time.monotonic()
    assert released and done >= released[0], "written while the other writer held the lock?"
    assert await storage.installation_id() == installation
    # The wait did not change how long every other statement waits for a lock.
    assert await busy_timeout(storage) == 1000


async def test_a_write_gives_up_once_the_timeout_has_passed(
    storage: SqliteStorage, tmp_path: Path
) -> None:
    with writing_elsewhere(tmp_path / "hookflow.sqlite3", 1.6):
        started = time.monotonic()
        with pytest.raises(StorageUnavailable, match="locked"):
            await storage.installation_id()
        assert time.monotonic() - started >= 1.0
    assert await busy_timeout(storage) == 1000
    # And the store works again once the other writer is done.
    assert await storage.installation_id()
