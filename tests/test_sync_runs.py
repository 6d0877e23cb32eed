"""Sync runs travel apart: on a classic queue, published without waiting for a confirm (their
caller waits for the run's answer anyway). The at-least-once rules still hold: a sync run
handed back (failed, or held by a consumer that died) goes on as a durable run on the quorum
queue, where its deliveries are counted and, past the limit, it is dead-lettered. The same
on both adapters, and against a real RabbitMQ for a crash."""

import asyncio

import aio_pika

from hookflow_shared.messaging import Broker, Delivery, Outcome, Topology
from hookflow_shared.messaging.topology import MAX_ATTEMPTS
from hookflow_shared.models import RunBatch, RunRequest
from tests.support import first_dead_letter, get_message, numbered_run


def sync_run(number: int) -> RunRequest:
    return numbered_run(number, execution_id=f"s{number}", reply_to="a-gateway")


def execution_ids(delivery: Delivery) -> list[str]:
    return [run.execution_id for run in RunBatch.model_validate_json(delivery.body).runs]


async def test_sync_runs_reach_the_runs_consumer_intact(broker: Broker) -> None:
    got: asyncio.Queue[Delivery] = asyncio.Queue()

    async def handle(delivery: Delivery) -> Outcome:
        await got.put(delivery)
        return Outcome.DONE

    consumer = await broker.consume_runs(handle, prefetch=4)
    await broker.publish_sync_runs([sync_run(1), sync_run(2)])
    delivery = await asyncio.wait_for(got.get(), 5)
    await consumer.stop(1)
    assert execution_ids(delivery) == ["s1", "s2"]
    assert delivery.attempt == 1
    runs = RunBatch.model_validate_json(delivery.body).runs
    assert [run.context.body for run in runs] == [{"n": 1}, {"n": 2}]
    assert {run.reply_to for run in runs} == {"a-gateway"}


async def test_a_failing_sync_run_goes_on_durably_counted_then_is_dead_lettered(
    broker: Broker,
) -> None:
    attempts: list[int] = []

    async def always_fails(delivery: Delivery) -> Outcome:
        attempts.append(delivery.attempt)
        return Outcome.RETRY

    letter = await first_dead_letter(
        broker, always_fails, lambda: broker.publish_sync_runs([sync_run(1)]), timeout=40
    )
    # Its one delivery from the sync queue, then every delivery of the durable queue.
    assert attempts == [1, *range(1, MAX_ATTEMPTS + 1)]
    assert letter.death == "delivery_limit"
    assert execution_ids(letter) == ["s1"]


async def test_a_rejected_sync_run_is_dead_lettered_at_once(broker: Broker) -> None:
    attempts = 0

    async def rejects(delivery: Delivery) -> Outcome:
        nonlocal attempts
        attempts += 1
        return Outcome.REJECT

    letter = await first_dead_letter(
        broker, rejects, lambda: broker.publish_sync_runs([sync_run(1)]), timeout=10
    )
    assert attempts == 1
    assert letter.death == "rejected"
    assert execution_ids(letter) == ["s1"]


async def test_sync_runs_are_sent_transient_to_their_classic_queue(
    rabbit_broker: Broker, rabbitmq: str, namespace: str
) -> None:
    topology = Topology(namespace)
    await rabbit_broker.publish_sync_runs([sync_run(1)])
    connection = await aio_pika.connect(rabbitmq)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.sync_runs_queue)
        message = await get_message(queue, no_ack=True)
        assert message is not None, "the sync run is not on the sync queue"
        assert message.delivery_mode == aio_pika.DeliveryMode.NOT_PERSISTENT
        assert RunBatch.model_validate_json(message.body).runs[0].execution_id == "s1"
        runs = await channel.get_queue(topology.runs_queue)
        assert await runs.get(fail=False, no_ack=True) is None, "it went to the durable queue"


async def test_a_sync_run_held_by_a_crashed_consumer_is_moved_and_counted(
    rabbit_broker: Broker, rabbitmq: str, namespace: str
) -> None:
    topology = Topology(namespace)
    await rabbit_broker.publish_sync_runs([sync_run(1)])
    # A consumer takes it and dies without acknowledging it, as a killed executor would.
    connection = await aio_pika.connect(rabbitmq)
    channel = await connection.channel()
    queue = await channel.get_queue(topology.sync_runs_queue)
    held = await get_message(queue, no_ack=False)
    assert held is not None and not held.redelivered
    await connection.close()

    attempts: list[int] = []

    async def always_fails(delivery: Delivery) -> Outcome:
        attempts.append(delivery.attempt)
        return Outcome.RETRY

    letter = await first_dead_letter(rabbit_broker, always_fails, timeout=40)
    # Redelivered, it was not run from the sync queue again but moved: every delivery from
    # then on is counted by the quorum queue, and the broker dead-letters it at the limit.
    assert attempts == list(range(1, MAX_ATTEMPTS + 1))
    assert letter.death == "delivery_limit"
    assert execution_ids(letter) == ["s1"]
