"""Per-trigger rate limits, shared out between the gateways.

Each gateway keeps a token bucket per trigger and enforces its share of the trigger's limit:
the limit divided by the number of gateways alive. Gateways learn of each other from the
heartbeats they publish on the events exchange, so the sum over all of them stays at the
configured rate without a shared store on the request path.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    rate: float
    burst: int
    tokens: float
    updated: float


class RateLimiter:
    def __init__(
        self,
        gateway_id: str,
        *,
        heartbeat_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.gateway_id = gateway_id
        self._interval = heartbeat_interval
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._peers: dict[str, float] = {}

    def peer_alive(self, gateway_id: str) -> None:
        if gateway_id != self.gateway_id:
            self._peers[gateway_id] = self._clock()

    def peer_gone(self, gateway_id: str) -> None:
        self._peers.pop(gateway_id, None)

    def gateways(self) -> int:
        """Gateways alive (this one included): those heard from within three heartbeats."""
        horizon = self._clock() - 3 * self._interval
        for peer in [peer for peer, seen in self._peers.items() if seen < horizon]:
            del self._peers[peer]
        return 1 + len(self._peers)

    def retry_after(self, key: str, rate: float, burst: int) -> float:
        """0 when a request may pass (and takes its token); else seconds until one may."""
        now = self._clock()
        share = 1 / self.gateways()
        rate, capacity = rate * share, max(1.0, burst * share)
        bucket = self._buckets.get(key)
        if bucket is None or bucket.rate != rate or bucket.burst != burst:
            bucket = self._buckets[key] = _Bucket(rate, burst, capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / rate

    def forget(self, key: str) -> None:
        self._buckets.pop(key, None)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
