"""The storage interface. The services above it never know which adapter they have."""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from hookflow.shared.models import ExecutionRecord, StoredWorkflow


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


class Storage(ABC):
    """Workflows (each version kept), execution records, idempotency claims, and the
    installation's id. Raises StorageUnavailable when the store does not answer (in time),
    so callers can tell a store in trouble from a bad request."""

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
        """Store a new workflow (its version 1). Raises Conflict when the id or key exists."""

    @abstractmethod
    async def replace_workflow(self, workflow: StoredWorkflow) -> None:
        """Store `workflow` as the next version of an existing one: it must carry the stored
        version + 1 (raises Conflict if another change came first, NotFound if it is gone).
        Earlier versions are kept."""

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
        self, *, limit: int, cursor: str | None = None
    ) -> Page[StoredWorkflow]:
        """Current workflows, newest first; `cursor` is the previous page's next_cursor."""

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

    # --- executions ---

    @abstractmethod
    async def save_executions(self, records: Sequence[ExecutionRecord]) -> None:
        """Insert or replace records by id (a redelivered run overwrites, never duplicates)."""

    @abstractmethod
    async def get_execution(self, execution_id: str) -> ExecutionRecord | None: ...

    @abstractmethod
    async def existing_executions(self, execution_ids: Sequence[str]) -> set[str]:
        """Which of these executions are already recorded."""

    @abstractmethod
    async def list_executions(
        self, workflow_id: str, *, limit: int, cursor: str | None = None
    ) -> Page[ExecutionRecord]:
        """A workflow's executions, newest first."""
