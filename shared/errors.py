"""Domain errors. Raised inside the services, turned into HTTP answers at one place at the edge."""

from typing import Any


class HookflowError(Exception):
    """Base of the errors a service turns into an HTTP answer."""

    status = 500
    headers: dict[str, str] | None = None

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class BadRequest(HookflowError):
    status = 400


class Unauthorized(HookflowError):
    status = 401


class NotFound(HookflowError):
    status = 404


class Conflict(HookflowError):
    status = 409


class UnsupportedMediaType(HookflowError):
    status = 415


class ValidationFailed(HookflowError):
    """A document that does not fit the contract; details lists each wrong field by its path."""

    status = 422


class BrokerUnavailable(HookflowError):
    """The broker did not take (confirm) a message; nothing was queued."""

    status = 503

    def __init__(self, message: str = "the message broker is not accepting messages") -> None:
        super().__init__(message)
