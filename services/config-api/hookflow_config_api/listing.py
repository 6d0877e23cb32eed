"""The query parameters of the config API's lists: paging, and the filters of executions.
Each is checked; a bad one is a 400 saying what is allowed, never a silently wider list."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import get_args

from multidict import MultiMapping

from hookflow_shared.errors import BadRequest
from hookflow_shared.ids import is_id
from hookflow_shared.models import ExecutionStatus, WorkflowName

WORKFLOW_NAME = re.compile(get_args(WorkflowName)[1].pattern)

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


def workflow_listing(query: MultiMapping[str]) -> tuple[str | None, Paging]:
    """`GET /api/workflows`: the name to find (None: every workflow), limit and cursor."""
    _only(query, ("name", "limit", "cursor"))
    name = _one(query, "name")
    if name is not None and not WORKFLOW_NAME.fullmatch(name):
        raise BadRequest(
            "name must be a workflow's name: lowercase letters, digits and dashes (at most 63), "
            "not starting with a dash"
        )
    return name, _paging(query)


def version_listing(query: MultiMapping[str]) -> tuple[int, int | None]:
    """`GET /api/workflows/{id}/versions`: limit, and the cursor (the nextCursor of the
    previous page: the versions older than it)."""
    _only(query, ("limit", "cursor"))
    cursor = _one(query, "cursor") or None
    if cursor is None:
        return _limit(query), None
    before = version_number(cursor)
    if before is None:
        raise BadRequest(
            "cursor must be the nextCursor of a previous page (a version number); "
            "leave it out for the first page"
        )
    return _limit(query), before


def version_number(given: str) -> int | None:
    """A version number as given in a URL; None when it is not one (or beyond any store's
    whole numbers, which no version reaches)."""
    if not given.isascii() or not given.isdigit() or len(given) > 15:
        return None
    number = int(given)
    return number if number >= 1 else None


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


def _limit(query: MultiMapping[str]) -> int:
    given = _one(query, "limit")
    try:
        limit = int(given) if given is not None else 50
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}")
    return limit


def _paging(query: MultiMapping[str]) -> Paging:
    limit = _limit(query)
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
