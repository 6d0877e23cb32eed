"""Idempotency claims, one contract on both stores: a key is taken once, atomically, until it
expires or its claim is abandoned before the run was queued."""

import asyncio
from datetime import timedelta

from hookflow_shared.models import now
from hookflow_shared.storage import Claim, Storage


def claim(execution_id: str, *, key: str = "evt-1", window: float = 60, ago: float = 0) -> Claim:
    at = now() - timedelta(seconds=ago)
    return Claim("wf", key, execution_id, at, at + timedelta(seconds=window))


def long_ago() -> timedelta:
    return timedelta(hours=1)


async def test_a_key_is_taken_once(store: Storage) -> None:
    first, second = claim("e1"), claim("e2")
    held = await store.claim_keys([first], abandoned_before=now() - long_ago())
    assert held == [first]
    held = await store.claim_keys([second], abandoned_before=now() - long_ago())
    assert held[0].execution_id == "e1"
    assert (await store.get_claim("wf", "evt-1")) == first


async def test_claims_made_together_and_at_once_have_one_winner(store: Storage) -> None:
    together = await store.claim_keys(
        [claim("a"), claim("b"), claim("c", key="other")], abandoned_before=now() - long_ago()
    )
    assert [c.execution_id for c in together] == ["a", "a", "c"]
    at_once = await asyncio.gather(
        *(
            store.claim_keys([claim(f"x{n}", key="race")], abandoned_before=now() - long_ago())
            for n in range(8)
        )
    )
    assert len({held[0].execution_id for held in at_once}) == 1


async def test_an_expired_key_is_free_again(store: Storage) -> None:
    await store.claim_keys([claim("old", window=1, ago=5)], abandoned_before=now() - long_ago())
    held = await store.claim_keys([claim("new")], abandoned_before=now() - long_ago())
    assert held[0].execution_id == "new"
    assert await store.purge_claims(now()) == 0
    await store.claim_keys([claim("gone", key="k2", window=1, ago=5)], abandoned_before=now())
    await store.purge_claims(now())  # (MongoDB's TTL index may have been first)
    assert await store.get_claim("wf", "k2") is None
    assert await store.get_claim("wf", "evt-1") is not None


async def test_a_claim_never_queued_is_taken_over_after_a_while(store: Storage) -> None:
    stale = claim("stale", ago=30)
    await store.claim_keys([stale], abandoned_before=now() - long_ago())
    fresh = claim("fresh")
    # Not yet abandoned: claimed 30 s ago, the limit is 60 s.
    held = await store.claim_keys([fresh], abandoned_before=now() - timedelta(seconds=60))
    assert held[0].execution_id == "stale"
    held = await store.claim_keys([fresh], abandoned_before=now() - timedelta(seconds=10))
    assert held[0].execution_id == "fresh"
    # A queued claim is never abandoned, however old.
    queued = claim("queued", key="k3", ago=30)
    await store.claim_keys([queued], abandoned_before=now() - long_ago())
    await store.mark_claims([queued], "queued")
    held = await store.claim_keys([claim("late", key="k3")], abandoned_before=now())
    assert (held[0].execution_id, held[0].state) == ("queued", "queued")


async def test_release_and_start_only_touch_the_holders_claim(store: Storage) -> None:
    mine = claim("mine")
    await store.claim_keys([mine], abandoned_before=now() - long_ago())
    await store.release_claims([claim("someone-else")])
    assert (await store.get_claim("wf", "evt-1")) is not None
    assert await store.start_claims([claim("someone-else"), mine]) == [False, True]
    assert (await store.get_claim("wf", "evt-1")).state == "started"  # type: ignore[union-attr]
    # No claim at all (expired and purged): the run goes ahead.
    assert await store.start_claims([claim("lonely", key="never-claimed")]) == [True]
    await store.release_claims([mine])
    assert await store.get_claim("wf", "evt-1") is None


async def test_the_installation_id_is_made_once_and_kept(store: Storage) -> None:
    ids = await asyncio.gather(*(store.installation_id() for _ in range(5)))
    assert len(set(ids)) == 1
    assert await store.installation_id() == ids[0]
