"""Handles the broker's deliveries: runs each webhook of a batch once and records it."""

import asyncio
from collections import OrderedDict
from functools import partial

import structlog
from aiohttp import ClientSession

from hookflow.executor.engine import Plan, compile_plan, execute, execution_record
from hookflow.shared.batching import Batcher
from hookflow.shared.errors import BrokerUnavailable
from hookflow.shared.messaging import Broker
from hookflow.shared.models import ExecutionRecord, RunBatch, RunReply, RunRequest, now
from hookflow.shared.storage import Storage

log = structlog.get_logger("hookflow.executor")


class RunWorker:
    """Runs the batches a broker delivers. The records are written before the handler returns,
    so the delivery is acknowledged only once every run in it is recorded; a run already
    recorded (a redelivery after a crash) is not run again."""

    def __init__(
        self,
        storage: Storage,
        *,
        broker: Broker | None = None,
        http: ClientSession | None = None,
        plan_cache_size: int = 1024,
    ) -> None:
        self._storage = storage
        # Runs finishing together are recorded in one write (one transaction, one bulk write).
        self._records = Batcher(storage.save_executions, max_batch=512, max_in_flight=2)
        self._broker = broker
        self._repliers: dict[str, Batcher[RunReply]] = {}
        self._http = http
        self._plans: OrderedDict[tuple[str, int], Plan] = OrderedDict()
        self._plan_cache_size = plan_cache_size
        self.executed = 0

    async def handle(self, batch: RunBatch) -> None:
        runs = batch.runs
        done = await self._storage.existing_executions([run.execution_id for run in runs])
        if done:
            log.info("skipping runs already recorded", count=len(done))
            runs = [run for run in runs if run.execution_id not in done]
        # Each run is recorded (and answered) as soon as it finishes, so a slow run never
        # holds back the reply of a fast one that came in the same message.
        results = await asyncio.gather(
            *(self._complete(run) for run in runs), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result  # hand the message back; the runs recorded are skipped next time

    async def _complete(self, run: RunRequest) -> None:
        record = await self._run(run)
        await self._records.submit(record)
        self.executed += 1
        log.info(
            "execution finished",
            status=record.status,
            version=record.version,
            ms=round((record.finishedAt - record.receivedAt).total_seconds() * 1000, 1),
        )
        if run.reply_to is not None and self._broker is not None:
            reply = RunReply(execution_id=record.id, status=record.status, response=record.response)
            try:
                await self._replier(run.reply_to).submit(reply)
            except BrokerUnavailable:
                log.warning("sync reply not sent; the caller gets a 504")

    def _replier(self, reply_to: str) -> Batcher[RunReply]:
        """Replies to one gateway that finish together go in one message."""
        replier = self._repliers.get(reply_to)
        if replier is None:
            assert self._broker is not None
            replier = Batcher(partial(self._broker.publish_replies, reply_to), max_batch=256)
            if len(self._repliers) >= 1024:  # gateways come and go: forget the oldest
                del self._repliers[next(iter(self._repliers))]
            self._repliers[reply_to] = replier
        return replier

    async def _plan(self, run: RunRequest) -> Plan | None:
        cache_key = (run.workflow_id, run.version)
        plan = self._plans.get(cache_key)
        if plan is not None:
            self._plans.move_to_end(cache_key)
            return plan
        workflow = await self._storage.get_workflow_version(run.workflow_id, run.version)
        if workflow is None:
            return None
        plan = self._plans[cache_key] = compile_plan(workflow)
        if len(self._plans) > self._plan_cache_size:
            self._plans.popitem(last=False)
        return plan

    async def _run(self, run: RunRequest) -> ExecutionRecord:
        structlog.contextvars.bind_contextvars(
            execution_id=run.execution_id, workflow_id=run.workflow_id, request_id=run.request_id
        )
        started = now()
        plan = await self._plan(run)
        if plan is None:
            log.error("workflow version not found", version=run.version)
            error = f"workflow {run.workflow_id} version {run.version} not found"
            return execution_record(run, started, "failed", error=error)
        return await execute(plan, run, started, http=self._http)
