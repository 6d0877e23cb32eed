"""Sync mode, the caller's side of the RPC (the shape of aio-pika's patterns/rpc.py): one
future per execution id, resolved by the executor's reply, removed when done; every pending
call fails at once when the reply path is lost or the gateway stops."""

import asyncio

import structlog

from hookflow_shared.models import ConfigApplied, RunReply

log = structlog.get_logger("hookflow.gateway")


class ReplyLost(Exception):
    """The reply can no longer arrive (the broker connection dropped, the gateway stops)."""


class PendingReplies:
    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Future[RunReply]] = {}
        self._drained = asyncio.Event()
        self._drained.set()

    def __len__(self) -> int:
        return len(self._waiting)

    def expect(self, execution_id: str) -> asyncio.Future[RunReply]:
        """Register before publishing: a fast executor may answer before the publish returns."""
        future: asyncio.Future[RunReply] = asyncio.get_running_loop().create_future()
        self._waiting[execution_id] = future
        self._drained.clear()
        return future

    def pending(self, execution_id: str) -> asyncio.Future[RunReply] | None:
        """The future of a call still waiting on this gateway (a duplicate can share it)."""
        return self._waiting.get(execution_id)

    def forget(self, execution_id: str) -> None:
        self._waiting.pop(execution_id, None)
        if not self._waiting:
            self._drained.set()

    def deliver(self, reply: RunReply | ConfigApplied) -> None:
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
