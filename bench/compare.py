"""Paired A/B of two versions of Hookflow on this machine (`make compare BASE=<git revision>`).

One `make bench` cannot tell a change of a few per cent from the machine: on a shared 2-core
machine the same code's rate moves by a fifth from one run to the next, and more between
minutes. This runs two complete stacks side by side, on the local RabbitMQ and SQLite:

    A  the services of the git revision BASE, checked out into a temporary worktree and run
       from it (PYTHONPATH over this checkout's installed packages: same dependencies)
    B  this checkout's services

and measures them in turn with wrk, a few seconds each, A B, then B A, and so on: each pair's
ratio B/A compares two measurements taken seconds apart, and the median over the pairs is the
answer (with 8 pairs of 5 s it resolves about 5 % here). Each line also gives each side's CPU
per webhook in the gateway and the executor. Only the rates are compared: that no run is lost
is `make bench`'s check, not this one's.

    .venv/bin/python bench/compare.py --base HEAD~1 [--target sync] [--conns 50]
        [--seconds 5] [--pairs 8]

On the RabbitMQ of HOOKFLOW_BENCH_BROKER_URL (the local one by default). The figures go to
bench/results/compare-<UTC time>.json. The worktree, the data, the
processes and the broker's queues of both namespaces are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

# Run as a script (`python bench/compare.py`), this file finds its package through the
# repository's root, the parent of bench/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import HEALTH_TIMEOUT, PAYLOAD, RESULTS, ROOT, BenchError, broker_url
from bench.loadgen import run_wrk
from bench.processes import (
    HOOKFLOW,
    SERVICES,
    Processes,
    delete_namespace,
    free_port,
    service_env,
)
from bench.workflows import load_workflows

DISTRIBUTIONS = (
    "shared",
    "services/gateway",
    "services/executor",
    "services/config-api",
    "services/cli",
)
"""The folders whose packages a worktree's services are run from (see the Makefile)."""


def pythonpath_of(worktree: Path) -> str:
    """The PYTHONPATH that runs the services of `worktree` instead of this checkout's."""
    return ":".join(str(worktree / folder) for folder in DISTRIBUTIONS)


@dataclass
class Side:
    """One stack: its processes, namespace and webhook URL."""

    name: str
    procs: Processes
    namespace: str
    data_dir: Path
    url: str = ""

    def cpu(self) -> dict[str, float]:
        return {name: self.procs.services[name].cpu() for name in ("gateway", "executor")}


def start_side(
    sides: dict[str, Side], name: str, broker_url: str, pythonpath: str | None
) -> tuple[str, int]:
    """Start one stack (noted in `sides` first, so that a failure still stops it); its admin
    token and the config API's port."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"hookflow-compare-{name.lower()}-"))
    namespace = f"bench-compare-{secrets.token_hex(3)}-{name.lower()}"
    token = secrets.token_urlsafe(24)
    ports = {service: free_port() for service in SERVICES}
    env = service_env(broker_url, namespace, token, data_dir, ports, lift_rate_limit=True)
    env.pop("PYTHONPATH", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    procs = Processes(data_dir)
    sides[name] = Side(name, procs, namespace, data_dir)
    for service in SERVICES:
        procs.start(service, [str(HOOKFLOW), service], env, ports[service])
    return token, ports["config-api"]


async def set_up(
    http: aiohttp.ClientSession, side: Side, token: str, api_port: int, target: str
) -> None:
    """Create the workflow measured and wait until its webhook answers 200."""
    deadline = time.monotonic() + HEALTH_TIMEOUT
    api = f"http://127.0.0.1:{api_port}"
    while True:
        for service in side.procs.services.values():
            service.check_alive()
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{api}/healthz") as response:
                if response.status == 200:
                    break
        if time.monotonic() > deadline:
            raise BenchError(f"{side.name}: the config API never became healthy")
        await asyncio.sleep(0.2)
    headers = {"Authorization": f"Bearer {token}"}
    document = load_workflows()[target]
    async with http.post(f"{api}/api/workflows", json=document, headers=headers) as response:
        if response.status != 201:
            raise BenchError(f"{side.name}: creating the workflow: {await response.text()}")
        side.url = (await response.json())["webhookUrl"]
    while True:
        with contextlib.suppress(aiohttp.ClientError):
            async with http.post(side.url, json=PAYLOAD) as response:
                if response.status == 200:
                    return
        if time.monotonic() > deadline:
            raise BenchError(f"{side.name}: the webhook never answered 200")
        await asyncio.sleep(0.2)


async def measure(wrk: str, side: Side, conns: int, seconds: float) -> dict[str, float]:
    before = side.cpu()
    result = await run_wrk(wrk, side.url, conns, seconds)
    after = side.cpu()
    for service in side.procs.services.values():
        service.check_alive()
    requests = max(1, result.requests)
    return {
        "ok_rps": result.ok / result.seconds if result.seconds else 0.0,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "non_2xx": result.non_2xx,
        **{f"{name}_us": (after[name] - before[name]) / requests * 1e6 for name in after},
    }


def describe(figures: dict[str, float]) -> str:
    return (
        f"{figures['ok_rps']:7,.0f}/s p50 {figures['p50_ms']:5.2f} ms, gateway "
        f"{figures['gateway_us']:4.0f} µs, executor {figures['executor_us']:4.0f} µs"
    )


async def compare(args: argparse.Namespace, wrk: str, sides: dict[str, Side]) -> dict[str, Any]:
    pairs: list[dict[str, Any]] = []
    print(f"compare: warm-up {args.warmup:g} s each", flush=True)
    for side in sides.values():
        await run_wrk(wrk, side.url, args.conns, args.warmup)
    for number in range(args.pairs):
        order = ("A", "B") if number % 2 == 0 else ("B", "A")
        figures = {
            name: await measure(wrk, sides[name], args.conns, args.seconds) for name in order
        }
        ratio = figures["B"]["ok_rps"] / figures["A"]["ok_rps"] if figures["A"]["ok_rps"] else 0
        pairs.append(
            {"order": "".join(order), "A": figures["A"], "B": figures["B"], "ratio": ratio}
        )
        print(
            f"[pair {number + 1}/{args.pairs}] A {describe(figures['A'])} | "
            f"B {describe(figures['B'])} | B/A {ratio:.3f}",
            flush=True,
        )
    ratios = [pair["ratio"] for pair in pairs]
    summary = {
        "median_ratio": statistics.median(ratios),
        "ratios": ratios,
        "better_pairs": sum(ratio > 1 for ratio in ratios),
        **{
            f"{name}_median": {
                key: statistics.median(pair[name][key] for pair in pairs) for key in pairs[0][name]
            }
            for name in ("A", "B")
        },
    }
    print(
        f"\nB/A, median of {len(ratios)} pairs: {summary['median_ratio']:.3f} "
        f"(B faster in {summary['better_pairs']} of {len(ratios)}; pairs "
        f"{min(ratios):.2f}-{max(ratios):.2f})\n"
        f"A ({args.base}): {describe(summary['A_median'])}\n"
        f"B (this checkout): {describe(summary['B_median'])}",
        flush=True,
    )
    return {"pairs": pairs, **summary}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Paired A/B of a git revision (A) and this checkout (B); see bench/compare.py."
    )
    parser.add_argument("--base", required=True, help="the git revision to compare with (A)")
    parser.add_argument("--target", choices=("async", "sync"), default="async")
    parser.add_argument("--conns", type=int, default=50, help="wrk connections (default 50)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--pairs", type=int, default=8, help="measurements of each (default 8)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up each")
    args = parser.parse_args(argv)
    if args.conns < 1 or args.seconds <= 0 or args.pairs < 1 or args.warmup <= 0:
        parser.error("--conns, --seconds, --pairs and --warmup must be positive")
    return args


def add_worktree(revision: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="hookflow-compare-base-"))
    done = subprocess.run(  # noqa: S603 (git, with the revision as one argument)
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(folder), revision],  # noqa: S607
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        folder.rmdir()
        raise BenchError(f"cannot check out {revision!r}: {done.stderr.strip()}")
    return folder


def remove_worktree(folder: Path) -> None:
    subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)],  # noqa: S607
        capture_output=True,
    )
    shutil.rmtree(folder, ignore_errors=True)


async def clean_up(broker_url: str, sides: dict[str, Side]) -> None:
    for side in sides.values():
        side.procs.stop_all()
        with contextlib.suppress(Exception):
            await delete_namespace(broker_url, side.namespace)
        shutil.rmtree(side.data_dir, ignore_errors=True)


async def run(args: argparse.Namespace, wrk: str, worktree: Path) -> dict[str, Any]:
    url = broker_url()
    sides: dict[str, Side] = {}
    try:
        print(f"compare: A = {args.base} (from {worktree}), B = this checkout", flush=True)
        access = {
            "A": start_side(sides, "A", url, pythonpath_of(worktree)),
            "B": start_side(sides, "B", url, None),
        }
        async with aiohttp.ClientSession() as http:
            for name, (token, port) in access.items():
                await set_up(http, sides[name], token, port, args.target)
        print(
            f"compare: {args.target} at {args.conns} connections, {args.pairs} pairs of "
            f"{args.seconds:g} s",
            flush=True,
        )
        return await compare(args, wrk, sides)
    finally:
        await clean_up(url, sides)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None or shutil.which("git") is None:
        print("compare: needs wrk and git (apt-get install wrk git)", file=sys.stderr)
        return 2
    if not HOOKFLOW.exists():
        print(f"compare: {HOOKFLOW} is missing; run `make install` first", file=sys.stderr)
        return 2
    try:
        worktree = add_worktree(args.base)
    except BenchError as error:
        print(f"compare: {error}", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(run(args, wrk, worktree))
    except BenchError as error:
        print(f"compare: ERROR: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ncompare: interrupted; cleaned up", file=sys.stderr)
        return 130
    finally:
        remove_worktree(worktree)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"compare-{stamp}.json"
    record = {"base": args.base, "target": args.target, "conns": args.conns, **result}
    path.write_text(json.dumps(record, indent=2))
    print(f"\nResults: {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
