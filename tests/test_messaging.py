"""One messaging contract, two adapters: the in-process bus and a real RabbitMQ."""

import asyncio

import pytest

from hookflow_shared.errors import BrokerUnavailable
from hookflow_shared.messaging import Broker, Delivery, Outcome
from hookflow_shared.messaging.topology import MAX_ATTEMPTS
from hookflow_shared.models import ConfigEvent, RunBatch, RunRequest
from tests.support import first_dead_letter, numbered_run


def run(number: int) -> RunRequest:
    return numbered_run(number)


async def test_published_runs_reach_one_consumer_intact(broker: Broker) -> None:
    got: asyncio.Queue[RunBatch] = asyncio.Queue()

    async def handle(delivery: Delivery) -> Outcome:
        await got.put(RunBatch.model_validate_json(delivery.body))
        return Outcome.DONE

    consumer = await broker.consume_runs(handle, prefetch=4)
    await broker.publish_runs([run(1), run(2)])
    await broker.publish_runs([run(3)])
    first = await asyncio.wait_for(got.get(), 5)
    second = await asyncio.wait_for(got.get(), 5)
    ids = sorted(r.execution_id for batch in (first, second) for r in batch.runs)
    assert ids == ["e1", "e2", "e3"]
    assert {r.context.body["n"] for r in first.runs} | {
        r.context.body["n"] for r in second.runs
    } == {1, 2, 3}
    await consumer.stop(1)


async def test_competing_consumers_share_the_runs(broker: Broker) -> None:
    seen: dict[str, list[str]] = {"a": [], "b": []}
    done = asyncio.Event()

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def handle(delivery: Delivery) -> Outcome:
            batch = RunBatch.model_validate_json(delivery.body)
            seen[name].extend(r.execution_id for r in batch.runs)
            await asyncio.sleep(0.01)
            if len(seen["a"]) + len(seen["b"]) == 20:
                done.set()
            return Outcome.DONE

        return handle

    consumers = [await broker.consume_runs(handler(n), prefetch=1) for n in ("a", "b")]
    for number in range(20):
        await broker.publish_runs([run(number)])
    await asyncio.wait_for(done.wait(), 10)
    assert sorted(seen["a"] + seen["b"]) == sorted(f"e{n}" for n in range(20))
    assert seen["a"] and seen["b"], "both consumers should have taken work"
    for consumer in consumers:
        await consumer.stop(1)


@pytest.mark.parametrize("failure", ["retry", "raise"])
async def test_a_failed_delivery_comes_back_counted_and_then_is_dead_lettered(
    broker: Broker, failure: str
) -> None:
    attempts: list[int] = []

    async def always_fails(delivery: Delivery) -> Outcome:
        attempts.append(delivery.attempt)
        if failure == "raise":
            raise RuntimeError("a bug")
        return Outcome.RETRY

    letter = await first_dead_letter(
        broker, always_fails, lambda: broker.publish_runs([run(1)]), timeout=40
    )
    # Every delivery is counted the same on both adapters: 1, 2, ... up to the last.
    assert attempts == list(range(1, MAX_ATTEMPTS + 1))
    assert letter.death == "delivery_limit"
    assert RunBatch.model_validate_json(letter.body).runs[0].execution_id == "e1"


async def test_a_rejected_delivery_is_dead_lettered_at_once(broker: Broker) -> None:
    attempts = 0

    async def rejects(delivery: Delivery) -> Outcome:
        nonlocal attempts
        attempts += 1
        return Outcome.REJECT

    letter = await first_dead_letter(
        broker, rejects, lambda: broker.publish_runs([run(1)]), timeout=10
    )
    assert attempts == 1
    assert letter.death == "rejected"


async def test_only_a_message_never_delivered_before_is_first(broker: Broker) -> None:
    """`first` lets the executor skip looking for records: it must be False for every
    message whose runs may have been delivered (and so recorded) before: a message handed
    back, a sync run moved to the durable queue, runs sent again."""
    seen: dict[str, list[bool]] = {}
    done = asyncio.Event()

    async def handle(delivery: Delivery) -> Outcome:
        execution_id = RunBatch.model_validate_json(delivery.body).runs[0].execution_id
        seen.setdefault(execution_id, []).append(delivery.first)
        if len(seen[execution_id]) == 1 and execution_id in ("e1", "e3"):
            return Outcome.RETRY  # handed back (e3: a sync run, then moved)
        if sum(map(len, seen.values())) == 5:
            done.set()
        return Outcome.DONE

    consumer = await broker.consume_runs(handle, prefetch=4)
    await broker.publish_runs([run(1)])
    await broker.publish_runs([run(2)], resent=True)
    await broker.publish_sync_runs([run(3)])
    await asyncio.wait_for(done.wait(), 10)
    await consumer.stop(1)
    assert seen == {"e1": [True, False], "e2": [False], "e3": [True, False]}


async def test_every_subscriber_gets_every_event(broker: Broker) -> None:
    got: dict[str, list[ConfigEvent]] = {"g1": [], "g2": []}

    def handler(name: str):  # type: ignore[no-untyped-def]
        async def handle(event: ConfigEvent) -> None:
            got[name].append(event)

        return handle

    subscriptions = [await broker.subscribe_events(handler(name)) for name in got]
    event = ConfigEvent(type="updated", workflow_id="w", key="k", version=2)
    await broker.publish_event(event)

    async def both() -> bool:
        return all(got.values())

    deadline = asyncio.get_running_loop().time() + 5
    while not await both() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    assert got == {"g1": [event], "g2": [event]}
    for subscription in subscriptions:
        await subscription.stop(0)


async def test_closing_the_broker_is_not_a_lost_connection(broker: Broker) -> None:
    """A service that stops closes its connection: its subscribers are not told the
    connection was lost (the gateway would log a warning at every clean shutdown)."""
    lost: list[bool] = []

    async def on_lost() -> None:
        lost.append(True)

    async def ignore(event: object) -> None:
        pass

    await broker.subscribe_events(ignore, on_lost=on_lost)
    await broker.close()
    await asyncio.sleep(0.2)
    assert lost == []


async def test_stopping_a_consumer_finishes_what_it_holds(broker: Broker) -> None:
    finished: list[str] = []
    started = asyncio.Event()

    async def slow(delivery: Delivery) -> Outcome:
        started.set()
        await asyncio.sleep(0.5)
        finished.extend(r.execution_id for r in RunBatch.model_validate_json(delivery.body).runs)
        return Outcome.DONE

    consumer = await broker.consume_runs(slow, prefetch=1)
    await broker.publish_runs([run(1)])
    await asyncio.wait_for(started.wait(), 5)
    await consumer.stop(grace=5)
    assert finished == ["e1"]


async def test_publishing_with_no_broker_fails_loudly(broker: Broker) -> None:
    await broker.close()
    with pytest.raises(BrokerUnavailable):
        await broker.publish_runs([run(1)])
