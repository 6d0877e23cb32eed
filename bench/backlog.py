"""The backlog scenarios: a queue of tens of thousands of runs drained by one executor, then by
two. What a platform team asks after an outage of the executors: how fast does the queue empty,
and does a second executor help?

With the executor stopped (SIGTERM: it finishes what it holds), `--backlog` webhooks (20,000 by
default) are POSTed to the async workflow through the gateway, over HTTP from many connections
at once, so that they are queued the way production queues them (the gateway's batches
included). Then `executors` executors start; once all are healthy the clock starts, and it
stops when they have recorded every run and the queue is empty. Figures: runs per second over
that window, and the executors' CPU time (utime + stime from /proc) per run recorded in it.
Afterwards the extra executors stop, and the first carries on for the next scenario.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import aiohttp

from bench.common import PAYLOAD, Backlog
from bench.correctness import check_counts, drain
from bench.session import Bench

FILL_CONNECTIONS = 64


async def fill(b: Bench, count: int) -> tuple[Counter[int], int, float]:
    """POST `count` webhooks to the async workflow: the answers by status, the requests that
    failed without one, and the seconds it took."""
    statuses: Counter[int] = Counter()
    failed = 0
    remaining = count
    url = b.urls["async"]

    async def worker(http: aiohttp.ClientSession) -> None:
        nonlocal remaining, failed
        while remaining > 0:
            remaining -= 1
            try:
                async with http.post(url, json=PAYLOAD) as response:
                    await response.read()
                    statuses[response.status] += 1
            except (aiohttp.ClientError, TimeoutError):
                failed += 1

    began = time.monotonic()
    connector = aiohttp.TCPConnector(limit=FILL_CONNECTIONS)
    async with aiohttp.ClientSession(connector=connector, timeout=b.http.timeout) as http:
        await asyncio.gather(*(worker(http) for _ in range(FILL_CONNECTIONS)))
    return statuses, failed, time.monotonic() - began


async def start_executors(b: Bench, count: int) -> None:
    names = ["executor"] + [f"executor-{n}" for n in range(2, count + 1)]
    for name in names:
        b.procs.start_executor(name)
    await asyncio.gather(*(b.wait_healthy(b.svc(name)) for name in names))


async def run_backlog(b: Bench, backlog: Backlog, label: str) -> dict[str, Any]:
    b.check_services()
    print(f"{label} {backlog.name}: executor stopped, queueing {b.args.backlog:,} runs", flush=True)
    await asyncio.to_thread(b.procs.stop, "executor")
    statuses, failed, fill_s = await fill(b, b.args.backlog)
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    queued_messages = await b.queue_depth()

    await start_executors(b, backlog.executors)
    start = await b.snapshot(with_executed=True)
    assert start.executed is not None
    drained = await drain(b, start.executed, ok - start.executed, failed, start)
    recorded = start.executed + drained.recorded
    check_counts(b, f"{label} {backlog.name}", ok, failed, drained)
    b.expected_records["async"] += recorded
    if drained.recorded < ok // 2:
        print(
            f"{label} {backlog.name}: only {drained.recorded:,} of {ok:,} runs were left when "
            "every executor was healthy: the figures below are rough; a larger --backlog helps",
            flush=True,
        )
    for extra in b.executors()[1:]:
        await asyncio.to_thread(b.procs.stop, extra.name)

    runs = max(1, drained.recorded)
    figures: dict[str, Any] = {
        "scenario": backlog.name,
        "executors": backlog.executors,
        "requests": sum(statuses.values()) + failed,
        "non_2xx": sum(statuses.values()) - ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "failed_requests": failed,
        "fill_s": fill_s,
        "fill_rps": ok / fill_s if fill_s else None,
        "queued_messages": queued_messages,
        "recorded_before_clock": start.executed,
        "backlog_runs_per_s": drained.recorded / drained.seconds if drained.seconds else None,
        "executor_cpu_us_per_run": drained.executor_cpu / runs * 1e6,
        "broker_cpu_us_per_run": (
            None if drained.broker_cpu is None else drained.broker_cpu / runs * 1e6
        ),
        "drain_s": drained.seconds,
        "recorded": recorded,
        "lost": max(0, ok - recorded),
        "extra": max(0, recorded - ok),
    }
    rate = figures["backlog_runs_per_s"]
    print(
        f"{label} {backlog.name}: {ok:,} runs queued in {fill_s:.1f} s ({queued_messages:,} "
        f"messages); {backlog.executors} executor(s) drained them at "
        f"{0 if rate is None else rate:,.0f} runs/s, "
        f"{figures['executor_cpu_us_per_run']:,.0f} µs CPU/run, recorded {recorded:,} of {ok:,}",
        flush=True,
    )
    return figures
