"""The results: medians over the rounds, the tables on stdout and the JSON in bench/results/."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.common import HOOKFLOW_TARGETS, PAYLOAD, RESULTS, SCENARIOS, UNLIMITED
from bench.session import Bench

REFERENCE = {
    "bare-50": "7,100-7,300 req/s, p50 6.5 ms, p99 25 ms; 122-141 µs/req",
    "async-50": "aiohttp + aio-pika confirmed publish: 1,850-2,020 req/s, p50 24-27 ms, "
    "p99 50-54 ms; 414-480 µs/req",
    "async-1": "aio-pika confirmed publish, 1 conn: 260-290 req/s, p50 3.3-3.7 ms, p99 15-16 ms",
    "sync-50": "Node-RED switch on status -> 200/400 (in memory): 1,900-2,430 req/s",
    "sync-1": "(no peer figure; bare aiohttp 1 conn: 1,400-3,100 req/s)",
}
"""Figures of peer systems measured once on a machine of the same kind (2 cores, Debian 12,
loopback, RabbitMQ 3.10.8, wrk 4.1.0 with 2 threads, 10 s after a 3 s warm-up, this payload),
by the study that chose Hookflow's targets; printed under the tables. Compare ratios to a bare
aiohttp handler measured in the same run, not absolute rates: hosts differ by ±20 %."""

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
)
SUM_KEYS = ("requests", "non_2xx", "unanswered", "recorded", "lost", "extra")


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


def summarise(rounds: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The medians of each scenario over the rounds (counts summed), and of the ratios."""
    medians: dict[str, Any] = {}
    for scenario in SCENARIOS:
        runs = [r["scenarios"][scenario.name] for r in rounds if scenario.name in r["scenarios"]]
        if not runs:
            continue
        entry: dict[str, Any] = {"conns": scenario.conns, "rounds": len(runs)}
        entry |= {key: median([run[key] for run in runs]) for key in MEDIAN_KEYS}
        entry |= {
            f"{key}_total": sum(run[key] or 0 for run in runs)
            for key in SUM_KEYS
            if any(run[key] is not None for run in runs)
        }
        entry["socket_errors_total"] = sum(sum(run["socket_errors"].values()) for run in runs)
        medians[scenario.name] = entry
    ratios = {
        name: median([r.get("ratios", {}).get(name) for r in rounds])
        for name in ("async/bare", "idem/bare", "sync/bare", "idem/async")
    }
    return medians, ratios


def round_ratios(figures: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    bare = figures.get("bare-50", {}).get("ok_rps")
    ratios: dict[str, float | None] = {}
    for target in HOOKFLOW_TARGETS:
        rps = figures.get(f"{target}-50", {}).get("ok_rps")
        ratios[f"{target}/bare"] = rps / bare if rps is not None and bare else None
    plain, idem = (figures.get(f"{t}-50", {}).get("ok_rps") for t in ("async", "idem"))
    ratios["idem/async"] = idem / plain if idem is not None and plain else None
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
        print(
            f"{name:<10} {m['conns']:>5} {fmt_num(m['rps']):>8} {fmt_num(m['ok_rps']):>8} "
            f"{fmt_ms(m['p50_ms']):>9} "
            f"{fmt_ms(m['p99_ms']):>9} {m['non_2xx_total']:>8,} "
            f"{fmt_num(m['server_cpu_us_per_req']):>8} {fmt_num(m['executor_cpu_us_per_run']):>9}"
        )
    print(
        "\nratios of 2xx/s at 50 connections (median of each round's): "
        + ", ".join(f"{k} {'-' if v is None else f'{v:.2f}'}" for k, v in ratios.items())
        + "   (reference: aiohttp + aio-pika confirmed publish / bare = 0.27)"
    )


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


def print_table(medians: dict[str, Any], ratios: dict[str, Any], rounds: int) -> None:
    print_throughput(medians, ratios, rounds)
    print_costs(medians)
    print("\nReference figures, same kind of machine (bench/report.py REFERENCE):")
    for name, text in REFERENCE.items():
        print(f"  {name:<9} {text}")


def write_results(state: dict[str, Any], args: argparse.Namespace, status: int) -> Path:
    """bench/results/bench-<started>.json and latest.json; then the tables, when any round ran."""
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
            "storage": "sqlite",
            "service_env_extra": {} if args.keep_rate_limit else UNLIMITED,
        },
        "machine": state.get("machine"),
        "medians": medians,
        "ratios": ratios,
        "rounds": rounds,
        "storage_check": state.get("storage"),
        "failures": [asdict(f) for f in b.failures] if b else [],
        "service_logs": state.get("logs"),
        "peers": REFERENCE,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"bench-{stamp}.json"
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text)
    (RESULTS / "latest.json").write_text(text)
    if medians:
        print_table(medians, ratios, len(rounds))
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
