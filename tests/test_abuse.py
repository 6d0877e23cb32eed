"""What a gateway owes a trigger's legitimate sender when others abuse it: callers who fail
authentication take nothing from its rate budget, a flood of new wrong passwords is turned
away without queueing, and a request with `Expect: 100-continue` is refused before its body is
sent when it would be refused anyway."""

import asyncio
import base64
import hashlib
import hmac
import os
import time
from typing import Any

import pytest

from tests.support import System, webhook_url

BASIC = "Basic " + base64.b64encode(b"pay:s3cret").decode()


def basic(password: str) -> str:
    return "Basic " + base64.b64encode(f"pay:{password}".encode()).decode()


async def legitimate_and_flood(
    system: System,
    url: str,
    *,
    legit: dict[str, Any],
    flood: Any,
    rate: float,
    seconds: float,
) -> tuple[int, int, dict[int, int]]:
    """The legitimate sender calls `rate` times a second, on schedule, while a flood of bad
    callers hammers the same URL. Returns (legitimate calls, accepted, flood statuses)."""
    stop = asyncio.Event()
    flood_statuses: dict[int, int] = {}

    async def flooder() -> None:
        while not stop.is_set():
            response, _ = await system.post(url, **flood())
            flood_statuses[response.status] = flood_statuses.get(response.status, 0) + 1

    flooders = [asyncio.create_task(flooder()) for _ in range(8)]
    await asyncio.sleep(0.5)  # the flood is on
    calls = []
    started = time.monotonic()
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, started + n / rate - time.monotonic()))
        calls.append(asyncio.create_task(system.post(url, **legit)))
    answers = await asyncio.gather(*calls)
    stop.set()
    await asyncio.gather(*flooders)
    return len(calls), sum(r.status == 200 for r, _ in answers), flood_statuses


async def test_wrong_passwords_take_nothing_from_the_senders_rate(system: System) -> None:
    rate = 20.0
    workflow = await system.create(
        {
            "title": "limited",
            "trigger": {
                "basicAuth": {"username": "pay", "password": "s3cret"},
                "rateLimit": {"rate": rate, "burst": 20},
            },
        }
    )
    url = webhook_url(system, workflow)
    sent, accepted, flood = await legitimate_and_flood(
        system,
        url,
        legit={"json": {"status": "paid"}, "headers": {"Authorization": BASIC}},
        # New wrong passwords every time: each would cost a slow hash.
        flood=lambda: {"json": {}, "headers": {"Authorization": basic(os.urandom(6).hex())}},
        rate=rate,
        seconds=3,
    )
    print(f"legitimate {accepted}/{sent} accepted; flood answers {flood}")
    assert accepted >= 0.9 * sent, f"the flood took the sender's budget: {accepted}/{sent}"
    assert set(flood) <= {401, 429}, flood
    assert flood.get(401, 0) > 0


async def test_wrong_signatures_take_nothing_from_the_senders_rate(system: System) -> None:
    rate = 20.0
    signature = {"scheme": "hmac", "header": "X-Signature", "secret": "shared-secret"}
    workflow = await system.create(
        {
            "title": "signed",
            "trigger": {"signature": signature, "rateLimit": {"rate": rate, "burst": 20}},
        }
    )
    url = webhook_url(system, workflow)
    body = b'{"status": "paid"}'
    good = hmac.new(b"shared-secret", body, hashlib.sha256).hexdigest()
    sent, accepted, flood = await legitimate_and_flood(
        system,
        url,
        legit={"data": body, "headers": {"X-Signature": good, "Content-Type": "application/json"}},
        flood=lambda: {"data": body, "headers": {"X-Signature": os.urandom(32).hex()}},
        rate=rate,
        seconds=3,
    )
    print(f"legitimate {accepted}/{sent} accepted; flood answers {flood}")
    assert accepted >= 0.9 * sent, f"the flood took the sender's budget: {accepted}/{sent}"
    assert set(flood) == {401}, flood


async def test_a_flood_of_new_passwords_is_turned_away_not_queued(system: System) -> None:
    workflow = await system.create(
        {"title": "basic", "trigger": {"basicAuth": {"username": "pay", "password": "s3cret"}}}
    )
    url = webhook_url(system, workflow)
    started = time.monotonic()
    answers = await asyncio.gather(
        *(
            system.post(url, json={}, headers={"Authorization": basic(f"guess-{n}")})
            for n in range(300)
        )
    )
    took = time.monotonic() - started
    statuses = [response.status for response, _ in answers]
    assert set(statuses) == {401, 429}, set(statuses)
    assert all(r.headers["Retry-After"] == "1" for r, _ in answers if r.status == 429)
    # Without a bound, 300 hashes two at a time would hold callers for many seconds.
    assert took < 10, f"{took:.1f} s"
    # The same wrong password again is refused from memory, without a hash.
    again = await asyncio.gather(
        *(system.post(url, json={}, headers={"Authorization": basic("guess-0")}) for _ in range(50))
    )
    assert {response.status for response, _ in again} == {401}
    ok, _ = await system.post(url, json={}, headers={"Authorization": BASIC})
    assert ok.status == 200


async def raw_exchange(base: str, head: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head.encode())
    await writer.drain()
    return reader, writer


async def status_line(reader: asyncio.StreamReader) -> str:
    return (await asyncio.wait_for(reader.readline(), 5)).decode().strip()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown key", "404"),
        ("wrong credentials", "401"),
        ("over the limit", "413"),
        ("not POST", "405"),
    ],
)
async def test_expect_100_continue_is_refused_before_the_body(
    system: System, case: str, expected: str
) -> None:
    workflow = await system.create(
        {
            "title": "guarded",
            "trigger": {
                "basicAuth": {"username": "pay", "password": "s3cret"},
                "maxBodyBytes": 1000,
            },
        }
    )
    key = workflow["trigger"]["key"] if case != "unknown key" else "nope"
    auth = basic("wrong") if case == "wrong credentials" else BASIC
    length = 5000 if case == "over the limit" else 10
    method = "PUT" if case == "not POST" else "POST"
    reader, writer = await raw_exchange(
        system.gateway_url,
        f"{method} /api/webhook:trigger/{key} HTTP/1.1\r\nHost: t\r\n"
        f"Authorization: {auth}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n",
    )
    try:
        line = await status_line(reader)
        assert line.startswith(f"HTTP/1.1 {expected} "), line
    finally:
        writer.close()


async def test_expect_100_continue_goes_on_when_the_checks_pass(system: System) -> None:
    workflow = await system.create(
        {"title": "guarded", "trigger": {"basicAuth": {"username": "pay", "password": "s3cret"}}}
    )
    body = b'{"status":"paid"}'
    reader, writer = await raw_exchange(
        system.gateway_url,
        f"POST /api/webhook:trigger/{workflow['trigger']['key']} HTTP/1.1\r\nHost: t\r\n"
        f"Authorization: {BASIC}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n",
    )
    try:
        assert await status_line(reader) == "HTTP/1.1 100 Continue"
        assert await reader.readline() == b"\r\n"
        writer.write(body)
        await writer.drain()
        assert (await status_line(reader)).startswith("HTTP/1.1 200 ")
    finally:
        writer.close()
