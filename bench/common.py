"""What every module of the benchmark shares: the paths, the payload and the one error."""

from __future__ import annotations

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
UNLIMITED = {"HOOKFLOW_RATE_LIMIT": "1000000", "HOOKFLOW_RATE_BURST": "10000000"}
"""The gateway's default per-trigger rate limit (1,000/s) lifted, to measure capacity."""


class BenchError(Exception):
    """The benchmark cannot go on (a service died or never became healthy, wrk failed...)."""


@dataclass(frozen=True)
class Scenario:
    target: str  # "bare", "async", "idem" (async with idempotency claims) or "sync"
    conns: int

    @property
    def name(self) -> str:
        return f"{self.target}-{self.conns}"

    @property
    def keyed(self) -> bool:
        """Each request carries a new idempotency key."""
        return self.target == "idem"


SCENARIOS = [
    Scenario("bare", 50),
    Scenario("async", 50),
    Scenario("async", 1),
    Scenario("idem", 50),
    Scenario("sync", 50),
    Scenario("sync", 1),
]
"""What each round runs, in this order."""
HOOKFLOW_TARGETS = ("async", "idem", "sync")
"""The targets that are Hookflow workflows (each with its own workflow and records)."""
IDEMPOTENT = {"header": "Idempotency-Key"}
"""The idem workflow's trigger.idempotency: post.lua sends a new key with every request, so
every request claims a key (the cost measured) and every one runs."""
