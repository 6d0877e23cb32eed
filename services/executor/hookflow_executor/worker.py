"""Handles the broker's deliveries: runs each webhook of a message once and records it.

What becomes of a delivery is decided here, once, for both adapters (Outcome):
- every run in it recorded (or recorded before: a redelivery) -> DONE, acknowledged;
- a run failed in a way worth another try -> RETRY, handed back; on the last delivery the
  runs still failing are recorded as failed executions that say why, and it is DONE;
- runs of another installation (a second installation on the same broker) -> RELEASE, left
  for their owner, and this executor stops consuming;
- a message no one can read -> set aside on the unreadable queue, DONE.

A store that does not answer is not a failed run: the call is retried in place, with a growing
delay, while the delivery stays unacknowledged; nothing is acknowledged before it is recorded.
"""

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import partial

import orjson
import structlog
from aiohttp import ClientSession
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from hookflow_executor.engine import (
    Engine,
    Plan,
    PlanError,
    compile_plan,
    execute,
    execution_record,
)
from hookflow_executor.health import Health
from hookflow_executor.metrics import ExecutorMetrics
from hookflow_executor.recorder import Recorder, retrying
from hookflow_shared.errors import BrokerUnavailable, StorageUnavailable
from hookflow_shared.idempotency import claim_key
from hookflow_shared.messaging import Broker, Delivery, Outcome
from hookflow_shared.messaging.rpc import Replier
from hookflow_shared.messaging.topology import MAX_ATTEMPTS
from hookflow_shared.models import RUN, ExecutionRecord, RunBatch, RunReply, RunRequest, now
from hookflow_shared.storage import Claim, Storage

log = structlog.get_logger("hookflow.executor")


class UnreadableMessage(Exception):
    """A message that is not a batch of runs."""


def read_runs(body: bytes) -> list[RunRequest]:
    """The runs of a message, each checked on its own: one bad run spoils none of the others.
    Raises UnreadableMessage when the message is not a run batch at all."""
    try:  # the usual message, read in one go
        runs = RunBatch.model_validate_json(body).runs
    except ValidationError:
        runs = []
    if runs:
        return runs
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise UnreadableMessage(f"not JSON: {error}") from error
    items = envelope.get("runs") if isinstance(envelope, dict) else None
    if not isinstance(items, list):
        raise UnreadableMessage("not a run batch: no `runs` list")
    runs = []
    for index, item in enumerate(items):
        try:
            runs.append(RUN.validate_python(item))
        except ValidationError as error:
            log.error(
                "unreadable run in a message left out",
                index=index,
                execution_id=item.get("execution_id") if isinstance(item, dict) else None,
                errors=error.error_count(),
            )
    if not runs:
        raise UnreadableMessage("no readable run in it")
    return runs


class Broken:
    """A workflow version that cannot run here (a node type this executor lacks, a config that
    no longer validates): every run of it is recorded as failed, saying why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class RunWorker:
    def __init__(
        self,
        storage: Storage,
        *,
        broker: Broker | None = None,
        http: ClientSession | None = None,
        engine: Engine | None = None,
        installation: str | None = None,
        health: Health | None = None,
        on_foreign: Callable[[str], Awaitable[None]] | None = None,
        plan_cache_size: int = 1024,
        metrics: ExecutorMetrics | None = None,
    ) -> None:
        self._storage = storage
        self.health = health or Health()
        self.metrics = metrics or ExecutorMetrics(CollectorRegistry())
        self.metrics.watch_storage(lambda: self.health.storage_ok)
        self._recorder = Recorder(storage, self.health, self.metrics)
        self._broker = broker
        self._installation = installation
        self._on_foreign = on_foreign
        self._replier = Replier(broker) if broker is not None else None
        self._http = http
        self._engine = engine or Engine.standard()
        self._plans: OrderedDict[tuple[str, int], Plan | Broken] = OrderedDict()
        self._plan_cache_size = plan_cache_size
        self.executed = 0

    # --- deliveries ---

    async def handle(self, delivery: Delivery) -> Outcome:
        """One delivery of the runs queue."""
        if delivery.redelivered:
            self.metrics.redeliveries.inc()
        runs = await self._read(delivery)
        if runs is None:
            return Outcome.DONE
        if await self._foreign(runs):
            return Outcome.RELEASE
        pending = runs if delivery.first else await self._unrecorded(runs)
        if not pending:
            return Outcome.DONE
        if delivery.redelivered and len(pending) > 1:
            return await self._split(pending)
        pending = await self._claimed(pending)
        results = await self._complete_all(pending)
        failures = [
            (run, result)
            for run, result in zip(pending, results, strict=True)
            if isinstance(result, BaseException)
        ]
        for run, failure in failures:
            log.error(
                "run failed; its message goes back",
                execution_id=run.execution_id,
                attempt=delivery.attempt,
                error=f"{type(failure).__name__}: {failure}",
            )
        if not failures:
            return Outcome.DONE
        if not delivery.last_attempt:
            return Outcome.RETRY
        self.metrics.given_up.inc(len(failures))
        await self._give_up(
            [
                (run, f"gave up after {delivery.attempt} deliveries: {_describe(failure)}")
                for run, failure in failures
            ]
        )
        return Outcome.DONE

    async def handle_dead(self, delivery: Delivery) -> Outcome:
        """One delivery of the dead-letter queue: a message the broker gave up on because its
        executor never finished it (crashed, killed) MAX_ATTEMPTS times. Its runs not recorded
        are recorded as failed, so they can be found and replayed."""
        runs = await self._read(delivery)
        if runs is None:
            return Outcome.DONE
        if await self._foreign(runs):
            return Outcome.RELEASE
        pending = await self._unrecorded(runs)
        reason = (
            f"dead-lettered ({delivery.death or 'unknown reason'}): its executor stopped "
            f"before recording it on each of {MAX_ATTEMPTS} deliveries (crashed or killed "
            "while running it); replay it once the cause is fixed"
        )
        self.metrics.dead_lettered.inc(len(pending))
        await self._give_up([(run, reason) for run in pending])
        return Outcome.DONE

    async def _read(self, delivery: Delivery) -> list[RunRequest] | None:
        try:
            return read_runs(delivery.body)
        except UnreadableMessage as error:
            log.error(
                "unreadable message set aside", reason=str(error), body_bytes=len(delivery.body)
            )
            assert self._broker is not None
            await self._broker.set_aside(delivery.body, str(error))
            return None

    async def _foreign(self, runs: list[RunRequest]) -> bool:
        other = next(
            (
                run.installation
                for run in runs
                if run.installation not in (None, self._installation)
            ),
            None,
        )
        if other is None:
            return False
        reason = (
            f"runs of another installation ({other}) are on this queue; this one is "
            f"{self._installation}: leaving them and stopping. Give each installation its own "
            "HOOKFLOW_NAMESPACE."
        )
        log.critical("foreign runs on the queue", reason=reason)
        self.health.halted = reason
        if self._on_foreign is not None:
            await self._on_foreign(reason)
        return True

    async def _unrecorded(self, runs: list[RunRequest]) -> list[RunRequest]:
        done = await retrying(
            self.health,
            "read which runs are recorded",
            partial(self._storage.existing_executions, [run.execution_id for run in runs]),
        )
        if done:
            log.info("skipping runs already recorded", count=len(done))
        return [run for run in runs if run.execution_id not in done]

    async def _split(self, runs: list[RunRequest]) -> Outcome:
        """A redelivered message goes back as one message per run: if one of them is what
        keeps killing its executor, it alone is dead-lettered in the end."""
        assert self._broker is not None
        try:
            for run in runs:
                await self._broker.publish_runs([run], resent=True)
        except BrokerUnavailable:
            return Outcome.RETRY
        log.info("redelivered message split into one message per run", runs=len(runs))
        return Outcome.DONE

    async def _claimed(self, runs: list[RunRequest]) -> list[RunRequest]:
        """Leave out the runs whose idempotency key another execution of the same event holds
        (taken over after its gateway failed to queue this one in time)."""
        keyed = [run for run in runs if run.idempotency_key is not None]
        if not keyed:
            return runs
        claims = [
            Claim(
                run.workflow_id,
                claim_key(run.idempotency_key or ""),
                run.execution_id,
                run.received_at,
                run.received_at,
            )
            for run in keyed
        ]
        held = await retrying(
            self.health, "start idempotency claims", partial(self._storage.start_claims, claims)
        )
        skipped = {run.execution_id for run, ok in zip(keyed, held, strict=True) if not ok}
        for execution_id in skipped:
            log.warning(
                "run not executed: another execution holds its idempotency key",
                execution_id=execution_id,
            )
        return [run for run in runs if run.execution_id not in skipped]

    async def _complete_all(self, runs: list[RunRequest]) -> list[BaseException | None]:
        """Run the runs together, then record them in one write (with the records of other
        messages finishing meanwhile) while the sync callers get their answers; what each run
        failed with, if it did. The work per run is the run itself: no task, future or write of
        its own (a message carries tens of runs under load)."""
        self.metrics.in_flight.inc(len(runs))
        try:
            if len(runs) == 1:  # most messages at low load: no task to make
                results: list[ExecutionRecord | BaseException] = []
                try:
                    results.append(await self._run(runs[0]))
                except Exception as error:
                    results.append(error)
            else:
                results = await asyncio.gather(
                    *(self._run(run) for run in runs), return_exceptions=True
                )
            done = [
                (run, result)
                for run, result in zip(runs, results, strict=True)
                if isinstance(result, ExecutionRecord)
            ]
            if done:
                try:
                    await self._finish(done)
                except Exception as error:
                    return [
                        error if isinstance(result, ExecutionRecord) else result
                        for result in results
                    ]
        finally:
            self.metrics.in_flight.dec(len(runs))
        return [None if isinstance(result, ExecutionRecord) else result for result in results]

    async def _finish(self, done: list[tuple[RunRequest, ExecutionRecord]]) -> None:
        """Record the executions; a sync caller's answer does not wait for the record (the
        delivery is acknowledged once both are done)."""
        records = [record for _, record in done]
        callers = _replies_by_caller(done)
        if not callers:
            await self._recorder.save(records)
        else:
            # The answers first: a short write of records runs on the loop's own thread
            # (SqliteStorage._write) and would hold them back until it is done.
            replying = asyncio.ensure_future(self._reply(callers))
            try:
                await self._recorder.save(records)
            finally:
                await replying
        self.metrics.recorded(records)
        for run, record in done:
            log.info(
                "execution finished",
                **_ids(run),
                status=record.status,
                version=record.version,
                ms=round((record.finished_at - record.received_at).total_seconds() * 1000, 1),
            )
        self.executed += len(done)

    async def _give_up(self, failures: list[tuple[RunRequest, str]]) -> None:
        for run, reason in failures:
            log.error("run recorded as failed", **_ids(run), reason=reason)
        done = [
            (run, execution_record(run, now(), "failed", error=reason)) for run, reason in failures
        ]
        await self._recorder.save([record for _, record in done])
        self.metrics.recorded(record for _, record in done)
        await self._reply(_replies_by_caller(done))

    async def _reply(self, callers: dict[str, list[RunReply]]) -> None:
        if self._replier is not None:
            replier = self._replier
            await asyncio.gather(
                *(replier.reply(reply_to, *replies) for reply_to, replies in callers.items())
            )

    async def _plan(self, run: RunRequest) -> Plan | Broken | None:
        cache_key = (run.workflow_id, run.version)
        plan = self._plans.get(cache_key)
        if plan is not None:
            self._plans.move_to_end(cache_key)
            return plan
        workflow = await retrying(
            self.health,
            "read the workflow version",
            partial(self._storage.get_workflow_version, run.workflow_id, run.version),
        )
        if workflow is None:
            return None
        try:
            plan = compile_plan(workflow, self._engine)
        except PlanError as error:
            plan = Broken(
                f"workflow {run.workflow_id} version {run.version} cannot run on this "
                f"executor: {error}"
            )
        self._plans[cache_key] = plan
        if len(self._plans) > self._plan_cache_size:
            self._plans.popitem(last=False)
        return plan

    async def _run(self, run: RunRequest) -> ExecutionRecord:
        """Its logs name the run themselves: binding the ids to the context cost every run."""
        started = now()
        plan = await self._plan(run)
        if plan is None:
            log.error("workflow version not found", **_ids(run), version=run.version)
            error = f"workflow {run.workflow_id} version {run.version} not found"
            return execution_record(run, started, "failed", error=error)
        if isinstance(plan, Broken):
            log.error("workflow version cannot run", **_ids(run), reason=plan.reason)
            return execution_record(run, started, "failed", error=plan.reason)
        return await execute(plan, run, started, http=self._http)


def _ids(run: RunRequest) -> dict[str, str]:
    return {
        "execution_id": run.execution_id,
        "workflow_id": run.workflow_id,
        "request_id": run.request_id,
    }


def _replies_by_caller(done: list[tuple[RunRequest, ExecutionRecord]]) -> dict[str, list[RunReply]]:
    """The sync runs' answers, by the queue of the gateway waiting for them."""
    callers: dict[str, list[RunReply]] = {}
    for run, record in done:
        if run.reply_to is not None:
            reply = RunReply(execution_id=record.id, status=record.status, response=record.response)
            callers.setdefault(run.reply_to, []).append(reply)
    return callers


def _describe(error: BaseException) -> str:
    if isinstance(error, StorageUnavailable):
        return f"storage unavailable: {error}"
    return f"{type(error).__name__}: {error}"
