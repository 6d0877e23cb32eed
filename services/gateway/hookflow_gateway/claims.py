"""The gateway's side of idempotency: an event id is claimed in storage before its run is
queued, so the copies of one event (retries, or the same callback through several gateways at
once) start one execution.

The claim lives in the store all gateways and executors share (a unique key per workflow and
event id: SQLite's primary key, MongoDB's _id), taken atomically. A claim goes `claimed` (a
gateway is queueing the run), `queued` (the broker confirmed it), `started` (an executor runs
it). A claim left `claimed` (its gateway died before the confirm, or could not release it) is
free again after `abandon_after` seconds, and an executor runs only the run that holds its key,
so one event never runs twice.
"""

import asyncio
from datetime import timedelta

import structlog

from hookflow_shared.batching import Batcher, Overloaded
from hookflow_shared.errors import StorageUnavailable
from hookflow_shared.models import now
from hookflow_shared.storage import Claim, Storage

log = structlog.get_logger("hookflow.gateway")


class Claims:
    def __init__(self, storage: Storage, *, abandon_after: float) -> None:
        self._storage = storage
        self._abandon_after = abandon_after
        # Claims made together go in one transaction (SQLite) or together (MongoDB).
        self._taking: Batcher[Claim, Claim] = Batcher(
            self._take, max_batch=256, max_waiting=4096, stalled_after=5.0
        )
        self._marking: Batcher[Claim, None] = Batcher(self._mark_queued, max_batch=512)
        self._background: set[asyncio.Task[None]] = set()

    async def take(self, claim: Claim) -> Claim:
        """The claim that holds the key afterwards: `claim` itself when it was free."""
        try:
            holder = await self._taking.submit(claim)
        except Overloaded as error:
            raise StorageUnavailable(f"the store is not keeping up with claims ({error})") from None
        assert holder is not None
        return holder

    async def _take(self, claims: list[Claim]) -> list[Claim]:
        abandoned = now() - timedelta(seconds=self._abandon_after)
        return await self._storage.claim_keys(claims, abandoned_before=abandoned)

    def queued(self, claim: Claim) -> None:
        """The broker confirmed the claim's run (recorded in the background: the caller does
        not wait for it)."""
        task = asyncio.create_task(self._marked(claim))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _marked(self, claim: Claim) -> None:
        try:
            await self._marking.submit(claim)
        except Exception as error:
            # The claim stays `claimed`; the executor's check still runs the event once.
            log.warning("idempotency claim not marked queued", error=repr(error))

    async def _mark_queued(self, claims: list[Claim]) -> None:
        await self._storage.mark_claims(claims, "queued")

    async def release(self, claim: Claim) -> None:
        """The claim's run was not queued: free the key for the caller's retry."""
        try:
            await self._storage.release_claims([claim])
        except Exception as error:
            log.warning(
                "idempotency claim not released; a retry is held off until it is abandoned",
                error=repr(error),
                abandon_after=self._abandon_after,
            )

    async def settled(self, holder: Claim, within: float) -> Claim | None:
        """Wait (up to `within` seconds) while `holder` is still being queued by its gateway.
        Gives the claim holding the key then (None when the key was freed: its run was not
        queued)."""
        deadline = asyncio.get_running_loop().time() + within
        delay = 0.02
        while holder.state == "claimed":
            if asyncio.get_running_loop().time() > deadline:
                return holder
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)
            current = await self._storage.get_claim(holder.workflow_id, holder.key)
            if current is None:
                return None
            holder = current
        return holder

    async def close(self) -> None:
        await self._taking.close()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self._marking.close()
