"""No run lost: the executor's records against the 2xx answers wrk saw, after every run, and
the executions storage holds against the executor's count, at the end."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from bench.common import HOOKFLOW_TARGETS, BenchError
from bench.cpu import Snapshot
from bench.loadgen import WrkResult
from bench.session import Bench

DRAIN_SETTLE = 1.0
"""Seconds the executor's counter must stay still (with the queue empty) to call it drained."""
DRAIN_STALL = 30.0
"""Seconds without a single new record before the benchmark gives up waiting for the rest."""


@dataclass
class Drain:
    recorded: int
    expected: int
    allowance: int
    seconds: float
    last_record_at: float
    executor_cpu: float
    broker_cpu: float | None
    stalled: bool

    @property
    def lost(self) -> int:
        return max(0, self.expected - self.recorded)

    @property
    def extra(self) -> int:
        return max(0, self.recorded - self.expected)

    @property
    def correct(self) -> bool:
        return self.lost == 0 and self.extra <= self.allowance


async def drain(b: Bench, base: int, expected: int, allowance: int, start: Snapshot) -> Drain:
    """Wait until the executor has recorded every run: its counter has reached `expected`
    above `base`, the queue is empty and nothing changed for DRAIN_SETTLE seconds."""
    began = time.monotonic()
    count = await b.executed()
    last_change = began
    stalled = False
    while True:
        await asyncio.sleep(0.1)
        b.check_services()
        now_count = await b.executed()
        now = time.monotonic()
        if now_count != count:
            count, last_change = now_count, now
            continue
        quiet = now - last_change
        if count - base >= expected and quiet >= DRAIN_SETTLE and await b.queue_depth() == 0:
            break
        if quiet >= DRAIN_STALL:
            stalled = True
            break
    return Drain(
        recorded=count - base,
        expected=expected,
        allowance=allowance,
        seconds=max(0.0, last_change - began) if count != base else 0.0,
        last_record_at=last_change,
        executor_cpu=b.executors_cpu() - b.executors_cpu(start.cpu),
        broker_cpu=(
            None
            if start.broker_cpu is None or (cpu := b.broker_cpu()) is None
            else cpu - start.broker_cpu
        ),
        stalled=stalled,
    )


def check(b: Bench, where: str, wrk: WrkResult, drain: Drain) -> None:
    """Record a failure when runs answered 2xx were lost, or more were recorded than allowed."""
    check_counts(b, where, wrk.ok, wrk.unanswered, drain)


def check_counts(b: Bench, where: str, ok: int, unanswered: int, drain: Drain) -> None:
    """The same for `ok` answers 2xx and `unanswered` requests, whatever sent them; the drain
    may have started with some of them already recorded (ok - drain.expected)."""
    recorded = drain.recorded + ok - drain.expected
    if drain.lost:
        b.fail(
            where,
            f"LOST RUNS: {ok} answers 2xx, the executor recorded only "
            f"{recorded} ({drain.lost} missing"
            + (f"; no progress for {DRAIN_STALL:g} s" if drain.stalled else "")
            + ")",
        )
    elif drain.extra > drain.allowance:
        b.fail(
            where,
            f"EXTRA RUNS: {ok} answers 2xx and {unanswered} unanswered "
            f"requests, the executor recorded {recorded} ({drain.extra} more)",
        )


async def count_stored(b: Bench, target: str) -> int:
    """The executions the config API lists for the workflow of `target`, page by page."""
    url = f"{b.svc('config-api').base}/api/workflows/{b.workflow_ids[target]}/executions"
    headers = {"Authorization": f"Bearer {b.token}"}
    count = 0
    cursor: str | None = None
    while True:
        params = {"limit": "200"} | ({"cursor": cursor} if cursor else {})
        async with b.http.get(url, params=params, headers=headers) as response:
            if response.status != 200:
                raise BenchError(f"listing executions answered {response.status}")
            page = await response.json()
        count += len(page["items"])
        cursor = page.get("nextCursor")
        if not cursor:
            return count


async def check_storage(b: Bench) -> dict[str, Any]:
    stored: dict[str, Any] = {}
    for target in HOOKFLOW_TARGETS:
        began = time.monotonic()
        count = await count_stored(b, target)
        expected = b.expected_records[target]
        stored[target] = {
            "stored": count,
            "counted_by_executor": expected,
            "seconds_to_list": round(time.monotonic() - began, 1),
        }
        print(
            f"storage: {target} workflow holds {count:,} executions "
            f"(the executor counted {expected:,}; listed in {stored[target]['seconds_to_list']}"
            " s)",
            flush=True,
        )
        if count != expected:
            b.fail(
                f"storage ({target})",
                f"the config API lists {count} executions, the executor counted {expected}",
            )
    return stored
