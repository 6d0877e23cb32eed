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
    first, second = caller.expect("a", 10), caller.expect("b", 10)
    await Replier(bus).reply(caller.address, reply("b"))
    assert (await asyncio.wait_for(second, 1)).execution_id == "b"
    assert not first.done()
    assert caller.pending("a") is first


async def test_the_replies_of_one_message_resolve_each_call(
    caller: Caller, bus: MemoryBroker
) -> None:
    futures = [caller.expect(name, 10) for name in "abc"]
    await Replier(bus).reply(caller.address, reply("a"), reply("b"), reply("c"))
    answers = [await asyncio.wait_for(future, 1) for future in futures]
    assert [answer.execution_id for answer in answers] == ["a", "b", "c"]


async def test_a_call_not_answered_in_time_fails_with_a_timeout(caller: Caller) -> None:
    started = asyncio.get_running_loop().time()
    late = caller.expect("late", 0.05)
    with pytest.raises(TimeoutError):
        await late
    assert 0.04 < asyncio.get_running_loop().time() - started < 1.0
    forgotten = caller.expect("forgotten", 0.05)
    caller.forget("forgotten")
    await asyncio.sleep(0.1)
    assert not forgotten.done(), "a call forgotten has no timer left"


async def test_replies_for_calls_gone_and_other_kinds_are_dropped(
    caller: Caller, bus: MemoryBroker
) -> None:
    future = caller.expect("a", 10)
    caller.forget("a")
    confirmation = ConfigApplied(change_id="c", gateway_id="g")
    await bus.publish_replies(caller.address, [reply("a"), confirmation])
    assert not future.done() and caller.pending("a") is None and len(caller) == 0


async def test_a_lost_reply_path_fails_every_pending_call(caller: Caller) -> None:
    futures = [caller.expect(str(n), 10) for n in range(3)]
    caller.fail_all("the connection to the broker was lost")
    for future in futures:
        with pytest.raises(ReplyLost, match="connection"):
            await future


async def test_drain_lets_pending_calls_finish_then_fails_the_rest(caller: Caller) -> None:
    quick, slow = caller.expect("quick", 10), caller.expect("slow", 10)

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
