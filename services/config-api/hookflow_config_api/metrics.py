"""The config API's metrics: requests by route pattern, method and status.

The route is the pattern the request matched (`/api/workflows/{id}`), never the raw path (ids
would make a series each); a path matching no route counts as `unmatched`, a method outside
HTTP's usual ones as `other`."""

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CollectorRegistry, Counter

from hookflow_shared.metrics import Children

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._requests = Children(
            Counter(
                "hookflow_api_requests",
                "Config API requests by route pattern, method and status code.",
                ["route", "method", "status"],
                registry=registry,
            )
        )

    def middleware(self) -> Middleware:
        """The outermost middleware: it sees the status every other one settled on."""

        @web.middleware
        async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
            try:
                response = await handler(request)
            except web.HTTPException as error:  # a redirect, or an error no middleware took
                self.request(request, error.status)
                raise
            except BaseException:
                self.request(request, 500)
                raise
            self.request(request, response.status)
            return response

        return count

    def request(self, request: web.Request, status: int) -> None:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        method = request.method if request.method in METHODS else "other"
        self._requests(route, method, str(status)).inc()
