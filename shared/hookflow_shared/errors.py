"""Domain errors: raised inside the services, saying what went wrong. They know nothing of
HTTP; the services' HTTP edge (hookflow_shared.http) gives each its status code."""

from typing import Any


class HookflowError(Exception):
    """Base of the errors a caller is told about: a message, and details (such as each wrong
    field of a document)."""

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
    """What was sent cannot be read (a body that does not parse, a bad parameter)."""


class Unauthorized(HookflowError):
    """Missing or wrong credentials, a missing or wrong signature."""


class NotFound(HookflowError):
    pass


class Conflict(HookflowError):
    """The thing changed meanwhile, or the request contradicts its state."""


class UnsupportedMediaType(HookflowError):
    pass


class ValidationFailed(HookflowError):
    """A document that does not fit the contract; details lists each wrong field by its path."""


class BrokerUnavailable(HookflowError):
    """The broker did not confirm a message. `maybe_queued`: it may have taken it all the same
    (the confirm was lost or late: the connection dropped, the wait timed out); otherwise it
    certainly did not (not connected, refused, nacked)."""

    def __init__(
        self,
        message: str = "the message broker is not accepting messages",
        *,
        maybe_queued: bool = False,
    ) -> None:
        super().__init__(message)
        self.maybe_queued = maybe_queued


class StorageUnavailable(HookflowError):
    """The store did not answer (connection lost, timed out, locked): worth trying again, unlike
    an error about what was asked of it."""


class ForeignInstallation(Exception):
    """The broker namespace belongs to another installation (another storage): running
    against it would take that installation's runs."""

    def __init__(self, namespace: str, owner: str, mine: str) -> None:
        super().__init__(
            f"the RabbitMQ namespace {namespace!r} belongs to another Hookflow installation "
            f"({owner}); this one is {mine} (its id is kept in its storage). Give this "
            "installation a namespace of its own (HOOKFLOW_NAMESPACE), or point it at that "
            f"installation's storage. If that installation is gone for good, delete the exchange "
            f"{namespace}.installation on the broker to free the namespace."
        )
        self.namespace, self.owner, self.mine = namespace, owner, mine


class StartupError(Exception):
    """A service cannot start; the message says what to check or set."""
