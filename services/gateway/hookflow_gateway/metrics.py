"""The gateway's metrics: what became of each webhook, how long it took, how the broker
confirms, and how fresh the trigger copy is.

Labels stay bounded: a workflow id (one per workflow), an outcome and a mode from fixed
lists; never a trigger key, a path or a credential. A request for an unknown key counts under
workflow="" and mode="unknown"."""

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hookflow_shared.metrics import LATENCY_BUCKETS, Children

OUTCOMES = (
    "accepted",
    "repeated",
    "unknown_key",
    "method_not_allowed",
    "unauthorized",
    "bad_signature",
    "too_large",
    "body_timeout",
    "unsupported_type",
    "bad_body",
    "rate_limited",
    "credential_flood",
    "not_ready",
    "broker_unavailable",
    "sync_timeout",
)
MODES = ("async", "sync", "unknown")


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._webhooks = Children(
            Counter(
                "hookflow_webhooks",
                "Webhooks by workflow, outcome (accepted, repeated, or why refused) and mode.",
                ["workflow", "outcome", "mode"],
                registry=registry,
            )
        )
        durations = Histogram(
            "hookflow_webhook_duration_seconds",
            "Seconds from a webhook's arrival to its answer, by mode.",
            ["mode"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._durations = {mode: durations.labels(mode) for mode in MODES}
        self._confirms = Histogram(
            "hookflow_publish_confirm_seconds",
            "Seconds from publishing a batch of runs to the broker's confirm.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._batch_sizes = Histogram(
            "hookflow_publish_batch_size",
            "Runs carried by one confirmed broker message.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=registry,
        )
        self._triggers = Gauge(
            "hookflow_trigger_cache_triggers",
            "Enabled triggers in this gateway's copy.",
            registry=registry,
        )
        self._age = Gauge(
            "hookflow_trigger_cache_age_seconds",
            "Seconds since the trigger copy was last loaded or changed by a config event "
            "(+Inf before its first load).",
            registry=registry,
        )

    def watch_triggers(
        self, count: Callable[[], int], heard_at: Callable[[], float | None]
    ) -> None:
        """The cache's gauges, read when scraped (nothing to keep up to date meanwhile);
        `heard_at` is a time.monotonic() moment."""
        self._triggers.set_function(count)

        def age() -> float:
            moment = heard_at()
            return float("inf") if moment is None else time.monotonic() - moment

        self._age.set_function(age)

    def webhook(self, workflow: str, outcome: str, mode: str, seconds: float) -> None:
        """Count one answered webhook."""
        self._webhooks(workflow, outcome, mode).inc()
        self._durations[mode].observe(seconds)

    def published(self, runs: int, seconds: float) -> None:
        self._batch_sizes.observe(runs)
        self._confirms.observe(seconds)
