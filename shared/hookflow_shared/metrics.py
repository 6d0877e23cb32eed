"""Prometheus metrics: `GET /metrics` on every service's port, from the registry its app is
given. Each service keeps its own instruments (a small metrics module of its own) on that
registry, never on the library's global one: `hookflow run` hands the three services one
registry (each port shows all of it), and a test reads the registry of the app it made."""

from typing import Protocol, Self

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The text format every Prometheus reads (generate_latest writes it; our names need no
escaping)."""

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
"""Seconds: from a webhook answered in a millisecond to a sync run near its 30 s default."""


class _Metric(Protocol):
    def labels(self, *values: str) -> Self: ...


class Children[M: _Metric]:
    """A labelled metric's children, each made once: `labels()` takes a lock and builds its key
    on every call, and the hot paths count with a few label values over and over."""

    def __init__(self, metric: M) -> None:
        self._metric = metric
        self._made: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._made.get(values)
        if child is None:
            child = self._made[values] = self._metric.labels(*values)
        return child


def use_metrics(app: web.Application, registry: CollectorRegistry | None) -> CollectorRegistry:
    """Serve `registry` (a new one when None) at /metrics on `app`; returns it."""
    registry = registry if registry is not None else CollectorRegistry()
    app[REGISTRY] = registry
    app.router.add_get("/metrics", metrics)
    return registry


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus text format. No token: it holds counts, never ids of callers."""
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
