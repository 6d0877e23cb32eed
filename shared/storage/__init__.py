"""Storage: one interface (base.Storage), two adapters (MongoDB through PyMongo's async API,
and SQLite, the embedded default)."""

from pathlib import Path

from hookflow.shared.storage.base import Page, Storage

__all__ = ["Page", "Storage", "open_storage"]


def open_storage(mongodb_url: str | None, *, database: str, data_dir: Path) -> Storage:
    """MongoDB when a URL is given, else SQLite in `data_dir` (call .open() on the result)."""
    if mongodb_url:
        from hookflow.shared.storage.mongo import MongoStorage

        return MongoStorage(mongodb_url, database)
    from hookflow.shared.storage.sqlite import SqliteStorage

    return SqliteStorage(data_dir / "hookflow.sqlite3")
