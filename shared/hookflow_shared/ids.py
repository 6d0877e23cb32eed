"""Identifiers: unguessable trigger keys and time-ordered ids for workflows and executions."""

import os
import re
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta

_ID = re.compile(r"[0-9a-f]{32}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_MS = 16**12 - 1


def trigger_key() -> str:
    """A webhook key: 192 random bits, URL-safe (32 characters)."""
    return secrets.token_urlsafe(24)


class _RandomPool:
    """The operating system's random bytes, fetched a page at a time: one system call per
    hundreds of ids instead of one per id (a gateway makes an id per webhook)."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._bytes = b""
        self._offset = 0
        self._lock = threading.Lock()  # ids are made in worker threads too

    def take(self, count: int) -> bytes:
        with self._lock:
            if self._offset + count > len(self._bytes):
                self._bytes = os.urandom(self._size)
                self._offset = 0
            start = self._offset
            self._offset = start + count
            return self._bytes[start : start + count]

    def discard(self) -> None:
        """Forget the bytes fetched (a forked child must not repeat its parent's); a new lock,
        as the parent's may have been held by a thread the child does not have."""
        self._lock = threading.Lock()
        self._bytes, self._offset = b"", 0


_MAX_RANDOM = 2**80 - 1


class _Monotonic:
    """The last id this process made: the next one in the same millisecond (or after the clock
    went back) keeps its time and takes the random part plus one, as ULID's monotonic mode, so
    ids made one after another always sort in the order they were made. (With 80 fresh random
    bits each, two webhooks of the same millisecond sorted by chance: "the last execution" of
    a workflow could be the one before it.)"""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start afresh (a forked child: its parent goes on from the same last id)."""
        self._lock = threading.Lock()
        self._ms = -1
        self._random = 0

    def next(self) -> str:
        ms = time.time_ns() // 1_000_000
        with self._lock:
            if ms > self._ms:
                self._ms, self._random = ms, int.from_bytes(_RANDOM.take(10))
            elif self._random < _MAX_RANDOM:
                self._random += 1
            else:  # 2**80 ids in one millisecond: on to the next
                self._ms, self._random = self._ms + 1, int.from_bytes(_RANDOM.take(10))
            return f"{self._ms:012x}{self._random:020x}"


_RANDOM = _RandomPool()
_MONOTONIC = _Monotonic()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_RANDOM.discard)
    os.register_at_fork(after_in_child=_MONOTONIC.reset)


def new_id() -> str:
    """A ULID-shaped id: 48-bit milliseconds then 80 random bits, as 32 hex digits.

    Ids made later sort after ids made earlier (within a process, even in the same
    millisecond), so "newest first" is "largest id first".
    """
    return _MONOTONIC.next()


def is_id(text: str) -> bool:
    """True when `text` has the shape of new_id()'s ids (32 lowercase hex digits)."""
    return _ID.fullmatch(text) is not None


def first_id_at(moment: datetime, *, later_by: timedelta = timedelta(0)) -> str:
    """The smallest id new_id() can make in the millisecond of `moment` + `later_by` (an
    aware time; clamped to the ids' range): every id made then or later sorts at or after it."""
    millis = (moment - _EPOCH + later_by) // timedelta(milliseconds=1)
    return f"{min(max(millis, 0), _MAX_MS):012x}{'0' * 20}"
