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

wrk (2 threads, `--latency`, bench/post.lua) POSTs the payload of /work/shared/PEERS.md:

    bare-50    the bare handler, 50 connections
    async-50   the README's payment workflow (async: answered once the broker confirmed the run)
    async-1    the same, one connection (each request waits for the broker's confirm)
    sync-50    the README's "Payment callback (sync)": the caller waits for the workflow's answer
    sync-1     the same, one connection

Each measured run (10 s; `--quick`: 3 s and one round) follows a 3 s warm-up whose figures are
discarded. `--rounds N` (default 3) runs the whole set N times, interleaved, and the figures
reported are the medians over the rounds: the host's noise (CPU steal, the load generator and
the broker sharing two cores) makes single runs vary by ±20 % or more.

How to read it
--------------
- req/s, p50, p99: wrk's figures; 2xx/s counts the accepted webhooks only, and every non-2xx
  answer is listed by status with a sample body (post.lua counts them). Compare hookflow with
  bare through the ratios async/bare and sync/bare of 2xx/s (the median of each round's
  ratio), which hold better than absolute figures, and with the reference figures of PEERS.md
  printed below the table.
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

Results: a table on stdout, and everything (each round's raw figures and wrk output, the
medians, the machine) in bench/results/bench-<UTC timestamp>.json and bench/results/latest.json.
Exit status: 0 all good, 1 lost or extra runs or an error, 2 wrk or RabbitMQ missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
LUA = BENCH / "post.lua"
BARE = BENCH / "bare.py"
HOOKFLOW = ROOT / ".venv" / "bin" / "hookflow"
DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"
PAYLOAD = {"status": "paid", "amount": 12.5, "order": {"id": "A1"}}
CLK_TCK = os.sysconf("SC_CLK_TCK")
HEALTH_TIMEOUT = 30.0
STOP_GRACE = 10.0
DRAIN_SETTLE = 1.0
"""Seconds the executor's counter must stay still (with the queue empty) to call it drained."""
UNLIMITED = {"HOOKFLOW_RATE_LIMIT": "1000000", "HOOKFLOW_RATE_BURST": "10000000"}
"""The gateway's default per-trigger rate limit (1,000/s) lifted, to measure capacity."""
DRAIN_STALL = 30.0
"""Seconds without a single new record before the benchmark gives up waiting for the rest."""

PEERS = {
    "bare-50": "7,100-7,300 req/s, p50 6.5 ms, p99 25 ms; 122-141 µs/req",
    "async-50": "aiohttp + aio-pika confirmed publish: 1,850-2,020 req/s, p50 24-27 ms, "
    "p99 50-54 ms; 414-480 µs/req",
    "async-1": "aio-pika confirmed publish, 1 conn: 260-290 req/s, p50 3.3-3.7 ms, p99 15-16 ms",
    "sync-50": "Node-RED switch on status -> 200/400 (in memory): 1,900-2,430 req/s",
    "sync-1": "(no peer figure; bare aiohttp 1 conn: 1,400-3,100 req/s)",
}

# The two workflows of the README's walkthrough (the async one without its basicAuth).
ASYNC_WORKFLOW: dict[str, Any] = {
    "title": "Payment callback",
    "trigger": {
        "request": {
            "headers": [{"key": "X-Request-Id"}],
            "body": [{"key": "status"}, {"key": "order.id", "alias": "Order ID"}],
        },
        "response": {"statusCode": 200, "body": "ok"},
    },
    "nodes": [
        {
            "key": "paid",
            "type": "condition",
            "config": {
                "calculation": {
                    "group": {
                        "type": "and",
                        "calculations": [
                            {
                                "calculator": "equal",
                                "operands": ["{{$context.body.status}}", "paid"],
                            }
                        ],
                    }
                }
            },
            "branches": {
                "false": [{"key": "unpaid", "type": "end", "config": {"endStatus": "failed"}}]
            },
        }
    ],
}
SYNC_WORKFLOW: dict[str, Any] = {
    "title": "Payment callback (sync)",
    "sync": True,
    "syncTimeout": 10,
    "nodes": [
        {
            "key": "paid",
            "type": "condition",
            "config": {
                "calculation": {
                    "group": {
                        "type": "and",
                        "calculations": [
                            {
                                "calculator": "equal",
                                "operands": ["{{$context.body.status}}", "paid"],
                            }
                        ],
                    }
                }
            },
            "branches": {
                "true": [
                    {
                        "key": "ok",
                        "type": "response",
                        "config": {
                            "statusCode": 200,
                            "headers": [{"name": "X-Order", "value": "{{$context.body.order.id}}"}],
                            "body": {"received": "{{$context.body.order.id}}"},
                        },
                    }
                ],
                "false": [
                    {
                        "key": "bad",
                        "type": "response",
                        "config": {"statusCode": 400, "body": "payment not completed"},
                    }
                ],
            },
        }
    ],
}


class BenchError(Exception):
    """The benchmark cannot go on (a service died or never became healthy, wrk failed...)."""


# --- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # fields from the 3rd (state) on
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class Service:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_dir: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"{self.name}.stderr"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stderr_tail(self, lines: int = 40) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return "(no stderr)"
        tail = text.splitlines()[-lines:]
        return "\n".join(f"    | {line}" for line in tail) if tail else "    | (empty)"

    def check_alive(self) -> None:
        if not self.alive():
            raise BenchError(
                f"{self.name} exited with status {self.proc.returncode}; its stderr:\n"
                + self.stderr_tail()
            )


class Processes:
    """Every process the benchmark starts; stop_all() ends them (SIGTERM, then SIGKILL)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.services: dict[str, Service] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str], port: int) -> Service:
        out = (self.log_dir / f"{name}.stdout").open("wb")
        err = (self.log_dir / f"{name}.stderr").open("wb")
        with out, err:
            # A session of its own: a Ctrl-C on the terminal reaches the benchmark only, which
            # then stops its processes in order.
            proc = subprocess.Popen(  # noqa: S603 (our own commands, no shell)
                argv,
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        service = self.services[name] = Service(name, port, proc, self.log_dir)
        return service

    def stop_all(self) -> None:
        running = [s for s in self.services.values() if s.alive()]
        for service in running:
            with contextlib.suppress(ProcessLookupError):
                service.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for service in running:
            try:
                service.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"  {service.name} did not stop within {STOP_GRACE:g} s: killing it")
                service.proc.kill()
                service.proc.wait()


def find_broker_pids() -> list[int]:
    """The local RabbitMQ's Erlang VM, when it runs on this machine (for its CPU share)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().strip() == "beam.smp":
                pids.append(int(entry.name))
    return pids


# --- wrk ---------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}  # to milliseconds
_RE_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),", re.M)
_RE_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_RE_PCT = re.compile(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_RE_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_RE_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_RE_SENT = re.compile(r"^bench: sent (\d+)", re.M)
_RE_STATUS = re.compile(r"^bench: status (\d+) (\d+)", re.M)
_RE_SAMPLE = re.compile(r"^bench: sample (\d+) (.*)$", re.M)


@dataclass
class WrkResult:
    conns: int
    threads: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: dict[str, int]
    sent: int
    statuses: dict[int, int]
    samples: dict[int, str]
    output: str

    @property
    def ok(self) -> int:
        """Answers with a 2xx status, as counted by post.lua."""
        if not self.statuses:
            return self.requests - self.non_2xx
        return sum(count for status, count in self.statuses.items() if 200 <= status < 300)

    def describe_non_2xx(self) -> str:
        return "; ".join(
            f"{count:,} x {status} {self.samples.get(status, '')!r}"
            for status, count in sorted(self.statuses.items())
            if not 200 <= status < 300
        )

    @property
    def unanswered(self) -> int:
        """Requests wrk started but never saw answered: in flight when it stopped, or errors."""
        return max(0, self.sent - self.requests)

    @property
    def socket_error_count(self) -> int:
        return sum(self.socket_errors.values())


def parse_wrk(output: str, conns: int, threads: int) -> WrkResult:
    total = _RE_TOTAL.search(output)
    rps = _RE_RPS.search(output)
    pct = {int(m[1]): float(m[2]) * _UNITS[m[3]] for m in _RE_PCT.finditer(output)}
    if total is None or rps is None or not {50, 75, 90, 99} <= pct.keys():
        raise BenchError(f"could not read wrk's output:\n{output}")
    sock = _RE_SOCKET.search(output)
    non2xx = _RE_NON2XX.search(output)
    sent = _RE_SENT.search(output)
    errors = dict.fromkeys(("connect", "read", "write", "timeout"), 0)
    if sock:
        errors = dict(zip(errors, map(int, sock.groups()), strict=True))
    return WrkResult(
        conns=conns,
        threads=threads,
        requests=int(total[1]),
        seconds=float(total[2]) * _UNITS[total[3]] / 1e3,
        rps=float(rps[1]),
        p50_ms=pct[50],
        p75_ms=pct[75],
        p90_ms=pct[90],
        p99_ms=pct[99],
        non_2xx=int(non2xx[1]) if non2xx else 0,
        socket_errors=errors,
        sent=int(sent[1]) if sent else int(total[1]),
        statuses={int(m[1]): int(m[2]) for m in _RE_STATUS.finditer(output)},
        samples={int(m[1]): m[2] for m in _RE_SAMPLE.finditer(output)},
        output=output,
    )


async def run_wrk(wrk: str, url: str, conns: int, seconds: float) -> WrkResult:
    threads = min(2, conns)  # wrk needs at least one connection per thread
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{conns}",
        f"-d{seconds:g}s",
        "--latency",
        "-s",
        str(LUA),
        url,
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=seconds + 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    output = out.decode(errors="replace")
    if proc.returncode != 0:
        raise BenchError(f"wrk failed (status {proc.returncode}):\n{output}")
    return parse_wrk(output, conns, threads)


# --- measurements ------------------------------------------------------------------------------


def host_cpu() -> tuple[int, int, int]:
    """(total, busy, steal) clock ticks of the whole host, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle, iowait, steal = fields[3], fields[4], fields[7]  # user nice system idle iowait ...
    total = sum(fields)
    return total, total - idle - iowait - steal, steal


def children_cpu() -> float:
    """CPU of the finished children (wrk is the only one that finishes during a run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Snapshot:
    at: float
    cpu: dict[str, float]
    broker_cpu: float | None
    children_cpu: float
    host: tuple[int, int, int]
    executed: int | None


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


@dataclass(frozen=True)
class Scenario:
    target: str  # "bare", "async" or "sync"
    conns: int

    @property
    def name(self) -> str:
        return f"{self.target}-{self.conns}"


SCENARIOS = [
    Scenario("bare", 50),
    Scenario("async", 50),
    Scenario("async", 1),
    Scenario("sync", 50),
    Scenario("sync", 1),
]


@dataclass
class Failure:
    where: str
    message: str


@dataclass
class Bench:
    args: argparse.Namespace
    wrk: str
    broker_url: str
    namespace: str
    token: str
    procs: Processes
    http: aiohttp.ClientSession
    channel: aio_pika.abc.AbstractChannel
    broker_pids: list[int]
    urls: dict[str, str] = field(default_factory=dict)
    workflow_ids: dict[str, str] = field(default_factory=dict)
    expected_records: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)

    # --- helpers --------------------------------------------------------------------------

    def svc(self, name: str) -> Service:
        return self.procs.services[name]

    def check_services(self) -> None:
        for service in self.procs.services.values():
            service.check_alive()

    def broker_cpu(self) -> float | None:
        if not self.broker_pids:
            return None
        try:
            return sum(cpu_seconds(pid) for pid in self.broker_pids)
        except OSError:
            return None

    async def executed(self) -> int:
        async with self.http.get(f"{self.svc('executor').base}/healthz") as response:
            body = await response.json()
        return int(body["executed"])

    async def queue_depth(self) -> int:
        queue = await self.channel.declare_queue(f"{self.namespace}.runs", passive=True)
        result = queue.declaration_result
        return int(result.message_count or 0)

    async def snapshot(self, *, with_executed: bool) -> Snapshot:
        return Snapshot(
            at=time.monotonic(),
            cpu={name: s.cpu() for name, s in self.procs.services.items()},
            broker_cpu=self.broker_cpu(),
            children_cpu=children_cpu(),
            host=host_cpu(),
            executed=await self.executed() if with_executed else None,
        )

    def fail(self, where: str, message: str) -> None:
        self.failures.append(Failure(where, message))
        bar = "!" * 78
        print(f"\n{bar}\n!!! {where}: {message}\n{bar}\n", flush=True)

    # --- set-up ---------------------------------------------------------------------------

    async def wait_healthy(self, service: Service) -> dict[str, Any]:
        deadline = time.monotonic() + HEALTH_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            service.check_alive()
            try:
                async with self.http.get(f"{service.base}/healthz") as response:
                    text = await response.text()
                    if response.status == 200:
                        return json.loads(text) if text.startswith("{") else {}
                    last = f"{response.status} {text}"
            except aiohttp.ClientError as error:
                last = repr(error)
            await asyncio.sleep(0.2)
        raise BenchError(
            f"{service.name}'s /healthz did not answer 200 within {HEALTH_TIMEOUT:g} s "
            f"(last: {last}); its stderr:\n{service.stderr_tail()}"
        )

    async def create_workflow(self, document: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(
            f"{self.svc('config-api').base}/api/workflows",
            json=document,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as response:
            body = await response.text()
            if response.status != 201:
                raise BenchError(
                    f"creating {document['title']!r} answered {response.status}: {body}"
                )
            created: dict[str, Any] = json.loads(body)
            return created

    async def set_up_workflows(self) -> None:
        gateway = self.svc("gateway")
        for target, document in (("async", ASYNC_WORKFLOW), ("sync", SYNC_WORKFLOW)):
            created = await self.create_workflow(document)
            self.workflow_ids[target] = created["id"]
            self.urls[target] = f"{gateway.base}/api/webhook:trigger/{created['trigger']['key']}"
            if created.get("webhookUrl") != self.urls[target]:
                raise BenchError(
                    f"the config API hands out {created.get('webhookUrl')}, "
                    f"expected {self.urls[target]}"
                )
            self.expected_records[target] = 0
        self.urls["bare"] = f"{self.svc('bare').base}/api/webhook:trigger/bare"
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while True:
            health = await self.wait_healthy(gateway)
            if int(health.get("triggers", 0)) >= 2:
                break
            if time.monotonic() > deadline:
                raise BenchError(f"the gateway never knew both workflows: {health}")
            await asyncio.sleep(0.2)
        # One request each, to see that every path answers as the README says.
        for target, expected in (("bare", "ok"), ("async", "ok"), ("sync", '{"received":"A1"}')):
            async with self.http.post(self.urls[target], json=PAYLOAD) as response:
                text = await response.text()
                if response.status != 200 or text != expected:
                    raise BenchError(
                        f"{target}: one request answered {response.status} {text!r}, expected "
                        f"200 {expected!r}; the gateway's stderr:\n{gateway.stderr_tail()}"
                    )
            if target != "bare":
                self.expected_records[target] += 1
        drain = await self.drain(0, 2, 0, await self.snapshot(with_executed=False))
        if drain.recorded != 2:
            raise BenchError(f"the executor recorded {drain.recorded} of the 2 first runs")

    # --- draining and checking ------------------------------------------------------------

    async def drain(self, base: int, expected: int, allowance: int, start: Snapshot) -> Drain:
        """Wait until the executor has recorded every run: its counter has reached `expected`
        above `base`, the queue is empty and nothing changed for DRAIN_SETTLE seconds."""
        began = time.monotonic()
        count = await self.executed()
        last_change = began
        stalled = False
        while True:
            await asyncio.sleep(0.1)
            self.check_services()
            now_count = await self.executed()
            now = time.monotonic()
            if now_count != count:
                count, last_change = now_count, now
                continue
            quiet = now - last_change
            if count - base >= expected and quiet >= DRAIN_SETTLE and await self.queue_depth() == 0:
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
            executor_cpu=self.svc("executor").cpu() - start.cpu["executor"],
            broker_cpu=(
                None
                if start.broker_cpu is None or (cpu := self.broker_cpu()) is None
                else cpu - start.broker_cpu
            ),
            stalled=stalled,
        )

    def check(self, where: str, wrk: WrkResult, drain: Drain) -> None:
        if drain.lost:
            self.fail(
                where,
                f"LOST RUNS: wrk saw {wrk.ok} answers 2xx, the executor recorded only "
                f"{drain.recorded} ({drain.lost} missing"
                + (f"; no progress for {DRAIN_STALL:g} s" if drain.stalled else "")
                + ")",
            )
        elif drain.extra > drain.allowance:
            self.fail(
                where,
                f"EXTRA RUNS: wrk saw {wrk.ok} answers 2xx and {wrk.unanswered} unanswered "
                f"requests, the executor recorded {drain.recorded} ({drain.extra} more)",
            )

    # --- one scenario ---------------------------------------------------------------------

    async def scenario(self, scenario: Scenario, label: str) -> dict[str, Any]:
        url = self.urls[scenario.target]
        hookflow = scenario.target != "bare"
        server = "gateway" if hookflow else "bare"
        self.check_services()

        print(f"{label} {scenario.name}: warm-up {self.args.warmup:g} s", flush=True)
        base = await self.executed() if hookflow else 0
        warm = await run_wrk(self.wrk, url, scenario.conns, self.args.warmup)
        warm_drain = None
        if hookflow:
            start = await self.snapshot(with_executed=False)
            warm_drain = await self.drain(base, warm.ok, warm.unanswered, start)
            self.check(f"{label} {scenario.name} warm-up", warm, warm_drain)
            self.expected_records[scenario.target] += warm_drain.recorded

        print(f"{label} {scenario.name}: measuring {self.args.duration:g} s", flush=True)
        before = await self.snapshot(with_executed=hookflow)
        result = await run_wrk(self.wrk, url, scenario.conns, self.args.duration)
        after = await self.snapshot(with_executed=hookflow)
        self.check_services()

        requests = max(1, result.requests)
        total, busy, steal = (a - b for a, b in zip(after.host, before.host, strict=True))
        figures: dict[str, Any] = {
            "scenario": scenario.name,
            "target": scenario.target,
            "conns": scenario.conns,
            "rps": result.rps,
            "p50_ms": result.p50_ms,
            "p75_ms": result.p75_ms,
            "p90_ms": result.p90_ms,
            "p99_ms": result.p99_ms,
            "requests": result.requests,
            "seconds": result.seconds,
            "ok_rps": result.ok / result.seconds if result.seconds else None,
            "non_2xx": result.non_2xx,
            "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
            "non_2xx_samples": {str(k): v for k, v in sorted(result.samples.items())},
            "socket_errors": result.socket_errors,
            "sent": result.sent,
            "unanswered": result.unanswered,
            "server_cpu_us_per_req": (after.cpu[server] - before.cpu[server]) / requests * 1e6,
            "wrk_cpu_us_per_req": (after.children_cpu - before.children_cpu) / requests * 1e6,
            "host_busy_pct": 100 * busy / total if total else None,
            "host_steal_pct": 100 * steal / total if total else None,
            "executor_cpu_us_per_run": None,
            "broker_cpu_us_per_req": None,
            "executor_runs_per_s_during_load": None,
            "executor_runs_per_s_to_drain": None,
            "drain_s": None,
            "recorded": None,
            "lost": None,
            "extra": None,
            "warmup": {
                "rps": warm.rps,
                "requests": warm.requests,
                "non_2xx": warm.non_2xx,
                "statuses": {str(k): v for k, v in sorted(warm.statuses.items())},
            },
            "wrk_output": result.output,
        }
        if warm_drain is not None:
            figures["warmup"] |= {
                "recorded": warm_drain.recorded,
                "lost": warm_drain.lost,
                "extra": warm_drain.extra,
            }
        if not hookflow:
            if before.broker_cpu is not None and after.broker_cpu is not None:
                figures["broker_cpu_us_per_req"] = (
                    (after.broker_cpu - before.broker_cpu) / requests * 1e6
                )
        else:
            assert before.executed is not None and after.executed is not None
            drain = await self.drain(before.executed, result.ok, result.unanswered, before)
            self.check(f"{label} {scenario.name}", result, drain)
            self.expected_records[scenario.target] += drain.recorded
            recorded = max(1, drain.recorded)
            busy_until = max(drain.last_record_at - before.at, result.seconds)
            figures |= {
                "executor_cpu_us_per_run": drain.executor_cpu / recorded * 1e6,
                "broker_cpu_us_per_req": (
                    None if drain.broker_cpu is None else drain.broker_cpu / requests * 1e6
                ),
                "executor_runs_per_s_during_load": (after.executed - before.executed)
                / (after.at - before.at),
                "executor_runs_per_s_to_drain": drain.recorded / busy_until,
                "drain_s": drain.seconds,
                "recorded": drain.recorded,
                "lost": drain.lost,
                "extra": drain.extra,
            }
        line = (
            f"{label} {scenario.name}: {result.rps:,.0f} req/s, p50 {fmt_ms(result.p50_ms)}, "
            f"p99 {fmt_ms(result.p99_ms)}, non-2xx {result.non_2xx}, "
            f"{server} {figures['server_cpu_us_per_req']:,.0f} µs/req"
        )
        if result.non_2xx:
            line += f" ({result.describe_non_2xx()})"
        if result.socket_error_count:
            line += f", socket errors {result.socket_errors}"
        if hookflow:
            line += (
                f"; executor {figures['executor_cpu_us_per_run']:,.0f} µs/run, "
                f"recorded {figures['recorded']:,} of {result.ok:,} 2xx "
                f"(+{result.unanswered} unanswered), drained {figures['drain_s']:.1f} s after"
            )
        print(line, flush=True)
        return figures

    # --- the end: what storage holds ------------------------------------------------------

    async def count_stored(self, target: str) -> int:
        url = f"{self.svc('config-api').base}/api/workflows/{self.workflow_ids[target]}/executions"
        headers = {"Authorization": f"Bearer {self.token}"}
        count = 0
        cursor: str | None = None
        while True:
            params = {"limit": "200"} | ({"cursor": cursor} if cursor else {})
            async with self.http.get(url, params=params, headers=headers) as response:
                if response.status != 200:
                    raise BenchError(f"listing executions answered {response.status}")
                page = await response.json()
            count += len(page["items"])
            cursor = page.get("nextCursor")
            if not cursor:
                return count

    async def check_storage(self) -> dict[str, Any]:
        stored: dict[str, Any] = {}
        for target in ("async", "sync"):
            began = time.monotonic()
            count = await self.count_stored(target)
            expected = self.expected_records[target]
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
                self.fail(
                    f"storage ({target})",
                    f"the config API lists {count} executions, the executor counted {expected}",
                )
        return stored


# --- reporting ---------------------------------------------------------------------------------


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1:
        return f"{value * 1000:.0f} µs"
    return f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms"


def fmt_num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


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


def summarise(rounds: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
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
        for name in ("async/bare", "sync/bare")
    }
    return medians, ratios


def round_ratios(figures: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    bare = figures.get("bare-50", {}).get("ok_rps")
    ratios: dict[str, float | None] = {}
    for target in ("async", "sync"):
        rps = figures.get(f"{target}-50", {}).get("ok_rps")
        ratios[f"{target}/bare"] = rps / bare if rps is not None and bare else None
    return ratios


def print_table(medians: dict[str, Any], ratios: dict[str, Any], rounds: int) -> None:
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
        + "   (PEERS.md: aiohttp + aio-pika confirmed publish / bare = 0.27)"
    )

    header = (
        f"{'scenario':<10} {'broker':>7} {'wrk':>6} {'host busy':>9} {'steal':>6} "
        f"{'drain':>7} {'exec runs/s load':>16} {'to drain':>9} {'recorded':>9} "
        f"{'lost':>5} {'extra':>6} {'unanswered':>10} {'sock err':>8}"
    )
    print("\nWhere the CPU goes (µs/req, medians) and the executor (runs summed over the rounds)")
    print(header)
    print("-" * len(header))
    for name, m in medians.items():
        busy = m["host_busy_pct"]
        steal = m["host_steal_pct"]
        drain = m["drain_s"]
        print(
            f"{name:<10} {fmt_num(m['broker_cpu_us_per_req']):>7} "
            f"{fmt_num(m['wrk_cpu_us_per_req']):>6} "
            f"{'-' if busy is None else f'{busy:.0f}%':>9} "
            f"{'-' if steal is None else f'{steal:.1f}%':>6} "
            f"{'-' if drain is None else f'{drain:.1f} s':>7} "
            f"{fmt_num(m['executor_runs_per_s_during_load']):>16} "
            f"{fmt_num(m['executor_runs_per_s_to_drain']):>9} "
            f"{fmt_num(m.get('recorded_total')):>9} {fmt_num(m.get('lost_total')):>5} "
            f"{fmt_num(m.get('extra_total')):>6} {m['unanswered_total']:>10,} "
            f"{m['socket_errors_total']:>8,}"
        )
    print("\nPEERS.md, same kind of machine:")
    for name, text in PEERS.items():
        print(f"  {name:<9} {text}")


# --- machine -----------------------------------------------------------------------------------


def command_output(argv: list[str], timeout: float = 15, *, any_status: bool = False) -> str | None:
    try:
        done = subprocess.run(  # noqa: S603 (fixed commands, no shell)
            argv, capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (done.stdout or done.stderr).strip()
    return text if (done.returncode == 0 or any_status) and text else None


def machine_info(wrk: str, server_properties: dict[str, Any]) -> dict[str, Any]:
    cpu_model = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("aiohttp", "aio-pika", "aiormq", "orjson", "pydantic"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[package] = importlib.metadata.version(package)
    git = shutil.which("git")
    broker_version = server_properties.get("version")
    if isinstance(broker_version, bytes):
        broker_version = broker_version.decode()
    rabbitmqctl = shutil.which("rabbitmqctl")
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "nproc": command_output(["nproc"]) or str(os.cpu_count()),
        "cpu_model": cpu_model,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "rabbitmq_version": (command_output([rabbitmqctl, "version"]) if rabbitmqctl else None),
        "rabbitmq_server_properties_version": broker_version,
        # `wrk -v` prints its version and usage, and exits 1.
        "wrk": next(iter((command_output([wrk, "-v"], any_status=True) or "").splitlines()), None),
        "git_commit": command_output([git, "rev-parse", "--short", "HEAD"]) if git else None,
        "git_dirty": bool(command_output([git, "status", "--porcelain"])) if git else None,
        "packages": versions,
    }


# --- the run -----------------------------------------------------------------------------------


def service_env(
    broker_url: str,
    namespace: str,
    token: str,
    data_dir: Path,
    ports: dict[str, int],
    *,
    lift_rate_limit: bool,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKFLOW_")}
    env |= {
        "HOOKFLOW_BROKER_URL": broker_url,
        "HOOKFLOW_DATA_DIR": str(data_dir),
        "HOOKFLOW_NAMESPACE": namespace,
        "HOOKFLOW_ADMIN_TOKEN": token,
        "HOOKFLOW_GATEWAY_PORT": str(ports["gateway"]),
        "HOOKFLOW_CONFIG_API_PORT": str(ports["config-api"]),
        "HOOKFLOW_EXECUTOR_PORT": str(ports["executor"]),
        "HOOKFLOW_PUBLIC_URL": f"http://127.0.0.1:{ports['gateway']}",
        "HOOKFLOW_LOG_LEVEL": "warning",
        "HOOKFLOW_LOG_FORMAT": "json",
    }
    if lift_rate_limit:
        env |= UNLIMITED
    return env


def log_summary(procs: Processes) -> dict[str, Any]:
    """What the services logged (warnings and errors only, at HOOKFLOW_LOG_LEVEL=warning)."""
    summary: dict[str, Any] = {}
    for name, service in procs.services.items():
        try:
            lines = service.stderr_path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        events: dict[str, int] = {}
        for line in lines:
            try:
                record = json.loads(line)
                key = f"{record.get('level', '?')}: {record.get('event', line)}"
            except ValueError:
                key = line[:160]
            events[key] = events.get(key, 0) + 1
        summary[name] = {"lines": len(lines), "events": events}
    return summary


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
        ports = {name: free_port() for name in ("gateway", "config-api", "executor", "bare")}
        env = service_env(
            broker_url,
            state["namespace"],
            state["token"],
            state["data_dir"],
            ports,
            lift_rate_limit=not args.keep_rate_limit,
        )
        print(
            f"bench: namespace {state['namespace']}, data in {state['data_dir']}, "
            f"{args.rounds} round(s) of {args.duration:g} s after {args.warmup:g} s warm-ups",
            flush=True,
        )
        for name in ("config-api", "executor", "gateway"):
            procs.start(name, [str(HOOKFLOW), name], env, ports[name])
        procs.start(
            "bare",
            [sys.executable, str(BARE), "--port", str(ports["bare"])],
            env,
            ports["bare"],
        )
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            b = Bench(
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
            state["bench"] = b
            for service in procs.services.values():
                await b.wait_healthy(service)
            print("bench: all services healthy; creating the workflows", flush=True)
            await b.set_up_workflows()
            rounds: list[dict[str, Any]] = state["rounds"]
            for number in range(1, args.rounds + 1):
                # Filled in as it goes, so that an interrupted run keeps what it measured.
                figures: dict[str, dict[str, Any]] = {}
                this_round: dict[str, Any] = {"round": number, "scenarios": figures}
                rounds.append(this_round)
                for scenario in SCENARIOS:
                    label = f"[round {number}/{args.rounds}]"
                    figures[scenario.name] = await b.scenario(scenario, label)
                    this_round["ratios"] = round_ratios(figures)
                print(
                    f"[round {number}/{args.rounds}] ratios: "
                    + ", ".join(
                        f"{k} {v:.2f}" for k, v in this_round["ratios"].items() if v is not None
                    ),
                    flush=True,
                )
            state["storage"] = await b.check_storage()
    return 1 if state["bench"].failures else 0


def write_results(state: dict[str, Any], args: argparse.Namespace, status: int) -> Path:
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
        "peers": PEERS,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"bench-{stamp}.json"
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text)
    (RESULTS / "latest.json").write_text(text)
    if medians:
        print_table(medians, ratios, len(rounds))
    return path


async def delete_namespace(broker_url: str, namespace: str) -> None:
    connection = await aio_pika.connect(broker_url, timeout=10)
    async with connection:
        for queue in (f"{namespace}.runs", f"{namespace}.runs.dead"):
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.queue_delete(queue)
        for exchange in (f"{namespace}.runs", f"{namespace}.dead", f"{namespace}.events"):
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.exchange_delete(exchange)


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
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 1 if args.quick else 3
    if args.duration is None:
        args.duration = 3.0 if args.quick else 10.0
    if args.rounds < 1 or args.duration <= 0 or args.warmup <= 0:
        parser.error("--rounds, --duration and --warmup must be positive")
    return args


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
    data_dir = Path(tempfile.mkdtemp(prefix="hookflow-bench-"))
    state: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC),
        "broker_url": os.environ.get("HOOKFLOW_BENCH_BROKER_URL") or DEFAULT_BROKER_URL,
        "namespace": f"bench-{secrets.token_hex(4)}",
        "token": secrets.token_urlsafe(24),
        "data_dir": data_dir,
        "rounds": [],
    }
    procs = Processes(data_dir)
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
            print("bench: stopping the services", flush=True)
            procs.stop_all()
            state["logs"] = log_summary(procs)
            if procs.services:
                try:
                    asyncio.run(
                        asyncio.wait_for(
                            delete_namespace(state["broker_url"], state["namespace"]), 20
                        )
                    )
                    print(f"bench: deleted the broker namespace {state['namespace']}")
                except Exception as error:
                    print(
                        f"bench: could not delete the namespace {state['namespace']}: {error!r}",
                        file=sys.stderr,
                    )
            if status != 2:
                path = write_results(state, args, status)
                print(f"\nResults: {path.relative_to(ROOT)} (and bench/results/latest.json)")
            for name, info in (state.get("logs") or {}).items():
                if info["lines"]:
                    print(f"{name} logged {info['lines']} warning/error line(s):")
                    for event, count in sorted(info["events"].items(), key=lambda e: -e[1])[:5]:
                        print(f"  {count:>6} x {event[:150]}")
            b: Bench | None = state.get("bench")
            if b and b.failures:
                print(f"\n!!! {len(b.failures)} FAILURE(S):", file=sys.stderr)
                for failure in b.failures:
                    print(f"!!!   {failure.where}: {failure.message}", file=sys.stderr)
            if args.keep_data:
                print(f"bench: data and logs kept in {data_dir}")
            else:
                shutil.rmtree(data_dir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
