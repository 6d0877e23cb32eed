"""The broker topology as data: every exchange and queue, with its arguments, written once.

The RabbitMQ adapter declares what is listed here; the tests delete the same list afterwards.
"""

from dataclasses import dataclass, field
from typing import Literal

DELIVERY_LIMIT = 5
"""Returns of one run message (x-delivery-limit) before the broker dead-letters it."""
MAX_ATTEMPTS = DELIVERY_LIMIT + 1
"""Deliveries of one run message at most: the first, then one per return. On the last, the
executor records what still fails as a failed execution instead of handing it back."""


@dataclass(frozen=True, slots=True)
class ExchangeSpec:
    name: str
    type: Literal["direct", "fanout"]
    arguments: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class QueueSpec:
    name: str
    arguments: dict[str, str | int] = field(default_factory=dict, hash=False)
    bind_to: str | None = None
    """The exchange the queue is bound to (with its own name as the routing key)."""


@dataclass(frozen=True, slots=True)
class Topology:
    namespace: str = "hookflow"

    @property
    def runs_exchange(self) -> str:
        """Direct exchange the gateways publish accepted webhooks to."""
        return f"{self.namespace}.runs"

    @property
    def runs_queue(self) -> str:
        """Quorum queue the executors compete on."""
        return f"{self.namespace}.runs"

    @property
    def sync_runs_queue(self) -> str:
        """Classic queue of sync runs (published to it directly, through the default exchange)
        without waiting for a confirm: the caller's
        answer comes after the run anyway, and a lost run is a 504 its caller retries. A sync
        run delivered again (its executor died, or handed it back) is moved to the quorum
        runs queue first, where its deliveries are counted."""
        return f"{self.namespace}.runs.sync"

    @property
    def dead_exchange(self) -> str:
        return f"{self.namespace}.dead"

    @property
    def dead_queue(self) -> str:
        """Run messages returned DELIVERY_LIMIT times (their executor kept crashing): the
        executors record each of their runs as a failed execution, replayable."""
        return f"{self.namespace}.runs.dead"

    @property
    def unreadable_queue(self) -> str:
        """Messages no executor can read (not a run batch): kept for an operator, never run."""
        return f"{self.namespace}.runs.unreadable"

    @property
    def events_exchange(self) -> str:
        """Fanout exchange of workflow changes and gateway heartbeats; each gateway (and the
        config API) binds an exclusive queue of its own."""
        return f"{self.namespace}.events"

    @property
    def installation_exchange(self) -> str:
        """Marks which installation owns the namespace (see `installation_marker`)."""
        return f"{self.namespace}.installation"

    def installation_marker(self, installation: str) -> ExchangeSpec:
        """An exchange that nothing is published to, declared by every service with its
        installation's id as an argument RabbitMQ compares: the first declaration wins, and a
        service of another installation gets PRECONDITION_FAILED naming the owner, so two
        installations can never consume each other's runs."""
        return ExchangeSpec(
            self.installation_exchange,
            "fanout",
            {"alternate-exchange": f"{self.installation_exchange}.{installation}"},
        )

    def exchanges(self) -> tuple[ExchangeSpec, ...]:
        return (
            ExchangeSpec(self.runs_exchange, "direct"),
            ExchangeSpec(self.dead_exchange, "fanout"),
            ExchangeSpec(self.events_exchange, "fanout"),
        )

    def queues(self) -> tuple[QueueSpec, ...]:
        quorum: dict[str, str | int] = {"x-queue-type": "quorum"}
        return (
            QueueSpec(
                self.runs_queue,
                {
                    **quorum,
                    "x-dead-letter-exchange": self.dead_exchange,
                    "x-delivery-limit": DELIVERY_LIMIT,
                },
                bind_to=self.runs_exchange,
            ),
            QueueSpec(
                self.sync_runs_queue,
                {"x-queue-type": "classic", "x-dead-letter-exchange": self.dead_exchange},
            ),
            QueueSpec(self.dead_queue, quorum, bind_to=self.dead_exchange),
            QueueSpec(self.unreadable_queue, quorum),
        )

    def queue(self, name: str) -> QueueSpec:
        return next(queue for queue in self.queues() if queue.name == name)
