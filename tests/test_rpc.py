"""Sync mode's caller: a future per execution id, resolved by its reply, failed all at once when
the reply path is lost, drained when the gateway stops."""

import asyncio
from datetime import UTC, datetime

import pytest

from hookflow_shared.messaging.memory import MemoryBroker
from hookflow_shared.messaging.rpc import Caller, Replier, ReplyLost
from hookflow_shared.models import ConfigApplied, RunReply


def reply(execution_id: str) -> RunReply:
    return RunReply(execution_id=execution_id, status="succeeded")


@pytest.fixture
async def bus() -> MemoryBroker:
    bus = MemoryBroker()
    await bus.connect()
    return bus


@pytest.fixture
async def caller(bus: MemoryBroker) -> Caller:
    caller = Caller(bus)
    await caller.start()
    return caller


async def test_a_reply_resolves_its_own_call_only(caller: Caller, bus: MemoryBroker) -> None:
    first, second = caller.expect("a"), caller.expect("b")
    await Replier(bus).reply(caller.address, reply("b"))
    assert (await asyncio.wait_for(second, 1)).execution_id == "b"
    assert not first.done()
    assert caller.pending("a") is first


async def test_replies_for_calls_gone_and_other_kinds_are_dropped(
    caller: Caller, bus: MemoryBroker
) -> None:
    future = caller.expect("a")
    caller.forget("a")
    confirmation = ConfigApplied(change_id="c", gateway_id="g")
    await bus.publish_replies(caller.address, [reply("a"), confirmation])
    assert not future.done() and caller.pending("a") is None and len(caller) == 0


async def test_a_lost_reply_path_fails_every_pending_call(caller: Caller) -> None:
    futures = [caller.expect(str(n)) for n in range(3)]
    caller.fail_all("the connection to the broker was lost")
    for future in futures:
        with pytest.raises(ReplyLost, match="connection"):
            await future


async def test_drain_lets_pending_calls_finish_then_fails_the_rest(caller: Caller) -> None:
    quick, slow = caller.expect("quick"), caller.expect("slow")

    async def answer_quick() -> None:
        await asyncio.sleep(0.02)
        caller.pending("quick").set_result(reply("quick"))  # type: ignore[union-attr]
        caller.forget("quick")

    answering = asyncio.create_task(answer_quick())
    started = datetime.now(UTC)
    await caller.drain(grace=0.2)
    waited = (datetime.now(UTC) - started).total_seconds()
    await answering
    assert quick.result().execution_id == "quick"
    with pytest.raises(ReplyLost, match="shutting down"):
        await slow
    assert 0.15 < waited < 1.0, "it waited for the grace, no longer"
