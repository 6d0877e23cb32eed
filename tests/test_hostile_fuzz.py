"""Property-based hostile input, through the real apps on sockets (in-process bus, SQLite):
deep nesting and long repetitions of every accepted body type, of query strings and of the
parse helper's samples. Each answer is a 2xx or a 4xx, the one the nesting calls for; every
run accepted is run and recorded (a message the executor cannot read would be lost); the parse
helper's answer stays bounded. A few dozen examples each here; `make fuzz` runs 100,000."""

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from hookflow_shared.bodies import MAX_DEPTH, MAX_PATHS
from hookflow_shared.messaging import Topology, open_broker
from hookflow_shared.storage.sqlite import SqliteStorage
from hookflow_shared.workflow.templates import get_path, parse_path
from tests import fuzzing
from tests.support import System, running_system, settings_for, wait_for, webhook_url

EXAMPLES = 60
"""Per property in the suite (each is an HTTP call)."""


@dataclass
class Sample:
    """A generated body or query string and the nesting it parses to; None when it was
    mangled (cut short), so that it may or may not parse."""

    text: bytes
    depth: int | None
    content_type: str


def expected_statuses(sample: Sample) -> set[int]:
    if sample.depth is None:
        return {200, 400}
    return {200} if sample.depth <= MAX_DEPTH else {400}


# Depths crowd around the limit, and reach past Python's recursion limit and orjson's (1024).
depths = st.one_of(
    st.integers(MAX_DEPTH - 3, MAX_DEPTH + 3), st.integers(0, 80), st.integers(0, 3000)
)
widths = st.one_of(st.integers(0, 3), st.integers(0, 3000))


def _cut(draw: st.DrawFn, text: bytes) -> tuple[bytes, bool]:
    """Now and then the text cut short, as a dropped connection would leave it."""
    if text and draw(st.integers(0, 9)) == 0:
        return text[: draw(st.integers(0, len(text) - 1))], True
    return text, False


# --- JSON ----------------------------------------------------------------------------------

JSON_OPENERS = [
    (b"[", b"]"),
    (b'{"k":', b"}"),
    (b'[0,"x",', b"]"),
    (b'{"a":null,"k k":', b"}"),
    (b'{"b":{"c":[]},"k":', b"}"),
]
JSON_LEAVES = [b"1", b'"x"', b"null", b"[]", b"{}", b'"[[{{"', b"-0.5e3", b'"\\u00e9"']


@st.composite
def json_samples(draw: st.DrawFn, *, plain: bool = False) -> Sample:
    """Openers drawn as a short pattern repeated `depth` times around a leaf, or around an
    array repeating the leaf `width` times; in a charset, and now and then cut short, unless
    `plain`."""
    pattern = draw(st.lists(st.sampled_from(JSON_OPENERS), min_size=1, max_size=4))
    depth, width = draw(depths), draw(widths)
    leaf = draw(st.sampled_from(JSON_LEAVES))
    leaf_depth = 1 if leaf in (b"[]", b"{}") else 0
    # `{"b":{"c":[]}, ...}` holds two more levels beside the chain.
    extra = [2 if opener[0].startswith(b'{"b"') else 0 for opener in pattern]
    if draw(st.booleans()):
        inner, inner_depth = b"[" + b",".join([leaf] * width) + b"]", 1 + bool(width) * leaf_depth
    else:
        inner, inner_depth = leaf, leaf_depth
    chain = [pattern[level % len(pattern)] for level in range(depth)]
    text = b"".join(o for o, _ in chain) + inner + b"".join(c for _, c in reversed(chain))
    nesting = max(
        [depth + inner_depth] + [level + 1 + extra[level % len(pattern)] for level in range(depth)]
    )
    if plain:
        return Sample(text, nesting, "application/json")
    charset = draw(
        st.sampled_from(["", "; charset=utf-8", "; charset=utf-16", "; charset=latin-1"])
    )
    if charset:
        text = text.decode().encode(charset.rsplit("=", 1)[1])
    text, cut = _cut(draw, text)
    return Sample(text, None if cut else nesting, "application/json" + charset)


# --- forms and query strings ----------------------------------------------------------------

SEGMENTS = ["[k]", "[0]", "[]", "[5000]", "%5Bk%5D", "[x+y]"]


@st.composite
def bracket_pairs(draw: st.DrawFn, *, max_length: int = 200_000) -> tuple[str, int | None]:
    """`a[k][0]...=v` nesting `depth` levels, repeated `width` times (a repeated key makes a
    list: one level more, unless a `[]` gives each repetition its own branch), in at most
    about `max_length` characters. Returns the query and its nesting (None when empty)."""
    pattern = draw(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3))
    segments = [pattern[level % len(pattern)] for level in range(max(1, draw(depths)) - 1)]
    while len(segments) > 1 and sum(map(len, segments)) > max_length - 20:
        segments = segments[: len(segments) // 2]
    name = "a" + "".join(segments)
    pair = f"{name}={draw(st.sampled_from(['v', '', '%E6%B5%8B', 'x+y', '%ZZ']))}"
    width = draw(widths)
    width = min(width, max(1, max_length // (len(pair) + 1)))
    query = "&".join([pair] * width)
    nesting = 1 + len(segments) + (1 if width >= 2 and "[]" not in segments else 0)
    return query, nesting if width else None


@st.composite
def form_samples(draw: st.DrawFn) -> Sample:
    query, nesting = draw(bracket_pairs())
    text, cut = _cut(draw, query.encode())
    return Sample(text, None if cut else (nesting or 0), "application/x-www-form-urlencoded")


# Any mixture of the bracket syntax's pieces, for what the patterns above do not think of.
bracket_soup = st.lists(
    st.sampled_from(
        ["a", "b", "0", "1001", "²", "[", "]", "[]", "[0]", "=", "&", "%5B", "%5D", "x"]
    ),
    max_size=60,
).map("".join)


# --- XML -----------------------------------------------------------------------------------


@st.composite
def xml_samples(draw: st.DrawFn) -> Sample:
    """A chain of elements `depth` deep; at some levels the chain's child comes with siblings
    of its name (a list: a level of its own), one level repeating it `width` times; some
    elements carry an attribute or text beside their children."""
    depth = max(1, draw(depths))
    repeats = draw(st.lists(st.booleans(), min_size=1, max_size=3))
    attributes = draw(st.lists(st.booleans(), min_size=1, max_size=3))
    texts = draw(st.lists(st.booleans(), min_size=1, max_size=3))
    wide_level, width = draw(st.integers(0, max(0, depth - 2))), draw(widths)
    names = draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3))
    opening, closing = [], []
    nesting, level_depth = 1, 2  # {root: ...}; the root element's object
    for level in range(depth):
        name = names[level % len(names)]
        attribute = attributes[level % len(attributes)]
        inner = level < depth - 1
        tag = f"<{name}" + (' id="1"' if attribute else "")
        if level == 0 and draw(st.booleans()):
            tag += ' xmlns="urn:x"'
        opening.append(tag + ">" + ("t" if texts[level % len(texts)] else ""))
        if not inner:
            opening.append("v")
        repeated = inner and repeats[level % len(repeats)]
        copies = (max(1, width) if level == wide_level else 2) if repeated else 1
        child = names[(level + 1) % len(names)]
        closing.append(f"<{child}/>" * (copies - 1) + f"</{name}>")
        if inner or attribute:
            nesting = max(nesting, level_depth)
        if inner:
            if copies > 1:
                nesting = max(nesting, level_depth + 1)
            level_depth += 2 if copies > 1 else 1
    text = ("".join(opening) + "".join(reversed(closing))).encode()
    text, cut = _cut(draw, text)
    return Sample(
        text, None if cut else nesting, draw(st.sampled_from(["application/xml", "text/xml"]))
    )


@st.composite
def text_samples(draw: st.DrawFn) -> Sample:
    piece = draw(st.text(max_size=20))
    text = (piece * draw(widths)).encode()
    return Sample(text, 0, "text/plain; charset=utf-8")


# --- the system ----------------------------------------------------------------------------


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[tuple[System, str, str]]:
    """(system, webhook URL, workflow id) on the in-process bus and SQLite."""
    storage = SqliteStorage(tmp_path / "db.sqlite3")
    await storage.open()
    bus = open_broker(None, Topology("hostile"))
    await bus.connect()
    settings = settings_for(broker_url=None, mongodb=None, data_dir=tmp_path, namespace="hostile")
    try:
        async with running_system(settings, storage=storage, broker=bus) as system:
            workflow = await system.create({"title": "hostile"})
            yield system, webhook_url(system, workflow), workflow["id"]
    finally:
        await bus.close()
        await storage.close()


def run[T](coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.get_event_loop().run_until_complete(coroutine)


async def _call(system: System, url: str, sample: Sample) -> tuple[int, Any]:
    response, body = await system.post(
        URL(url, encoded=True),
        data=sample.text,
        headers={"Content-Type": sample.content_type},
        skip_auto_headers=["Content-Type"],
    )
    answer = orjson.loads(body) if response.content_type == "application/json" else body
    return response.status, answer


def _check(sample: Sample, status: int, answer: Any, what: str = "body") -> None:
    assert status in expected_statuses(sample), (status, answer, sample.depth, sample.text[:200])
    if status == 400 and sample.depth is not None:
        assert answer == {"error": f"{what} nests deeper than {MAX_DEPTH} levels"}


async def _recorded(system: System, workflow_id: str) -> int:
    count, cursor = 0, None
    while True:
        query = "?limit=200" + (f"&cursor={cursor}" if cursor else "")
        status, page = await system.api("GET", f"/api/workflows/{workflow_id}/executions{query}")
        assert status == 200
        count += len(page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            return count


def _all_accepted_runs_recorded(system: System, workflow_id: str, accepted: int) -> None:
    """Every 2xx was run and recorded: none was lost on its way to the executor."""

    async def all_there() -> bool:
        return await _recorded(system, workflow_id) == accepted

    run(wait_for(all_there, timeout=30 + accepted / 500))


def _gateway_property(
    name: str,
    embedded: tuple[System, str, str],
    samples: st.SearchStrategy[Sample],
    send: Callable[[System, str, Sample], Coroutine[Any, Any, tuple[int, Any]]] = _call,
    what: str = "body",
) -> None:
    system, url, workflow_id = embedded
    tally = fuzzing.tally(name)

    @fuzzing.hostile_settings(EXAMPLES)
    @given(samples)
    def example(sample: Sample) -> None:
        status, answer = run(send(system, url, sample))
        tally.count(status)
        _check(sample, status, answer, what)

    example()
    _all_accepted_runs_recorded(system, workflow_id, tally.statuses[200])


# --- the properties ------------------------------------------------------------------------


def test_json_bodies(embedded: tuple[System, str, str]) -> None:
    _gateway_property("test_json_bodies", embedded, json_samples())


def test_form_bodies(embedded: tuple[System, str, str]) -> None:
    soup = bracket_soup.map(
        lambda text: Sample(text.encode(), None, "application/x-www-form-urlencoded")
    )
    _gateway_property("test_form_bodies", embedded, form_samples() | soup)


def test_xml_bodies(embedded: tuple[System, str, str]) -> None:
    _gateway_property("test_xml_bodies", embedded, xml_samples())


def test_text_bodies(embedded: tuple[System, str, str]) -> None:
    _gateway_property("test_text_bodies", embedded, text_samples())


async def _query_call(system: System, url: str, sample: Sample) -> tuple[int, Any]:
    empty = Sample(b"", sample.depth, "application/json")
    return await _call(system, f"{url}?{sample.text.decode()}", empty)


@st.composite
def query_samples(draw: st.DrawFn) -> Sample:
    """Query strings within the 8 KB request line that aiohttp reads."""
    query, nesting = draw(bracket_pairs(max_length=6000))
    return Sample(query.encode(), nesting or 0, "")


def test_query_strings(embedded: tuple[System, str, str]) -> None:
    soup = bracket_soup.map(lambda text: Sample(text.replace("²", "%C2%B2").encode(), None, ""))
    _gateway_property(
        "test_query_strings", embedded, query_samples() | soup, _query_call, "query string"
    )


@st.composite
def parse_requests(draw: st.DrawFn) -> tuple[bytes, Sample, str, Any]:
    """A request to the parse helper: (payload, sample, what a 400 names, the parsed JSON sample
    when paths can be read back from it)."""
    kind = draw(st.sampled_from(["url", "body", "sample"]))
    if kind == "url":
        query, nesting = draw(bracket_pairs())
        sample = Sample(query.encode(), nesting or 0, "")
        return (
            orjson.dumps({"url": f"https://x.example/notify?{query}"}),
            sample,
            "query string",
            None,
        )
    if kind == "body":
        sample = draw(json_samples(plain=True))
        assert sample.depth is not None
        value = orjson.loads(sample.text) if sample.depth <= MAX_DEPTH else None
        return b'{"body":' + sample.text + b"}", sample, "body", value
    sample = draw(json_samples() | form_samples() | xml_samples() | text_samples())
    try:
        text = sample.text.decode(sample.content_type.partition("charset=")[2] or "utf-8")
    except UnicodeDecodeError:  # cut in the middle of a character
        text = sample.text.decode("utf-8", "replace")
        sample = Sample(text.encode(), None, sample.content_type)
    payload = orjson.dumps({"sample": text, "contentType": sample.content_type})
    return payload, sample, "body", None


def test_the_parse_helper(embedded: tuple[System, str, str]) -> None:
    system, _, _ = embedded
    tally = fuzzing.tally("test_the_parse_helper")

    @fuzzing.hostile_settings(EXAMPLES)
    @given(parse_requests())
    def example(request: tuple[bytes, Sample, str, Any]) -> None:
        payload, sample, what, value = request
        status, answer = run(system.api("POST", "/api/webhook:parse", data=payload))
        tally.count(status)
        if status == 400 and answer["error"].startswith("body is not valid JSON: depth limit"):
            # past orjson's own limit (1024) the request is refused before its sample is read
            assert sample.depth is not None and sample.depth > 1000, sample.depth
            return
        _check(sample, status, answer, what)
        if status != 200:
            return
        listed = answer["query" if what == "query string" else "body"]
        assert isinstance(answer["truncated"], bool)
        assert len(listed) <= MAX_PATHS
        assert len(orjson.dumps(answer)) < 2 * 1024 * 1024
        for entry in listed:
            assert ("value" in entry) != entry.get("truncated", False)
            if value is not None and "value" in entry:
                assert get_path(value, parse_path(entry["key"])) == entry["value"]

    example()
