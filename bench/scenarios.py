"""One scenario of one round: a warm-up, the measured wrk run, the CPU it cost, the drain."""

from __future__ import annotations

import signal
from typing import Any

from bench.common import Scenario
from bench.correctness import Drain, check, check_counts, drain
from bench.cpu import Snapshot
from bench.loadgen import WrkResult, run_wrk
from bench.report import fmt_ms
from bench.session import Bench


def statuses(counts: dict[int, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in sorted(counts.items())}


async def warm_up(b: Bench, scenario: Scenario, label: str) -> dict[str, Any]:
    """A run whose figures are discarded, but whose runs are checked all the same."""
    hookflow = scenario.hookflow
    print(f"{label} {scenario.name}: warm-up {b.args.warmup:g} s", flush=True)
    base = await b.executed() if hookflow else 0
    warm = await run_wrk(
        b.wrk, b.urls[scenario.target], scenario.conns, b.args.warmup, keyed=scenario.keyed
    )
    figures: dict[str, Any] = {
        "rps": warm.rps,
        "requests": warm.requests,
        "non_2xx": warm.non_2xx,
        "statuses": statuses(warm.statuses),
    }
    if hookflow:
        start = await b.snapshot(with_executed=False)
        warm_drain = await drain(b, base, warm.ok, warm.unanswered, start)
        check(b, f"{label} {scenario.name} warm-up", warm, warm_drain)
        b.expected_records[scenario.target] += warm_drain.recorded
        figures |= {
            "recorded": warm_drain.recorded,
            "lost": warm_drain.lost,
            "extra": warm_drain.extra,
        }
    return figures


def wrk_figures(result: WrkResult) -> dict[str, Any]:
    return {
        "rps": result.rps,
        "p50_ms": result.p50_ms,
        "p75_ms": result.p75_ms,
        "p90_ms": result.p90_ms,
        "p99_ms": result.p99_ms,
        "requests": result.requests,
        "seconds": result.seconds,
        "ok_rps": result.ok / result.seconds if result.seconds else None,
        "non_2xx": result.non_2xx,
        "statuses": statuses(result.statuses),
        "non_2xx_samples": statuses(result.samples),
        "socket_errors": result.socket_errors,
        "sent": result.sent,
        "unanswered": result.unanswered,
    }


def cpu_figures(server: str, requests: int, before: Snapshot, after: Snapshot) -> dict[str, Any]:
    total, busy, steal = (a - b for a, b in zip(after.host, before.host, strict=True))
    return {
        "server_cpu_us_per_req": (after.cpu[server] - before.cpu[server]) / requests * 1e6,
        "wrk_cpu_us_per_req": (after.children_cpu - before.children_cpu) / requests * 1e6,
        "host_busy_pct": 100 * busy / total if total else None,
        "host_steal_pct": 100 * steal / total if total else None,
    }


EXECUTOR_KEYS = (
    "executor_cpu_us_per_run",
    "broker_cpu_us_per_req",
    "executor_runs_per_s_during_load",
    "executor_runs_per_s_to_drain",
    "drain_s",
    "recorded",
    "lost",
    "extra",
)
"""Figures of the executor's side, None on the bare rows (but the broker's, when it runs here)."""


def executor_figures(
    result: WrkResult, before: Snapshot, after: Snapshot, drained: Drain
) -> dict[str, Any]:
    assert before.executed is not None and after.executed is not None
    requests = max(1, result.requests)
    recorded = max(1, drained.recorded)
    busy_until = max(drained.last_record_at - before.at, result.seconds)
    return {
        "executor_cpu_us_per_run": drained.executor_cpu / recorded * 1e6,
        "broker_cpu_us_per_req": (
            None if drained.broker_cpu is None else drained.broker_cpu / requests * 1e6
        ),
        "executor_runs_per_s_during_load": (after.executed - before.executed)
        / (after.at - before.at),
        "executor_runs_per_s_to_drain": drained.recorded / busy_until,
        "drain_s": drained.seconds,
        "recorded": drained.recorded,
        "lost": drained.lost,
        "extra": drained.extra,
    }


def summary_line(label: str, scenario: Scenario, result: WrkResult, figures: dict[str, Any]) -> str:
    server = "gateway" if scenario.hookflow else scenario.target
    line = (
        f"{label} {scenario.name}: {result.rps:,.0f} req/s, p50 {fmt_ms(result.p50_ms)}, "
        f"p99 {fmt_ms(result.p99_ms)}, non-2xx {result.non_2xx}, "
        f"{server} {figures['server_cpu_us_per_req']:,.0f} µs/req"
    )
    if result.non_2xx:
        line += f" ({result.describe_non_2xx()})"
    if result.socket_error_count:
        line += f", socket errors {result.socket_errors}"
    if scenario.hookflow:
        line += (
            f"; executor {figures['executor_cpu_us_per_run']:,.0f} µs/run, "
            f"recorded {figures['recorded']:,} of {result.ok:,} 2xx "
            f"(+{result.unanswered} unanswered), drained {figures['drain_s']:.1f} s after"
        )
    return line


def measured_figures(
    scenario: Scenario,
    server: str,
    result: WrkResult,
    before: Snapshot,
    after: Snapshot,
    warmup: dict[str, Any],
) -> dict[str, Any]:
    """A measured run's figures: wrk's, the CPU, the broker's when it runs here, and the
    executor's keys left empty (for the caller to fill)."""
    requests = max(1, result.requests)
    figures: dict[str, Any] = {
        "scenario": scenario.name,
        "target": scenario.target,
        "conns": scenario.conns,
        **wrk_figures(result),
        **cpu_figures(server, requests, before, after),
        **dict.fromkeys(EXECUTOR_KEYS),
        "warmup": warmup,
        "wrk_output": result.output,
    }
    if before.broker_cpu is not None and after.broker_cpu is not None:
        figures["broker_cpu_us_per_req"] = (after.broker_cpu - before.broker_cpu) / requests * 1e6
    return figures


def freeze_executors(b: Bench, frozen: bool) -> None:
    """SIGSTOP (or SIGCONT) every executor: stopped, its connections kept open."""
    for executor in b.executors():
        executor.proc.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)


async def run_paused(b: Bench, scenario: Scenario, label: str) -> dict[str, Any]:
    """The accept scenario: the executors frozen through the warm-up and the measured run, so
    that the gateway and the broker have the machine; then resumed, and every run accepted
    (warm-up included) must be recorded exactly once. The executor's figures are the drain's."""
    b.check_services()
    base = await b.executed()
    freeze_executors(b, True)
    try:
        print(f"{label} {scenario.name}: executors frozen; warm-up {b.args.warmup:g} s", flush=True)
        url = b.urls[scenario.target]
        warm = await run_wrk(b.wrk, url, scenario.conns, b.args.warmup)
        print(f"{label} {scenario.name}: measuring {b.args.duration:g} s", flush=True)
        before = await b.snapshot(with_executed=False)
        result = await run_wrk(b.wrk, url, scenario.conns, b.args.duration)
        after = await b.snapshot(with_executed=False)
    finally:
        freeze_executors(b, False)
    b.check_services()
    warmup = {"rps": warm.rps, "requests": warm.requests, "non_2xx": warm.non_2xx}
    figures = measured_figures(scenario, "gateway", result, before, after, warmup)
    ok, unanswered = warm.ok + result.ok, warm.unanswered + result.unanswered
    drained = await drain(b, base, ok, unanswered, await b.snapshot(with_executed=False))
    check_counts(b, f"{label} {scenario.name} (warm-up and measured run)", ok, unanswered, drained)
    b.expected_records[scenario.target] += drained.recorded
    recorded = max(1, drained.recorded)
    figures |= {
        "executor_cpu_us_per_run": drained.executor_cpu / recorded * 1e6,
        "executor_runs_per_s_during_load": 0.0,
        "executor_runs_per_s_to_drain": drained.recorded / drained.seconds
        if drained.seconds
        else None,
        "drain_s": drained.seconds,
        "recorded": drained.recorded,
        "lost": drained.lost,
        "extra": drained.extra,
    }
    print(summary_line(label, scenario, result, figures), flush=True)
    return figures


async def run_scenario(b: Bench, scenario: Scenario, label: str) -> dict[str, Any]:
    """Warm up, measure, wait for the executor to record every run; the figures, for the JSON."""
    if scenario.paused:
        return await run_paused(b, scenario, label)
    hookflow = scenario.hookflow
    server = "gateway" if hookflow else scenario.target
    b.check_services()
    warmup = await warm_up(b, scenario, label)

    print(f"{label} {scenario.name}: measuring {b.args.duration:g} s", flush=True)
    before = await b.snapshot(with_executed=hookflow)
    result = await run_wrk(
        b.wrk, b.urls[scenario.target], scenario.conns, b.args.duration, keyed=scenario.keyed
    )
    after = await b.snapshot(with_executed=hookflow)
    b.check_services()

    figures = measured_figures(scenario, server, result, before, after, warmup)
    if hookflow:
        assert before.executed is not None
        drained = await drain(b, before.executed, result.ok, result.unanswered, before)
        check(b, f"{label} {scenario.name}", result, drained)
        b.expected_records[scenario.target] += drained.recorded
        figures |= executor_figures(result, before, after, drained)
    print(summary_line(label, scenario, result, figures), flush=True)
    return figures
