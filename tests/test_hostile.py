"""Hostile requests: whatever their size (within the limits), nesting or repetition, the
gateway and the parse helper answer promptly with a 2xx or a clear 4xx, and other callers are
not kept waiting. Over real sockets, on a real RabbitMQ; the time bounds are generous (what
they guard against took many seconds, or for ever)."""

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from yarl import URL

from hookflow_shared.bodies import MAX_DEPTH, MAX_PATHS
from tests.support import System, running_system, settings_for, wait_for, webhook_url


@pytest.fixture
def system(rabbit_system: System) -> System:
    """These tests are about RabbitMQ's part: the services on a real broker only."""
    return rabbit_system


PROMPTLY = 2.0
"""Seconds: what the tests below took many seconds (or were never answered) before."""

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
XML = {"Content-Type": "application/xml"}
JSON = {"Content-Type": "application/json"}


async def _post(system: System, url: str, data: bytes, headers: dict[str, str]) -> Any:
    """(status, answer as JSON or text, seconds taken, headers); the URL is sent as it is
    (brackets in the query unescaped, as integrators send them)."""
    started = time.perf_counter()
    response, body = await system.post(URL(url, encoded=True), data=data, headers=headers)
    elapsed = time.perf_counter() - started
    answer = orjson.loads(body) if response.content_type == "application/json" else body
    return response.status, answer, elapsed, response.headers


async def _recorded_body(system: System, headers: Any) -> Any:
    record = await system.execution(headers["X-Hookflow-Execution-Id"], timeout=20)
    return record["context"]


def _json_nested(depth: int) -> bytes:
    """`[{"a": [{"a": ... 1 ...}]}]`: `depth` levels, arrays and objects taking turns."""
    opening = b"".join(b'{"a":' if level % 2 else b"[" for level in range(depth))
    closing = b"".join(b"}" if level % 2 else b"]" for level in reversed(range(depth)))
    return opening + b"1" + closing


def _form_nested(levels: int) -> bytes:
    """`a[b][b]...=1`, nesting `levels` levels (the name is the first)."""
    return b"a" + b"[b]" * (levels - 1) + b"=1"


def _xml_nested(levels: int) -> bytes:
    """`<a><b>...<b>1</b>...</b></a>`, `levels` elements deep: `{"a": {"b": ... {"b": "1"}}}`
    nests `levels` objects (the root's name, then one per element but the innermost)."""
    return b"<a>" + b"<b>" * (levels - 1) + b"1" + b"</b>" * (levels - 1) + b"</a>"


async def test_repeated_bracket_keys_cost_linear_time(system: System) -> None:
    workflow = await system.create({"title": "forms"})
    url = webhook_url(system, workflow)
    repeats = 50_000  # 300 KB of `a[]=x`; each append counted every key before: ~100 s
    body = b"&".join([b"a[]=x"] * repeats) + b"&" + b"&".join([b"b=y"] * repeats)
    status, _, elapsed, headers = await _post(system, url, body, FORM)
    assert status == 200
    assert elapsed < PROMPTLY
    context = await _recorded_body(system, headers)
    # Indexes above 1000 are object keys (so `a[99999]=1` cannot allocate a list).
    assert list(context["body"]["a"].values()) == ["x"] * repeats
    assert context["body"]["b"] == ["y"] * repeats


@pytest.mark.parametrize(
    ("content_type", "nested"),
    [(JSON, _json_nested), (FORM, _form_nested), (XML, _xml_nested)],
    ids=["json", "form", "xml"],
)
async def test_bodies_nest_up_to_the_limit_and_no_deeper(
    system: System, content_type: dict[str, str], nested: Any
) -> None:
    """The deepest body accepted is run and recorded (the executor reads it back); one level
    more, or a hundred thousand more, is a 400 saying the limit, promptly. Deep JSON used to be
    accepted and then lost (the executor could not read the message); deep forms and XML were
    500s."""
    workflow = await system.create({"title": "deep"})
    url = webhook_url(system, workflow)
    status, _, _, headers = await _post(system, url, nested(MAX_DEPTH), content_type)
    assert status == 200
    context = await _recorded_body(system, headers)
    assert context["body"]
    for levels in (MAX_DEPTH + 1, 200, 100_000):
        status, answer, elapsed, _ = await _post(system, url, nested(levels), content_type)
        assert status == 400, (levels, answer)
        assert answer == {"error": f"body nests deeper than {MAX_DEPTH} levels"}
        assert elapsed < PROMPTLY


async def test_repeated_xml_elements_nest_one_level_more(system: System) -> None:
    """Repeated elements become a list: a level of their own, counted as such."""
    workflow = await system.create({"title": "xml lists"})
    url = webhook_url(system, workflow)
    # {"a": {"b": {"b": ... {"i": ["1", "1"]}}}}: the root's key, MAX_DEPTH - 2 objects, a list
    chain = b"<b>" * (MAX_DEPTH - 3)
    ending = b"</b>" * (MAX_DEPTH - 3)
    inside = b"<a>" + chain + b"<i>1</i><i>1</i>" + ending + b"</a>"
    status, _, _, headers = await _post(system, url, inside, XML)
    assert status == 200
    assert (await _recorded_body(system, headers))["body"]
    one_more = b"<a><b>" + chain + b"<i>1</i><i>1</i></b>" + ending + b"</a>"
    status, answer, _, _ = await _post(system, url, one_more, XML)
    assert (status, answer) == (400, {"error": f"body nests deeper than {MAX_DEPTH} levels"})
    many = b"<r>" + b"<i a='1'>x</i>" * 60_000 + b"</r>"
    status, _, elapsed, headers = await _post(system, url, many, XML)
    assert status == 200
    assert elapsed < PROMPTLY
    assert len((await _recorded_body(system, headers))["body"]["r"]["i"]) == 60_000


async def test_query_strings_nest_up_to_the_limit(system: System) -> None:
    workflow = await system.create({"title": "queries"})
    url = webhook_url(system, workflow)
    deepest = "a" + "[b]" * (MAX_DEPTH - 1)
    status, _, _, headers = await _post(system, f"{url}?{deepest}=1&t[]=1&t[]=2", b"", {})
    assert status == 200
    assert (await _recorded_body(system, headers))["query"]["t"] == ["1", "2"]
    for levels in (MAX_DEPTH + 1, 2000):  # 2000 was a RecursionError: a 500
        query = "a" + "[b]" * (levels - 1) + "=1"
        status, answer, elapsed, _ = await _post(system, f"{url}?{query}", b"", {})
        assert (status, answer) == (
            400,
            {"error": f"query string nests deeper than {MAX_DEPTH} levels"},
        )
        assert elapsed < PROMPTLY


@pytest.mark.parametrize("index", ["²", "9" * 5000], ids=["unicode-digit", "huge-index"])
async def test_odd_indexes_are_object_keys(system: System, index: str) -> None:
    """`a[²]=1` (a digit to str.isdigit, not to int) and a 5,000-digit index (over Python's
    limit for int()) were 500s."""
    workflow = await system.create({"title": "indexes"})
    url = webhook_url(system, workflow)
    status, _, _, headers = await _post(
        system, f"{url}?a[{quote(index)}]=1", f"a[{index}]=2".encode(), FORM
    )
    assert status == 200
    context = await _recorded_body(system, headers)
    assert context["query"] == {"a": {index: "1"}}
    assert context["body"] == {"a": {index: "2"}}


async def test_a_large_body_does_not_hold_up_other_callers(system: System) -> None:
    """While several 1 MiB bodies keep the parser busy for most of a second each, a small
    webhook is answered at once: large bodies are parsed off the event loop. (They are refused
    at their very end, so that no execution of theirs shares the test's event loop.)"""
    workflow = await system.create({"title": "busy"})
    url = webhook_url(system, workflow)
    heavy = b"&".join([b"a[]=x"] * 170_000) + b"&z" + b"[b]" * MAX_DEPTH + b"=1"
    assert len(heavy) < 1024 * 1024
    started = time.perf_counter()
    heavy_calls = [asyncio.create_task(_post(system, url, heavy, FORM)) for _ in range(4)]
    await asyncio.sleep(0.3)  # the bodies are in, the parsing under way
    small = await _post(system, url, b'{"status":"paid","amount":12.5,"order":{"id":"A1"}}', JSON)
    small_took = small[2]
    heavy_answers = await asyncio.gather(*heavy_calls)
    heavy_took = time.perf_counter() - started
    assert small[0] == 200
    assert [answer[0] for answer in heavy_answers] == [400] * 4
    # Parsed on the event loop, the small one waited for them all: 3.5 s and more.
    assert small_took < 1.5, (small_took, heavy_took)


async def test_the_parse_helper_refuses_deep_samples(system: System) -> None:
    deep_query = "a" + "[b]" * MAX_DEPTH + "=1"
    samples: list[tuple[bytes, str]] = [
        (orjson.dumps({"url": f"https://x.example/?{deep_query}"}), "query string"),
        (b'{"body":' + _json_nested(MAX_DEPTH + 1) + b"}", "body"),
        (orjson.dumps({"sample": _json_nested(5000).decode()}), "body"),
        (orjson.dumps({"sample": _xml_nested(5000).decode(), "contentType": "text/xml"}), "body"),
        (
            orjson.dumps(
                {
                    "sample": _form_nested(5000).decode(),
                    "contentType": "application/x-www-form-urlencoded",
                }
            ),
            "body",
        ),
    ]
    for payload, what in samples:
        started = time.perf_counter()
        status, answer = await system.api("POST", "/api/webhook:parse", data=payload)
        assert (status, answer) == (400, {"error": f"{what} nests deeper than {MAX_DEPTH} levels"})
        assert time.perf_counter() - started < PROMPTLY


async def test_the_parse_helper_bounds_its_answer(system: System) -> None:
    """Every container lists all it holds, so a full answer grows with size times depth: a
    64-level chain around a 500 KB string would have been 32 MB, and 100,000 `a[]=x` 100,000
    paths (after a quadratic parse). The answer lists what fits and says it is truncated."""
    chain = {"v": "x" * 500_000}
    for _ in range(MAX_DEPTH - 1):
        chain = {"a": chain}
    wide = "a[]=x&" * 100_000
    cases: list[dict[str, Any]] = [
        {"body": chain},
        {"url": f"https://x.example/notify?{wide}"},
        {"sample": wide, "contentType": "application/x-www-form-urlencoded"},
        {"sample": "[" + ",".join(["1"] * 100_000) + "]"},
    ]
    for payload in cases:
        started = time.perf_counter()
        status, answer = await system.api("POST", "/api/webhook:parse", payload)
        assert time.perf_counter() - started < PROMPTLY
        assert status == 200, answer
        assert answer["truncated"] is True
        listed = answer.get("body") or answer["query"]
        assert 0 < len(listed) <= MAX_PATHS
        assert len(orjson.dumps(answer)) < 2 * 1024 * 1024
    status, answer = await system.api("POST", "/api/webhook:parse", {"body": chain})
    keys = [entry["key"] for entry in answer["body"]]
    assert keys[0] == "a" and keys[-1] == "a" * 1 + ".a" * (MAX_DEPTH - 2) + ".v"
    assert all(entry.get("truncated") for entry in answer["body"])  # each holds 500 KB
    small = {"order": {"id": "A1", "items": [{"sku": "X"}]}}
    status, answer = await system.api("POST", "/api/webhook:parse", {"body": small})
    assert answer == {
        "body": [
            {"key": "order", "value": small["order"], "type": "object"},
            {"key": "order.id", "value": "A1", "type": "string"},
            {"key": "order.items", "value": [{"sku": "X"}], "type": "array"},
            {"key": "order.items[0]", "value": {"sku": "X"}, "type": "object"},
            {"key": "order.items[0].sku", "value": "X", "type": "string"},
        ],
        "truncated": False,
    }


async def test_the_parse_helper_says_when_a_charset_cannot_carry_the_sample(
    system: System,
) -> None:
    """Both were 500s: the sample is encoded in the named charset before it is parsed."""
    for content_type, expected in [
        ("text/plain; charset=klingon", (415, "unknown charset 'klingon'")),
        ("text/plain; charset=ascii", (400, "sample cannot be written in ascii (character 0)")),
    ]:
        status, answer = await system.api(
            "POST", "/api/webhook:parse", {"sample": "é", "contentType": content_type}
        )
        assert (status, answer["error"]) == expected


@pytest.fixture
async def impatient(rabbitmq: str, data_dir: Path, namespace: str) -> AsyncIterator[System]:
    """The system with a gateway that gives callers 0.5 s to send their body."""
    settings = settings_for(
        broker_url=rabbitmq,
        mongodb=None,
        data_dir=data_dir,
        namespace=namespace,
        body_timeout=0.5,
        shutdown_grace_sync=0.2,
    )
    async with running_system(settings) as running:
        yield running


async def test_a_body_trickled_too_slowly_is_a_408_and_nothing_is_queued(
    impatient: System,
) -> None:
    system = impatient
    workflow = await system.create({"title": "slow senders"})
    url = webhook_url(system, workflow)
    path = url.removeprefix(system.gateway_url)
    host, port = system.gateway_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    started = time.perf_counter()
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n".encode()
    )
    answer = b""
    for _ in range(40):  # a byte every 0.1 s: 4 s for the first 40 of the 100 bytes
        writer.write(b" ")
        await writer.drain()
        try:
            answer = await asyncio.wait_for(reader.read(4096), 0.1)
            break
        except TimeoutError:
            continue
    took = time.perf_counter() - started
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"Connection: close" in answer
    assert b"the body did not arrive within 0.5 s; nothing was queued" in answer
    assert took < PROMPTLY
    # A prompt caller is served, and that call is the only run of the workflow.
    response, _ = await system.post(url, json={"n": 1})
    assert response.status == 200
    await system.execution(response.headers["X-Hookflow-Execution-Id"])

    async def runs() -> list[Any]:
        status, page = await system.api("GET", f"/api/workflows/{workflow['id']}/executions")
        assert status == 200
        return page["items"]

    await asyncio.sleep(0.3)
    assert len(await wait_for(runs)) == 1
