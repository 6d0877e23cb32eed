"""Messaging: one interface (base.Broker), two adapters (RabbitMQ, the in-process bus)."""

from hookflow.shared.messaging.base import Broker, Consumer, EventHandler, RunHandler
from hookflow.shared.messaging.topology import Topology

__all__ = ["Broker", "Consumer", "EventHandler", "RunHandler", "Topology", "open_broker"]


def open_broker(
    url: str | None, topology: Topology, *, publish_timeout: float = 5.0, retry_backoff: float = 0.5
) -> Broker:
    """RabbitMQ when a URL is given, else the in-process bus (one process only).

    `retry_backoff`: seconds before a failed delivery is handed back, doubling each time."""
    if url:
        from hookflow.shared.messaging.rabbitmq import RabbitBroker

        return RabbitBroker(
            url, topology, publish_timeout=publish_timeout, retry_backoff=retry_backoff
        )
    from hookflow.shared.messaging.memory import MemoryBroker

    return MemoryBroker(retry_backoff=retry_backoff)
