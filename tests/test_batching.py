"""The coalescer under the gateway's publishes, the executor's record writes and replies."""

import asyncio

import pytest

from hookflow_shared.batching import Batcher, Overloaded


async def test_one_item_goes_alone_at_once() -> None:
    flushed: list[list[int]] = []

    async def flush(items: list[int]) -> None:
        flushed.append(items)

    batcher: Batcher[int, None] = Batcher(flush)
    assert await batcher.submit(1) is None
    assert flushed == [[1]]


async def test_items_arriving_during_a_flush_go_together_in_the_next() -> None:
    flushed: list[list[int]] = []
    release = asyncio.Event()

    async def flush(items: list[int]) -> None:
        flushed.append(items)
        await release.wait()

    batcher: Batcher[int, None] = Batcher(flush, max_in_flight=1)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0)  # the first flush starts and waits
    others = [asyncio.create_task(batcher.submit(n)) for n in range(1, 6)]
    await asyncio.sleep(0)
    assert len(batcher) == 5, "they wait for the flush in flight"
    release.set()
    await asyncio.gather(first, *others)
    assert flushed == [[0], [1, 2, 3, 4, 5]]


async def test_each_caller_gets_its_own_result_and_the_batch_its_error() -> None:
    async def double(items: list[int]) -> list[int]:
        return [item * 2 for item in items]

    doubler: Batcher[int, int] = Batcher(double)
    assert await asyncio.gather(*(doubler.submit(n) for n in range(4))) == [0, 2, 4, 6]

    async def broken(items: list[int]) -> None:
        raise ConnectionError("down")

    failing: Batcher[int, None] = Batcher(broken)
    results = await asyncio.gather(*(failing.submit(n) for n in range(3)), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)


async def test_max_batch_splits_large_bursts() -> None:
    sizes: list[int] = []

    async def flush(items: list[int]) -> None:
        sizes.append(len(items))
        await asyncio.sleep(0)

    batcher: Batcher[int, None] = Batcher(flush, max_batch=3, max_in_flight=1)
    await asyncio.gather(*(batcher.submit(n) for n in range(10)))
    assert sum(sizes) == 10 and max(sizes) <= 3


async def test_too_many_waiting_is_refused_at_once() -> None:
    release = asyncio.Event()

    async def flush(items: list[int]) -> None:
        await release.wait()

    batcher: Batcher[int, None] = Batcher(flush, max_in_flight=1, max_waiting=2)
    held = [asyncio.create_task(batcher.submit(0))]
    await asyncio.sleep(0)  # in flight
    held += [asyncio.create_task(batcher.submit(n)) for n in (1, 2)]  # waiting
    await asyncio.sleep(0)
    with pytest.raises(Overloaded, match="waiting already"):
        await batcher.submit(99)
    release.set()
    await asyncio.gather(*held)


async def test_a_stalled_flush_refuses_new_items_until_one_succeeds() -> None:
    outcome: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def flush(items: list[int]) -> None:
        await asyncio.shield(outcome)

    batcher: Batcher[int, None] = Batcher(flush, max_in_flight=1, stalled_after=0.05)
    probe = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.1)
    with pytest.raises(Overloaded, match="stalled"):
        await batcher.submit(2)
    outcome.set_result(None)
    await probe
    assert await batcher.submit(3) is None, "a success closes the breaker"


async def test_close_waits_for_the_flushes_in_flight() -> None:
    done: list[int] = []

    async def flush(items: list[int]) -> None:
        await asyncio.sleep(0.05)
        done.extend(items)

    batcher: Batcher[int, None] = Batcher(flush)
    pending = asyncio.create_task(batcher.submit(7))
    await asyncio.sleep(0)
    await batcher.close()
    assert done == [7]
    await pending
