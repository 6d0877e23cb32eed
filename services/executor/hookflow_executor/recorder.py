"""Writes execution records: several to a write when they finish together, retried in place
while the store does not answer, and never lost for one record the store refuses."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import structlog

from hookflow_executor.health import Health
from hookflow_executor.metrics import ExecutorMetrics
from hookflow_shared.batching import Batcher
from hookflow_shared.errors import StorageUnavailable
from hookflow_shared.models import ExecutionRecord, TriggerContext
from hookflow_shared.storage import Storage

log = structlog.get_logger("hookflow.executor")

MAX_RETRY_DELAY = 10.0


async def retrying[T](health: Health, what: str, call: Callable[[], Awaitable[T]]) -> T:
    """`call` until the store answers: a StorageUnavailable is logged and retried after a
    growing delay (the delivery waits, unacknowledged) and shown by /healthz; other errors are
    raised."""
    delay = 0.2
    attempt = 0
    while True:
        try:
            result = await call()
        except StorageUnavailable as error:
            attempt += 1
            health.storage_failed(what, str(error))
            if attempt == 1 or attempt % 10 == 0:
                log.warning(
                    "storage unavailable; retrying",
                    call=what,
                    attempt=attempt,
                    retry_in=delay,
                    error=str(error),
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)
            continue
        if attempt:
            log.info("storage answers again", call=what, after_attempts=attempt)
        health.storage_answered(what)
        return result


class Recorder:
    def __init__(self, storage: Storage, health: Health, metrics: ExecutorMetrics) -> None:
        self._storage = storage
        self._health = health
        self._write_seconds = metrics.record_writes
        # The records of runs finishing together (one message's, and those of the messages
        # finishing meanwhile) go in one write: one transaction, one bulk write. An item is one
        # message's records, with one future for them all. As many writes in flight as the store
        # carries out at once: on SQLite's one thread a second write would wait anyway, and the
        # records arriving meanwhile join the next (sync-50: 7 % less executor CPU a run).
        self._batcher: Batcher[Sequence[ExecutionRecord], None] = Batcher(
            self._write_groups, max_batch=64, max_in_flight=storage.writers
        )

    async def save(self, records: Sequence[ExecutionRecord]) -> None:
        """Returns once the records are stored (or, for a record the store refuses, a failed
        record in its place that says why)."""
        await self._batcher.submit(records)

    async def _write_groups(self, groups: list[Sequence[ExecutionRecord]]) -> None:
        await self._write([record for group in groups for record in group])

    async def _write(self, records: list[ExecutionRecord]) -> None:
        try:
            with self._write_seconds.time():
                await retrying(
                    self._health,
                    "record executions",
                    lambda: self._storage.save_executions(records),
                )
        except Exception as error:
            # Not a store in trouble but a refusal (a record too large, a field it cannot
            # keep): find the records it refuses and keep what can be kept of them.
            log.warning("records refused; saving them one by one", error=repr(error))
            for record in records:
                await self._write_alone(record)

    async def _write_alone(self, record: ExecutionRecord) -> None:
        try:
            await retrying(self._health, "record an execution", lambda: self._save([record]))
        except Exception as error:
            reason = (
                f"the execution's record could not be stored ({type(error).__name__}: "
                f"{str(error)[:300]}); kept without its context, node results and response"
            )
            log.error("record refused; storing a failed record in its place", reason=reason)
            stub = replace(
                record,
                status="failed",
                context=TriggerContext(),
                nodes=[],
                response=None,
                error=reason,
            )
            await retrying(self._health, "record an execution", lambda: self._save([stub]))

    async def _save(self, records: Sequence[ExecutionRecord]) -> None:
        await self._storage.save_executions(records)
