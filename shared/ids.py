"""Identifiers: unguessable trigger keys and time-ordered ids for workflows and executions."""

import os
import secrets
import time

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def trigger_key() -> str:
    """A webhook key: 192 random bits, URL-safe (32 characters)."""
    return secrets.token_urlsafe(24)


def new_id() -> str:
    """A ULID-shaped id (48-bit milliseconds, 80 random bits) in lower-case Crockford base32.

    Ids made later sort after ids made earlier, so "newest first" is "largest id first".
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10))
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))
