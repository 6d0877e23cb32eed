"""Hookflow's benchmark (`make bench`): webhook throughput, latency, CPU cost and correctness.

What it measures
----------------
The three services run as separate processes, as a platform team runs them (`hookflow
config-api`, `hookflow gateway`, `hookflow executor`), on the local RabbitMQ with SQLite storage,
in a namespace of their own (`bench-<random>`, deleted at the end), with the gateway's default
per-trigger rate limit lifted (`--keep-rate-limit` keeps it) so that what is measured is
capacity, not the limiter's 429s. Next to them runs bench/bare.py, a bare aiohttp handler that
reads the JSON body and answers `ok`: the ceiling of this machine for HTTP alone, measured in
the same run.

wrk (2 threads, `--latency`, bench/post.lua) POSTs a payment callback (bench/common.py PAYLOAD):

    async-50   examples/payment-callback.json, the README's payment workflow, without its Basic
               auth (async: answered once the broker confirmed the run)
    bare-50    the bare handler, 50 connections: between the two scenarios whose ratios to it
               have targets, each measured within seconds of it (bench/common.py SCENARIOS)
    sync-50    examples/payment-callback-sync.json, the README's "Payment callback (sync)": the
               caller waits for the workflow's answer
    nodered-50 Node-RED (bench/nodered.py), a flow doing what the sync example does, in memory:
               the peer, measured next to the bare handler (skipped, with the reason printed,
               without node and npm; installed from npm into ~/.cache/hookflow-bench once)
    accept-50  async-50 with the executors frozen (SIGSTOP) through the warm-up and the run,
               then resumed to drain: what the gateway and the broker accept when the
               executors run on machines of their own (every run still checked)
    async-200  async-50 at 200 connections (the issue's target: p99 under 50 ms)
    async-1    the same, one connection (each request waits for the broker's confirm)
    idem-50    async-50 with `trigger.idempotency` by header, every request a new key: each
               claims its key in the store before it is queued
    sync-1     sync-50 at one connection

and two scenarios without wrk (bench/backlog.py): with the executor stopped, `--backlog` runs
(20,000) are POSTed to the async workflow through the gateway, then one executor (backlog-1) or
two (backlog-2) start and drain the queue: runs per second and CPU per run.

Once per run, before the rounds, bench/floor.py measures the floor under async-1: aio-pika
alone publishing one persistent message at a time to a quorum queue, waiting for each confirm
(`confirm_floor` in the JSON; printed under the tables).

`--only SCENARIO[,SCENARIO]` runs some of them (bare-50 comes along when a chosen one is
compared with it). With HOOKFLOW_MONGODB_URL set the services keep their data in that MongoDB
(a database of the run's own, dropped at the end) instead of SQLite.

Each measured run (10 s; `--quick`: 3 s and one round) follows a 3 s warm-up whose figures are
discarded. `--rounds N` (default 3) runs the whole set N times, interleaved, and the figures
reported are the medians over the rounds: the host's noise (CPU steal, the load generator and
the broker sharing two cores) makes single runs vary by ±20 % or more.

How to read it
--------------
- req/s, p50, p99: wrk's figures; 2xx/s counts the accepted webhooks only, and every non-2xx
  answer is listed by status with a sample body (post.lua counts them). Compare hookflow with
  bare through the ratios async/bare and sync/bare of 2xx/s (the median of each round's
  ratio), which hold better than absolute figures, and with the reference figures of peer
  systems (bench/report.py REFERENCE) printed below the table. idem/async is what idempotency
  claims cost: the same workflow, each request carrying a new Idempotency-Key.
- CPU µs/req: utime+stime of the process (from /proc/<pid>/stat) over the measured run divided
  by the requests answered; for the executor, from the start of the run until it has recorded
  every run, divided by the runs recorded. A core gives 1,000,000 µs per second, so
  1e6 / (µs/req) is what one core could sustain. The second table adds the broker (beam.smp,
  when it runs here), wrk, the host's busy share and the CPU stolen by the hypervisor.
- Correctness: after every hookflow run (warm-ups included) the benchmark waits until the
  executor has recorded every run it accepted (the executor's /healthz counter) and compares
  it with the 2xx answers wrk saw. A run answered 2xx but never recorded is lost; more
  records than 2xx answers are allowed only up to the requests wrk had sent but not seen
  answered when it stopped (they may well have been accepted). At the end the records stored
  for each workflow are counted through the config API and must match too. Any difference is
  printed loudly and the exit status is 1. "drain" is how long the executor took, after the
  load ended, to record the last run; "exec runs/s" its recording rate from the start of the
  run to the last record.

- Memory: the peak RSS (VmHWM, /proc/<pid>/status) of each process started, read before it
  stops, against the targets (gateway under 150 MB, executor under 200 MB).

Results: tables on stdout, and everything (each round's raw figures and wrk output, the
medians, the ratios, the memory, the machine) in bench/results/bench-<UTC timestamp>.json and
bench/results/latest.json, with a chart of it (bench/chart.py) in the .png beside each.
Exit status: 0 all good, 1 lost or extra runs or an error, 2 wrk or RabbitMQ missing.

The code
--------
This file parses the arguments and runs the rounds; its neighbours in bench/ do the rest:
processes.py (the services' start, stop and logs), workflows.py (the two example workflows and
their set-up), loadgen.py (wrk and its output), cpu.py (CPU from /proc), memory.py (peak RSS),
scenarios.py (one measured wrk run), backlog.py (the backlog drains), nodered.py (the peer),
storage.py (SQLite or MongoDB), correctness.py (runs recorded against 2xx answers), report.py
(the tables and the JSON), chart.py (the PNG), machine.py (the machine in the JSON), session.py
and common.py (what they share).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp

# Run as a script (`python bench/run.py`), this file finds its package through the repository's
# root, the parent of bench/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import nodered, storage
from bench.backlog import run_backlog
from bench.common import ROOT, Backlog, BenchError, broker_url, select
from bench.correctness import check_storage
from bench.cpu import find_broker_pids
from bench.floor import confirm_floor, describe_floor
from bench.machine import machine_info
from bench.processes import (
    HOOKFLOW,
    Processes,
    delete_namespace,
    free_port,
    log_summary,
    service_env,
)
from bench.report import print_failures, print_logs, round_ratios, write_results
from bench.scenarios import run_scenario
from bench.session import Bench
from bench.workflows import set_up_workflows


def start_nodered(args: argparse.Namespace, procs: Processes, state: dict[str, Any]) -> None:
    """Node-RED, when a scenario measures it: installed once, started on a port of its own;
    without node or npm the scenario is skipped, with the reason printed and in the JSON."""
    if not any(s.name == "nodered-50" for s in args.scenarios):
        return
    reason = nodered.missing_reason()
    if reason is not None:
        print(f"bench: skipping nodered-50: {reason}", flush=True)
        state["skipped"]["nodered-50"] = reason
        args.scenarios = [s for s in args.scenarios if s.name != "nodered-50"]
        return
    script = nodered.ensure_installed(nodered.install_dir())
    port = free_port()
    argv = nodered.command(script, state["data_dir"] / "node-red", port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKFLOW_")}
    procs.start("nodered", argv, env, port)


def start_services(args: argparse.Namespace, procs: Processes, state: dict[str, Any]) -> None:
    ports = {name: free_port() for name in ("gateway", "config-api", "executor", "bare")}
    env = service_env(
        state["broker_url"],
        state["namespace"],
        state["token"],
        state["data_dir"],
        ports,
        lift_rate_limit=not args.keep_rate_limit,
    )
    print(
        f"bench: namespace {state['namespace']}, data in {state['data_dir']}, storage "
        f"{state['storage_kind']}, {args.rounds} round(s) of {args.duration:g} s after "
        f"{args.warmup:g} s warm-ups; scenarios {', '.join(s.name for s in args.scenarios)}",
        flush=True,
    )
    procs.start_all(env, ports)
    start_nodered(args, procs, state)


async def measure_floor(b: Bench) -> dict[str, Any]:
    print("bench: the broker's confirm floor (aio-pika alone, one publish at a time)", flush=True)
    floor = await confirm_floor(b.broker_url, b.namespace)
    print(f"bench: confirm floor {describe_floor(floor)}", flush=True)
    return floor


async def run_rounds(b: Bench, rounds: list[dict[str, Any]]) -> None:
    """Every scenario, round after round; `rounds` is filled in as it goes, so that an
    interrupted run keeps what it measured."""
    for number in range(1, b.args.rounds + 1):
        label = f"[round {number}/{b.args.rounds}]"
        figures: dict[str, dict[str, Any]] = {}
        this_round: dict[str, Any] = {"round": number, "scenarios": figures}
        rounds.append(this_round)
        for scenario in b.args.scenarios:
            if isinstance(scenario, Backlog):
                figures[scenario.name] = await run_backlog(b, scenario, label)
            else:
                figures[scenario.name] = await run_scenario(b, scenario, label)
            this_round["ratios"] = round_ratios(figures)
        measured = [f"{k} {v:.2f}" for k, v in this_round["ratios"].items() if v is not None]
        if measured:
            print(f"{label} ratios: " + ", ".join(measured), flush=True)


async def bench(args: argparse.Namespace, wrk: str, procs: Processes, state: dict[str, Any]) -> int:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)

    broker_url = state["broker_url"]
    try:
        connection = await aio_pika.connect(broker_url, timeout=10)
    except Exception as error:
        print(
            f"bench: cannot reach RabbitMQ at {broker_url.split('@')[-1]} ({error}); start it "
            "or set HOOKFLOW_BENCH_BROKER_URL",
            file=sys.stderr,
        )
        return 2
    async with connection:
        props = dict(connection.transport.connection.server_properties)  # type: ignore[union-attr]
        state["machine"] = machine_info(wrk, props)
        channel = await connection.channel()
        start_services(args, procs, state)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            b = state["bench"] = Bench(
                args=args,
                wrk=wrk,
                broker_url=broker_url,
                namespace=state["namespace"],
                token=state["token"],
                procs=procs,
                http=http,
                channel=channel,
                broker_pids=find_broker_pids(),
            )
            for service in procs.services.values():
                await b.wait_healthy(service)
            print("bench: all services healthy; creating the workflows", flush=True)
            await set_up_workflows(b)
            state["confirm_floor"] = await measure_floor(b)
            await run_rounds(b, state["rounds"])
            state["storage"] = await check_storage(b)
    return 1 if b.failures else 0


def remove_namespace(state: dict[str, Any]) -> None:
    try:
        asyncio.run(asyncio.wait_for(delete_namespace(state["broker_url"], state["namespace"]), 20))
        print(f"bench: deleted the broker namespace {state['namespace']}")
    except Exception as error:
        print(
            f"bench: could not delete the namespace {state['namespace']}: {error!r}",
            file=sys.stderr,
        )


def clean_up(
    args: argparse.Namespace, procs: Processes, state: dict[str, Any], status: int
) -> None:
    """Stop the services, delete the namespace, write the results, say what went wrong."""
    print("bench: stopping the services", flush=True)
    procs.stop_all()
    state["memory"] = procs.peak_mb
    state["logs"] = log_summary(procs)
    if procs.services:
        remove_namespace(state)
        drop_database(state)
    if status != 2:
        path = write_results(state, args, status)
        print(f"\nResults: {path.relative_to(ROOT)} (and bench/results/latest.json)")
    print_logs(state.get("logs"))
    print_failures(state.get("bench"))
    if args.keep_data:
        print(f"bench: data and logs kept in {state['data_dir']}")
    else:
        shutil.rmtree(state["data_dir"], ignore_errors=True)


def drop_database(state: dict[str, Any]) -> None:
    try:
        done = storage.drop_database(state["namespace"])
    except Exception as error:
        print(f"bench: could not drop the run's MongoDB database: {error!r}", file=sys.stderr)
    else:
        if done:
            print(f"bench: {done}")


@contextlib.contextmanager
def ignoring_interrupts() -> Iterator[None]:
    """Let the clean-up finish even when Ctrl-C is pressed again."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Hookflow's benchmark; see the module docstring of bench/run.py."
    )
    parser.add_argument(
        "--quick", action="store_true", help="3 s runs, one round (unless given): for debugging"
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=float, help="seconds per measured run (default 10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per run")
    parser.add_argument("--keep-data", action="store_true", help="keep the data dir and logs")
    parser.add_argument(
        "--keep-rate-limit",
        action="store_true",
        help="keep the gateway's default per-trigger rate limit (lifted by default)",
    )
    parser.add_argument(
        "--only",
        metavar="SCENARIO[,SCENARIO]",
        help="run these scenarios only (bare-50 is added when one is compared with it): "
        + ", ".join(s.name for s in select(None)),
    )
    parser.add_argument(
        "--backlog", type=int, help="runs queued by the backlog scenarios (default 20,000)"
    )
    args = parser.parse_args(argv)
    try:
        args.scenarios = select(args.only)
    except ValueError as error:
        parser.error(str(error))
    if args.backlog is None:
        args.backlog = 2_000 if args.quick else 20_000
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.duration is None:
        args.duration = 3.0 if args.quick else 10.0
    if args.rounds < 1 or args.duration <= 0 or args.warmup <= 0 or args.backlog < 1:
        parser.error("--rounds, --duration, --warmup and --backlog must be positive")
    return args


def new_state() -> dict[str, Any]:
    """What the run builds up, kept in one place so that the clean-up can report it all."""
    return {
        "started": dt.datetime.now(dt.UTC),
        "broker_url": broker_url(),
        "namespace": f"bench-{secrets.token_hex(4)}",
        "token": secrets.token_urlsafe(24),
        "data_dir": Path(tempfile.mkdtemp(prefix="hookflow-bench-")),
        "storage_kind": storage.describe(),
        "skipped": {},
        "rounds": [],
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print(
            "bench: wrk, the load generator, is not installed.\n"
            "  Install it (Debian/Ubuntu): sudo apt-get install wrk\n"
            "  then run `make bench` again.",
            file=sys.stderr,
        )
        return 2
    if not HOOKFLOW.exists():
        print(f"bench: {HOOKFLOW} is missing; run `make install` first", file=sys.stderr)
        return 2
    state = new_state()
    procs = Processes(state["data_dir"])
    status = 1
    try:
        status = asyncio.run(bench(args, wrk, procs, state))
    except (KeyboardInterrupt, asyncio.CancelledError):
        state["error"] = "interrupted"
        print("\nbench: interrupted; cleaning up", file=sys.stderr, flush=True)
        status = 130
    except BenchError as error:
        state["error"] = str(error)
        print(f"\nbench: ERROR: {error}", file=sys.stderr, flush=True)
        status = 1
    finally:
        with ignoring_interrupts():
            clean_up(args, procs, state, status)
    return status


if __name__ == "__main__":
    sys.exit(main())
