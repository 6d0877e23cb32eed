"""The services' HTTP edge: JSON answers, and the one middleware that turns errors into them.

Domain errors (hookflow_shared.errors) know nothing of HTTP; their status codes are given
here, in one table. An error that only exists at an HTTP edge (405, 413, 429, 504...) is an
HttpError and carries its own status and headers."""

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog
from aiohttp import web

from hookflow_shared.errors import (
    BadRequest,
    BrokerUnavailable,
    Conflict,
    HookflowError,
    NotFound,
    StorageUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)

log = structlog.get_logger("hookflow")

RETRY_SOON = {"Retry-After": "1"}

STATUS: dict[type[HookflowError], tuple[int, dict[str, str]]] = {
    BadRequest: (400, {}),
    Unauthorized: (401, {}),
    NotFound: (404, {}),
    Conflict: (409, {}),
    UnsupportedMediaType: (415, {}),
    ValidationFailed: (422, {}),
    BrokerUnavailable: (503, RETRY_SOON),
    StorageUnavailable: (503, RETRY_SOON),
}
"""The status code (and headers) of each domain error; a subclass takes its base's."""


class HttpError(HookflowError):
    """An error of the HTTP edge itself, with its status and headers."""

    status = 500
    headers: dict[str, str] = {}

    def __init__(
        self,
        message: str,
        *,
        details: Any = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        if status is not None:
            self.status = status
        if headers is not None:
            self.headers = headers


def status_of(error: HookflowError) -> tuple[int, dict[str, str]]:
    if isinstance(error, HttpError):
        return error.status, error.headers
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500, {}


def json_response(
    body: object, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def error_response(error: HookflowError) -> web.Response:
    status, headers = status_of(error)
    return json_response(error.body(), status=status, headers=headers)


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The one place where errors become HTTP answers."""
    try:
        return await handler(request)
    except HookflowError as error:
        return error_response(error)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {k: v for k, v in error.headers.items() if k.lower() != "content-type"}
        return json_response({"error": error.reason}, status=error.status, headers=headers)
    except Exception:
        log.exception("unhandled error", path=request.path, method=request.method)
        return json_response({"error": "internal error; see the service's log"}, status=500)
