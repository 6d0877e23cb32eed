"""What every module of the benchmark shares: the paths, the payload and the one error."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
"""The repository's root, the parent of bench/."""
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
PAYLOAD = {"status": "paid", "amount": 12.5, "order": {"id": "A1"}}
"""The body bench/post.lua sends: a payment callback, the payload the reference figures
(bench/report.py REFERENCE) were measured with."""
HEALTH_TIMEOUT = 30.0
"""Seconds a service (or the gateway's trigger list) has to become ready."""
DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"


def broker_url() -> str:
    """The RabbitMQ the benchmarks use: HOOKFLOW_BENCH_BROKER_URL, or the local one."""
    return os.environ.get("HOOKFLOW_BENCH_BROKER_URL") or DEFAULT_BROKER_URL


UNLIMITED = {"HOOKFLOW_RATE_LIMIT": "1000000", "HOOKFLOW_RATE_BURST": "10000000"}
"""The gateway's default per-trigger rate limit (1,000/s) lifted, to measure capacity."""


class BenchError(Exception):
    """The benchmark cannot go on (a service died or never became healthy, wrk failed...)."""


@dataclass(frozen=True)
class Scenario:
    """A run of wrk against one target."""

    target: str  # "bare", "nodered", "async", "idem" (async with idempotency claims) or "sync"
    conns: int
    paused: bool = False
    """The executors are frozen while wrk runs (and resumed to drain after): what the gateway
    and the broker accept alone, as when the executors run on machines of their own. Named
    `accept-<conns>`."""

    @property
    def name(self) -> str:
        return f"{'accept' if self.paused else self.target}-{self.conns}"

    @property
    def keyed(self) -> bool:
        """Each request carries a new idempotency key."""
        return self.target == "idem"

    @property
    def hookflow(self) -> bool:
        """A Hookflow workflow (whose runs the executor records), not a baseline or a peer."""
        return self.target in HOOKFLOW_TARGETS


@dataclass(frozen=True)
class Backlog:
    """Runs queued with the executors stopped, then drained by `executors` of them."""

    executors: int

    @property
    def name(self) -> str:
        return f"backlog-{self.executors}"


SCENARIOS: list[Scenario | Backlog] = [
    Scenario("async", 50),
    Scenario("bare", 50),
    Scenario("sync", 50),
    Scenario("nodered", 50),
    Scenario("async", 50, paused=True),
    Scenario("async", 200),
    Scenario("async", 1),
    Scenario("idem", 50),
    Scenario("sync", 1),
    Backlog(1),
    Backlog(2),
]
"""What each round runs, in this order (`--only` picks some). The bare handler runs between
the two scenarios whose ratios to it have targets, so that each is measured within seconds of
it: this machine's speed drifts by a fifth over minutes, and with bare-50 first in the round
the sync ratio was taken some three minutes from its baseline."""
SCENARIO_NAMES = [scenario.name for scenario in SCENARIOS]
BASELINE = "bare-50"
"""The scenario every throughput ratio divides by."""


def select(only: str | None) -> list[Scenario | Backlog]:
    """The scenarios `--only` names (comma-separated), in the run's order; all without it.
    bare-50 is added when a chosen scenario is compared with it (any wrk run at more than one
    connection), so that the ratios are always measured in the same run."""
    if only is None:
        return list(SCENARIOS)
    wanted = {name.strip() for name in only.split(",") if name.strip()}
    unknown = sorted(wanted - set(SCENARIO_NAMES))
    if unknown or not wanted:
        raise ValueError(
            f"unknown scenario(s) {', '.join(unknown) or '(none given)'}; "
            f"choose among {', '.join(SCENARIO_NAMES)}"
        )
    if any(isinstance(s, Scenario) and s.name in wanted and s.conns > 1 for s in SCENARIOS):
        wanted.add(BASELINE)
    return [scenario for scenario in SCENARIOS if scenario.name in wanted]


HOOKFLOW_TARGETS = ("async", "idem", "sync")
"""The targets that are Hookflow workflows (each with its own workflow and records)."""
IDEMPOTENT = {"header": "Idempotency-Key"}
"""The idem workflow's trigger.idempotency: post.lua sends a new key with every request, so
every request claims a key (the cost measured) and every one runs."""
