"""The results: medians over the rounds, the tables on stdout and the JSON in bench/results/."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.chart import draw_chart
from bench.common import BASELINE, PAYLOAD, RESULTS, ROOT, SCENARIOS, UNLIMITED, Backlog, Scenario
from bench.floor import describe_floor
from bench.memory import TARGETS_MB
from bench.memory import describe as describe_memory
from bench.session import Bench
from bench.targets import check as check_targets
from bench.targets import describe as describe_targets

REFERENCE = {
    "bare-50": "7,100-7,300 req/s, p50 6.5 ms, p99 25 ms; 122-141 µs/req",
    "async-50": "aiohttp + aio-pika confirmed publish: 1,850-2,020 req/s, p50 24-27 ms, "
    "p99 50-54 ms; 414-480 µs/req",
    "async-1": "aio-pika confirmed publish, 1 conn: 260-290 req/s, p50 3.3-3.7 ms, p99 15-16 ms",
    "sync-1": "(no peer figure; bare aiohttp 1 conn: 1,400-3,100 req/s)",
}
"""Figures of peer systems measured once on a machine of the same kind (2 cores, Debian 12,
loopback, RabbitMQ 3.10.8, wrk 4.1.0 with 2 threads, 10 s after a 3 s warm-up, this payload),
by the study that chose Hookflow's targets; printed under the tables. Compare ratios to a bare
aiohttp handler measured in the same run, not absolute rates: hosts differ by ±20 %. Node-RED
is no longer quoted: the `nodered-50` scenario measures it in every run."""

MEDIAN_KEYS = (
    "rps",
    "ok_rps",
    "p50_ms",
    "p75_ms",
    "p90_ms",
    "p99_ms",
    "server_cpu_us_per_req",
    "executor_cpu_us_per_run",
    "broker_cpu_us_per_req",
    "wrk_cpu_us_per_req",
    "host_busy_pct",
    "host_steal_pct",
    "executor_runs_per_s_during_load",
    "executor_runs_per_s_to_drain",
    "drain_s",
    "ratio_to_bare",
)
BACKLOG_MEDIAN_KEYS = (
    "fill_s",
    "fill_rps",
    "queued_messages",
    "backlog_runs_per_s",
    "executor_cpu_us_per_run",
    "broker_cpu_us_per_run",
    "drain_s",
)
SUM_KEYS = ("requests", "non_2xx", "unanswered", "recorded", "lost", "extra")
BACKLOG_SUM_KEYS = ("requests", "non_2xx", "failed_requests", "recorded", "lost", "extra")
RATIOS = (
    "async/bare",
    "idem/bare",
    "sync/bare",
    "idem/async",
    "async-200/bare",
    "nodered/bare",
    "accept/bare",
)
"""The ratios of 2xx/s the JSON's `ratios` holds (the first four since the first bench)."""


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} µs"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def fmt_num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def fmt_pct(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}%"


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise_http(scenario: Scenario, runs: list[dict[str, Any]]) -> dict[str, Any]:
    entry: dict[str, Any] = {"conns": scenario.conns, "rounds": len(runs)}
    entry |= {key: median([run.get(key) for run in runs]) for key in MEDIAN_KEYS}
    entry |= {
        f"{key}_total": sum(run[key] or 0 for run in runs)
        for key in SUM_KEYS
        if any(run[key] is not None for run in runs)
    }
    entry["socket_errors_total"] = sum(sum(run["socket_errors"].values()) for run in runs)
    return entry


def summarise_backlog(backlog: Backlog, runs: list[dict[str, Any]]) -> dict[str, Any]:
    entry: dict[str, Any] = {"executors": backlog.executors, "rounds": len(runs)}
    entry |= {key: median([run.get(key) for run in runs]) for key in BACKLOG_MEDIAN_KEYS}
    entry |= {f"{key}_total": sum(run.get(key) or 0 for run in runs) for key in BACKLOG_SUM_KEYS}
    return entry


def summarise(rounds: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The medians of each scenario over the rounds (counts summed), and of the ratios."""
    medians: dict[str, Any] = {}
    for scenario in SCENARIOS:
        runs = [r["scenarios"][scenario.name] for r in rounds if scenario.name in r["scenarios"]]
        if not runs:
            continue
        if isinstance(scenario, Backlog):
            medians[scenario.name] = summarise_backlog(scenario, runs)
        else:
            medians[scenario.name] = summarise_http(scenario, runs)
    ratios = {name: median([r.get("ratios", {}).get(name) for r in rounds]) for name in RATIOS}
    return medians, ratios


def round_ratios(figures: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The ratios of one round, and each scenario's `ratio_to_bare` (set in `figures`)."""
    bare = figures.get(BASELINE, {}).get("ok_rps")
    for run in figures.values():
        rps = run.get("ok_rps")
        if "ok_rps" in run:
            run["ratio_to_bare"] = rps / bare if rps is not None and bare else None

    def ratio(top: str, bottom: str) -> float | None:
        high = figures.get(top, {}).get("ok_rps")
        low = figures.get(bottom, {}).get("ok_rps")
        return high / low if high is not None and low else None

    ratios = {f"{t}/bare": ratio(f"{t}-50", BASELINE) for t in ("async", "idem", "sync")}
    ratios["idem/async"] = ratio("idem-50", "async-50")
    ratios["async-200/bare"] = ratio("async-200", BASELINE)
    ratios["nodered/bare"] = ratio("nodered-50", BASELINE)
    ratios["accept/bare"] = ratio("accept-50", BASELINE)
    return ratios


def print_throughput(medians: dict[str, Any], ratios: dict[str, Any], rounds: int) -> None:
    header = (
        f"{'scenario':<10} {'conns':>5} {'req/s':>8} {'2xx/s':>8} {'p50':>9} {'p99':>9} "
        f"{'non-2xx':>8} {'gateway':>8} {'executor':>9}"
    )
    print(
        f"\nMedians over {rounds} round(s); non-2xx summed over the rounds; "
        "CPU in µs per request (gateway column: the bare process on the bare row)."
    )
    print(header)
    print("-" * len(header))
    for name, m in medians.items():
        if "executors" in m:
            continue  # a backlog: its own table
        print(
            f"{name:<10} {m['conns']:>5} {fmt_num(m['rps']):>8} {fmt_num(m['ok_rps']):>8} "
            f"{fmt_ms(m['p50_ms']):>9} "
            f"{fmt_ms(m['p99_ms']):>9} {m['non_2xx_total']:>8,} "
            f"{fmt_num(m['server_cpu_us_per_req']):>8} {fmt_num(m['executor_cpu_us_per_run']):>9}"
        )
    print(
        "\nratios of 2xx/s at 50 connections (median of each round's): "
        + ", ".join(f"{k} {'-' if v is None else f'{v:.2f}'}" for k, v in ratios.items())
    )
    print("  (reference, bench/report.py REFERENCE: aiohttp + aio-pika confirmed publish = 0.27)")


def print_costs(medians: dict[str, Any]) -> None:
    header = (
        f"{'scenario':<10} {'broker':>7} {'wrk':>6} {'host busy':>9} {'steal':>6} "
        f"{'drain':>7} {'exec runs/s load':>16} {'to drain':>9} {'recorded':>9} "
        f"{'lost':>5} {'extra':>6} {'unanswered':>10} {'sock err':>8}"
    )
    print("\nWhere the CPU goes (µs/req, medians) and the executor (runs summed over the rounds)")
    print(header)
    print("-" * len(header))
    for name, m in medians.items():
        if "executors" in m:
            continue
        drain = m["drain_s"]
        print(
            f"{name:<10} {fmt_num(m['broker_cpu_us_per_req']):>7} "
            f"{fmt_num(m['wrk_cpu_us_per_req']):>6} "
            f"{fmt_pct(m['host_busy_pct'], 0):>9} "
            f"{fmt_pct(m['host_steal_pct'], 1):>6} "
            f"{'-' if drain is None else f'{drain:.1f} s':>7} "
            f"{fmt_num(m['executor_runs_per_s_during_load']):>16} "
            f"{fmt_num(m['executor_runs_per_s_to_drain']):>9} "
            f"{fmt_num(m.get('recorded_total')):>9} {fmt_num(m.get('lost_total')):>5} "
            f"{fmt_num(m.get('extra_total')):>6} {m['unanswered_total']:>10,} "
            f"{m['socket_errors_total']:>8,}"
        )


def print_backlogs(medians: dict[str, Any]) -> None:
    backlogs = {name: m for name, m in medians.items() if "executors" in m}
    if not backlogs:
        return
    header = (
        f"{'scenario':<10} {'executors':>9} {'queued':>8} {'in':>7} {'messages':>8} "
        f"{'runs/s':>8} {'CPU/run':>8} {'broker':>7} {'drain':>7} {'lost':>5} {'extra':>6}"
    )
    print(
        "\nBacklog drain (medians; queued = 2xx answers of the fill, summed over the rounds; "
        "CPU in µs per run: the executors', the broker's)"
    )
    print(header)
    print("-" * len(header))
    for name, m in backlogs.items():
        print(
            f"{name:<10} {m['executors']:>9} {m['recorded_total']:>8,} "
            f"{fmt_num(m['fill_s'], 1) + ' s':>7} {fmt_num(m['queued_messages']):>8} "
            f"{fmt_num(m['backlog_runs_per_s']):>8} {fmt_num(m['executor_cpu_us_per_run']):>8} "
            f"{fmt_num(m['broker_cpu_us_per_run']):>7} {fmt_num(m['drain_s'], 1) + ' s':>7} "
            f"{m['lost_total']:>5,} {m['extra_total']:>6,}"
        )


def print_memory(memory: dict[str, float]) -> None:
    if memory:
        print("\nPeak memory (VmHWM) of each process the benchmark started:")
        print("\n".join(describe_memory(memory)))


def print_table(
    medians: dict[str, Any], ratios: dict[str, Any], rounds: int, memory: dict[str, float]
) -> None:
    if any("conns" in m for m in medians.values()):
        print_throughput(medians, ratios, rounds)
        print_costs(medians)
    print_backlogs(medians)
    print_memory(memory)
    print("\nReference figures, same kind of machine (bench/report.py REFERENCE):")
    for name, text in REFERENCE.items():
        print(f"  {name:<9} {text}")


def write_results(state: dict[str, Any], args: argparse.Namespace, status: int) -> Path:
    """bench/results/bench-<started>.json and latest.json, their charts (.png); then the
    tables, when any round ran."""
    rounds = state["rounds"]
    medians, ratios = summarise(rounds) if rounds else ({}, {})
    b: Bench | None = state.get("bench")
    stamp = state["started"].strftime("%Y%m%dT%H%M%SZ")
    document = {
        "started": state["started"].isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "status": status,
        "error": state.get("error"),
        "settings": {
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "payload": PAYLOAD,
            "namespace": state["namespace"],
            "storage": state.get("storage_kind", "sqlite"),
            "service_env_extra": {} if args.keep_rate_limit else UNLIMITED,
            "scenarios": [s.name for s in args.scenarios],
            "backlog": args.backlog,
        },
        "skipped": state.get("skipped", {}),
        "machine": state.get("machine"),
        "medians": medians,
        "ratios": ratios,
        "memory": {name: round(mb, 1) for name, mb in sorted(state.get("memory", {}).items())},
        "memory_targets_mb": TARGETS_MB,
        "targets": check_targets(medians, ratios, state.get("memory", {})) if medians else [],
        "rounds": rounds,
        "storage_check": state.get("storage"),
        "failures": [asdict(f) for f in b.failures] if b else [],
        "service_logs": state.get("logs"),
        "peers": REFERENCE,
        "confirm_floor": state.get("confirm_floor"),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"bench-{stamp}.json"
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text)
    (RESULTS / "latest.json").write_text(text)
    if medians:
        print_table(medians, ratios, len(rounds), state.get("memory", {}))
        floor = describe_floor(state.get("confirm_floor"))
        print(f"\nThe floor under async-1, measured in this run: {floor}")
        print("\nTargets (README, Performance), by this run's medians:")
        print("\n".join(describe_targets(document["targets"])))
        chart = draw_chart(document, path.with_suffix(".png"))
        shutil.copyfile(chart, RESULTS / "latest.png")
        print(f"\nChart: {chart.relative_to(ROOT)} (and bench/results/latest.png)")
    return path


def print_logs(logs: dict[str, Any] | None) -> None:
    """The services' most frequent warnings and errors."""
    for name, info in (logs or {}).items():
        if info["lines"]:
            print(f"{name} logged {info['lines']} warning/error line(s):")
            for event, count in sorted(info["events"].items(), key=lambda e: -e[1])[:5]:
                print(f"  {count:>6} x {event[:150]}")


def print_failures(b: Bench | None) -> None:
    if b and b.failures:
        print(f"\n!!! {len(b.failures)} FAILURE(S):", file=sys.stderr)
        for failure in b.failures:
            print(f"!!!   {failure.where}: {failure.message}", file=sys.stderr)
