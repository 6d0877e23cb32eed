"""Identifiers: unguessable trigger keys and time-ordered ids for workflows and executions."""

import os
import secrets
import time


def trigger_key() -> str:
    """A webhook key: 192 random bits, URL-safe (32 characters)."""
    return secrets.token_urlsafe(24)


def new_id() -> str:
    """A ULID-shaped id: 48-bit milliseconds then 80 random bits, as 32 hex digits.

    Ids made later sort after ids made earlier, so "newest first" is "largest id first".
    """
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"
