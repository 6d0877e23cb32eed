"""The SQLite adapter: the embedded default. One file, WAL mode, safe for several processes
on one machine. Calls run on one dedicated thread that owns the connection; the short writes
of the hot paths (records, idempotency claims) run on the event loop's thread when that costs
no wait (SqliteStorage._write)."""

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from hookflow_shared.errors import Conflict, NotFound, StorageUnavailable
from hookflow_shared.ids import new_id
from hookflow_shared.models import (
    EXECUTION,
    CapturedRequest,
    ExecutionRecord,
    ExecutionStatus,
    StoredWorkflow,
    Wire,
    execution_json,
)
from hookflow_shared.storage.base import (
    CaptureWindow,
    Claim,
    ClaimState,
    Page,
    Storage,
    TimeRange,
    epoch_ms,
    name_taken,
)

log = structlog.get_logger("hookflow.storage")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workflows (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    name TEXT
);
CREATE TABLE IF NOT EXISTS workflow_versions (
    workflow_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (workflow_id, version)
);
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS executions_by_workflow ON executions (workflow_id, id);
"""

_CLAIMS_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency_claims (
    workflow_id TEXT NOT NULL,
    key TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    state TEXT NOT NULL,
    claimed_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (workflow_id, key)
);
CREATE INDEX IF NOT EXISTS idempotency_claims_expiry ON idempotency_claims (expires_at);
"""

_CAPTURES_SCHEMA = """
CREATE TABLE IF NOT EXISTS capture_windows (
    workflow_id TEXT PRIMARY KEY,
    capture_id TEXT NOT NULL,
    until REAL NOT NULL,
    max_samples INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS captured_requests (
    id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    capture_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS captured_by_window ON captured_requests (workflow_id, capture_id, id);
CREATE INDEX IF NOT EXISTS captured_expiry ON captured_requests (expires_at);
"""

_TAKE_CLAIM = """
INSERT INTO idempotency_claims (workflow_id, key, execution_id, state, claimed_at, expires_at)
VALUES (:workflow_id, :key, :execution_id, :state, :claimed_at, :expires_at)
ON CONFLICT (workflow_id, key) DO UPDATE SET
    execution_id = excluded.execution_id, state = excluded.state,
    claimed_at = excluded.claimed_at, expires_at = excluded.expires_at
WHERE idempotency_claims.expires_at <= excluded.claimed_at
   OR (idempotency_claims.state = 'claimed' AND idempotency_claims.claimed_at < :abandoned)
"""

_SELECT_CLAIM = (
    "SELECT workflow_id, key, execution_id, claimed_at, expires_at, state"
    " FROM idempotency_claims WHERE workflow_id = ? AND key = ?"
)

# Workflow names are unique among the workflows not deleted (the rows of `workflows`); a file
# made before names existed gets the column (its workflows have none).
_NAME_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS workflows_by_name ON workflows (name)"
_NAME_HOLDER = "SELECT id FROM workflows WHERE name = ? AND id != ?"

_INSERT_VERSION = "INSERT INTO workflow_versions (workflow_id, version, doc) VALUES (?, ?, ?)"

# What executions are listed by besides the workflow: their status, and receivedAt in whole
# milliseconds since 1970. Added to a file made before they existed, and filled from its
# documents (_add_filter_columns). Failures are few: partial indexes find them; the rest is
# most of the table, read in id order.
_FILTER_COLUMNS = {"status": "TEXT", "received_at": "INTEGER"}
_FILTER_INDEXES = (
    "CREATE INDEX IF NOT EXISTS executions_failed ON executions (id) WHERE status = 'failed'",
    "CREATE INDEX IF NOT EXISTS executions_failed_by_workflow ON executions (workflow_id, id)"
    " WHERE status = 'failed'",
)
# Literal in the SQL, so that SQLite sees a query for failures can use the partial indexes.
_STATUS_IS: dict[str, str] = {"succeeded": "status = 'succeeded'", "failed": "status = 'failed'"}


# The connection checkpoints the WAL itself (SQLite's automatic checkpoint is off: it would
# run inside a commit, and a commit may run on the event loop's thread), on its worker thread,
# once its commits since the last checkpoint reach either figure. SQLite's own default is at
# 1,000 pages of WAL: a commit of one record writes about 4 pages, of 40 records about 18.
CHECKPOINT_COMMITS = 250
CHECKPOINT_ROWS = 4000

# The most rows a write may hold to run on the event loop's thread (SqliteStorage._write): a
# larger one takes longer than the hop it saves many times over, and on the worker thread it
# runs while the loop goes on with other work (SQLite lets go of the GIL).
INLINE_ROWS = 64


class SqliteStorage(Storage):
    writers = 1  # one connection, in one thread

    def __init__(self, path: Path, *, timeout: float = 10.0) -> None:
        self._path = path
        self._timeout = timeout
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookflow-sqlite")
        self._db: _Connection | None = None
        self._last: Future[Any] | None = None
        """The call last given to the thread: it runs them in turn, so once this one is done
        the thread holds the connection no more."""
        self._checkpointing: asyncio.Future[object] | None = None

    async def _call[T](self, function: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        assert db is not None, "open() first"
        submitted = self._thread.submit(function, db)
        self._last = submitted
        try:
            result = await asyncio.wait_for(
                asyncio.wrap_future(submitted),
                # busy_timeout bounds a wait for a lock; this bounds everything else (a
                # file system that stopped answering).
                self._timeout + 5,
            )
        except sqlite3.OperationalError as error:  # locked, I/O error, cannot open
            raise self._unavailable(error) from error
        except TimeoutError as error:
            raise StorageUnavailable(
                f"SQLite at {self._path} did not answer within {self._timeout + 5:g} s"
            ) from error
        self._checkpoint_when_due(db)
        return result

    async def _write[T](self, body: Callable[[sqlite3.Connection], T], rows: int) -> T:
        """One write transaction of `rows` rows (`body` runs between BEGIN IMMEDIATE and
        COMMIT).

        A short one runs on the caller's thread, the event loop's, when that costs no wait:
        the worker thread idle and the write lock free at once. The hop to the worker thread
        and back is two thread wake-ups, about 70 µs of CPU on a two-core VM: more than a
        commit of a few records (30-60 µs, no fsync in WAL mode at synchronous=NORMAL).
        Otherwise it goes to the worker thread and waits for the lock there, as every other
        write does."""
        db = self._db
        assert db is not None, "open() first"
        last = self._last
        if rows <= INLINE_ROWS and (last is None or last.done()):
            try:
                with _transaction(db, wait=False):
                    result = body(db)
            except _LockTaken:
                pass  # another process is writing: wait for it on the thread
            except sqlite3.OperationalError as error:
                raise self._unavailable(error) from error
            else:
                self._checkpoint_when_due(db)
                return result

        def write(db: sqlite3.Connection) -> T:
            with _transaction(db):
                return body(db)

        return await self._call(write)

    def _unavailable(self, error: sqlite3.OperationalError) -> StorageUnavailable:
        return StorageUnavailable(f"SQLite at {self._path}: {error}")

    def _checkpoint_when_due(self, db: "_Connection") -> None:
        """Start a checkpoint on the worker thread once enough was committed since the last
        (PASSIVE: it copies what no reader still needs, and waits for no one)."""
        if self._checkpointing is not None or not db.checkpoint_due:
            return

        def checkpoint(db: _Connection) -> object:
            try:
                return db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:  # failed or not, the next one once as much more is committed
                db.checkpointed()

        submitted = self._thread.submit(checkpoint, db)
        self._last = submitted
        self._checkpointing = asyncio.wrap_future(submitted)
        self._checkpointing.add_done_callback(self._checkpointed)

    def _checkpointed(self, done: asyncio.Future[object]) -> None:
        self._checkpointing = None
        if not done.cancelled() and done.exception() is not None:
            # Not a failed write: the WAL grows until the next checkpoint goes through.
            log.warning("WAL checkpoint failed", path=str(self._path), error=repr(done.exception()))

    async def open(self) -> None:
        def connect() -> "_Connection":
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, factory=_Connection
            )
            assert isinstance(db, _Connection)
            db.lock_timeout = self._timeout
            db.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA wal_autocheckpoint = 0")  # see CHECKPOINT_COMMITS
            db.executescript(_SCHEMA)
            db.executescript(_CLAIMS_SCHEMA)
            db.executescript(_CAPTURES_SCHEMA)
            _add_filter_columns(db)
            _add_name_column(db)
            return db

        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        while True:
            try:
                self._db = await loop.run_in_executor(self._thread, connect)
                return
            except sqlite3.OperationalError as error:
                # Several processes opening a new file at once: switching it to WAL does not
                # wait for the lock as other statements do.
                if "locked" not in str(error) or loop.time() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def close(self) -> None:
        if self._db is not None:
            # Queued behind a checkpoint in flight, if any: the thread runs calls in turn.
            db, self._db = self._db, None
            await asyncio.wrap_future(self._thread.submit(db.close))
        self._thread.shutdown(wait=True)

    async def ping(self) -> bool:
        try:
            return await self._call(lambda db: db.execute("SELECT 1").fetchone() == (1,))
        except (sqlite3.Error, StorageUnavailable):
            return False

    # --- workflows ---

    async def insert_workflow(self, workflow: StoredWorkflow) -> None:
        doc = workflow.model_dump_json()

        def insert(db: sqlite3.Connection) -> None:
            try:
                with _transaction(db):
                    _check_name(db, workflow)
                    db.execute(
                        "INSERT INTO workflows (id, key, version, doc, name)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (workflow.id, workflow.key, workflow.version, doc, workflow.document.name),
                    )
                    db.execute(_INSERT_VERSION, (workflow.id, workflow.version, doc))
            except sqlite3.IntegrityError as error:
                raise Conflict("a workflow with this id or trigger key exists") from error

        await self._call(insert)

    async def replace_workflow(self, workflow: StoredWorkflow) -> None:
        doc = workflow.model_dump_json()

        def replace(db: sqlite3.Connection) -> None:
            with _transaction(db):
                row = db.execute(
                    "SELECT version FROM workflows WHERE id = ?", (workflow.id,)
                ).fetchone()
                if row is None:
                    raise NotFound(f"workflow {workflow.id} not found")
                if row[0] != workflow.version - 1:
                    raise Conflict(
                        f"workflow {workflow.id} changed meanwhile (now version {row[0]})"
                    )
                _check_name(db, workflow)
                db.execute(
                    "UPDATE workflows SET key = ?, version = ?, doc = ?, name = ? WHERE id = ?",
                    (workflow.key, workflow.version, doc, workflow.document.name, workflow.id),
                )
                db.execute(_INSERT_VERSION, (workflow.id, workflow.version, doc))

        await self._call(replace)

    async def delete_workflow(self, workflow_id: str) -> StoredWorkflow | None:
        def delete(db: sqlite3.Connection) -> str | None:
            with _transaction(db):
                row = db.execute(
                    "SELECT doc FROM workflows WHERE id = ?", (workflow_id,)
                ).fetchone()
                db.execute("DELETE FROM workflows WHERE id = ?", (workflow_id,))
            return row[0] if row else None

        doc = await self._call(delete)
        return StoredWorkflow.model_validate_json(doc) if doc else None

    async def _one_workflow(self, sql: str, *args: object) -> StoredWorkflow | None:
        row = await self._call(lambda db: db.execute(sql, args).fetchone())
        return StoredWorkflow.model_validate_json(row[0]) if row else None

    async def get_workflow(self, workflow_id: str) -> StoredWorkflow | None:
        return await self._one_workflow("SELECT doc FROM workflows WHERE id = ?", workflow_id)

    async def get_workflow_by_key(self, key: str) -> StoredWorkflow | None:
        return await self._one_workflow("SELECT doc FROM workflows WHERE key = ?", key)

    async def get_workflow_version(self, workflow_id: str, version: int) -> StoredWorkflow | None:
        return await self._one_workflow(
            "SELECT doc FROM workflow_versions WHERE workflow_id = ? AND version = ?",
            workflow_id,
            version,
        )

    async def list_workflows(
        self, *, limit: int, cursor: str | None = None, name: str | None = None
    ) -> Page[StoredWorkflow]:
        # `(? IS NULL OR ...)`: the name filter applies only when one is given.
        rows = await self._call(
            lambda db: db.execute(
                "SELECT id, doc FROM workflows WHERE id < ? AND (? IS NULL OR name = ?)"
                " ORDER BY id DESC LIMIT ?",
                (cursor or "~", name, name, limit + 1),
            ).fetchall()
        )
        return _page(rows, limit, StoredWorkflow.model_validate_json)

    async def list_workflow_versions(
        self, workflow_id: str, *, limit: int, before: int | None = None
    ) -> list[StoredWorkflow]:
        rows = await self._call(
            lambda db: db.execute(
                "SELECT doc FROM workflow_versions WHERE workflow_id = ? AND version < ?"
                " ORDER BY version DESC LIMIT ?",
                (workflow_id, before if before is not None else 2**62, limit),
            ).fetchall()
        )
        return [StoredWorkflow.model_validate_json(doc) for (doc,) in rows]

    # --- the installation ---

    async def installation_id(self) -> str:
        def get(db: sqlite3.Connection) -> str:
            with _transaction(db):
                db.execute(
                    "INSERT OR IGNORE INTO meta (name, value) VALUES ('installation', ?)",
                    (new_id(),),
                )
                row = db.execute("SELECT value FROM meta WHERE name = 'installation'").fetchone()
            return str(row[0])

        return await self._call(get)

    # --- idempotency claims ---

    async def claim_keys(
        self, claims: Sequence[Claim], *, abandoned_before: datetime
    ) -> list[Claim]:
        abandoned = abandoned_before.timestamp()

        def take(db: sqlite3.Connection) -> list[Claim]:
            held = []
            for claim in claims:
                db.execute(_TAKE_CLAIM, {**_claim_row(claim), "abandoned": abandoned})
                row = db.execute(_SELECT_CLAIM, (claim.workflow_id, claim.key)).fetchone()
                held.append(_claim(row))
            return held

        return await self._write(take, len(claims))

    async def mark_claims(self, claims: Sequence[Claim], state: ClaimState) -> None:
        rows = [(state, c.workflow_id, c.key, c.execution_id) for c in claims]

        def mark(db: sqlite3.Connection) -> None:
            db.executemany(
                "UPDATE idempotency_claims SET state = ?"
                " WHERE workflow_id = ? AND key = ? AND execution_id = ?",
                rows,
            )

        await self._write(mark, len(rows))

    async def release_claims(self, claims: Sequence[Claim]) -> None:
        rows = [(c.workflow_id, c.key, c.execution_id) for c in claims]

        def release(db: sqlite3.Connection) -> None:
            db.executemany(
                "DELETE FROM idempotency_claims"
                " WHERE workflow_id = ? AND key = ? AND execution_id = ?",
                rows,
            )

        await self._write(release, len(rows))

    async def start_claims(self, claims: Sequence[Claim]) -> list[bool]:
        def start(db: sqlite3.Connection) -> list[bool]:
            held = []
            for claim in claims:
                row = db.execute(
                    "SELECT execution_id FROM idempotency_claims WHERE workflow_id = ? AND key = ?",
                    (claim.workflow_id, claim.key),
                ).fetchone()
                if row is not None and row[0] != claim.execution_id:
                    held.append(False)
                    continue
                if row is not None:
                    db.execute(
                        "UPDATE idempotency_claims SET state = 'started'"
                        " WHERE workflow_id = ? AND key = ?",
                        (claim.workflow_id, claim.key),
                    )
                held.append(True)
            return held

        return await self._write(start, len(claims))

    async def get_claim(self, workflow_id: str, key: str) -> Claim | None:
        row = await self._call(lambda db: db.execute(_SELECT_CLAIM, (workflow_id, key)).fetchone())
        return _claim(row) if row else None

    async def purge_claims(self, now: datetime) -> int:
        def purge(db: sqlite3.Connection) -> int:
            with _transaction(db):
                cursor = db.execute(
                    "DELETE FROM idempotency_claims WHERE expires_at <= ?", (now.timestamp(),)
                )
            return cursor.rowcount

        return await self._call(purge)

    # --- the console's captures ---

    async def open_capture(self, window: CaptureWindow) -> None:
        def open_(db: sqlite3.Connection) -> None:
            moment = datetime.now(UTC).timestamp()
            with _transaction(db):
                db.execute("DELETE FROM capture_windows WHERE until <= ?", (moment,))
                db.execute("DELETE FROM captured_requests WHERE expires_at <= ?", (moment,))
                db.execute(
                    "INSERT OR REPLACE INTO capture_windows"
                    " (workflow_id, capture_id, until, max_samples) VALUES (?, ?, ?, ?)",
                    (window.workflow_id, window.capture_id, window.until.timestamp(), window.limit),
                )

        await self._call(open_)

    async def close_capture(self, workflow_id: str) -> None:
        def close(db: sqlite3.Connection) -> None:
            with _transaction(db):
                db.execute("DELETE FROM capture_windows WHERE workflow_id = ?", (workflow_id,))

        await self._call(close)

    async def _windows(self, where: str, *args: object) -> list[CaptureWindow]:
        rows = await self._call(
            lambda db: db.execute(
                "SELECT workflow_id, capture_id, until, max_samples"  # noqa: S608 (fixed clauses)
                f" FROM capture_windows WHERE {where}",
                args,
            ).fetchall()
        )
        return [
            CaptureWindow(workflow_id, capture_id, datetime.fromtimestamp(until, UTC), limit)
            for workflow_id, capture_id, until, limit in rows
        ]

    async def get_capture(self, workflow_id: str, now: datetime) -> CaptureWindow | None:
        found = await self._windows("workflow_id = ? AND until > ?", workflow_id, now.timestamp())
        return found[0] if found else None

    async def open_captures(self, now: datetime) -> list[CaptureWindow]:
        return await self._windows("until > ?", now.timestamp())

    async def save_captured(self, sample: CapturedRequest, expires_at: datetime) -> None:
        row = (
            sample.id,
            sample.workflow_id,
            sample.capture_id,
            expires_at.timestamp(),
            sample.model_dump_json(),
        )

        def save(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO captured_requests"
                " (id, workflow_id, capture_id, expires_at, doc) VALUES (?, ?, ?, ?, ?)",
                row,
            )

        await self._write(save, 1)

    async def list_captured(
        self, workflow_id: str, capture_id: str, *, now: datetime, limit: int
    ) -> list[CapturedRequest]:
        rows = await self._call(
            lambda db: db.execute(
                "SELECT doc FROM captured_requests WHERE workflow_id = ? AND capture_id = ?"
                " AND expires_at > ? ORDER BY id LIMIT ?",
                (workflow_id, capture_id, now.timestamp(), limit),
            ).fetchall()
        )
        return [CapturedRequest.model_validate_json(doc) for (doc,) in rows]

    # --- executions ---

    async def save_executions(self, records: Sequence[ExecutionRecord]) -> None:
        rows = [
            (r.id, r.workflow_id, r.status, epoch_ms(r.received_at), execution_json(r))
            for r in records
        ]

        def save(db: sqlite3.Connection) -> None:
            db.executemany(
                "INSERT OR REPLACE INTO executions (id, workflow_id, status, received_at, doc)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )

        await self._write(save, len(rows))

    async def purge_executions(self, before: datetime) -> int:
        # The ids bound the scan (the primary key): a record's id is made when it is received.
        _, below = TimeRange.of(None, before).ids(None)

        def purge(db: sqlite3.Connection) -> int:
            with _transaction(db):
                cursor = db.execute(
                    "DELETE FROM executions WHERE id < ? AND received_at < ?",
                    (below, epoch_ms(before)),
                )
            return cursor.rowcount

        return await self._call(purge)

    async def get_execution(self, execution_id: str) -> ExecutionRecord | None:
        row = await self._call(
            lambda db: db.execute(
                "SELECT doc FROM executions WHERE id = ?", (execution_id,)
            ).fetchone()
        )
        return EXECUTION.validate_json(row[0]) if row else None

    async def existing_executions(self, execution_ids: Sequence[str]) -> set[str]:
        ids = list(execution_ids)
        marks = ",".join("?" * len(ids))
        rows = await self._call(
            lambda db: db.execute(
                f"SELECT id FROM executions WHERE id IN ({marks})",  # noqa: S608 (only ?s)
                ids,
            ).fetchall()
        )
        return {row[0] for row in rows}

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
        where: list[str] = []
        args: list[object] = []

        def when(clause: str, *values: object) -> None:
            where.append(clause)
            args.extend(values)

        if workflow_id is not None:
            when("workflow_id = ?", workflow_id)
        if status is not None:
            when(_STATUS_IS[status])
        times = TimeRange.of(since, until)
        low, high = times.ids(cursor)
        if low is not None:
            when("id >= ?", low)
        if high is not None:
            when("id < ?", high)
        if times.since is not None:
            when("received_at >= ?", epoch_ms(times.since))
        if times.until is not None:
            when("received_at < ?", epoch_ms(times.until))
        sql = (
            "SELECT id, doc FROM executions"  # noqa: S608 (fixed clauses; values are ?s)
            f" WHERE {' AND '.join(where) or 'TRUE'} ORDER BY id DESC LIMIT ?"
        )
        rows = await self._call(lambda db: db.execute(sql, (*args, limit + 1)).fetchall())
        return _page(rows, limit, EXECUTION.validate_json)


def _claim_row(claim: Claim) -> dict[str, object]:
    return {
        "workflow_id": claim.workflow_id,
        "key": claim.key,
        "execution_id": claim.execution_id,
        "state": claim.state,
        "claimed_at": claim.claimed_at.timestamp(),
        "expires_at": claim.expires_at.timestamp(),
    }


def _claim(row: tuple[str, str, str, float, float, ClaimState]) -> Claim:
    workflow_id, key, execution_id, claimed_at, expires_at, state = row
    return Claim(
        workflow_id,
        key,
        execution_id,
        datetime.fromtimestamp(claimed_at, UTC),
        datetime.fromtimestamp(expires_at, UTC),
        state,
    )


def _check_name(db: sqlite3.Connection, workflow: StoredWorkflow) -> None:
    """Conflict when another workflow holds this one's name (the unique index is the last
    word; this names the holder)."""
    name = workflow.document.name
    if name is not None and (row := db.execute(_NAME_HOLDER, (name, workflow.id)).fetchone()):
        raise name_taken(name, row[0])


def _add_name_column(db: sqlite3.Connection) -> None:
    with _transaction(db):
        if "name" not in {row[1] for row in db.execute("PRAGMA table_info(workflows)")}:
            db.execute("ALTER TABLE workflows ADD COLUMN name TEXT")
        db.execute(_NAME_INDEX)


class _Filtered(Wire):
    """The fields of a stored execution document that its filter columns hold."""

    status: str
    received_at: datetime


def _add_filter_columns(db: sqlite3.Connection) -> None:
    """Give `executions` its filter columns and their indexes; in a file made before them,
    add the columns and fill them from each record's document (once: in one transaction, so
    a process opening the same file meanwhile waits, then finds them there)."""
    with _transaction(db):
        present = {row[1] for row in db.execute("PRAGMA table_info(executions)")}
        missing = [name for name in _FILTER_COLUMNS if name not in present]
        for name in missing:
            db.execute(f"ALTER TABLE executions ADD COLUMN {name} {_FILTER_COLUMNS[name]}")
        if missing:
            _fill_filter_columns(db)
        for index in _FILTER_INDEXES:
            db.execute(index)


def _fill_filter_columns(db: sqlite3.Connection) -> None:
    last = ""
    while rows := db.execute(
        "SELECT id, doc FROM executions WHERE id > ? ORDER BY id LIMIT 500", (last,)
    ).fetchall():
        filled = []
        for execution_id, doc in rows:
            fields = _Filtered.model_validate_json(doc)
            filled.append((fields.status, epoch_ms(fields.received_at), execution_id))
        db.executemany("UPDATE executions SET status = ?, received_at = ? WHERE id = ?", filled)
        last = rows[-1][0]


class _Connection(sqlite3.Connection):
    """The adapter's connection: it knows how long a writer waits for the file's write lock
    (the adapter's `timeout`, also SQLite's busy timeout for every other statement), and what
    it committed since its last checkpoint."""

    lock_timeout: float
    commits = 0
    changes_at_checkpoint = 0
    checkpoint_due = False
    """Set by the thread that commits, so that the loop reads it without touching the connection."""

    def committed(self) -> None:
        self.commits += 1
        self.checkpoint_due = (
            self.commits >= CHECKPOINT_COMMITS
            or self.total_changes - self.changes_at_checkpoint >= CHECKPOINT_ROWS
        )

    def checkpointed(self) -> None:
        self.commits = 0
        self.changes_at_checkpoint = self.total_changes
        self.checkpoint_due = False


# A writer waiting for the write lock tries again after 0.2 ms, then twice as long each time,
# never more than 2 ms.
_RETRY_FIRST = 0.0002
_RETRY_AT_MOST = 0.002


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): a writer takes the lock up front, so two
    processes never deadlock upgrading read locks.

    The write lock is waited for here, trying again every 0.2 to 2 ms, rather than by SQLite's
    busy handler, which sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, then 100 ms between
    tries: while another process writes in quick turns (an executor recording runs while a
    gateway claims idempotency keys), each of its longer sleeps mostly wakes to a lock taken
    again, and a claim waited tens of milliseconds (bench idem-50: p99 37-76 ms with SQLite's
    handler, 15-19 ms with this, and 13-30 % more webhooks a second).

    `wait=False`: one try; _LockTaken when another connection holds the lock."""

    def __init__(self, db: sqlite3.Connection, *, wait: bool = True) -> None:
        assert isinstance(db, _Connection)
        self._db = db
        self._wait = wait

    def __enter__(self) -> None:
        db = self._db
        db.execute("PRAGMA busy_timeout = 0")
        try:
            _lock_for_writing(db, db.lock_timeout if self._wait else None)
        finally:
            db.execute(f"PRAGMA busy_timeout = {int(db.lock_timeout * 1000)}")

    def __exit__(self, kind: object, *_: object) -> None:
        if kind:
            self._db.execute("ROLLBACK")
        else:
            self._db.execute("COMMIT")
            self._db.committed()


class _LockTaken(Exception):
    """Another connection holds the write lock (a transaction that was not to wait for it)."""


def _lock_for_writing(db: sqlite3.Connection, timeout: float | None) -> None:
    """BEGIN IMMEDIATE, tried until it gets the lock or `timeout` seconds have passed (then
    SQLite's "database is locked" error is raised); tried once without a timeout (then
    _LockTaken)."""
    deadline = time.monotonic() + (timeout or 0.0)
    delay = _RETRY_FIRST
    while True:
        try:
            db.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            if timeout is None:
                raise _LockTaken() from None
            if time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, _RETRY_AT_MOST)


def _page[T](rows: list[tuple[str, str]], limit: int, parse: Callable[[str], T]) -> Page[T]:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([parse(doc) for _, doc in rows], rows[-1][0] if more else None)
