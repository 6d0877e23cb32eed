"""Messaging: one interface (base.Broker), two adapters (RabbitMQ, the in-process bus)."""

from hookflow_shared.messaging.base import (
    Broker,
    Consumer,
    Delivery,
    DeliveryHandler,
    EventHandler,
    Outcome,
)
from hookflow_shared.messaging.topology import Topology

__all__ = [
    "Broker",
    "Consumer",
    "Delivery",
    "DeliveryHandler",
    "EventHandler",
    "Outcome",
    "Topology",
    "open_broker",
]


def open_broker(
    url: str | None,
    topology: Topology,
    *,
    installation: str | None = None,
    publish_timeout: float = 5.0,
    retry_backoff: float = 0.5,
) -> Broker:
    """RabbitMQ when a URL is given, else the in-process bus (one process only).

    `installation`: this installation's id; on RabbitMQ, connecting fails with
    ForeignInstallation when another installation owns the namespace.
    `retry_backoff`: seconds before a failed delivery is handed back, doubling each time."""
    if url:
        from hookflow_shared.messaging.rabbitmq import RabbitBroker

        return RabbitBroker(
            url,
            topology,
            installation=installation,
            publish_timeout=publish_timeout,
            retry_backoff=retry_backoff,
        )
    from hookflow_shared.messaging.memory import MemoryBroker

    return MemoryBroker(retry_backoff=retry_backoff)
