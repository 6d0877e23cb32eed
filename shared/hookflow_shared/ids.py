"""Identifiers: unguessable trigger keys and time-ordered ids for workflows and executions."""

import os
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

_ID = re.compile(r"[0-9a-f]{32}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MS = 16**12 - 1


def trigger_key() -> str:
    """A webhook key: 192 random bits, URL-safe (32 characters)."""
    return secrets.token_urlsafe(24)


def new_id() -> str:
    """A ULID-shaped id: 48-bit milliseconds then 80 random bits, as 32 hex digits.

    Ids made later sort after ids made earlier, so "newest first" is "largest id first".
    """
    return f"{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def is_id(text: str) -> bool:
    """True when `text` has the shape of new_id()'s ids (32 lowercase hex digits)."""
    return _ID.fullmatch(text) is not None


def first_id_at(moment: datetime, *, later_by: timedelta = timedelta(0)) -> str:
    """The smallest id new_id() can make in the millisecond of `moment` + `later_by` (an
    aware time; clamped to the ids' range): every id made then or later sorts at or after it."""
    millis = (moment - _EPOCH + later_by) // timedelta(milliseconds=1)
    return f"{min(max(millis, 0), _MAX_MS):012x}{'0' * 20}"
