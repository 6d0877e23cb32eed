"""The storage interface. The services above it never know which adapter they have."""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from hookflow.shared.models import ExecutionRecord, StoredWorkflow


@dataclass(frozen=True, slots=True)
class Page[T]:
    items: list[T]
    next_cursor: str | None


class Storage(ABC):
    """Workflows (each version kept) and execution records."""

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
