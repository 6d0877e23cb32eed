"""Idempotency keys: where a trigger finds the sender's event id, and the key a claim holds."""

import hashlib
from collections.abc import Mapping
from typing import Any

from hookflow_shared.models import Idempotency
from hookflow_shared.workflow.templates import get_path, parse_path

MAX_KEY_LENGTH = 200
"""Longer event ids are claimed by their SHA-256 (the record keeps the id as sent)."""


def event_id(config: Idempotency, headers: Mapping[str, str], query: Any, body: Any) -> str | None:
    """The sender's event id in this request, as text; None when it carries none (the request
    then runs as usual)."""
    if config.header is not None:
        value: Any = headers.get(config.header)
    elif config.query is not None:
        value = get_path(query, parse_path(config.query))
    else:
        assert config.body is not None
        value = get_path(body, parse_path(config.body))
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text or None


def claim_key(event: str) -> str:
    """The key a claim holds for an event id."""
    if len(event) <= MAX_KEY_LENGTH:
        return event
    return "sha256:" + hashlib.sha256(event.encode()).hexdigest()
