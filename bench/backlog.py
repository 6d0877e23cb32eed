"""The backlog scenarios: a queue of tens of thousands of runs drained by one executor, then by
two. What a platform team asks after an outage of the executors: how fast does the queue empty,
and does a second executor help?

The executor is stopped (SIGTERM: it finishes what it holds); `executors` new executors start
on the empty queue and, once healthy, are frozen (SIGSTOP: stopped, their connections open).
Then `--backlog` webhooks (20,000 by default) are POSTed to the async workflow through the
gateway, over HTTP from many connections at once, so that they are queued the way production
queues them (the gateway's batches included). The executors resume together (SIGCONT) and the
clock runs until they have recorded every run and the queue is empty: what is measured is the
drain, not Python's start-up, and two executors start on the backlog at the same instant.
Figures: runs per second, and the executors' CPU time (utime + stime from /proc) per run.
Afterwards the extra executors stop, and the first carries on for the next scenario. (A fill
must take well under the broker's heartbeat timeout, 60 s by default, for a frozen executor
to keep its connection: 20,000 webhooks take 10-40 s here.)
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from typing import Any

import aiohttp

from bench.common import PAYLOAD, Backlog
from bench.correctness import check_counts, drain
from bench.processes import Service
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


async def start_frozen_executors(b: Bench, count: int) -> list[Service]:
    """`count` executors, started on the empty queue and frozen (SIGSTOP) once healthy."""
    names = ["executor"] + [f"executor-{n}" for n in range(2, count + 1)]
    executors = [b.procs.start_executor(name) for name in names]
    await asyncio.gather(*(b.wait_healthy(executor) for executor in executors))
    for executor in executors:
        executor.proc.send_signal(signal.SIGSTOP)
    return executors


async def run_backlog(b: Bench, backlog: Backlog, label: str) -> dict[str, Any]:
    b.check_services()
    print(f"{label} {backlog.name}: executor stopped, queueing {b.args.backlog:,} runs", flush=True)
    await asyncio.to_thread(b.procs.stop, "executor")
    executors = await start_frozen_executors(b, backlog.executors)
    statuses, failed, fill_s = await fill(b, b.args.backlog)
    ok = sum(n for status, n in statuses.items() if 200 <= status < 300)
    queued_messages = await b.queue_depth()

    # Fresh executors that saw an empty queue: nothing recorded yet (their counters are 0).
    start = await b.snapshot(with_executed=False)
    resumed_at = time.monotonic()
    for executor in executors:
        executor.proc.send_signal(signal.SIGCONT)
    drained = await drain(b, 0, ok, failed, start)
    check_counts(b, f"{label} {backlog.name}", ok, failed, drained)
    b.expected_records["async"] += drained.recorded
    for extra in executors[1:]:
        await asyncio.to_thread(b.procs.stop, extra.name)

    runs = max(1, drained.recorded)
    seconds = drained.last_record_at - resumed_at
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
        "backlog_runs_per_s": drained.recorded / seconds if seconds > 0 else None,
        "executor_cpu_us_per_run": drained.executor_cpu / runs * 1e6,
        "broker_cpu_us_per_run": (
            None if drained.broker_cpu is None else drained.broker_cpu / runs * 1e6
        ),
        "drain_s": seconds,
        "recorded": drained.recorded,
        "lost": drained.lost,
        "extra": drained.extra,
    }
    rate = figures["backlog_runs_per_s"]
    print(
        f"{label} {backlog.name}: {ok:,} runs queued in {fill_s:.1f} s ({queued_messages:,} "
        f"messages); {backlog.executors} executor(s) drained them in {seconds:.1f} s, "
        f"{0 if rate is None else rate:,.0f} runs/s, "
        f"{figures['executor_cpu_us_per_run']:,.0f} µs CPU/run, "
        f"recorded {drained.recorded:,} of {ok:,}",
        flush=True,
    )
    return figures
