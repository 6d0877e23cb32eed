"""Sync mode's request and reply, whole (the shape of aio-pika's patterns/rpc.py).

- Caller (a gateway): owns a reply queue of its own; `expect` one future per execution id
  before the run is published (a fast executor may answer before the publish returns), the
  reply resolves it, `forget` removes it; every pending call fails at once when the reply path
  is lost (`fail_all`), and a stopping gateway `drain`s them.
- Replier (an executor): sends each reply to the caller's queue, the replies for one caller
  that are ready together in one message.

The broker adapters carry the messages (open_replies, publish_replies) and know nothing of
this; a reply whose caller has gone is dropped, never an error.
"""

import asyncio
from collections import OrderedDict
from functools import partial

import structlog

from hookflow_shared.batching import Batcher
from hookflow_shared.errors import BrokerUnavailable
from hookflow_shared.messaging.base import Broker
from hookflow_shared.models import ConfigApplied, RunReply

log = structlog.get_logger("hookflow.rpc")


class ReplyLost(Exception):
    """The reply can no longer arrive (the broker connection dropped, the caller stops)."""


class Caller:
    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._waiting: dict[str, asyncio.Future[RunReply]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._drained = asyncio.Event()
        self._drained.set()
        self.address = ""
        """Where replies come: what a run's reply_to says."""

    async def start(self) -> None:
        self.address = await self._broker.open_replies(
            self._deliver, on_lost=lambda: self.fail_all("the connection to the broker was lost")
        )

    def __len__(self) -> int:
        return len(self._waiting)

    def expect(self, execution_id: str, timeout: float) -> asyncio.Future[RunReply]:
        """Register before publishing: a fast executor may answer before the publish returns.
        The future fails with TimeoutError after `timeout` seconds (one timer, where
        wait_for(shield(...)) took a task's worth of wrapping per call)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[RunReply] = loop.create_future()
        self._waiting[execution_id] = future
        self._timers[execution_id] = loop.call_later(timeout, _expire, future)
        self._drained.clear()
        return future

    def pending(self, execution_id: str) -> asyncio.Future[RunReply] | None:
        """The future of a call still waiting here (a repeat of the same event can share it)."""
        return self._waiting.get(execution_id)

    def forget(self, execution_id: str) -> None:
        self._waiting.pop(execution_id, None)
        timer = self._timers.pop(execution_id, None)
        if timer is not None:
            timer.cancel()
        if not self._waiting:
            self._drained.set()

    def _deliver(self, reply: RunReply | ConfigApplied) -> None:
        if not isinstance(reply, RunReply):
            return
        future = self._waiting.get(reply.execution_id)
        if future is None or future.done():
            log.debug("reply for a caller that is gone dropped", execution_id=reply.execution_id)
            return
        future.set_result(reply)

    def fail_all(self, reason: str) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ReplyLost(reason))

    async def drain(self, grace: float) -> None:
        """Let the pending calls finish for up to `grace` seconds, then fail the rest."""
        if self._waiting:
            try:
                await asyncio.wait_for(self._drained.wait(), grace)
            except TimeoutError:
                log.warning("failing sync calls still pending at shutdown", pending=len(self))
        self.fail_all("the gateway is shutting down")


def _expire(future: asyncio.Future[RunReply]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


class Replier:
    MAX_CALLERS = 1024
    """Callers (gateways) remembered at once; gateways come and go, the oldest is forgotten."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        # An item is the replies of one message's runs for one caller: one future for them all.
        self._batchers: OrderedDict[str, Batcher[list[RunReply], None]] = OrderedDict()

    async def reply(self, reply_to: str, *replies: RunReply) -> None:
        """Send the replies (in one message with those of other runs ready together); a broker
        that cannot take them is logged (their callers get a 504)."""
        try:
            await self._batcher(reply_to).submit(list(replies))
        except BrokerUnavailable:
            log.warning(
                "sync replies not sent; their callers get a 504",
                execution_ids=[reply.execution_id for reply in replies],
            )

    def _batcher(self, reply_to: str) -> Batcher[list[RunReply], None]:
        batcher = self._batchers.get(reply_to)
        if batcher is None:
            batcher = Batcher(partial(self._publish, reply_to), max_batch=16)
            if len(self._batchers) >= self.MAX_CALLERS:
                self._batchers.popitem(last=False)
            self._batchers[reply_to] = batcher
        else:
            self._batchers.move_to_end(reply_to)
        return batcher

    async def _publish(self, reply_to: str, groups: list[list[RunReply]]) -> None:
        await self._broker.publish_replies(reply_to, [reply for group in groups for reply in group])
