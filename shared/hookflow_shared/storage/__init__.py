"""Storage: one interface (base.Storage), two adapters (MongoDB through PyMongo's async API,
and SQLite, the embedded default)."""

from datetime import timedelta
from pathlib import Path

from hookflow_shared.storage.base import Claim, Page, Storage

__all__ = ["Claim", "Page", "Storage", "open_storage"]


def open_storage(
    mongodb_url: str | None,
    *,
    database: str,
    data_dir: Path,
    timeout: float = 10.0,
    retention: timedelta = timedelta(days=30),
) -> Storage:
    """MongoDB when a URL is given, else SQLite in `data_dir` (call .open() on the result).
    `timeout`: seconds any one call may take before it raises StorageUnavailable;
    `retention`: how long MongoDB keeps execution records (its TTL index)."""
    if mongodb_url:
        from hookflow_shared.storage.mongo import MongoStorage

        return MongoStorage(mongodb_url, database, timeout=timeout, retention=retention)
    from hookflow_shared.storage.sqlite import SqliteStorage

    return SqliteStorage(data_dir / "hookflow.sqlite3", timeout=timeout)
