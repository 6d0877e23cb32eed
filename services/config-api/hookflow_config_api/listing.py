"""The query parameters of the config API's lists: paging, and the filters of executions.
Each is checked; a bad one is a 400 saying what is allowed, never a silently wider list."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args

from multidict import MultiMapping

from hookflow_shared.errors import BadRequest
from hookflow_shared.ids import is_id
from hookflow_shared.models import ExecutionStatus

MAX_PAGE = 200
STATUSES: tuple[ExecutionStatus, ...] = get_args(ExecutionStatus)
INSTANT = "an ISO 8601 instant with its offset, e.g. 2025-06-01T00:00:00Z (in a URL, + is %2B)"


@dataclass(frozen=True, slots=True)
class Paging:
    limit: int
    cursor: str | None


@dataclass(frozen=True, slots=True)
class ExecutionFilter:
    """Which executions: of one workflow or all, of one status or both, received at or after
    `since` and before `until`."""

    workflow_id: str | None = None
    status: ExecutionStatus | None = None
    since: datetime | None = None
    until: datetime | None = None


def workflow_listing(query: MultiMapping[str]) -> Paging:
    """`GET /api/workflows`: limit and cursor."""
    _only(query, ("limit", "cursor"))
    return _paging(query)


def execution_listing(
    query: MultiMapping[str], *, workflow_id: str | None = None
) -> tuple[ExecutionFilter, Paging]:
    """`GET /api/executions` (`workflow_id` None: the `workflow` parameter may name one) or
    `GET /api/workflows/{id}/executions` (`workflow_id` from the path)."""
    names = ("status", "since", "until", "limit", "cursor")
    _only(query, names if workflow_id is not None else ("workflow", *names))
    if workflow_id is None and (named := _one(query, "workflow")) is not None:
        if not is_id(named):
            raise BadRequest("workflow must be a workflow's id (32 lowercase hex digits)")
        workflow_id = named
    since, until = _instant(query, "since"), _instant(query, "until")
    if since is not None and until is not None and since >= until:
        raise BadRequest("since must be earlier than until (since is inclusive, until exclusive)")
    return ExecutionFilter(workflow_id, _status(query), since, until), _paging(query)


def _paging(query: MultiMapping[str]) -> Paging:
    given = _one(query, "limit")
    try:
        limit = int(given) if given is not None else 50
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}")
    cursor = _one(query, "cursor") or None
    if cursor is not None and not is_id(cursor):
        raise BadRequest(
            "cursor must be the nextCursor of a previous page (32 lowercase hex digits); "
            "leave it out for the first page"
        )
    return Paging(limit, cursor)


def _status(query: MultiMapping[str]) -> ExecutionStatus | None:
    given = _one(query, "status")
    if given is None:
        return None
    for status in STATUSES:
        if given == status:
            return status
    raise BadRequest(f"status must be {' or '.join(STATUSES)}")


def _instant(query: MultiMapping[str], name: str) -> datetime | None:
    given = _one(query, name)
    if given is None:
        return None
    try:
        moment = datetime.fromisoformat(given)
        instant = moment.astimezone(UTC) if moment.tzinfo is not None else None
    except (ValueError, OverflowError):  # not ISO 8601; out of datetime's range in UTC
        instant = None
    if instant is None:
        raise BadRequest(f"{name} must be {INSTANT}; got {given!r}")
    return instant


def _one(query: MultiMapping[str], name: str) -> str | None:
    values = query.getall(name, [])
    if len(values) > 1:
        raise BadRequest(f"give {name} once")
    return values[0] if values else None


def _only(query: MultiMapping[str], names: Sequence[str]) -> None:
    unknown = sorted(set(query) - set(names))
    if unknown:
        raise BadRequest(
            f"unknown parameter {', '.join(unknown)}; this list takes {', '.join(names)}"
        )
