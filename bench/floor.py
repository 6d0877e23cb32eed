"""The floor under `async-1`: what RabbitMQ's confirm of one persistent message costs on this
machine, with nothing of Hookflow's (no HTTP, no gateway, no executor).

aio-pika publishes one persistent message at a time to a durable quorum queue (what the
gateway's async runs go to) and waits for each confirm before the next; the latencies of the
publishes after a warm-up are the floor. A webhook at one connection waits for the same confirm,
and its HTTP request, Hookflow's work and the executor running the previous webhook come on
top. Measured once per `make bench`, with the services up and idle; the queue is the run's own
(`<namespace>.floor`) and is deleted afterwards.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import aio_pika

from bench.common import PAYLOAD
from hookflow_shared.ids import new_id
from hookflow_shared.models import RunRequest, TriggerContext, now, run_batch_json

WARM_UP = 100
PUBLISHES = 1_000


def floor_queue(namespace: str) -> str:
    return f"{namespace}.floor"


async def confirm_floor(
    broker_url: str, namespace: str, *, publishes: int = PUBLISHES, warm_up: int = WARM_UP
) -> dict[str, Any]:
    """The latencies (ms) of `publishes` confirmed persistent publishes, one at a time."""
    name = floor_queue(namespace)
    # The message a gateway sends for one webhook of the async example.
    run = RunRequest(new_id(), "floor", 1, now(), "floor", TriggerContext(body=PAYLOAD))
    body = run_batch_json([run])
    connection = await aio_pika.connect(broker_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(
            name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        try:
            took = []
            for index in range(warm_up + publishes):
                message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
                started = time.perf_counter()
                await channel.default_exchange.publish(message, routing_key=name)
                if index >= warm_up:
                    took.append((time.perf_counter() - started) * 1000)
        finally:
            await queue.delete(if_unused=False, if_empty=False)
    cuts = statistics.quantiles(took, n=100)
    return {
        "queue": "quorum",
        "publishes": publishes,
        "p50_ms": round(cuts[49], 3),
        "p90_ms": round(cuts[89], 3),
        "p99_ms": round(cuts[98], 3),
    }


def describe_floor(floor: dict[str, Any] | None) -> str:
    if not floor:
        return "not measured"
    return (
        f"p50 {floor['p50_ms']:.2f} ms, p90 {floor['p90_ms']:.2f} ms, p99 {floor['p99_ms']:.2f} ms "
        f"({floor['publishes']:,} confirmed persistent publishes to a {floor['queue']} queue, "
        "one at a time, aio-pika alone)"
    )
