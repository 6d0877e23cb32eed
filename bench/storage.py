"""Where the services under test keep their data: SQLite in the run's data folder, or, with
HOOKFLOW_MONGODB_URL set in the benchmark's environment, that MongoDB, in a database of the
run's own (named after its namespace) that is dropped at the end.

The URL may carry a password: it reaches the services' environment and nothing else (the JSON
and the output name the host only).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pymongo

MONGODB_URL = "HOOKFLOW_MONGODB_URL"


def mongodb_url() -> str | None:
    return os.environ.get(MONGODB_URL) or None


def database_name(namespace: str) -> str:
    """The run's database: its namespace (bench-<hex>) with the characters MongoDB accepts."""
    return namespace.replace("-", "_").replace(".", "_")


def storage_env(namespace: str) -> dict[str, str]:
    """What the services' environment gets for the storage (nothing for SQLite)."""
    url = mongodb_url()
    if url is None:
        return {}
    return {MONGODB_URL: url, "HOOKFLOW_MONGODB_DATABASE": database_name(namespace)}


def describe() -> str:
    """ "sqlite", or "mongodb on <host>" (never the credentials)."""
    url = mongodb_url()
    if url is None:
        return "sqlite"
    return f"mongodb on {urlsplit(url).hostname or '?'}"


def drop_database(namespace: str) -> str | None:
    """Drop the run's MongoDB database; what it did, or None on SQLite (a folder removed with
    the data dir)."""
    url = mongodb_url()
    if url is None:
        return None
    name = database_name(namespace)
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        url, serverSelectionTimeoutMS=10_000
    )
    with client:
        client.drop_database(name)
    return f"dropped the MongoDB database {name}"
