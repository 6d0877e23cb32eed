"""The broker topology as data: every exchange and queue name, written once."""

from dataclasses import dataclass

DELIVERY_LIMIT = 5
"""Deliveries of one message before it is dead-lettered instead of tried again."""


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
    def dead_exchange(self) -> str:
        return f"{self.namespace}.dead"

    @property
    def dead_queue(self) -> str:
        """Where a message lands that could not be processed DELIVERY_LIMIT times."""
        return f"{self.namespace}.runs.dead"

    @property
    def events_exchange(self) -> str:
        """Fanout exchange of workflow changes; each gateway binds its own exclusive queue."""
        return f"{self.namespace}.events"
