"""The storage interface. The services above it never know which adapter they have."""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from hookflow_shared.errors import Conflict
from hookflow_shared.ids import first_id_at
from hookflow_shared.models import (
    CapturedRequest,
    ExecutionRecord,
    ExecutionStatus,
    StoredWorkflow,
)

RECEIPT_SLACK = timedelta(minutes=1)
"""How far an execution's receivedAt may be from the time in its id. Both are taken when the
run is received (by the gateway, or by a replay), microseconds apart; the slack is generous."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Page[T]:
    items: list[T]
    next_cursor: str | None


type ClaimState = Literal["claimed", "queued", "started"]


@dataclass(frozen=True, slots=True)
class Claim:
    """An idempotency key taken by one execution of a workflow, until `expires_at`.

    `claimed`: a gateway took it and is queueing the run; `queued`: the broker confirmed the
    run; `started`: an executor is running (or ran) it."""

    workflow_id: str
    key: str
    execution_id: str
    claimed_at: datetime
    expires_at: datetime
    state: ClaimState = "claimed"


def name_taken(name: str, holder: str) -> Conflict:
    """The Conflict of a workflow name already held by another workflow."""
    return Conflict(
        f"the name {name!r} is taken by workflow {holder}; choose another name, or change or "
        "delete that workflow first"
    )


@dataclass(frozen=True, slots=True)
class CaptureWindow:
    """The console listening to a workflow's webhooks until `until`, for at most `limit`
    samples; `capture_id` tells this window's samples from an earlier one's."""

    workflow_id: str
    capture_id: str
    until: datetime
    limit: int


class Storage(ABC):
    """Workflows (each version kept), execution records, idempotency claims, and the
    installation's id. Raises StorageUnavailable when the store does not answer (in time),
    so callers can tell a store in trouble from a bad request."""

    writers = 2
    """Writes the store carries out at once: how many batches of records an executor keeps in
    flight (more would only queue behind them, where they could have joined the next one)."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and create what is missing (tables, collections, indexes)."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> bool:
        """True when the store answers."""

    # --- workflows ---

    @abstractmethod
    async def insert_workflow(self, workflow: StoredWorkflow) -> None:
        """Store a new workflow (its version 1). Raises Conflict when the id or key exists, or
        when another workflow (not deleted) has its name (the message names that one)."""

    @abstractmethod
    async def replace_workflow(self, workflow: StoredWorkflow) -> None:
        """Store `workflow` as the next version of an existing one: it must carry the stored
        version + 1 (raises Conflict if another change came first or another workflow has its
        name, NotFound if it is gone). Earlier versions are kept."""

    @abstractmethod
    async def delete_workflow(self, workflow_id: str) -> StoredWorkflow | None:
        """Remove the workflow and free its key; its versions and executions stay readable.
        Returns what was deleted, None if nothing was."""

    @abstractmethod
    async def get_workflow(self, workflow_id: str) -> StoredWorkflow | None: ...

    @abstractmethod
    async def get_workflow_by_key(self, key: str) -> StoredWorkflow | None: ...

    @abstractmethod
    async def get_workflow_version(self, workflow_id: str, version: int) -> StoredWorkflow | None:
        """Any version ever stored, the deleted workflows' included."""

    @abstractmethod
    async def list_workflows(
        self, *, limit: int, cursor: str | None = None, name: str | None = None
    ) -> Page[StoredWorkflow]:
        """Current workflows, newest first (only the one called `name`, when given); `cursor`
        is the previous page's next_cursor."""

    @abstractmethod
    async def list_workflow_versions(
        self, workflow_id: str, *, limit: int, before: int | None = None
    ) -> list[StoredWorkflow]:
        """Up to `limit` stored versions of a workflow (deleted or not), newest first; only
        those older than version `before`, when given."""

    # --- the installation ---

    @abstractmethod
    async def installation_id(self) -> str:
        """This installation's id, made and kept by the first service that asks."""

    # --- idempotency claims ---

    @abstractmethod
    async def claim_keys(
        self, claims: Sequence[Claim], *, abandoned_before: datetime
    ) -> list[Claim]:
        """Try to take each claim's key, atomically (across processes): a key is free when no
        claim holds it, when its claim expired (`expires_at` passed by the claim's
        `claimed_at`), or when it was claimed before `abandoned_before` and never queued (its
        gateway died or failed before the broker confirmed the run). Returns, for each
        claim, the claim that holds its key afterwards: the one given when it was taken."""

    @abstractmethod
    async def mark_claims(self, claims: Sequence[Claim], state: ClaimState) -> None:
        """Move the claims that these executions still hold to `state`."""

    @abstractmethod
    async def release_claims(self, claims: Sequence[Claim]) -> None:
        """Free the keys these executions still hold (their runs were never queued)."""

    @abstractmethod
    async def start_claims(self, claims: Sequence[Claim]) -> list[bool]:
        """For each claim of a run about to execute: True (and the claim `started`) when its
        execution still holds the key or nothing does; False when another execution took it
        over (this run must not execute)."""

    @abstractmethod
    async def get_claim(self, workflow_id: str, key: str) -> Claim | None: ...

    @abstractmethod
    async def purge_claims(self, now: datetime) -> int:
        """Delete the claims expired by `now`; returns how many."""

    # --- the console's captures ---

    @abstractmethod
    async def open_capture(self, window: CaptureWindow) -> None:
        """Start (or restart) listening to a workflow: its window replaces any earlier one.
        Expired windows and samples go at the same time."""

    @abstractmethod
    async def close_capture(self, workflow_id: str) -> None:
        """Stop listening; the samples stay readable until they expire."""

    @abstractmethod
    async def get_capture(self, workflow_id: str, now: datetime) -> CaptureWindow | None:
        """The workflow's window, when still open at `now`."""

    @abstractmethod
    async def open_captures(self, now: datetime) -> list[CaptureWindow]:
        """Every window open at `now`: a gateway that starts meanwhile listens too."""

    @abstractmethod
    async def save_captured(self, sample: CapturedRequest, expires_at: datetime) -> None:
        """Keep a sampled request until `expires_at`."""

    @abstractmethod
    async def list_captured(
        self, workflow_id: str, capture_id: str, *, now: datetime, limit: int
    ) -> list[CapturedRequest]:
        """A window's samples not expired by `now`, oldest first, at most `limit`."""

    # --- executions ---

    @abstractmethod
    async def save_executions(self, records: Sequence[ExecutionRecord]) -> None:
        """Insert or replace records by id (a redelivered run overwrites, never duplicates)."""

    @abstractmethod
    async def get_execution(self, execution_id: str) -> ExecutionRecord | None: ...

    @abstractmethod
    async def purge_executions(self, before: datetime) -> int:
        """Delete the records received before `before` (HOOKFLOW_EXECUTION_RETENTION ago);
        returns how many. MongoDB's TTL index does it there as well."""

    @abstractmethod
    async def existing_executions(self, execution_ids: Sequence[str]) -> set[str]:
        """Which of these executions are already recorded."""

    @abstractmethod
    async def list_executions(
        self,
        *,
        workflow_id: str | None = None,
        status: ExecutionStatus | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int,
        cursor: str | None = None,
    ) -> Page[ExecutionRecord]:
        """Executions, newest first (by id), of one workflow or of all, with one status or
        either, received at or after `since` and before `until` (aware times; receivedAt is
        kept to the millisecond). `cursor` is the previous page's next_cursor.

        The time range is matched on receivedAt exactly, and the scan is bounded by the ids
        (TimeRange.ids): an execution's id is made when it is received, within RECEIPT_SLACK
        of its receivedAt, so a range far in the past costs no more than a recent one."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """`since <= receivedAt < until`, rounded up to whole milliseconds: the records keep
    receivedAt to the millisecond, so the rounded bounds select exactly the same records
    (and MongoDB, which keeps milliseconds, compares them without losing any part)."""

    since: datetime | None
    until: datetime | None

    @classmethod
    def of(cls, since: datetime | None, until: datetime | None) -> "TimeRange":
        return cls(_ceil_ms(since), _ceil_ms(until))

    def ids(self, cursor: str | None) -> tuple[str | None, str | None]:
        """Bounds on the ids of the records in range, before `cursor`: (lowest, above the
        highest), widened by RECEIPT_SLACK."""
        low = first_id_at(self.since, later_by=-RECEIPT_SLACK) if self.since else None
        high = first_id_at(self.until, later_by=RECEIPT_SLACK) if self.until else None
        if cursor is not None:
            high = cursor if high is None else min(high, cursor)
        return low, high


def epoch_ms(moment: datetime) -> int:
    """Whole milliseconds since 1970 (rounded down), in integers: no float rounding."""
    return (moment - _EPOCH) // _MS


def _ceil_ms(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    rest = (moment - _EPOCH) % _MS
    try:
        return moment + (_MS - rest) if rest else moment
    except OverflowError:  # within a millisecond of the year 10000: nothing is received then
        return moment
